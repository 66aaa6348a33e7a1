//! `llm-audit verify --postgres` on tables that chained `PostgresSink`s wrote, against the real
//! PostgreSQL: an honest table written by several writers, across an outage and a crash,
//! verifies; every kind of tampering with rows and checkpoints is found and named with its
//! stream and sequence number.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use time::macros::datetime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, Status};

#[path = "support/pg.rs"]
mod pg;

/// Entries with every kind of value the round trip through the table could change: nulls,
/// a zero cost of scale 8, whole floats that JSON writes with an exponent, `-0.0`, nested
/// metadata, sub-microsecond timestamps, arrays and maps.
fn entry(i: u64) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = datetime!(2026-11-24 08:00 UTC)
        + time::Duration::seconds(i as i64)
        + time::Duration::nanoseconds(123_456_789);
    e.user_id = Some(format!("user-{}", i % 3));
    e.session_id = i.is_multiple_of(2).then(|| format!("session-{i}"));
    e.provider = Some("openai".to_owned());
    e.model = Some("gpt-4o".to_owned());
    e.response_model = Some("gpt-4o-2024-08-06".to_owned());
    e.finish_reasons = Some(vec!["stop".to_owned()]);
    e.streaming = Some(i % 2 == 1);
    e.input_tokens = Some(100 + i);
    e.output_tokens = Some(10);
    e.thinking_tokens = i.is_multiple_of(4).then_some(3);
    e.latency_ms = 200 + i;
    e.cost_usd = Some(match i % 3 {
        0 => Decimal::new(0, 8),
        1 => Decimal::new(15, 1),
        _ => Decimal::new(1_234_567 + i as i64, 9),
    });
    e.input_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
    e.sanitization_count = i % 2;
    if i % 2 == 1 {
        e.sanitization.insert("email".to_owned(), 1);
    }
    if i.is_multiple_of(5) {
        e.status = Status::Error;
        e.error_type = Some("rate_limit_error".to_owned());
        e.error_message = Some("slow down \u{2028} ünïcode".to_owned());
    }
    let metadata = json!({
        "temperature": 0.7,
        "big": 1e16,
        "bigger": 1.2345678901234568e17,
        "huge": 1e300,
        "tiny": 1e-7,
        "negative_zero": -0.0,
        "whole": 3.0,
        "nested": {"b": [1, 2.5, {"z": null}], "a": "x"},
    });
    e.metadata = metadata.as_object().cloned();
    e
}

struct Db {
    schema: pg::Schema,
    public: PathBuf,
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Option<Self> {
        let schema = pg::Schema::create("llm_audit_verify")?;
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let public = dir.path().join("signing.pub");
        std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
        Some(Self {
            schema,
            public,
            key,
            dir,
        })
    }

