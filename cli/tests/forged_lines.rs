//! Lines forged by someone who can write to the log directory but holds no key, in the spellings
//! JSON allows and a writer never uses. `verify` must never say intact on them: each made it
//! exit 0 before (issue 20, findings 1 to 4).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tracing_llm_audit::chain::{erase_member, SigningKey};
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

struct Log {
    _root: tempfile::TempDir,
    dir: PathBuf,
    public: PathBuf,
    day: PathBuf,
}

/// A chained directory of three entries of alice's, each with a cost.
fn log() -> Log {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let key = SigningKey::generate().unwrap();
    let public = root.path().join("signing.pub");
    fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    fs::write(
        root.path().join("signing.key"),
        key.to_secret_text().as_bytes(),
    )
    .unwrap();
    let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
    let entries: Vec<AuditEntry> = (0..3)
        .map(|i| {
            let mut e = AuditEntry::new("chat");
            e.user_id = Some("alice".to_owned());
            e.model = Some("gpt-4o".to_owned());
            e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i, 6));
            e
        })
        .collect();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    let day = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("audit_2") && name.ends_with(".jsonl")
        })
        .unwrap();
    Log {
        _root: root,
        dir,
        public,
        day,
    }
}

fn verify(log: &Log) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["verify", "--dir"])
        .arg(&log.dir)
        .arg("--public-key")
        .arg(&log.public)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// `verify` fails and names the line as malformed.
fn assert_caught(log: &Log, what: &str) {
    let out = verify(log);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "{what}: verify said intact:\n{text}"
    );
    assert!(text.contains("malformed"), "{what}: {text}");
}

#[test]
fn the_honest_log_verifies() {
    let log = log();
    let out = verify(&log);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Finding 1: an erasure record under an escaped key rewrote the user with exit 0.
#[test]
fn an_erasure_record_under_an_escaped_key_is_malformed() {
    let log = log();
    let mut lines = lines(&log.day);
    let mut entry: Value = serde_json::from_str(&lines[1]).unwrap();
    // What `erase` would do, unsigned: the digest of "alice" moves into `erased`.
    assert!(erase_member(&mut entry, "user_id", Some(Value::from("mallory"))).unwrap());
    let forged = serde_json::to_string(&entry)
        .unwrap()
        .replace("\"erased\":", "\"erase\\u0064\":");
    assert!(forged.contains("erase\\u0064") && forged.contains("mallory"));
    lines[1] = forged;
    write_lines(&log.day, &lines);
    assert_caught(&log, "escaped key");
}

/// Finding 2: a line whose `chain` is null was a fragment note, yet `report` counted it.
#[test]
fn a_line_whose_chain_is_not_a_link_is_malformed() {
    let log = log();
    let mut lines = lines(&log.day);
    let mut entry: Value = serde_json::from_str(&lines[0]).unwrap();
    entry["request_id"] = Value::from("0190aaaa-0000-7000-8000-000000000001");
    entry["cost_usd"] = Value::from("999.99");
    entry["chain"] = Value::Null;
    lines.push(serde_json::to_string(&entry).unwrap());
    write_lines(&log.day, &lines);
    assert_caught(&log, "chain null");
}

/// Finding 3: an entry written as a JSON array (serde's sequence form of the struct).
#[test]
fn an_entry_written_as_an_array_is_malformed() {
    let log = log();
    let mut lines = lines(&log.day);
    let entry: Value = serde_json::from_str(&lines[0]).unwrap();
    let values: Vec<Value> = entry.as_object().unwrap().values().cloned().collect();
    lines.push(serde_json::to_string(&values).unwrap());
    write_lines(&log.day, &lines);
    assert_caught(&log, "array");
}

/// Finding 4: a member written twice with the same value kept the digest, while the readers
/// refused the line: an entry hidden from every report.
#[test]
fn a_key_written_twice_is_malformed() {
    let log = log();
    let mut lines = lines(&log.day);
    let line = &lines[2];
    let at = line.find("\"user_id\":\"alice\"").unwrap();
    lines[2] = format!("{}\"user_id\":\"alice\",{}", &line[..at], &line[at..]);
    write_lines(&log.day, &lines);
    assert_caught(&log, "duplicate key");
}

/// Finding 8: an emptied directory said intact.
#[test]
fn an_emptied_directory_is_not_intact() {
    let log = log();
    for entry in fs::read_dir(&log.dir).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = verify(&log);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("nothing is proven"), "{text}");
}

