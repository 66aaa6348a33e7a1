//! `llm-audit retention apply` and `llm-audit erase` on a tamper-evident JSONL directory: on a
//! dataset spanning seven years, each policy leaves exactly what it says (the cut-offs computed
//! here, by calendar arithmetic of the test's own) and `verify` passes afterwards, reporting the
//! removed entries as expired by policy; erasing a user leaves no trace of their id or content,
//! and `verify` still passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::content::StoredContent;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

/// When every run is applied (`--as-of`).
const AS_OF: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);
const AS_OF_TEXT: &str = "2026-11-24T12:00:00Z";
const HASH_KEY: &str =
    "pseudonyms-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Log {
    dir: tempfile::TempDir,
    keys: tempfile::TempDir,
    /// Every entry written, by request id.
    entries: BTreeMap<String, AuditEntry>,
}

impl Log {
    fn public(&self) -> PathBuf {
        self.keys.path().join("signing.pub")
    }
    fn secret(&self) -> PathBuf {
        self.keys.path().join("signing.key")
    }
}

fn entry(i: i64, at: OffsetDateTime) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at;
    e.user_id = Some(if i % 4 == 0 {
        "alice@example.com".to_owned()
    } else {
        format!("user-{}", i % 3)
    });
    e.session_id = Some(format!("session-{}", i % 7));
    e.provider = Some("openai".to_owned());
    e.model = Some("gpt-4o".to_owned());
    e.input_tokens = Some(100 + i as u64);
    e.output_tokens = Some(10);
    e.latency_ms = 300;
    e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i, 6));
    e.system_prompt_hash = Some(format!("hmac-sha256:{}", "aa".repeat(32)));
    e.input_hash = Some(format!("hmac-sha256:{:064x}", i));
    e.output_hash = Some(format!("hmac-sha256:{}", "cc".repeat(32)));
    e.hash_key_id = Some("k1".to_owned());
    e.input_content = Some(StoredContent::Plaintext {
        text: format!("CANARY-INPUT-{i} my card is 4111"),
    });
    e.output_content = Some(StoredContent::Plaintext {
        text: format!("CANARY-OUTPUT-{i}"),
    });
    if i % 3 == 0 {
        e.status = Status::Error;
        e.error_type = Some("rate_limit_error".to_owned());
        e.error_message = Some(format!("CANARY-ERROR-{i}"));
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("tier".to_owned(), "gold".into());
    e.metadata = Some(metadata);
    e
}

