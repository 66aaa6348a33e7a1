//! Every `llm-audit` command line that the README and the guides in `docs/` show in a shell block
//! runs as written: against a signed JSONL log in a scratch directory (with the keys and files the
//! lines name), none of them is refused as a usage error (an unknown option, a missing argument,
//! a bad value) and none crashes. A command may still exit 1 for what it cannot reach (a
//! PostgreSQL URL from the environment) or 2/3 for what `verify` finds: that is its answer, not a
//! wrong line in the docs. `tail` is stopped after a moment.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `llm-audit` lines of every ```sh block of `file` (comments cut, `\` continuations
/// joined).
fn command_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = Vec::new();
    let mut in_shell = false;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_shell = !in_shell && matches!(trimmed, "```sh" | "```bash" | "```shell");
            continue;
        }
        if !in_shell {
            continue;
        }
        let code = match trimmed.find("  #") {
            Some(cut) => trimmed[..cut].trim_end(),
            None => trimmed,
        };
        pending.push_str(code.trim_end_matches('\\'));
        if code.ends_with('\\') {
            pending.push(' ');
            continue;
        }
        let whole = std::mem::take(&mut pending);
        let whole = whole.trim();
        let whole = whole
            .strip_prefix("export LLM_AUDIT_HASH_KEY=\"$(")
            .map_or(whole, |rest| rest.trim_end_matches(")\""));
        if whole.starts_with("llm-audit ") {
            lines.push(whole.to_owned());
        }
    }
    lines
}

/// A scratch directory with what the documented lines name: a signed log in `./audit_logs`
/// (and `./audit`), its keys as `signing.pub` / `./audit_keys/signing.pub`, a price file.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = key.verifying_key().to_public_text();
    for name in ["signing.pub", "audit_keys/signing.pub"] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &public).unwrap();
    }
    for logs in ["audit_logs", "audit"] {
        let mut sink = JsonlSink::builder(dir.path().join(logs))
            .chain(SigningKey::parse(&key.to_secret_text()).unwrap())
            .build()
            .unwrap();
        let mut entry = AuditEntry::new("chat");
        entry.user_id = Some("alice".into());
        entry.model = Some("gpt-4o".into());
        entry.input_tokens = Some(10);
        entry.output_tokens = Some(5);
        sink.write_batch(&[entry]).unwrap();
        sink.shutdown().unwrap();
    }
    for prices in ["prices.json", "model_prices_and_context_window.json"] {
        std::fs::write(
            dir.path().join(prices),
            r#"{"gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}}"#,
        )
        .unwrap();
    }
    dir
}

/// Runs `line` through the shell in `dir`, with `llm-audit` on the PATH; stops it after a few
/// seconds. Returns (exit code, stderr).
fn run(dir: &Path, line: &str) -> (Option<i32>, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_llm-audit"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path)
        .env("LLM_AUDIT_PROGRESS", "never")
        // An address nothing listens on: the PostgreSQL lines are refused for the connection,
        // not for their syntax.
        .env(
            "LLM_AUDIT_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=1",
        )
        .env_remove("LLM_AUDIT_HASH_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > Duration::from_secs(5) {
            // `tail` follows for ever: still running means it started well.
            child.kill().unwrap();
            child.wait().unwrap();
            break Some(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (code, err)
}

#[test]
fn every_documented_command_line_runs_as_written() {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    let dir = scratch();
    let mut ran = 0;
    let mut wrong = Vec::new();
    for file in &files {
        for line in command_lines(file) {
            let (code, err) = run(dir.path(), &line);
            ran += 1;
            let usage_error = code == Some(2)
                && (err.contains("Usage:") || err.contains("error: unexpected argument"));
            let crashed = code == Some(101) || code.is_none() || err.contains("panicked");
            if usage_error || crashed {
                wrong.push(format!(
                    "{}: `{line}` exit {code:?}: {}",
                    file.file_name().unwrap().to_string_lossy(),
                    err.lines().take(3).collect::<Vec<_>>().join(" | ")
                ));
            }
        }
    }
    assert!(ran >= 20, "only {ran} documented command lines found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
