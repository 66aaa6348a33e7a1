//! The warnings of `AuditLayerBuilder::build()` reach the user. `build` runs before most
//! programs set up their subscriber, so a `tracing` event alone reached nobody. Now the guard
//! returns them (`WorkerGuard::warnings`), and `build` reports each one: as a `WARN` event when
//! the thread has a subscriber, on stderr when it has none. Each path runs in a child process of
//! its own, to read its stderr and to leave `LLM_AUDIT_HASH_KEY` out of its environment.

use std::process::Command;

use tracing_llm_audit::{
    AuditLayer, BuildWarning, ContentPolicies, ContentPolicy, StdoutSink, WorkerGuard,
};

const CHILD: &str = "LLM_AUDIT_BUILD_WARNINGS_CHILD";
const EPHEMERAL: &str = "audit content hashes use an ephemeral key (ephemeral-";
const PLAINTEXT_OUTPUT: &str = "audit entries keep the output in plain text \
    (ContentPolicy::PlaintextUnprotected): anyone who can read the audit log can read it; use \
    HashOnly or Encrypted in production";

/// A build with both warnings: no hash key (an ephemeral one allowed), the output in plain
/// text.
fn build_with_warnings() -> WorkerGuard {
    let (_layer, guard) = AuditLayer::builder()
        .with_sink(StdoutSink::new())
        .with_ephemeral_hash_key()
        .with_content_policy(ContentPolicies {
            output: ContentPolicy::PlaintextUnprotected,
            ..ContentPolicies::default()
        })
        .build()
        .unwrap();
    guard
}

/// What the child does: builds with no subscriber, a global one, or a scoped one; prints the
/// warnings the guard returned, one per line after `RETURNED:`.
fn child(mode: &str) {
    let guard = match mode {
        "none" => build_with_warnings(),
        "global" => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .init();
            build_with_warnings()
        }
        "scoped" => {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .finish();
            tracing::subscriber::with_default(subscriber, build_with_warnings)
        }
        other => panic!("unknown mode {other}"),
    };
    for warning in guard.warnings() {
        println!("RETURNED: {warning}");
    }
    match guard.warnings() {
        [BuildWarning::PlaintextContent { field: "output" }, BuildWarning::EphemeralHashKey { key_id }] =>
        {
            assert!(key_id.starts_with("ephemeral-"), "{key_id}");
        }
        other => panic!("unexpected warnings {other:?}"),
    }
    drop(guard);
}

/// Runs this test's body in a child in `mode`: (stdout, stderr).
fn run(mode: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_warnings_are_returned_and_reach_stderr_or_the_subscriber",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env_remove("LLM_AUDIT_HASH_KEY")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{mode}: {stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn the_warnings_are_returned_and_reach_stderr_or_the_subscriber() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    // No subscriber yet (the usual order: build, then `.init()`): stderr, one line each.
    let (stdout, stderr) = run("none");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tracing-llm-audit: warning: "))
        .collect();
    assert_eq!(said.len(), 2, "{stderr}");
    assert_eq!(
        said[0],
        format!("tracing-llm-audit: warning: {PLAINTEXT_OUTPUT}")
    );
    assert!(said[1].contains(EPHEMERAL), "{stderr}");
    assert!(
        said[1].ends_with(
            "they cannot be correlated with hashes from any other run; set LLM_AUDIT_HASH_KEY \
             for production (`llm-audit keygen --hash-key` makes a value)"
        ),
        "{stderr}"
    );
    assert_eq!(stdout.matches("RETURNED: ").count(), 2, "{stdout}");
    assert!(stdout.contains(&format!("RETURNED: {PLAINTEXT_OUTPUT}")));

    // A subscriber, global or scoped: WARN events, and nothing on stderr.
    for mode in ["global", "scoped"] {
        let (stdout, stderr) = run(mode);
        assert!(
            !stderr.contains("tracing-llm-audit: warning"),
            "{mode}: {stderr}"
        );
        let events: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains(" WARN ") && !l.starts_with("RETURNED"))
            .collect();
        assert_eq!(events.len(), 2, "{mode}: {stdout}");
        assert!(events[0].ends_with(PLAINTEXT_OUTPUT), "{mode}: {stdout}");
        assert!(events[1].contains(EPHEMERAL), "{mode}: {stdout}");
        assert_eq!(stdout.matches("RETURNED: ").count(), 2, "{mode}: {stdout}");
    }
}

/// A build with nothing to warn of returns no warning.
#[test]
fn a_production_build_warns_of_nothing() {
    let (_layer, guard) = AuditLayer::builder()
        .with_sink(StdoutSink::new())
        .with_hash_key(tracing_llm_audit::HashKey::new("k", [3u8; 32]).unwrap())
        .build()
        .unwrap();
    assert_eq!(guard.warnings(), []);
}