/// Seven years of entries, one every 5 days and 7 hours, from two writers taking turns
/// (two chained streams), written in time order.
fn seven_years() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let out = cli(
        &["keygen", "--out"],
        &[keys.path().join("signing").as_os_str()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = SigningKey::from_file(keys.path().join("signing.key")).unwrap();
    let sink = || {
        JsonlSink::builder(dir.path())
            .chain(key.clone())
            .checkpoint_every(25)
            .build()
            .unwrap()
    };
    let (mut a, mut b) = (sink(), sink());
    let start = AS_OF - time::Duration::days(7 * 365 + 2);
    let step = time::Duration::hours(5 * 24 + 7);
    let mut entries = BTreeMap::new();
    let mut i = 0;
    let mut at = start;
    while at < AS_OF {
        let e = entry(i, at);
        entries.insert(e.request_id.to_string(), e.clone());
        if (i / 10) % 2 == 0 {
            a.write_batch(&[e]).unwrap();
        } else {
            b.write_batch(&[e]).unwrap();
        }
        i += 1;
        at += step;
    }
    // Two entries on the day of the standard policy's cut-off, one on each side of it: that
    // day's file is neither kept nor removed whole.
    for offset in [-1, 1] {
        let e = entry(i, years_before(2) + time::Duration::hours(offset));
        entries.insert(e.request_id.to_string(), e.clone());
        a.write_batch(&[e]).unwrap();
        i += 1;
    }
    a.shutdown().unwrap();
    b.shutdown().unwrap();
    Log { dir, keys, entries }
}

fn cli(args: &[&str], more: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-audit"));
    command
        .args(args)
        .args(more)
        .env("LLM_AUDIT_PROGRESS", "never")
        .env_remove("LLM_AUDIT_HASH_KEY")
        .env_remove("LLM_AUDIT_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

fn verify(dir: &Path, log: &Log) -> Output {
    cli(
        &[
            "verify",
            "--format",
            "jsonl",
            "--dir",
            dir.to_str().unwrap(),
            "--public-key",
        ],
        &[log.public().as_os_str()],
        &[],
    )
}

/// The kinds `verify` listed (problems and notes), with their counts.
fn kinds(out: &Output) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        *kinds
            .entry(v["kind"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    kinds
}

/// Every entry line of the directory, parsed, by request id.
fn stored(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.starts_with("audit_20") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            out.insert(v["request_id"].as_str().unwrap().to_owned(), v);
        }
    }
    out
}

fn all_text(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    all
}

fn years_before(years: i32) -> OffsetDateTime {
    // Calendar years: AS_OF is November 24, a date every year has.
    AS_OF.replace_year(AS_OF.year() - years).unwrap()
}

/// What a policy must leave: (metadata, content hashes, content, error details) cut-offs;
/// `None` keeps forever.
struct Expect {
    args: Vec<&'static str>,
    metadata: Option<OffsetDateTime>,
    hashes: Option<OffsetDateTime>,
    content: Option<OffsetDateTime>,
    errors: Option<OffsetDateTime>,
}

fn policies() -> Vec<Expect> {
    vec![
        Expect {
            args: vec!["--policy", "standard"],
            metadata: Some(years_before(2)),
            hashes: Some(years_before(1)),
            content: Some(AS_OF - time::Duration::days(90)),
            errors: Some(years_before(1)),
        },
        Expect {
            args: vec!["--policy", "hipaa"],
            metadata: Some(years_before(6)),
            hashes: Some(years_before(6)),
            // Never stored: whatever is there goes, however recent.
            content: Some(AS_OF),
            errors: Some(years_before(6)),
        },
        Expect {
            args: vec![
                "--policy",
                "gdpr",
                "--metadata",
                "400d",
                "--hashes",
                "30d",
                "--content",
                "7d",
                "--errors",
                "60d",
            ],
            metadata: Some(AS_OF - time::Duration::days(400)),
            hashes: Some(AS_OF - time::Duration::days(30)),
            content: Some(AS_OF - time::Duration::days(7)),
            errors: Some(AS_OF - time::Duration::days(60)),
        },
        Expect {
            args: vec![
                "--policy",
                "custom",
                "--metadata",
                "forever",
                "--hashes",
                "3y",
                "--content",
                "never",
                "--errors",
                "forever",
            ],
            metadata: None,
            hashes: Some(years_before(3)),
            content: Some(AS_OF),
            errors: None,
        },
    ]
}

fn kept(at: OffsetDateTime, cut: Option<OffsetDateTime>) -> bool {
    cut.is_none_or(|c| at >= c)
}

#[test]
fn each_policy_leaves_exactly_what_it_says_and_the_log_still_verifies() {
    let log = seven_years();
    assert!(log.entries.len() > 450, "{}", log.entries.len());
    let before = verify(log.dir.path(), &log);
    assert!(before.status.success(), "{}", text(&before.stdout));

    for policy in policies() {
        let name = policy.args[1];
        let dir = copy(log.dir.path());
        let d = dir.path().to_str().unwrap().to_owned();
        let mut args = vec!["retention", "apply"];
        args.extend(&policy.args);
        args.extend(["--as-of", AS_OF_TEXT, "--dir", &d, "--signing-key"]);

        // A dry run changes nothing and says what it would remove.
        let untouched = all_text(dir.path());
        let mut dry = args.clone();
        dry.insert(2, "--dry-run");
        let out = cli(&dry, &[log.secret().as_os_str()], &[]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(
            all_text(dir.path()),
            untouched,
            "{name}: a dry run changed files"
        );
        let removed = log
            .entries
            .values()
            .filter(|e| !kept(e.timestamp, policy.metadata))
            .count();
        assert!(
            text(&out.stdout).contains(&format!("would remove {removed} entries")),
            "{name}: {}",
            text(&out.stdout)
        );

        let out = cli(&args, &[log.secret().as_os_str()], &[]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("removed {removed} entries")),
            "{name}: {}",
            text(&out.stdout)
        );

        // Exactly what the policy says, entry by entry, member by member.
        let stored = stored(dir.path());
        let expected: BTreeSet<&String> = log
            .entries
            .iter()
            .filter(|(_, e)| kept(e.timestamp, policy.metadata))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            stored.keys().collect::<BTreeSet<_>>(),
            expected,
            "{name}: the entries kept"
        );
        for (id, v) in &stored {
            let e = &log.entries[id];
            let has = |member: &str| v.get(member).is_some_and(|m| !m.is_null());
            let hashes = kept(e.timestamp, policy.hashes);
            let content = kept(e.timestamp, policy.content);
            let errors = kept(e.timestamp, policy.errors);
            for m in ["system_prompt_hash", "input_hash", "output_hash"] {
                assert_eq!(has(m), hashes, "{name}: {m} of {}", e.timestamp);
            }
            for m in ["input_content", "output_content"] {
                assert_eq!(has(m), content, "{name}: {m} of {}", e.timestamp);
            }
            assert_eq!(
                has("error_message"),
                errors && e.error_message.is_some(),
                "{name}: error_message of {}",
                e.timestamp
            );
            // What no policy touches stays as written.
            assert_eq!(v["input_tokens"], e.input_tokens.unwrap(), "{name}");
            assert_eq!(v["user_id"], e.user_id.clone().unwrap().as_str(), "{name}");
            assert_eq!(v["error_type"], serde_json::json!(e.error_type), "{name}");
        }

        // verify passes, naming the removed entries as expired by policy.
        let out = verify(dir.path(), &log);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let kinds = kinds(&out);
        assert_eq!(
            kinds.contains_key("expired by policy"),
            removed > 0,
            "{name}: {kinds:?}"
        );
        if removed > 0 {
            assert!(
                text(&out.stderr).contains(&format!("({removed} more expired by policy)")),
                "{name}: {}",
                text(&out.stderr)
            );
        }

        // A second run finds nothing more to do, and the log still verifies.
        let again = cli(&args, &[log.secret().as_os_str()], &[]);
        assert!(again.status.success(), "{name}: {}", text(&again.stderr));
        assert!(
            text(&again.stdout).contains("removed 0 entries"),
            "{name}: {}",
            text(&again.stdout)
        );
        assert!(verify(dir.path(), &log).status.success(), "{name}");
    }
}

#[test]
fn tombstones_are_checked_and_a_tampered_log_is_not_laundered() {
    let log = seven_years();
    let dir = copy(log.dir.path());
    let d = dir.path().to_str().unwrap().to_owned();
    let apply = |dir: &str, extra: &[&str]| {
        let mut args = vec![
            "retention",
            "apply",
            "--policy",
            "standard",
            "--as-of",
            AS_OF_TEXT,
        ];
        args.extend(extra);
        args.extend(["--dir", dir, "--signing-key"]);
        cli(&args, &[log.secret().as_os_str()], &[])
    };
    assert!(apply(&d, &[]).status.success());
    let tombstones = dir.path().join("audit_tombstones.jsonl");
    let original = std::fs::read_to_string(&tombstones).unwrap();
    assert!(!original.is_empty());

    // Without the tombstones, the removed entries are missing.
    std::fs::remove_file(&tombstones).unwrap();
    let out = verify(dir.path(), &log);
    assert_eq!(out.status.code(), Some(2));
    assert!(kinds(&out).contains_key("deleted"), "{}", text(&out.stdout));

    // A tombstone changed after signing (a wider range, say) fails its signature.
    let widened = original.replacen("\"first\":0", "\"first\":1", 1);
    assert_ne!(widened, original);
    std::fs::write(&tombstones, widened).unwrap();
    let out = verify(dir.path(), &log);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        kinds(&out).contains_key("bad signature"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&tombstones, &original).unwrap();
    assert!(verify(dir.path(), &log).status.success());

    // A log that does not verify now gets no tombstones: retention refuses, changing nothing.
    let tampered = copy(log.dir.path());
    let first = std::fs::read_dir(tampered.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("audit_20"))
        .min()
        .unwrap();
    let text_before = std::fs::read_to_string(&first).unwrap();
    std::fs::write(
        &first,
        text_before.replacen("\"input_tokens\":", "\"input_tokens\":9", 1),
    )
    .unwrap();
    let t = tampered.path().to_str().unwrap().to_owned();
    let untouched = all_text(tampered.path());
    let out = apply(&t, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(all_text(tampered.path()), untouched);

    // Not while a writer is running: its appends would be lost to the rewrite.
    let busy = copy(log.dir.path());
    let writer = JsonlSink::builder(busy.path())
        .chain(SigningKey::from_file(log.secret()).unwrap())
        .build()
        .unwrap();
    let out = apply(busy.path().to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("a writer is running"),
        "{}",
        text(&out.stderr)
    );
    drop(writer);

    // Chained entries cannot expire without the key for their tombstones.
    let keyless = copy(log.dir.path());
    let out = cli(
        &[
            "retention",
            "apply",
            "--policy",
            "standard",
            "--as-of",
            AS_OF_TEXT,
            "--dir",
            keyless.path().to_str().unwrap(),
        ],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--signing-key"),
        "{}",
        text(&out.stderr)
    );

    // Policies are named and complete.
    for (args, says) in [
        (vec!["--policy", "weekly"], "unknown policy"),
        (
            vec!["--policy", "gdpr", "--metadata", "1y"],
            "--hashes is missing",
        ),
        (
            vec![
                "--policy",
                "gdpr",
                "--metadata",
                "forever",
                "--hashes",
                "1d",
                "--content",
                "1d",
                "--errors",
                "1d",
            ],
            "keeps nothing forever",
        ),
        (
            vec!["--policy", "standard", "--content", "1y"],
            "fixed periods",
        ),
    ] {
        let mut all = vec!["retention", "apply", "--dir", &d];
        all.extend(args);
        let out = cli(&all, &[], &[]);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{all:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn erasing_a_user_leaves_no_trace_of_them_and_every_chain_verifies() {
    let log = seven_years();
    let dir = copy(log.dir.path());
    let d = dir.path().to_str().unwrap().to_owned();
    let theirs: Vec<&AuditEntry> = log
        .entries
        .values()
        .filter(|e| e.user_id.as_deref() == Some("alice@example.com"))
        .collect();
    assert!(theirs.len() > 50);
    let others_before: BTreeMap<String, Value> = stored(dir.path())
        .into_iter()
        .filter(|(_, v)| v["user_id"] != "alice@example.com")
        .collect();

    // The pseudonym key is required.
    let args = [
        "erase",
        "--user",
        "alice@example.com",
        "--dir",
        &d,
        "--signing-key",
    ];
    let out = cli(&args, &[log.secret().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("LLM_AUDIT_HASH_KEY"));

    let out = cli(
        &args,
        &[log.secret().as_os_str()],
        &[("LLM_AUDIT_HASH_KEY", HASH_KEY)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("from {} entries", theirs.len())),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains(HASH_KEY.split(':').nth(1).unwrap()));

    // No trace: not the id, not a byte of their content, hashes or error messages.
    let all = all_text(dir.path());
    assert!(!all.contains("alice"), "the user id is gone");
    for e in &theirs {
        let i = e.input_tokens.unwrap() - 100;
        for canary in [
            format!("CANARY-INPUT-{i} "),
            format!("CANARY-OUTPUT-{i}\""),
            format!("CANARY-ERROR-{i}\""),
            e.input_hash.clone().unwrap(),
        ] {
            assert!(!all.contains(&canary), "{canary} is still there");
        }
    }
    let stored = stored(dir.path());
    let pseudonyms: BTreeSet<&str> = theirs
        .iter()
        .map(|e| {
            stored[&e.request_id.to_string()]["user_id"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(pseudonyms.len(), 1, "one pseudonym for all their entries");
    let pseudonym = *pseudonyms.iter().next().unwrap();
    assert!(pseudonym.starts_with("pseudonym:") && pseudonym.len() == "pseudonym:".len() + 64);
    for e in &theirs {
        let v = &stored[&e.request_id.to_string()];
        // Their figures stay for the reports.
        assert_eq!(v["input_tokens"], e.input_tokens.unwrap());
        assert_eq!(v["cost_usd"], e.cost_usd.unwrap().to_string());
    }
    // Everyone else's entries are as they were.
    for (id, v) in &others_before {
        assert_eq!(&stored[id], v);
    }
    // The erasure is recorded: an entry of its own, in a signed stream.
    let events: Vec<&Value> = stored
        .values()
        .filter(|v| v["action"] == "llm_audit.erasure")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["metadata"]["llm_audit.erased_user"], pseudonym);
    assert_eq!(
        events[0]["metadata"]["llm_audit.erased_entries"],
        theirs.len()
    );

    let out = verify(dir.path(), &log);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The report by user counts the pseudonym's calls.
    let out = cli(
        &[
            "report",
            "usage",
            "--by",
            "user",
            "--from",
            "2000-01-01",
            "--format",
            "jsonl",
            "--dir",
            &d,
        ],
        &[],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["user_id"] == pseudonym)
        .expect("the pseudonym's row");
    assert_eq!(row["requests"], theirs.len());

    // The erasure is signed: hiding a change behind the digests it records fails, without the
    // key, whatever the attacker writes there.
    let forged_dir = copy(dir.path());
    let (file, line_no, mut forged) = std::fs::read_dir(forged_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("audit_20"))
        .find_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            text.lines().enumerate().find_map(|(i, l)| {
                let v: Value = serde_json::from_str(l).unwrap();
                v.get("erased").is_some().then(|| (p.clone(), i, v))
            })
        })
        .unwrap();
    forged["user_id"] = "mallory".into();
    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[line_no] = serde_json::to_string(&forged).unwrap();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = verify(forged_dir.path(), &log);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("do not match the erasure's signature"),
        "{}",
        text(&out.stdout)
    );
    // An erased map added by someone without the key, to change a user id: found too.
    let planted = copy(log.dir.path());
    let path = std::fs::read_dir(planted.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().contains("audit_20"))
        .min()
        .unwrap();
    let original = std::fs::read_to_string(&path).unwrap();
    let mut entry: Value = serde_json::from_str(original.lines().next().unwrap()).unwrap();
    let digest = tracing_llm_audit::chain::erasable_digest(&entry["user_id"]);
    entry["erased"] = serde_json::json!({"digests": {"user_id": digest}});
    entry["user_id"] = "mallory".into();
    let rest: String = original.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(
        &path,
        format!("{}\n{rest}", serde_json::to_string(&entry).unwrap()),
    )
    .unwrap();
    let out = verify(planted.path(), &log);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("without a signature"),
        "{}",
        text(&out.stdout)
    );

    // After retention too, everything verifies.
    let out = cli(
        &[
            "retention",
            "apply",
            "--policy",
            "standard",
            "--as-of",
            AS_OF_TEXT,
            "--dir",
            &d,
            "--signing-key",
        ],
        &[log.secret().as_os_str()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(verify(dir.path(), &log).status.success());
}
