//! An id option is checked: a request id is a UUID, a trace id 32 hex digits. A value that is
//! neither is an error naming it, not a filter that silently matches nothing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, llm_audit, ok, refused, stderr, write_jsonl, AS_OF_ARG};

#[test]
fn a_request_id_that_is_no_uuid_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &[call("alice", 1, None)]);
    let d = dir.path().to_str().unwrap();
    for command in [
        &["query"][..],
        &["report", "cost"],
        &["report", "anomalies"],
        &["report", "html"],
        &["reprice", "--prices", "builtin"],
    ] {
        for (option, value, what) in [
            ("--request-id", "nope", "is not a request id (a UUID"),
            (
                "--trace-id",
                "nope",
                "is not a trace id (a W3C trace id: 32 hex digits",
            ),
            ("--trace-id", "0123456789abcdef", "is not a trace id"),
        ] {
            let mut args = command.to_vec();
            args.extend([option, value, "--dir", d]);
            let err = refused(&llm_audit(&args));
            assert!(
                err.contains(&format!("{option}: `{value}` {what}")),
                "{args:?}: {err}"
            );
        }
    }
    let err = refused(&llm_audit(&["show", "nope", "--dir", d]));
    assert!(err.contains("`nope` is not a request id"), "{err}");
}

#[test]
fn tail_refuses_a_bad_id_at_once_rather_than_follow_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &[call("alice", 1, None)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["tail", "--request-id", "nope", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "tail went on following a request id that cannot match: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("--request-id: `nope` is not a request id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_good_id_matches_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = vec![call("alice", 1, None), call("bob", 2, None)];
    entries[1].trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned());
    write_jsonl(dir.path(), &entries);
    let d = dir.path().to_str().unwrap();
    let bob = entries[1].request_id.to_string();
    for (option, value) in [
        ("--request-id", bob.to_ascii_uppercase()),
        ("--request-id", bob.replace('-', "")),
        ("--trace-id", "4BF92F3577B34DA6A3CE929D0E0E4736".to_owned()),
    ] {
        for command in [&["query"][..], &["report", "cost"]] {
            let mut args = command.to_vec();
            args.extend([
                option, &value, "--as-of", AS_OF_ARG, "--dir", d, "--format", "jsonl",
            ]);
            let out = ok(&llm_audit(&args));
            assert_eq!(out.lines().count(), 1, "{args:?}: {out}");
            assert!(out.contains("bob"), "{args:?}: {out}");
        }
    }
}
