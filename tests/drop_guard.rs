//! Dropping the guard without `shutdown` still writes everything (best effort), and prints
//! nothing to stdout. Runs itself as a child process to see its stdout.

use std::process::Command;

const CHILD_DIR: &str = "LLM_AUDIT_TEST_CHILD_DIR";

fn child(dir: &str) {
    use tracing_llm_audit::{AuditLayer, HashKey, JsonlSink, LlmSpanExt, Usage};
    use tracing_subscriber::layer::SubscriberExt;

    let (layer, guard) = AuditLayer::builder()
        .with_sink(JsonlSink::new(dir).unwrap())
        .with_hash_key(HashKey::new("k", [5u8; 32]).unwrap())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..500 {
            let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
            span.record_usage(&Usage {
                input_tokens: Some(i),
                output_tokens: Some(i),
                ..Usage::default()
            });
        }
    });
    drop(guard);
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    assert!(
        output.stdout.is_empty(),
        "dropping the guard printed to stdout: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    let mut lines = 0;
    for file in std::fs::read_dir(dir.path()).unwrap() {
        lines += std::fs::read_to_string(file.unwrap().path())
            .unwrap()
            .lines()
            .count();
    }
    assert_eq!(lines, 500, "dropping the guard lost entries");
    println!("drop_guard: 1 passed, 0 failed");
}
