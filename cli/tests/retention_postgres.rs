//! `llm-audit retention apply` and `llm-audit erase` on PostgreSQL (the real server at
//! 127.0.0.1:5432, a schema per test): seven years of chained rows; the standard policy drops
//! the expired monthly partitions whole, deletes the other expired rows and clears the expired
//! columns, and `verify --postgres` passes afterwards; an erased user leaves no trace in any row,
//! and the chains still verify. The maintenance the triggers allow changes erasable columns only.

#[path = "support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::content::StoredContent;
use tracing_llm_audit::{AuditEntry, AuditSink, PostgresSink, Status};

const AS_OF: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);
const AS_OF_TEXT: &str = "2026-11-24T12:00:00Z";
const HASH_KEY: &str =
    "pseudonyms-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn entry(i: i64, at: OffsetDateTime) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at;
    e.user_id = Some(if i % 4 == 0 {
        "alice@example.com".to_owned()
    } else {
        format!("user-{}", i % 3)
    });
    e.session_id = Some(format!("session-{}", i % 7));
    e.model = Some("gpt-4o".to_owned());
    e.input_tokens = Some(100 + i as u64);
    e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i, 6));
    e.input_hash = Some(format!("hmac-sha256:{i:064x}"));
    e.output_hash = Some(format!("hmac-sha256:{}", "cc".repeat(32)));
    e.input_content = Some(StoredContent::Plaintext {
        text: format!("CANARY-INPUT-{i}"),
    });
    if i % 3 == 0 {
        e.status = Status::Error;
        e.error_type = Some("rate_limit_error".to_owned());
        e.error_message = Some(format!("CANARY-ERROR-{i}"));
    }
    e
}

struct Db {
    schema: pg::Schema,
    keys: tempfile::TempDir,
    entries: BTreeMap<String, AuditEntry>,
}

impl Db {
    fn secret(&self) -> PathBuf {
        self.keys.path().join("signing.key")
    }

    fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llm-audit"));
        command
            .args(args)
            .env("LLM_AUDIT_PROGRESS", "never")
            .env_remove("LLM_AUDIT_HASH_KEY")
            .env_remove("LLM_AUDIT_DATABASE_URL");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    }

    fn verify(&self) -> Output {
        let public = self.keys.path().join("signing.pub");
        self.cli(
            &[
                "verify",
                "--format",
                "jsonl",
                "--postgres",
                &self.schema.url(),
                "--public-key",
                public.to_str().unwrap(),
            ],
            &[],
        )
    }

    fn rows(&self) -> BTreeMap<String, Value> {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc"])
            .arg(format!(
                "SET search_path = {}; SELECT row_to_json(t)::text FROM llm_audit_log t",
                self.schema.name
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["request_id"].as_str().unwrap().to_owned(), v)
            })
            .collect()
    }

    fn sql(&self, sql: &str) -> bool {
        pg::psql(&format!("SET search_path = {}; {sql}", self.schema.name))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Seven years of rows, one every 5 days and 7 hours, and monthly partitions for two of the
/// oldest months, which the standard policy then drops whole.
fn seven_years() -> Option<Db> {
    let schema = pg::Schema::create("llm_audit_retention")?;
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    std::fs::write(
        keys.path().join("signing.key"),
        key.to_secret_text().as_str(),
    )
    .unwrap();
    std::fs::write(
        keys.path().join("signing.pub"),
        key.verifying_key().to_public_text(),
    )
    .unwrap();
    let mut db = Db {
        schema,
        keys,
        entries: BTreeMap::new(),
    };
    // The tables first (the sink would make them too, but in the background).
    let out = db.cli(&["migrate", "--postgres", &db.schema.url()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spill = tempfile::tempdir().unwrap();
    let mut sink = PostgresSink::builder(&db.schema.url())
        .with_spill_dir(spill.path())
        .chain(key)
        .checkpoint_every(40)
        .build()
        .unwrap();
    assert!(db.sql(
        "CREATE TABLE llm_audit_log_p202001 PARTITION OF llm_audit_log \
         FOR VALUES FROM ('2020-01-01 00:00Z') TO ('2020-02-01 00:00Z'); \
         CREATE TABLE llm_audit_log_p202002 PARTITION OF llm_audit_log \
         FOR VALUES FROM ('2020-02-01 00:00Z') TO ('2020-03-01 00:00Z');"
    ));
    let mut batch = Vec::new();
    let mut at = AS_OF - time::Duration::days(7 * 365 + 2);
    let mut i = 0;
    while at < AS_OF {
        let e = entry(i, at);
        db.entries.insert(e.request_id.to_string(), e.clone());
        batch.push(e);
        if batch.len() == 50 {
            sink.write_batch(&batch).unwrap();
            batch.clear();
        }
        i += 1;
        at += time::Duration::hours(5 * 24 + 7);
    }
    sink.write_batch(&batch).unwrap();
    sink.shutdown().unwrap();
    Some(db)
}

fn years_before(years: i32) -> OffsetDateTime {
    AS_OF.replace_year(AS_OF.year() - years).unwrap()
}

#[test]
fn the_standard_policy_drops_partitions_deletes_and_clears_exactly_what_expired() {
    let Some(db) = seven_years() else { return };
    assert_eq!(db.rows().len(), db.entries.len());
    assert!(db.verify().status.success());
    let url = db.schema.url();
    let secret = db.secret();
    let args = [
        "retention",
        "apply",
        "--policy",
        "standard",
        "--as-of",
        AS_OF_TEXT,
        "--postgres",
        &url,
        "--signing-key",
        secret.to_str().unwrap(),
    ];
    let (metadata, hashes, content, errors) = (
        years_before(2),
        years_before(1),
        AS_OF - time::Duration::days(90),
        years_before(1),
    );
    let removed = db
        .entries
        .values()
        .filter(|e| e.timestamp < metadata)
        .count();

    // A dry run: the counts, and nothing changed.
    let before = db.rows();
    let mut dry = args.to_vec();
    dry.insert(2, "--dry-run");
    let out = db.cli(&dry, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("would remove {removed} entries")));
    assert_eq!(db.rows(), before);

    let out = db.cli(&args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("removed {removed} entries")),
        "{said}"
    );
    assert!(said.contains("llm_audit_log_p202001") && said.contains("llm_audit_log_p202002"));
    assert!(
        !db.sql("SELECT 'llm_audit_log_p202001'::regclass"),
        "dropped"
    );

    let rows = db.rows();
    let expected: BTreeSet<&String> = db
        .entries
        .iter()
        .filter(|(_, e)| e.timestamp >= metadata)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rows.keys().collect::<BTreeSet<_>>(), expected);
    for (id, row) in &rows {
        let e = &db.entries[id];
        let has = |column: &str| !row[column].is_null();
        assert_eq!(has("input_hash"), e.timestamp >= hashes, "{}", e.timestamp);
        assert_eq!(has("output_hash"), e.timestamp >= hashes, "{}", e.timestamp);
        assert_eq!(
            has("input_content"),
            e.timestamp >= content,
            "{}",
            e.timestamp
        );
        assert_eq!(
            has("error_message"),
            e.timestamp >= errors && e.error_message.is_some(),
            "{}",
            e.timestamp
        );
        assert_eq!(row["input_tokens"], e.input_tokens.unwrap());
    }
    let out = db.verify();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("expired by policy"));
    assert!(text(&out.stderr).contains(&format!("({removed} more expired by policy)")));

    // Idempotent: a second run removes nothing more.
    let out = db.cli(&args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed 0 entries"));
    assert!(db.verify().status.success());
}

