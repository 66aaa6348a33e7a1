//! A link planted in a log directory, in place of a day, checkpoint, tombstone or quarantine
//! file, is refused by every command that reads the directory: the command fails with a
//! sentence naming the file, prints nothing of the link's target, and leaves the target
//! unchanged byte for byte.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

const SECRET: &[u8] =
    b"API_KEY=sk-live-0123456789\n{\"user_id\":\"planted\",\"cost_usd\":\"999.99\"}\n";

fn llm_audit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

/// A chained directory with one entry, its public key file, and a secret outside it.
fn setup() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    fs::create_dir(&dir).unwrap();
    let key = SigningKey::generate().unwrap();
    let public = root.path().join("signing.pub");
    fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let mut sink = JsonlSink::builder(&dir).chain(key).build().unwrap();
    let mut entry = AuditEntry::new("chat");
    entry.user_id = Some("alice".to_owned());
    sink.write_batch(&[entry]).unwrap();
    sink.shutdown().unwrap();
    let secret = root.path().join("app.env");
    fs::write(&secret, SECRET).unwrap();
    (root, dir, public, secret)
}

fn assert_refused(out: &Output, link: &Path, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: succeeded\n{stdout}\n{stderr}"
    );
    let name = link.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains(name) && stderr.contains("symbolic link"),
        "{what}: the error does not name {name} as a link: {stderr}"
    );
    for leak in ["sk-live", "planted", "999.99"] {
        assert!(
            !stdout.contains(leak) && !stderr.contains(leak),
            "{what} printed {leak}"
        );
    }
}

#[test]
fn every_reading_command_refuses_a_linked_day_file() {
    let (_root, dir, public, secret) = setup();
    // Yesterday's: inside every command's default range.
    let yesterday = time::OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap();
    let link = dir.join(format!("audit_{yesterday}.jsonl"));
    symlink(&secret, &link).unwrap();
    let public = public.to_str().unwrap();
    for args in [
        vec!["query"],
        vec!["report", "cost"],
        vec!["verify", "--public-key", public],
    ] {
        let out = llm_audit(&args, &dir);
        assert_refused(&out, &link, &args.join(" "));
    }
    assert_eq!(fs::read(&secret).unwrap(), SECRET);
}

#[test]
fn verify_refuses_a_linked_checkpoint_file() {
    let (_root, dir, public, secret) = setup();
    let checkpoint = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("checkpoints_"))
        .unwrap();
    fs::remove_file(&checkpoint).unwrap();
    symlink(&secret, &checkpoint).unwrap();
    let out = llm_audit(&["verify", "--public-key", public.to_str().unwrap()], &dir);
    assert_refused(&out, &checkpoint, "verify");
    assert_eq!(fs::read(&secret).unwrap(), SECRET);
}
