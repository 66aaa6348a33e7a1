//! `llm-audit keygen --hash-key` prints a key for content hashes, exactly as
//! `LLM_AUDIT_HASH_KEY` takes it: the library reads it back, and so does `erase`.

use std::process::Command;

use tracing_llm_audit::HashKey;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, llm_audit, ok, refused, stdout, write_jsonl};

#[test]
fn a_hash_key_is_printed_as_the_variable_takes_it() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["keygen", "--hash-key"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let printed = ok(&out);
    // One line, the value alone: `export LLM_AUDIT_HASH_KEY="$(llm-audit keygen --hash-key)"`.
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let value = printed.trim_end_matches('\n');
    let key = HashKey::parse(value).expect("the library reads it");
    assert!(key.id().starts_with("hash-"), "{value}");
    let (id, secret) = value.split_once(':').unwrap();
    assert_eq!(id, key.id());
    assert_eq!(secret.len(), 64, "32 bytes as hex");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // It writes no file, and a second key is another.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
    assert_ne!(stdout(&llm_audit(&["keygen", "--hash-key"])), printed);

    // Fed back through the environment, as the application and `erase` read it.
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &[call("alice", 1, None), call("bob", 2, None)]);
    let erased = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["erase", "--user", "alice", "--dir"])
        .arg(dir.path())
        .env("LLM_AUDIT_HASH_KEY", value)
        .output()
        .unwrap();
    let said = ok(&erased);
    assert!(
        said.contains("erased user \"alice\" from 1 entries"),
        "{said}"
    );
    assert!(said.contains("pseudonym:"), "{said}");
}

#[test]
fn a_hash_key_takes_a_key_id_the_library_accepts() {
    let printed = ok(&llm_audit(&[
        "keygen",
        "--hash-key",
        "--key-id",
        "prod-2026.11_a",
    ]));
    let key = HashKey::parse(printed.trim_end()).unwrap();
    assert_eq!(key.id(), "prod-2026.11_a");
    let err = refused(&llm_audit(&[
        "keygen",
        "--hash-key",
        "--key-id",
        "no spaces",
    ]));
    assert!(err.contains("--key-id: invalid hash key id"), "{err}");
    // --key-id alone names no kind of key; --hash-key makes no files.
    let out = llm_audit(&["keygen", "--key-id", "x"]);
    assert!(!out.status.success());
    let out = llm_audit(&["keygen", "--hash-key", "--out", "x"]);
    assert!(!out.status.success());
}