#[test]
fn erasure_leaves_no_trace_in_any_row_and_the_chains_verify() {
    let Some(db) = seven_years() else { return };
    let url = db.schema.url();
    let secret = db.secret();
    let theirs = db
        .entries
        .values()
        .filter(|e| e.user_id.as_deref() == Some("alice@example.com"))
        .count();
    let out = db.cli(
        &[
            "erase",
            "--user",
            "alice@example.com",
            "--postgres",
            &url,
            "--signing-key",
            secret.to_str().unwrap(),
        ],
        &[("LLM_AUDIT_HASH_KEY", HASH_KEY)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("from {theirs} entries")));
    let rows = db.rows();
    let all: String = rows.values().map(Value::to_string).collect();
    assert!(!all.contains("alice"), "the user id is gone");
    for e in db.entries.values() {
        let i = e.input_tokens.unwrap() - 100;
        let row = &rows[&e.request_id.to_string()];
        if e.user_id.as_deref() == Some("alice@example.com") {
            assert!(row["user_id"].as_str().unwrap().starts_with("pseudonym:"));
            assert!(row["input_content"].is_null() && row["input_hash"].is_null());
            assert!(!all.contains(&format!("CANARY-INPUT-{i}\"")));
        } else {
            assert_eq!(row["user_id"], e.user_id.clone().unwrap().as_str());
            assert!(!row["input_content"].is_null());
        }
    }
    let events: Vec<&Value> = rows
        .values()
        .filter(|r| r["action"] == "llm_audit.erasure")
        .collect();
    assert_eq!(events.len(), 1, "the erasure is recorded");
    let out = db.verify();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn maintenance_may_change_erasable_columns_only() {
    let Some(db) = seven_years() else { return };
    // Outside maintenance, the log is append-only for everyone.
    assert!(!db.sql("UPDATE llm_audit_log SET user_id = 'x'"));
    assert!(!db.sql("DELETE FROM llm_audit_log"));
    // Inside, only erasable columns change; the figures never do.
    let maintenance = "BEGIN; SET LOCAL llm_audit.maintenance = 'retention';";
    assert!(!db.sql(&format!(
        "{maintenance} UPDATE llm_audit_log SET input_tokens = 1; COMMIT;"
    )));
    assert!(!db.sql(&format!(
        "{maintenance} UPDATE llm_audit_log SET user_id = NULL, cost_usd = 0; COMMIT;"
    )));
    // An erasable column of a real row may change: the trigger ran and let it.
    assert!(db.sql(&format!(
        "{maintenance} UPDATE llm_audit_log SET error_message = 'cleared' \
         WHERE request_id = (SELECT request_id FROM llm_audit_log LIMIT 1); COMMIT;"
    )));
    assert!(db.rows().values().any(|r| r["error_message"] == "cleared"));
    // The chain columns are not erasable.
    assert!(!db.sql(&format!(
        "{maintenance} UPDATE llm_audit_log SET chain_hash = 'x' \
         WHERE request_id = (SELECT request_id FROM llm_audit_log LIMIT 1); COMMIT;"
    )));
    assert!(!db.sql("TRUNCATE llm_audit_log"));
    // A maintenance DELETE removes only rows older than the cut-off it declares, which may not
    // lie in the future (issue 20: the owner could delete rows that had not expired).
    let count = || db.rows().len();
    let before = count();
    assert!(!db.sql(&format!(
        "{maintenance} DELETE FROM llm_audit_log WHERE timestamp < '2021-01-01'; COMMIT;"
    )));
    assert!(!db.sql(&format!(
        "{maintenance} SET LOCAL llm_audit.delete_before = '2999-01-01Z'; \
         DELETE FROM llm_audit_log WHERE timestamp < '2021-01-01'; COMMIT;"
    )));
    assert!(!db.sql(&format!(
        "{maintenance} SET LOCAL llm_audit.delete_before = '2021-01-01Z'; \
         DELETE FROM llm_audit_log WHERE timestamp < '2022-01-01'; COMMIT;"
    )));
    assert_eq!(count(), before, "nothing was deleted");
    assert!(db.sql(&format!(
        "{maintenance} SET LOCAL llm_audit.delete_before = '2021-01-01Z'; \
         DELETE FROM llm_audit_log WHERE timestamp < '2021-01-01'; COMMIT;"
    )));
    assert!(count() < before, "expired rows may go");
    assert!(db.sql(
        "INSERT INTO llm_audit_tombstones \
         (stream, first, last, prev, last_hash, reason, signed_at, key_id, signature) \
         VALUES ('s', 0, 0, 'p', 'h', 'r', 't', 'k', 'sig')"
    ));
    assert!(!db.sql("UPDATE llm_audit_tombstones SET reason = 'x'"));
    assert!(!db.sql("DELETE FROM llm_audit_tombstones"));
}

/// Every spelling of `user` that no file or row may hold after `erase`.
fn spellings_of(user: &str) -> Vec<String> {
    use base64::Engine as _;
    let escaped: String = user
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    vec![
        user.to_owned(),
        escaped,
        hex::encode(user),
        base64::engine::general_purpose::STANDARD.encode(user),
    ]
}

/// Issue 20, finding 7: with `--postgres`, the user's entries also wait in the sink's spill
/// directory (an outage) and sit in its dead-letter file (rows the database refused). `erase`
/// covers both; the spilled entries, once delivered, are erased rows whose chain verifies.
#[test]
fn erasure_reaches_the_spill_and_dead_letter_files() {
    let Some(schema) = pg::Schema::create("llm_audit_erase_spill") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let secret = root.path().join("signing.key");
    let public = root.path().join("signing.pub");
    std::fs::write(&secret, key.to_secret_text().as_str()).unwrap();
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let db = Db {
        schema,
        keys: tempfile::tempdir().unwrap(),
        entries: BTreeMap::new(),
    };
    let out = db.cli(&["migrate", "--postgres", &db.schema.url()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alice = "alice@example.com";
    let now = OffsetDateTime::now_utc();

    // An outage: alice's entries wait in the spill directory.
    let spill = root.path().join("spill");
    let down = format!(
        "host=127.0.0.1 port=1 user=postgres dbname=test options='-c search_path={}'",
        db.schema.name
    );
    let mut waiting = PostgresSink::builder(&down)
        .with_spill_dir(&spill)
        .chain(key.clone())
        .checkpoint_every(100)
        .build()
        .unwrap();
    let spilled: Vec<AuditEntry> = (0..8).map(|i| entry(i, now)).collect();
    waiting.write_batch(&spilled).unwrap();
    let _ = waiting.shutdown();
    drop(waiting);

    // A row the database refuses (a NUL byte, which its text cannot hold): dead-lettered,
    // with alice's id in it.
    let refused_dir = root.path().join("refused");
    let dead_letter = root.path().join("elsewhere").join("dead.jsonl");
    let mut refusing = PostgresSink::builder(&db.schema.url())
        .with_spill_dir(&refused_dir)
        .with_dead_letter_file(&dead_letter)
        .chain(key.clone())
        .build()
        .unwrap();
    let mut poison = entry(4, now);
    poison.error_message = Some("bad\0byte".to_owned());
    let refused = refusing.write_batch(&[poison, entry(1, now)]).unwrap_err();
    assert_eq!(refused.rejected(), 1, "{refused}");
    refusing.shutdown().unwrap();
    assert!(refusing.spill_status().dead_lettered_total() >= 1);
    drop(refusing);

    let holds_alice = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        spellings_of(alice)
            .into_iter()
            .find(|s| text.contains(s.as_str()))
    };
    let files = |dir: &std::path::Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect()
    };
    let all_files = || {
        let mut all = files(&spill);
        all.extend(files(&refused_dir));
        all.push(dead_letter.clone());
        all
    };
    assert!(
        all_files()
            .iter()
            .any(|p| holds_alice(&std::fs::read(p).unwrap()).is_some()),
        "the files hold alice before the erasure"
    );
    assert!(
        holds_alice(&std::fs::read(&dead_letter).unwrap()).is_some(),
        "the dead-letter file holds her refused row"
    );

    let out = db.cli(
        &[
            "erase",
            "--user",
            alice,
            "--postgres",
            &db.schema.url(),
            "--signing-key",
            secret.to_str().unwrap(),
            "--spill-dir",
            spill.to_str().unwrap(),
            "--dead-letter",
            dead_letter.to_str().unwrap(),
        ],
        &[("LLM_AUDIT_HASH_KEY", HASH_KEY)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for path in all_files() {
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            holds_alice(&bytes),
            None,
            "{} still holds her",
            path.display()
        );
    }
    let rows = db.rows();
    let all_rows: String = rows.values().map(Value::to_string).collect();
    assert_eq!(holds_alice(all_rows.as_bytes()), None, "a row holds her");

    // The database is back: the spilled entries are delivered, erased, and their chain holds.
    let mut back = PostgresSink::builder(&db.schema.url())
        .with_spill_dir(&spill)
        .chain(key)
        .build()
        .unwrap();
    back.shutdown().unwrap();
    drop(back);
    let rows = db.rows();
    let delivered = spilled
        .iter()
        .filter(|e| rows.contains_key(&e.request_id.to_string()))
        .count();
    assert_eq!(delivered, spilled.len(), "every spilled entry is delivered");
    for e in &spilled {
        let row = &rows[&e.request_id.to_string()];
        if e.user_id.as_deref() == Some(alice) {
            assert!(row["user_id"].as_str().unwrap().starts_with("pseudonym:"));
        }
    }
    let all_rows: String = rows.values().map(Value::to_string).collect();
    assert_eq!(holds_alice(all_rows.as_bytes()), None);
    let out = db.cli(
        &[
            "verify",
            "--format",
            "jsonl",
            "--postgres",
            &db.schema.url(),
            "--public-key",
            public.to_str().unwrap(),
        ],
        &[],
    );
    let found = text(&out.stdout);
    // The refused row is missing from its chain (reported deleted); nothing was modified.
    assert!(!found.contains("\"modified\""), "{found}");
    assert!(!found.contains("bad signature"), "{found}");
}
