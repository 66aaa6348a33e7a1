//! docs/postgres.md, run as written: every ```sh block, in order, in one bash, against the local
//! PostgreSQL at 127.0.0.1:5432 (trust authentication, superuser `postgres`), with this build's
//! `llm-audit` first on the PATH and the workspace as the working directory (the guide runs
//! `cargo run --example postgres`). Then what the guide promises is checked: the rows are in,
//! the writer was refused, and the configuration error it shows is the one the sink gives.
//!
//! The test owns the database `llm_audit` and the login roles `audit_owner`, `audit_app` and
//! `audit_cli` of that server: it drops them before and after, and holds an advisory lock
//! meanwhile, so that two runs never meet. Skips, saying why, without psql or PostgreSQL,
//! except under CI=true.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const GUIDE: &str = include_str!("../../docs/postgres.md");
/// The server's maintenance database, as the superuser.
const MAINTENANCE: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Each its own transaction (DROP DATABASE may not share one).
const CLEAN: &[&str] = &[
    "DROP DATABASE IF EXISTS llm_audit WITH (FORCE)",
    "DROP ROLE IF EXISTS audit_app",
    "DROP ROLE IF EXISTS audit_cli",
    "DROP ROLE IF EXISTS audit_owner",
];

/// The fenced code blocks of a Markdown text: (info string, body).
fn blocks(markdown: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some("")) => found.extend(open.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block of the guide is not closed");
    found
}

/// Runs each statement with psql, in order, as `url`.
fn psql(url: &str, statements: &[&str]) -> std::process::Output {
    let mut command = Command::new("psql");
    command.args(["-v", "ON_ERROR_STOP=1", "-qAt", url]);
    for sql in statements {
        command.args(["-c", sql]);
    }
    command.output().expect("psql runs")
}

/// A session that holds a PostgreSQL advisory lock until it is dropped.
struct Lock(Child);

impl Lock {
    fn take() -> Self {
        let mut child = Command::new("psql")
            .args(["-qAt", MAINTENANCE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "SELECT pg_advisory_lock(7204250001); SELECT 'locked';"
        )
        .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l == "locked")),
            "the lock session ended"
        );
        Self(child)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Drops what the guide made, also when the test fails.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        psql(MAINTENANCE, CLEAN);
    }
}

fn dir_of(path: &str) -> PathBuf {
    Path::new(path).parent().unwrap().to_path_buf()
}

#[test]
fn the_postgres_guide_runs_as_written() {
    let reachable = Command::new("psql")
        .args(["-qAt", MAINTENANCE, "-c", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "psql or PostgreSQL at 127.0.0.1:5432 is not available; under CI=true it must be"
        );
        eprintln!("skipped: psql or PostgreSQL at 127.0.0.1:5432 is not available");
        return;
    }

    // Every block is run or compiled: sh here, rust as a doctest; text is output.
    let blocks = blocks(GUIDE);
    for (info, _) in &blocks {
        assert!(
            ["sh", "text", "rust,no_run"].contains(&info.as_str()),
            "a block tagged {info:?} would go unchecked: tag shell steps sh"
        );
    }
    let mut script = String::from("set -euo pipefail\n");
    for (n, (_, body)) in blocks.iter().filter(|(info, _)| info == "sh").enumerate() {
        script.push_str(&format!("echo '### step {}'\n{body}", n + 1));
    }

    let _lock = Lock::take();
    let cleaned = psql(MAINTENANCE, CLEAN);
    assert!(cleaned.status.success(), "{cleaned:?}");
    let _cleanup = Cleanup;

    let workspace = dir_of(env!("CARGO_MANIFEST_DIR"));
    let spill = tempfile::tempdir().unwrap();
    let path = std::env::join_paths(
        [
            dir_of(env!("CARGO_BIN_EXE_llm-audit")),
            dir_of(env!("CARGO")),
        ]
        .into_iter()
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&workspace)
        .env("PATH", path)
        .env("LLM_AUDIT_SPILL_DIR", spill.path())
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture, and on failure.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the guide failed as written:\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let said = |text: &str| {
        assert!(
            stdout.contains(text) || stderr.contains(text),
            "the guide's run did not say {text:?}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    };

    // What the guide shows is what happened.
    let migrations = tracing_llm_audit::sink::postgres::MIGRATIONS.len();
    let applied = format!("applied {migrations} migration(s)");
    assert!(GUIDE.contains(&applied), "the guide says another count");
    said(&applied);
    said("the schema is up to date");
    said("3 entries written to PostgreSQL, 0 spilled to ");
    said("user      day         requests  total cost");
    assert_eq!(
        stderr
            .matches("permission denied for table llm_audit_log")
            .count(),
        2,
        "the writer may neither read nor delete:\n{stderr}"
    );
    said("the writer may not read: as it should be");
    said("the writer may not delete: as it should be");
    let admin = "postgres://postgres@127.0.0.1:5432/llm_audit";
    let rows = psql(admin, &["SELECT count(*) FROM llm_audit_log"]);
    assert_eq!(
        String::from_utf8_lossy(&rows.stdout).trim(),
        "3",
        "{rows:?}"
    );

    // The configuration error the guide quotes is the sink's, word for word: the writer's
    // login without llm_audit_writer, as before the roles step.
    let revoked = psql(admin, &["REVOKE llm_audit_writer FROM audit_app"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let error = tracing_llm_audit::PostgresSink::builder(
        "postgres://audit_app:app-secret@127.0.0.1:5432/llm_audit",
    )
    .with_spill_dir(spill.path().join("probe"))
    .with_migrations(false)
    .build()
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert!(
        GUIDE.contains(&format!("\n{error}\n")),
        "the guide quotes another message than the sink's:\n{error}"
    );
    let latest = migrations;
    assert!(
        GUIDE.contains(&format!(
            "this version of tracing-llm-audit needs {latest}`"
        )),
        "the guide quotes another schema version"
    );
}
