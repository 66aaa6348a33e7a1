//! `llm-audit erase` finds the user in every spelling JSON allows, and in the torn lines a full
//! disk or a crash leaves (issue 20, finding 7): afterwards no file of the directory holds the
//! id raw, JSON-escaped, hex or base64, and `query --user` finds nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

const USER: &str = "user-1";
const HASH_KEY: &str =
    "pseudonyms-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .env("LLM_AUDIT_HASH_KEY", HASH_KEY)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Every spelling of the id that a scan of the files must not find.
fn spellings() -> Vec<String> {
    let escaped: String = USER
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    // The unkeyed digest that format v1 kept in `erased`: anyone could confirm a guess of the
    // id against it (issue 20, finding 7). Format v2 keeps no digest.
    let digest = tracing_llm_audit::chain::erasable_digest(&serde_json::Value::from(USER));
    vec![
        USER.to_owned(),
        escaped,
        format!("\\u0075{}", &USER[1..]),
        hex::encode(USER),
        base64::engine::general_purpose::STANDARD.encode(USER),
        digest.trim_start_matches("sha256:").to_owned(),
    ]
}

/// A new signing key and its two files in `root`: (key, secret key file, public key file).
fn key_files(root: &Path) -> (SigningKey, PathBuf, PathBuf) {
    let key = SigningKey::generate().unwrap();
    let secret = root.join("signing.key");
    fs::write(&secret, key.to_secret_text().as_bytes()).unwrap();
    let public = root.join("signing.pub");
    fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    (key, secret, public)
}

/// The directory's day file (each test writes one day).
fn day_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit_2")
        })
        .unwrap()
}

#[test]
fn erase_finds_every_spelling_and_the_torn_lines() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let (key, secret, public) = key_files(root.path());
    let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
    let entries: Vec<AuditEntry> = (0..4)
        .map(|i| {
            let mut e = AuditEntry::new("chat");
            e.user_id = Some(if i % 2 == 0 { USER } else { "bob" }.to_owned());
            e.session_id = Some(format!("session-of-{i}"));
            e
        })
        .collect();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    drop(sink); // its lock on the checkpoint file too
    let day = day_file(&dir);

    // The first entry with its id spelled with a JSON escape: the same entry to every reader
    // and to the chain's digest, so it still verifies; and two torn lines holding the id.
    let mut lines: Vec<String> = fs::read_to_string(&day)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[0] = lines[0].replace(
        &format!("\"user_id\":\"{USER}\""),
        &format!("\"user_id\":\"\\u0075{}\"", &USER[1..]),
    );
    assert!(lines[0].contains("\\u0075ser-1"));
    lines.insert(
        2,
        format!("{{\"schema_version\":1,\"user_id\":\"{USER}\",\"sess"),
    );
    lines.insert(
        3,
        format!(
            "{{\"schema_version\":1,\"user_id\":\"\\u0075{}",
            &USER[1..3]
        ),
    );
    lines.insert(
        4,
        format!(
            "{{\"schema_version\":1,\"user_id\":\"\\u0075{}\",\"se",
            &USER[1..]
        ),
    );
    fs::write(&day, lines.join("\n") + "\n").unwrap();
    let public_arg = public.to_str().unwrap();
    let out = cli(&["verify", "--public-key", public_arg], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&["query", "--user", USER, "--format", "jsonl"], &dir);
    assert_eq!(
        text(&out).matches("\"request_id\"").count(),
        2,
        "{}",
        text(&out)
    );

    let out = cli(
        &[
            "erase",
            "--user",
            USER,
            "--signing-key",
            secret.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("from 2 entries and 2 torn line(s)"),
        "{}",
        text(&out)
    );

    for file in fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        for spelling in spellings() {
            assert!(
                !content.contains(&spelling),
                "{} still holds {spelling:?}",
                path.display()
            );
        }
    }
    // The third torn line held only part of the id ("\u0075s"): not the id, and kept.
    assert!(fs::read_to_string(&day).unwrap().contains("\\u0075s"));
    let out = cli(&["query", "--user", USER, "--format", "jsonl"], &dir);
    assert!(!text(&out).contains("\"request_id\""), "{}", text(&out));
    let out = cli(&["verify", "--public-key", public_arg], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = cli(&["query", "--format", "jsonl"], &dir);
    assert!(
        text(&out).contains("\"llm_audit.erased_torn_lines\":2"),
        "the signed erasure event counts the torn lines: {}",
        text(&out)
    );
}

