//! An attacker who can write to the log directory, but holds no key, plants links where the
//! writer will open its files. The writer must refuse each with a sentence naming the file, and
//! leave the link's target unchanged byte for byte: never append to it, cut it, or copy it into
//! the quarantine file.
#![cfg(all(unix, feature = "jsonl"))]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

/// A file outside the log directory that the attacker wants changed or read: its last line has
/// no newline, so a repair that followed a link would cut it and quarantine it.
const SECRET: &[u8] = b"DATABASE_URL=postgres://app:hunter2@db/prod\nAPI_KEY=sk-live-0123456789";

struct Setup {
    _root: tempfile::TempDir,
    dir: PathBuf,
    secret: PathBuf,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    fs::create_dir(&dir).unwrap();
    let secret = root.path().join("app.env");
    fs::write(&secret, SECRET).unwrap();
    Setup {
        _root: root,
        dir,
        secret,
    }
}

fn today_file(dir: &Path) -> PathBuf {
    let today = OffsetDateTime::now_utc().date();
    dir.join(format!("audit_{today}.jsonl"))
}

fn chained(dir: &Path) -> Result<JsonlSink, tracing_llm_audit::JsonlError> {
    JsonlSink::builder(dir)
        .chain(SigningKey::generate().unwrap())
        .build()
}

/// The target is byte for byte what it was, and nothing of it reached the log directory.
fn assert_untouched(s: &Setup) {
    assert_eq!(
        fs::read(&s.secret).unwrap(),
        SECRET,
        "the link's target changed"
    );
    let secret_hex = hex::encode(b"sk-live-0123456789");
    for entry in fs::read_dir(&s.dir).unwrap() {
        let path = entry.unwrap().path();
        // The planted name itself (a link, or another name of the target).
        if path.is_symlink() || same_file(&path, &s.secret) {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-live") && !text.contains(&secret_hex),
            "{} holds the secret: {text}",
            path.display()
        );
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (fs::metadata(a).unwrap(), fs::metadata(b).unwrap());
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

fn assert_refuses_link(message: &str, file: &Path) {
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        message.contains(name) && message.contains("symbolic link"),
        "the error does not name {name} as a link: {message}"
    );
}

#[test]
fn a_day_file_linked_elsewhere_is_neither_repaired_nor_quarantined() {
    let s = setup();
    let day = today_file(&s.dir);
    symlink(&s.secret, &day).unwrap();
    let error = chained(&s.dir).unwrap_err().to_string();
    assert_refuses_link(&error, &day);
    assert_untouched(&s);
}

#[test]
fn a_day_file_linked_elsewhere_is_not_appended_to() {
    let s = setup();
    let day = today_file(&s.dir);
    symlink(&s.secret, &day).unwrap();
    let mut sink = JsonlSink::new(&s.dir).unwrap();
    let error = sink.write_batch(&[AuditEntry::new("chat")]).unwrap_err();
    let text = format!("{error}: {:?}", std::error::Error::source(&error));
    assert_refuses_link(&text, &day);
    assert_untouched(&s);
}

/// A torn last line is cut from its day file: not from a file with another name elsewhere,
/// which the cut would change too. Nothing of it is copied into the quarantine file either.
#[test]
fn a_hard_linked_day_file_is_not_cut_nor_quarantined() {
    let s = setup();
    let day = today_file(&s.dir);
    fs::hard_link(&s.secret, &day).unwrap();
    let error = chained(&s.dir).unwrap_err().to_string();
    assert!(error.contains("has 2 names"), "{error}");
    assert_untouched(&s);
}

/// A backup made with hard links (`cp -al`, rsnapshot) gives every file a second name: the
/// writer still starts and appends.
#[test]
fn a_backup_by_hard_links_does_not_stop_the_writer() {
    let s = setup();
    let mut sink = chained(&s.dir).unwrap();
    sink.write_batch(&[AuditEntry::new("chat")]).unwrap();
    sink.shutdown().unwrap();
    drop(sink);
    let backup = s.dir.parent().unwrap().join("backup");
    fs::create_dir(&backup).unwrap();
    for entry in fs::read_dir(&s.dir).unwrap() {
        let path = entry.unwrap().path();
        fs::hard_link(&path, backup.join(path.file_name().unwrap())).unwrap();
    }
    let mut sink = chained(&s.dir).unwrap();
    sink.write_batch(&[AuditEntry::new("chat")]).unwrap();
    sink.shutdown().unwrap();
}

/// The start-up probe's name is predictable; a file planted under it is not truncated.
#[test]
fn a_file_planted_as_the_write_probe_is_not_truncated() {
    let s = setup();
    let probe = s
        .dir
        .join(format!(".audit_write-check-{}", std::process::id()));
    fs::hard_link(&s.secret, &probe).unwrap();
    drop(JsonlSink::new(&s.dir).unwrap());
    assert_eq!(fs::read(&s.secret).unwrap(), SECRET);
}

#[test]
fn a_checkpoint_file_linked_elsewhere_is_refused() {
    let s = setup();
    let checkpoints = s
        .dir
        .join("audit_checkpoints_0190aaaa-0000-7000-8000-000000000000.jsonl");
    symlink(&s.secret, &checkpoints).unwrap();
    let error = chained(&s.dir).unwrap_err().to_string();
    assert_refuses_link(&error, &checkpoints);
    assert_untouched(&s);
    // Not taken for a crashed stream either.
    assert!(!s
        .dir
        .join("audit_checkpoints_0190aaaa-0000-7000-8000-000000000000.jsonl.repaired")
        .exists());
}

#[test]
fn a_quarantine_file_linked_elsewhere_is_refused_and_the_torn_line_stays() {
    let s = setup();
    let day = today_file(&s.dir);
    let torn = b"{\"schema_version\":1}\n{\"schema_vers".to_vec();
    fs::write(&day, &torn).unwrap();
    let quarantine = s.dir.join("audit_quarantine.jsonl");
    symlink(&s.secret, &quarantine).unwrap();
    let error = chained(&s.dir).unwrap_err().to_string();
    assert_refuses_link(&error, &quarantine);
    assert_untouched(&s);
    assert_eq!(fs::read(&day).unwrap(), torn, "the torn line was cut");
}

#[test]
fn the_start_up_lock_linked_elsewhere_is_refused() {
    let s = setup();
    let lock = s.dir.join("audit_startup.lock");
    symlink(&s.secret, &lock).unwrap();
    let error = chained(&s.dir).unwrap_err().to_string();
    assert_refuses_link(&error, &lock);
    assert_untouched(&s);
}
