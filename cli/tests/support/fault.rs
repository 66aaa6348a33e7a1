//! What the fault tests share: starting this test binary again as a child process that plays
//! the writer, and running `llm-audit verify` on what it wrote.

use std::path::Path;
use std::process::{Command, Output};

/// This test binary, started again to run only the test `name` (which sees its child
/// environment variable and plays the writer).
pub(crate) fn child(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([name, "--exact", "--nocapture", "--test-threads=1", "-q"]);
    command
}

/// `llm-audit verify` on the JSONL directory `dir`: its exit code, and the kinds of its
/// findings (problems and notes), one per line of its JSONL output.
pub(crate) fn verify(dir: &Path, public: &Path) -> (Option<i32>, Vec<String>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["verify", "--format", "jsonl", "--dir"])
        .arg(dir)
        .arg("--public-key")
        .arg(public)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kinds = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), kinds, text)
}
