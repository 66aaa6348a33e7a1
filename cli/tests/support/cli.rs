//! Running `llm-audit` in the tests of the CLI's rough edges, and the logs they read.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

use crate::pg::Schema;

/// The "now" of the datasets (`--as-of`).
pub(crate) const AS_OF: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
pub(crate) const AS_OF_ARG: &str = "2026-11-20T12:00:00Z";

/// `llm-audit ARGS`, without the environment's database or progress line.
pub(crate) fn llm_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env_remove("LLM_AUDIT_HASH_KEY")
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The stdout of a run that succeeded.
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    stdout(out)
}

/// The stderr of a run that failed as bad input fails: exit code 1 (never a panic's 101), one
/// line.
pub(crate) fn refused(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A call `hours_back` before [`AS_OF`].
pub(crate) fn call(user: &str, hours_back: i64, cost: Option<rust_decimal::Decimal>) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = AS_OF - Duration::hours(hours_back);
    e.user_id = Some(user.to_owned());
    e.provider = Some("openai".to_owned());
    e.model = Some("gpt-4o".to_owned());
    e.input_tokens = Some(100);
    e.output_tokens = Some(10);
    e.latency_ms = 200;
    e.cost_usd = cost;
    if cost.is_none() {
        e.cost_note = Some("no price for gpt-4o".to_owned());
    }
    e
}

pub(crate) fn write_jsonl(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

/// The same entries in a schema of the test database, when PostgreSQL is there.
pub(crate) fn pg_with(prefix: &str, entries: &[AuditEntry]) -> Option<Schema> {
    let schema = Schema::create(prefix)?;
    let spill = tempfile::tempdir().unwrap();
    let mut sink = PostgresSink::builder(&schema.url())
        .with_spill_dir(spill.path())
        .build()
        .unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
    assert_eq!(sink.spill_status().pending_entries(), 0, "all in the table");
    Some(schema)
}

/// CSV without quoted fields as rows of named cells.
pub(crate) fn csv_rows(csv: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}