/// The review's finding: a key twice inside `input_content` kept the digest (the last wins)
/// while `query` and `show` refused the entry: hidden, with verify intact.
#[test]
fn a_key_written_twice_inside_a_member_is_malformed() {
    let log = log();
    let mut lines = lines(&log.day);
    let mut entry: Value = serde_json::from_str(&lines[1]).unwrap();
    entry["input_content"] = serde_json::json!({"kind": "plaintext", "text": "hello"});
    let line = serde_json::to_string(&entry)
        .unwrap()
        .replace(r#""text":"hello""#, r#""text":"hello","text":"hello""#);
    assert!(line.contains(r#""text":"hello","text":"hello""#));
    lines[1] = line;
    write_lines(&log.day, &lines);
    assert_caught(&log, "a key twice in input_content");
}

/// The review's finding: an entry moved to another day's file kept its chain (streams are read
/// in any file order), so verify said intact while reports of its day missed it, and retention,
/// which went by the file's name, then removed it under a signed tombstone.
#[test]
fn an_entry_moved_to_another_days_file_is_caught_and_not_expired() {
    let log = log();
    let mut today = lines(&log.day);
    let moved = today.remove(1);
    write_lines(&log.day, &today);
    let old_day = log.dir.join("audit_2000-01-01.jsonl");
    write_lines(&old_day, std::slice::from_ref(&moved));

    let out = verify(&log);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("in the file of another day"), "{text}");

    // Retention verifies first; forced past that, it still goes by each entry's day.
    let secret = log.public.with_file_name("signing.key");
    for force in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llm-audit"));
        command.args(["retention", "apply", "--policy", "standard"]);
        if force {
            command.arg("--force");
        }
        let out = command
            .arg("--dir")
            .arg(&log.dir)
            .arg("--signing-key")
            .arg(&secret)
            .env("LLM_AUDIT_PROGRESS", "never")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "retention expired the moved entry: {text}"
        );
        let why = if force {
            "another day than its file's"
        } else {
            "does not verify"
        };
        assert!(text.contains(why), "{text}");
    }
    assert_eq!(
        lines(&old_day),
        vec![moved],
        "the moved entry is still there"
    );
}

/// A line longer than any a writer writes (64 MiB): `verify` calls it malformed without holding
/// it in memory (a 200 MB line took 400 MB before, issue 20), and the readers skip it with a
/// warning and read the entries after it.
#[test]
fn a_line_longer_than_a_writer_writes_is_refused_unread() {
    use std::io::Write as _;
    let log = log();
    let all = lines(&log.day);
    // Written a MiB at a time: a child's peak size counts this process's, which stays small.
    let mut file = fs::File::create(&log.day).unwrap();
    writeln!(file, "{}", all[0]).unwrap();
    file.write_all(br#"{"user_id":"alice","cost_usd":"999.99","pad":""#)
        .unwrap();
    let mib = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        file.write_all(&mib).unwrap();
    }
    file.write_all(b"\"}\n").unwrap();
    for line in &all[1..] {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let before = max_child_rss_kib();
    let out = verify(&log);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("malformed") && text.contains("64 MiB"),
        "{text}"
    );
    let rss = max_child_rss_kib();
    if rss > before {
        // Chunks of up to 64 MiB, a few in flight: well under the 200 MB of the line.
        assert!(rss < 180 << 10, "verify used {} MiB", rss >> 10);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["query", "--format", "jsonl", "--dir"])
        .arg(&log.dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        3,
        "the three entries, and not the long line"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 MiB"));
}

/// The largest resident size of any child this process has waited for, in KiB.
fn max_child_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss
    }
}

/// Day files of another prefix (a sink's `file_prefix`) are not read by the commands: `verify`
/// names them as not verified, `erase` refuses to run and changes nothing, and `query` says
/// they were not read. Before, each passed over them in silence (verify said intact).
#[test]
fn day_files_of_another_prefix_are_named_not_passed_over() {
    let log = log();
    let other = log.dir.join("app_2026-01-01.jsonl");
    fs::copy(&log.day, &other).unwrap();
    let out = verify(&log);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("app_2026-01-01.jsonl") && text.contains("another prefix"),
        "{text}"
    );

    let before = fs::read(&other).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["erase", "--user", "alice", "--signing-key"])
        .arg(log.dir.parent().unwrap().join("signing.key"))
        .arg("--dir")
        .arg(&log.dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .env(
            "LLM_AUDIT_HASH_KEY",
            "pseudonyms-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("another prefix") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(fs::read(&other).unwrap(), before);

    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["query", "--format", "jsonl", "--dir"])
        .arg(&log.dir)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("another prefix than audit_ were not read"),
        "{text}"
    );
    assert!(
        !text.contains("not tamper-evident"),
        "a chained directory: {text}"
    );
}

/// Every reading command says so when a directory is not tamper-evident.
#[test]
fn an_unchained_directory_is_labelled_not_tamper_evident() {
    let root = tempfile::tempdir().unwrap();
    let mut sink = JsonlSink::new(root.path()).unwrap();
    let entry = AuditEntry::new("chat");
    sink.write_batch(std::slice::from_ref(&entry)).unwrap();
    sink.shutdown().unwrap();
    let id = entry.request_id.to_string();
    for args in [
        vec!["query", "--format", "jsonl"],
        vec!["report", "cost", "--format", "jsonl"],
        vec!["show", id.as_str()],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
            .args(&args)
            .arg("--dir")
            .arg(root.path())
            .env("LLM_AUDIT_PROGRESS", "never")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("is not tamper-evident"), "{args:?}: {text}");
    }
}