/// A torn last line that names the user goes to the quarantine file at the next start; repair
/// entries written before this was fixed kept its bytes as hex too. After `erase`, neither holds
/// the id in any spelling, and every chain still verifies. Ids with a slash, a backslash or a
/// quote, which JSON may escape, are found too.
#[test]
fn erase_clears_the_quarantine_and_the_repair_entries() {
    for user in ["user-1", "tenant/alice", "CORP\\alice"] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        let (key, secret, public) = key_files(root.path());
        let quoted = serde_json::to_string(user).unwrap();
        let torn = format!("{{\"schema_version\":1,\"user_id\":{quoted},\"session_id\":\"s");
        let mut sink = JsonlSink::builder(&dir).chain(key.clone()).build().unwrap();
        let mut entry = AuditEntry::new("chat");
        entry.user_id = Some(user.to_owned());
        // A repair entry as the sink wrote them before: the torn line's bytes as hex.
        let mut old_repair = AuditEntry::new(tracing_llm_audit::sink::repair::ACTION_REPAIR);
        let record = serde_json::json!({"file": "audit_2026-01-01.jsonl", "offset": 0,
            "length": torn.len(), "fragment_hex": hex::encode(&torn)});
        old_repair.metadata = Some(
            serde_json::json!({"crashed_streams": [], "quarantined": [record]})
                .as_object()
                .unwrap()
                .clone(),
        );
        sink.write_batch(&[entry, old_repair]).unwrap();
        sink.shutdown().unwrap();
        drop(sink);
        // The slash escaped, as another JSON writer may write it: the same entry to the chain.
        let day = day_file(&dir);
        let written = fs::read_to_string(&day)
            .unwrap()
            .replace("tenant/alice", "tenant\\/alice");
        // A torn last line naming the user: the next start quarantines it.
        fs::write(&day, written + &torn).unwrap();
        let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
        sink.write_batch(&[AuditEntry::new("chat")]).unwrap();
        sink.shutdown().unwrap();
        drop(sink);
        let public_arg = public.to_str().unwrap();
        let out = cli(&["verify", "--public-key", public_arg], &dir);
        assert_eq!(out.status.code(), Some(0), "{user}: {}", text(&out));

        let out = cli(
            &[
                "erase",
                "--user",
                user,
                "--signing-key",
                secret.to_str().unwrap(),
            ],
            &dir,
        );
        assert!(out.status.success(), "{user}: {}", text(&out));
        assert!(
            text(&out).contains("from 1 entries"),
            "{user}: {}",
            text(&out)
        );
        let spellings = [
            user.to_owned(),
            quoted.trim_matches('"').to_owned(),
            user.replace('/', "\\/"),
            hex::encode(user),
            base64::engine::general_purpose::STANDARD.encode(user),
        ];
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let content = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
            for spelling in &spellings {
                assert!(
                    !content.contains(spelling.as_str()),
                    "{user}: {} still holds {spelling:?}",
                    path.display()
                );
            }
        }
        let out = cli(&["verify", "--public-key", public_arg], &dir);
        assert_eq!(out.status.code(), Some(0), "{user}: {}", text(&out));
    }
}