    fn spill(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sink(&self, url: &str, spill: &str, every: u64) -> PostgresSink {
        PostgresSink::builder(url)
            .with_spill_dir(self.spill(spill))
            .with_connect_timeout(std::time::Duration::from_secs(2))
            .chain(self.key.clone())
            .checkpoint_every(every)
            .build()
            .unwrap()
    }

    fn verify_with(&self, public: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_llm-audit"))
            .args([
                "verify",
                "--format",
                "jsonl",
                "--postgres",
                &self.schema.url(),
            ])
            .arg("--public-key")
            .arg(public)
            .env("LLM_AUDIT_PROGRESS", "never")
            .env_remove("LLM_AUDIT_DATABASE_URL")
            .output()
            .unwrap()
    }

    fn verify(&self) -> Output {
        self.verify_with(&self.public)
    }

    /// Runs `sql` as the superuser with the append-only triggers off: an attacker who holds
    /// the database.
    fn tamper(&self, sql: &str) {
        assert!(
            pg::psql(&format!(
                "SET search_path = {}; SET session_replication_role = replica; {sql}",
                self.schema.name
            )),
            "{sql}"
        );
    }

    /// Two writers with interleaved batches, the second restarted: three streams.
    fn honest(&self) -> Vec<String> {
        let url = self.schema.url();
        let mut a = self.sink(&url, "a", 7);
        let mut b = self.sink(&url, "b", 4);
        let mut streams = vec![
            a.stream_id().unwrap().to_owned(),
            b.stream_id().unwrap().to_owned(),
        ];
        for batch in 0..6u64 {
            let entries: Vec<AuditEntry> = (0..5).map(|i| entry(batch * 5 + i)).collect();
            a.write_batch(&entries).unwrap();
            // Other calls: the request id is the table's key.
            let others: Vec<AuditEntry> = (0..3).map(|i| entry(1000 + batch * 3 + i)).collect();
            b.write_batch(&others).unwrap();
        }
        a.shutdown().unwrap();
        b.shutdown().unwrap();
        drop(b);
        let mut c = self.sink(&url, "b", 10);
        streams.push(c.stream_id().unwrap().to_owned());
        c.write_batch(&(100..112).map(entry).collect::<Vec<_>>())
            .unwrap();
        c.shutdown().unwrap();
        streams
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The problems, as (stream, seq, kind).
fn problems(out: &Output) -> Vec<(String, Option<u64>, String)> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["stream"].as_str().unwrap_or_default().to_owned(),
                v["seq"].as_u64(),
                v["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn found(out: &Output, stream: &str, seq: u64, kinds: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "verify must fail: {}",
        text(out)
    );
    let all = problems(out);
    assert!(
        all.iter()
            .any(|(s, q, k)| s == stream && *q == Some(seq) && kinds.contains(&k.as_str())),
        "expected {kinds:?} at {stream} seq {seq}, got {all:?}"
    );
}

fn intact(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(text(out).contains("intact"), "{}", text(out));
}

#[test]
fn an_honest_table_verifies_and_a_wrong_key_fails() {
    let Some(db) = Db::new() else { return };
    db.honest();
    let out = db.verify();
    intact(&out);
    assert!(
        text(&out).contains("60 entries in 3 stream(s)"),
        "{}",
        text(&out)
    );

    let other = db.dir.path().join("other.pub");
    std::fs::write(
        &other,
        SigningKey::generate()
            .unwrap()
            .verifying_key()
            .to_public_text(),
    )
    .unwrap();
    let wrong = db.verify_with(&other);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(!problems(&wrong).is_empty());
    assert!(problems(&wrong)
        .iter()
        .all(|(_, _, k)| k == "bad signature"));
}

#[test]
fn every_changed_column_is_found_with_its_seq() {
    let Some(db) = Db::new() else { return };
    let streams = db.honest();
    let a = &streams[0];
    let changes = [
        "user_id = 'mallory'",
        "model = 'gpt-4o-mini'",
        "input_tokens = input_tokens + 1",
        "cost_usd = cost_usd + 0.000001",
        "status = 'blocked'",
        "timestamp = timestamp + INTERVAL '1 microsecond'",
        "output_hash = 'hmac-sha256:00'",
        "metadata = metadata || '{\"temperature\": 0.8}'",
        "finish_reasons = ARRAY['length']",
        "sanitization = '{\"email\": 2}'",
    ];
    for (i, change) in changes.iter().enumerate() {
        let seq = 5 + i as u64 * 2;
        db.tamper(&format!(
            "UPDATE llm_audit_log SET {change} WHERE chain_stream = '{a}' AND chain_seq = {seq}"
        ));
        let out = db.verify();
        found(&out, a, seq, &["modified"]);
        assert_eq!(
            problems(&out).len(),
            i + 1,
            "one problem per change: {:?}",
            problems(&out)
        );
    }
}

#[test]
fn deleted_swapped_inserted_and_truncated_rows_are_found() {
    let Some(db) = Db::new() else { return };
    let streams = db.honest();
    let (a, b) = (&streams[0], &streams[1]);
    let row = |stream: &str, seq: u64| format!("chain_stream = '{stream}' AND chain_seq = {seq}");

    // Deleted.
    db.tamper(&format!("DELETE FROM llm_audit_log WHERE {}", row(a, 3)));
    found(&db.verify(), a, 3, &["deleted"]);

    // Swapped: two rows exchange their content, each keeping its place in the chain.
    db.tamper(&format!(
        "CREATE TEMP TABLE x AS SELECT * FROM llm_audit_log WHERE {r10} OR {r11};
         UPDATE llm_audit_log l SET input_tokens = x.input_tokens, latency_ms = x.latency_ms
         FROM x WHERE l.chain_stream = x.chain_stream AND l.chain_seq <> x.chain_seq
         AND l.chain_seq IN (10, 11);",
        r10 = row(a, 10),
        r11 = row(a, 11)
    ));
    let out = db.verify();
    found(&out, a, 10, &["modified"]);
    found(&out, a, 11, &["modified"]);

    // Inserted: a copy of a row under a new request id, and a row with no link at all.
    // (A copy under the same request id and time would be refused by the key.)
    db.tamper(&format!(
        "INSERT INTO llm_audit_log (request_id, timestamp, action, latency_ms, status,
             schema_version, chain_stream, chain_seq, chain_prev, chain_hash)
         SELECT gen_random_uuid(), timestamp, action, latency_ms, status, schema_version,
             chain_stream, chain_seq, chain_prev, chain_hash
         FROM llm_audit_log WHERE {}",
        row(b, 2)
    ));
    found(&db.verify(), b, 2, &["inserted"]);
    db.tamper(
        "INSERT INTO llm_audit_log (request_id, timestamp, action, latency_ms, status,
             schema_version) VALUES (gen_random_uuid(), now(), 'chat', 1, 'success', 1)",
    );
    assert!(problems(&db.verify())
        .iter()
        .any(|(_, _, k)| k == "unchained"));

    // Truncated: the last rows of stream b are gone.
    db.tamper(&format!(
        "DELETE FROM llm_audit_log WHERE chain_stream = '{b}' AND chain_seq >= 15"
    ));
    found(&db.verify(), b, 15, &["truncated"]);
}

