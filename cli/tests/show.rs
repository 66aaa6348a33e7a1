//! `llm-audit show` and `llm-audit keygen --keyring`: a content keyring made and rotated by the
//! CLI encrypts entries; `show` prints them without their content unless `--decrypt` is given
//! with a keyring that holds the key, and a wrong keyring fails naming the entry.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tracing_llm_audit::content::{ContentField, Keyring};
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-audit"));
    command.args(args).env_remove("LLM_AUDIT_KEYRING");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An entry whose input and output are encrypted with `keyring`'s current key.
fn encrypted_entry(keyring: &Keyring, input: &str, output: &str) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.user_id = Some("alice".to_owned());
    e.input_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
    e.input_content = Some(
        keyring
            .encrypt(&e.request_id, ContentField::Input, input.as_bytes())
            .unwrap(),
    );
    e.output_content = Some(
        keyring
            .encrypt(&e.request_id, ContentField::Output, output.as_bytes())
            .unwrap(),
    );
    e
}

fn write(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

fn keygen(keyring: &Path, id: &str) -> Output {
    let out = cli(
        &[
            "keygen",
            "--keyring",
            keyring.to_str().unwrap(),
            "--key-id",
            id,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[test]
fn show_decrypts_with_the_keyring_across_a_rotation_and_not_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let ring = keys.path().join("content.keyring");

    let made = keygen(&ring, "content-1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ring).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the keyring is secret");
    }
    let secret = std::fs::read_to_string(&ring).unwrap();
    let key_hex = secret.lines().nth(1).unwrap().split(' ').nth(1).unwrap();
    assert_eq!(key_hex.len(), 64);
    assert!(!text(&made.stdout).contains(key_hex) && !text(&made.stderr).contains(key_hex));

    let first = encrypted_entry(
        &Keyring::from_file(&ring).unwrap(),
        "my IBAN is DE89 3704",
        "saved, Alice",
    );
    let rotated = keygen(&ring, "content-2");
    assert!(text(&rotated.stdout).contains("content-2"));
    let ring_now = Keyring::from_file(&ring).unwrap();
    assert_eq!(ring_now.current_id(), "content-2", "the new key encrypts");
    let second = encrypted_entry(&ring_now, "second question", "second answer");
    write(dir.path(), &[first.clone(), second.clone()]);
    let d = dir.path().to_str().unwrap();
    let r = ring.to_str().unwrap();

    // Without --decrypt: the entry, its content still encrypted.
    let id = first.request_id.to_string();
    let out = cli(&["show", &id, "--dir", d], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["request_id"], id.as_str());
    assert_eq!(shown["user_id"], "alice");
    assert_eq!(shown["input_content"]["kind"], "encrypted");
    assert_eq!(shown["input_content"]["key_id"], "content-1");
    assert!(!text(&out.stdout).contains("IBAN"));

    // With the keyring, after the rotation: both the old key's and the new key's content.
    for (entry, input, output) in [
        (&first, "my IBAN is DE89 3704", "saved, Alice"),
        (&second, "second question", "second answer"),
    ] {
        let id = entry.request_id.to_string();
        let out = cli(&["show", &id, "--dir", d, "--decrypt", "--keyring", r], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["input_content"]["text"], input);
        assert_eq!(shown["output_content"]["text"], output);
        assert_eq!(shown["input_content"]["kind"], "decrypted");
    }

    // The keyring from the environment (lines separated by ';').
    let env_ring = secret.trim_end().replace('\n', ";");
    let out = cli(
        &["show", &id, "--dir", d, "--decrypt"],
        &[("LLM_AUDIT_KEYRING", &env_ring)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("my IBAN is DE89 3704"));
}

#[test]
fn a_wrong_keyring_or_a_missing_entry_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let right = Keyring::new("content-1", [1u8; 32]).unwrap();
    let entry = encrypted_entry(&right, "secret question", "secret answer");
    write(dir.path(), std::slice::from_ref(&entry));
    let d = dir.path().to_str().unwrap();
    let id = entry.request_id.to_string();

    // Same key id, other key material: the AEAD refuses, the entry and field are named.
    let wrong = keys.path().join("wrong.keyring");
    std::fs::write(
        &wrong,
        Keyring::new("content-1", [2u8; 32])
            .unwrap()
            .to_text()
            .as_str(),
    )
    .unwrap();
    let out = cli(
        &[
            "show",
            &id,
            "--dir",
            d,
            "--decrypt",
            "--keyring",
            wrong.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&id) && err.contains("input"), "{err}");
    assert!(
        !text(&out.stdout).contains("secret"),
        "nothing half-decrypted"
    );

    // A keyring without the key id.
    let other = keys.path().join("other.keyring");
    std::fs::write(
        &other,
        Keyring::new("content-9", [1u8; 32])
            .unwrap()
            .to_text()
            .as_str(),
    )
    .unwrap();
    let out = cli(
        &[
            "show",
            &id,
            "--dir",
            d,
            "--decrypt",
            "--keyring",
            other.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("content-1") && err.contains(&id), "{err}");

    // --decrypt without a keyring.
    let out = cli(&["show", &id, "--dir", d, "--decrypt"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--keyring"));

    // No such entry; not a request id.
    let absent = uuid::Uuid::now_v7().to_string();
    let out = cli(&["show", &absent, "--dir", d], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&absent));
    let out = cli(&["show", "not-a-uuid", "--dir", d], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not-a-uuid"));
}

#[test]
fn a_damaged_keyring_file_is_refused_without_showing_its_bytes() {
    let keys = tempfile::tempdir().unwrap();
    let ring = keys.path().join("content.keyring");
    let secret = format!("llm-audit-keyring-v1\ncontent-1 {}zz\n", "5a".repeat(31));
    std::fs::write(&ring, &secret).unwrap();
    let out = cli(
        &[
            "keygen",
            "--keyring",
            ring.to_str().unwrap(),
            "--key-id",
            "x",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 2"), "names the bad line: {err}");
    assert!(!err.contains(&"5a".repeat(31)), "never the key material");
    assert_eq!(
        std::fs::read_to_string(&ring).unwrap(),
        secret,
        "the file is left as it was"
    );
}