/// An erased entry (format v2) keeps no digest of what was removed: the erasure's signature over
/// the entry as it reads now stands in for its digest. Attacked as someone without the key
/// would: a kept member changed, the signature stripped, an erased entry swapped with another,
/// and an entry changed before the erasure so that the erasure would sign the change.
#[test]
fn an_erased_entry_cannot_be_changed_and_an_erasure_launders_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let (key, secret, public) = key_files(root.path());
    let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
    let entries: Vec<AuditEntry> = (0..6)
        .map(|i| {
            let mut e = AuditEntry::new("chat");
            e.user_id = Some(if i % 2 == 0 { USER } else { "bob" }.to_owned());
            e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i, 6));
            e.error_message = Some(format!("error of {i}"));
            e
        })
        .collect();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    drop(sink);
    let day = day_file(&dir);
    let public_arg = public.to_str().unwrap();
    let erase = |dir: &Path| {
        cli(
            &[
                "erase",
                "--user",
                USER,
                "--signing-key",
                secret.to_str().unwrap(),
            ],
            dir,
        )
    };
    let copy = |name: &str| {
        let to = root.path().join(name);
        fs::create_dir(&to).unwrap();
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };

    // Changed before the erasure (not re-hashed): the erasure refuses to sign it.
    let before = copy("before");
    let file = day_file(&before);
    let text0 = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        text0.replacen("\"cost_usd\":\"0.001000\"", "\"cost_usd\":\"0.000001\"", 1),
    )
    .unwrap();
    let changed = fs::read(&file).unwrap();
    let out = erase(&before);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("does not match its hash"),
        "{}",
        text(&out)
    );
    assert_eq!(fs::read(&file).unwrap(), changed, "nothing was changed");

    let out = erase(&dir);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&["verify", "--public-key", public_arg], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<String> = fs::read_to_string(&day)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let erased: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(erased["erased"]["v"], 2);
    assert!(erased["erased"].get("digests").is_none(), "{erased}");
    assert!(erased.get("error_message").is_none());

    let tampered = |name: &str, change: &dyn Fn(&mut Vec<String>)| {
        let to = copy(name);
        let mut all = lines.clone();
        change(&mut all);
        fs::write(day_file(&to), all.join("\n") + "\n").unwrap();
        let out = cli(
            &["verify", "--public-key", public_arg, "--format", "jsonl"],
            &to,
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains("\"seq\":0"), "{name}: {}", text(&out));
    };
    let set = |line: &str, member: &str, value: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v[member] = value;
        serde_json::to_string(&v).unwrap()
    };
    tampered("cost", &|all| {
        all[0] = set(&all[0], "cost_usd", "9.99".into());
    });
    tampered("error put back", &|all| {
        all[0] = set(&all[0], "error_message", "forged".into());
    });
    tampered("unsigned", &|all| {
        let mut v: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        v["erased"].as_object_mut().unwrap().remove("signature");
        all[0] = serde_json::to_string(&v).unwrap();
    });
    tampered("swapped", &|all| {
        // Entry 2's erased body in entry 0's place, with entry 0's link.
        let mut v: serde_json::Value = serde_json::from_str(&all[2]).unwrap();
        let first: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        v["chain"] = first["chain"].clone();
        all[0] = serde_json::to_string(&v).unwrap();
    });
    tampered("members list", &|all| {
        let mut v: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        v["erased"]["members"] = serde_json::json!(["user_id"]);
        all[0] = serde_json::to_string(&v).unwrap();
    });
}

/// An entry that does not match its hash in the last day file stops the erasure before any
/// file changes: the earlier files, which checked out, are not rewritten either, and no staged
/// copy is left behind.
#[test]
fn a_refused_erasure_changes_no_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let (key, secret, _public) = key_files(root.path());
    let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
    let entries: Vec<AuditEntry> = [
        time::macros::datetime!(2026-11-23 10:00 UTC),
        time::macros::datetime!(2026-11-24 10:00 UTC),
    ]
    .into_iter()
    .map(|at| {
        let mut e = AuditEntry::new("chat");
        e.timestamp = at;
        e.user_id = Some(USER.to_owned());
        e.cost_usd = Some(rust_decimal::Decimal::new(1_000, 6));
        e
    })
    .collect();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    drop(sink);
    let second = dir.join("audit_2026-11-24.jsonl");
    let day = fs::read_to_string(&second).unwrap();
    fs::write(&second, day.replacen("\"0.001000\"", "\"0.000001\"", 1)).unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    let out = cli(
        &[
            "erase",
            "--user",
            USER,
            "--signing-key",
            secret.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("does not match its hash"),
        "{}",
        text(&out)
    );
    let after: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    let mut before = before;
    let mut after = after;
    before.sort();
    after.sort();
    assert_eq!(after, before, "no file changed, none added");
}