#[test]
fn removed_checkpoints_are_found() {
    let Some(db) = Db::new() else { return };
    let streams = db.honest();
    let b = &streams[1];
    intact(&db.verify());
    db.tamper(&format!(
        "DELETE FROM llm_audit_checkpoints WHERE stream = '{b}' AND idx = 1"
    ));
    let out = db.verify();
    assert!(
        problems(&out)
            .iter()
            .any(|(s, _, k)| s == b && k == "missing checkpoint"),
        "{:?}",
        problems(&out)
    );
    db.tamper(&format!(
        "DELETE FROM llm_audit_checkpoints WHERE stream = '{b}' AND final"
    ));
    found(&db.verify(), b, 17, &["missing checkpoint"]);
    // A forged signature.
    db.tamper(&format!(
        "UPDATE llm_audit_checkpoints SET seq = seq + 1 WHERE stream = '{}' AND idx = 0",
        streams[0]
    ));
    found(&db.verify(), &streams[0], 10, &["bad signature"]);
}

#[test]
fn an_outage_delays_the_checkpoints_and_keeps_the_chain_whole() {
    let Some(db) = Db::new() else { return };
    // Nothing listens on port 1: every batch spills, and so do the checkpoints.
    let down = format!(
        "host=127.0.0.1 port=1 user=postgres dbname=test options='-c search_path={}'",
        db.schema.name
    );
    let mut first = db.sink(&down, "spill", 5);
    let stream = first.stream_id().unwrap().to_owned();
    for batch in 0..4u64 {
        let entries: Vec<AuditEntry> = (0..4).map(|i| entry(batch * 4 + i)).collect();
        first.write_batch(&entries).unwrap();
    }
    assert!(first.shutdown().is_err(), "the database was down");
    drop(first);

    // The database is back: the next sink on the same spill directory delivers the old
    // stream's rows, then its checkpoints.
    let mut second = db.sink(&db.schema.url(), "spill", 5);
    second
        .write_batch(&(50..53).map(entry).collect::<Vec<_>>())
        .unwrap();
    second.shutdown().unwrap();
    let out = db.verify();
    intact(&out);
    assert!(
        text(&out).contains("19 entries in 2 stream(s)"),
        "{}",
        text(&out)
    );
    assert!(problems(&out).is_empty(), "{:?} {stream}", problems(&out));
}

#[test]
fn a_crashed_writer_is_repaired_and_reported_as_such() {
    let Some(db) = Db::new() else { return };
    let url = db.schema.url();
    let mut crashed = db.sink(&url, "spill", 4);
    let dead = crashed.stream_id().unwrap().to_owned();
    for batch in 0..3u64 {
        crashed
            .write_batch(&(0..3).map(|i| entry(batch * 3 + i)).collect::<Vec<_>>())
            .unwrap();
    }
    // Killed: no shutdown, no final checkpoint.
    drop(crashed);
    let before = db.verify();
    found(&before, &dead, 6, &["missing checkpoint"]);

    // The writer that repairs dies too, before a checkpoint was due: the repair it stored
    // must still count (it signs one at once), or its crash be named again by the next.
    let mut repairing = db.sink(&url, "spill", 4);
    repairing.write_batch(&[entry(19)]).unwrap();
    drop(repairing);
    let mut next = db.sink(&url, "spill", 4);
    next.write_batch(&[entry(20)]).unwrap();
    next.shutdown().unwrap();
    drop(next);
    // Rows 6 to 8 of the dead writer came after its last checkpoint (seq 5): covered only by
    // the unkeyed chain, so not proven (exit 3). The repairing writer died too: nothing after
    // its last checkpoint is proven either. No problem.
    let after = db.verify();
    assert_eq!(after.status.code(), Some(3), "{}", text(&after));
    let found = problems(&after);
    assert!(
        found
            .iter()
            .any(|(s, q, k)| s == &dead && *q == Some(6) && k == "unsigned"),
        "{found:?}"
    );
    assert!(found.iter().all(|(_, _, k)| k == "unsigned"), "{found:?}");

    // A later start names the crash no more: one repair per crash.
    let mut third = db.sink(&url, "spill", 4);
    third.write_batch(&[entry(21)]).unwrap();
    third.shutdown().unwrap();
    let repairs = pg_count(
        &db,
        "SELECT count(*) FROM llm_audit_log WHERE action = 'llm_audit.repair'",
    );
    assert_eq!(repairs, 2, "one per crash");

    // Checkpoints removed after the repair are still found.
    db.tamper(&format!(
        "DELETE FROM llm_audit_checkpoints WHERE stream = '{dead}' AND idx = 0"
    ));
    let tampered = db.verify();
    assert_eq!(tampered.status.code(), Some(2), "{}", text(&tampered));
}

fn pg_count(db: &Db, sql: &str) -> i64 {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc"])
        .arg(format!("SET search_path = {}; {sql}", db.schema.name))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
