//! `llm-audit reprice`: a log written with one price table, costed again with another. Every
//! figure is worked by hand below; the log is read, never written (its files, and the PostgreSQL
//! rows, are the same before and after); an unpriced call is never counted as $0, before or
//! after; and a price file that cannot be loaded is one sentence naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_decimal::Decimal;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing_llm_audit::cost::PriceTable;
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

#[path = "support/pg.rs"]
mod pg;
use pg::Schema;

/// The prices the log was written with, per token: gpt-4o $2.50/M in, $10/M out;
/// claude-sonnet-4-5 $3/M, $15/M; mistral-large $2/M, $6/M. No gemini-2.5-flash.
const OLD_PRICES: &str = r#"{
    "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
    "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
               "litellm_provider": "openai", "mode": "chat"},
    "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                          "litellm_provider": "anthropic", "mode": "chat"},
    "mistral-large": {"input_cost_per_token": 2e-06, "output_cost_per_token": 6e-06,
                      "litellm_provider": "mistral", "mode": "chat"}
}"#;

/// The new prices: gpt-4o doubled ($5/M, $20/M), claude-sonnet-4-5 unchanged, mistral-large
/// gone, gemini-2.5-flash added ($0.30/M, $2.50/M), and a model with a rule the loader does not
/// apply (`surge_cost_multiplier`), which it refuses.
const NEW_PRICES: &str = r#"{
    "gpt-4o": {"input_cost_per_token": 5e-06, "output_cost_per_token": 2e-05,
               "litellm_provider": "openai", "mode": "chat"},
    "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                          "litellm_provider": "anthropic", "mode": "chat"},
    "gemini-2.5-flash": {"input_cost_per_token": 3e-07, "output_cost_per_token": 2.5e-06,
                         "litellm_provider": "gemini", "mode": "chat"},
    "odd-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
                  "surge_cost_multiplier": 2}
}"#;

const PERIOD: [&str; 4] = ["--from", "2026-11-19", "--to", "2026-11-20"];

fn llm_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// A directory with the two price files.
struct Prices {
    dir: tempfile::TempDir,
}

impl Prices {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.json"), OLD_PRICES).unwrap();
        std::fs::write(dir.path().join("new.json"), NEW_PRICES).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

fn call(user: &str, model: &str, at: OffsetDateTime, input: u64, output: u64) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at;
    e.user_id = Some(user.to_owned());
    e.provider = Some("test".to_owned());
    e.model = Some(model.to_owned());
    e.input_tokens = Some(input);
    e.output_tokens = Some(output);
    e.latency_ms = 300;
    e
}

/// The log, priced as the layer prices it: by `PriceTable::cost_of_entry` with the old table,
/// which each entry names (but one, written before entries named their table). Each stored cost
/// is checked against the figure worked by hand.
///
/// #  | day   | user  | model             |     in |   out | old cost             | new cost
/// ---|-------|-------|-------------------|--------|-------|----------------------|---------------
/// 1  | 11-19 | alice | gpt-4o            |  1,000 |   200 | 0.0025+0.002=0.0045  | 0.005+0.004
/// 2  | 11-19 | alice | gpt-4o            |  3,000 |   500 | 0.0075+0.005=0.0125  | 0.015+0.01
/// 3  | 11-19 | bob   | claude-sonnet-4-5 |  2,000 |   100 | 0.006+0.0015=0.0075  | the same
/// 4  | 11-19 | bob   | mistral-large     | 10,000 | 1,000 | 0.02+0.006=0.026     | none (no price)
/// 5* | 11-20 | alice | gpt-4o            |    100 |    10 | 0.00025+0.0001       | 0.0005+0.0002
/// 6  | 11-20 | carol | gemini-2.5-flash  |  4,000 |   800 | none (no price)      | 0.0012+0.002
/// 7  | 11-20 | bob   | mistral-large     |    500 |    50 | 0.001+0.0003=0.0013  | none (no price)
/// 8  | 11-20 | bob   | gpt-4o            |  2,000 |     0 | 0.005                | 0.01
/// 9  | 11-18 | alice | gpt-4o            |  1,000 |   200 | (outside the period)
/// 10 | 11-21 | alice | gpt-4o            |  1,000 |   200 | (outside the period)
///
/// New costs: #1 0.009, #2 0.025, #3 0.0075, #5 0.0007, #6 0.0032. (*) #5 was written before
/// provenance: it has no `price_table`.
fn dataset(prices: &Prices) -> Vec<AuditEntry> {
    let old = PriceTable::from_litellm_file(prices.path("old.json")).unwrap();
    let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
    #[rustfmt::skip]
    let rows = [
        ("alice", "gpt-4o", at("2026-11-19T08:00:00Z"), 1_000, 200, Some("0.0045")),
        ("alice", "gpt-4o", at("2026-11-19T09:00:00Z"), 3_000, 500, Some("0.0125")),
        ("bob", "claude-sonnet-4-5", at("2026-11-19T10:00:00Z"), 2_000, 100, Some("0.0075")),
        ("bob", "mistral-large", at("2026-11-19T23:59:59.999Z"), 10_000, 1_000, Some("0.026")),
        ("alice", "gpt-4o", at("2026-11-20T00:00:00Z"), 100, 10, Some("0.00035")),
        ("carol", "gemini-2.5-flash", at("2026-11-20T11:00:00Z"), 4_000, 800, None),
        ("bob", "mistral-large", at("2026-11-20T12:00:00Z"), 500, 50, Some("0.0013")),
        ("bob", "gpt-4o", at("2026-11-20T23:00:00Z"), 2_000, 0, Some("0.005")),
        ("alice", "gpt-4o", at("2026-11-18T23:59:00Z"), 1_000, 200, Some("0.0045")),
        ("alice", "gpt-4o", at("2026-11-21T00:00:00Z"), 1_000, 200, Some("0.0045")),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(user, model, at, input, output, expected))| {
            let mut e = call(user, model, at, input, output);
            match old.cost_of_entry(&e) {
                Ok(cost) => e.cost_usd = Some(cost),
                Err(why) => e.cost_note = Some(why.to_string()),
            }
            assert_eq!(e.cost_usd, expected.map(d), "stored cost of #{}", i + 1);
            // Entry 5 was written before entries named their price table.
            if i != 4 {
                e.price_table = Some(old.label());
            }
            e
        })
        .collect()
}

fn write_jsonl(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    files
}

/// A log written with the old prices, in a directory and (when reachable) in PostgreSQL.
struct Log {
    prices: Prices,
    dir: tempfile::TempDir,
    pg: Option<Schema>,
}

impl Log {
    fn new(with_pg: bool) -> Self {
        let prices = Prices::new();
        let entries = dataset(&prices);
        let dir = tempfile::tempdir().unwrap();
        write_jsonl(dir.path(), &entries);
        let pg = if with_pg { pg_with(&entries) } else { None };
        Self { prices, dir, pg }
    }

    /// `reprice` with `args` on the directory, checking that PostgreSQL (when there) prints the
    /// same; stdout and stderr of the directory's run.
    fn reprice(&self, prices: &str, args: &[&str], format: &str) -> (String, String) {
        let mut common = vec!["reprice", "--prices", prices];
        common.extend(PERIOD);
        common.extend(args);
        common.extend(["--format", format]);
        let mut with_dir = common.clone();
        with_dir.extend(["--dir", self.dir.path().to_str().unwrap()]);
        let out = llm_audit(&with_dir);
        let stdout = ok(&out);
        let stderr = String::from_utf8(out.stderr).unwrap();
        if let Some(pg) = &self.pg {
            let url = pg.url();
            let mut with_pg = common.clone();
            with_pg.extend(["--postgres", &url]);
            let out = llm_audit(&with_pg);
            assert_eq!(
                stdout,
                ok(&out),
                "JSONL and PostgreSQL differ for {args:?} {format}"
            );
            let pg_stderr = String::from_utf8(out.stderr).unwrap();
            for line in stderr.lines().filter(|l| !l.contains("tamper-evident")) {
                assert!(pg_stderr.contains(line), "{line:?} not in {pg_stderr}");
            }
        }
        (stdout, stderr)
    }
}

fn pg_with(entries: &[AuditEntry]) -> Option<Schema> {
    let schema = Schema::create("llm_audit_reprice")?;
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

/// The table's rows, with their row versions (`xmin`: an update, even to the same values,
/// makes a new one), as one digest.
fn pg_digest(schema: &Schema) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc"])
        .arg(format!(
            "SELECT count(*) || ' ' || md5(string_agg(t.xmin::text || ' ' || t::text, E'\\n' \
             ORDER BY t.request_id)) FROM {}.llm_audit_log t",
            schema.name
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// CSV (no quoted fields here) as rows of named cells, keyed by the first `keys` cells joined
/// with `/`.
fn csv_rows(csv: &str, keys: usize) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            let row = header
                .iter()
                .zip(&cells)
                .map(|(h, v)| ((*h).to_owned(), (*v).to_owned()))
                .collect();
            (cells[..keys].join("/"), row)
        })
        .collect()
}

/// One group's figures, in the column order: calls, stored_cost, repriced_cost, difference,
/// unpriced_before, unpriced_after.
fn figures(row: &BTreeMap<String, String>) -> [&str; 6] {
    [
        "calls",
        "stored_cost",
        "repriced_cost",
        "difference",
        "unpriced_before",
        "unpriced_after",
    ]
    .map(|c| row[c].as_str())
}

#[test]
fn reprice_shows_the_difference_per_model_user_and_day() {
    let log = Log::new(true);
    let new = log.prices.arg("new.json");
    let before = snapshot(log.dir.path());
    let pg_before = log.pg.as_ref().map(pg_digest);

    // The default grouping: model, user, day. Entries 9 and 10 are outside the period.
    let (csv, stderr) = log.reprice(&new, &[], "csv");
    let rows = csv_rows(&csv, 3);
    assert_eq!(
        csv.lines().next().unwrap(),
        "model,user_id,day,calls,stored_cost,repriced_cost,difference,unpriced_before,\
         unpriced_after"
    );
    let expected: [(&str, [&str; 6]); 7] = [
        // #3: the same price, no difference.
        (
            "claude-sonnet-4-5/bob/2026-11-19",
            ["1", "0.007500", "0.007500", "0.000000", "0", "0"],
        ),
        // #6: no stored cost; 0.0032 now. No difference can be told.
        (
            "gemini-2.5-flash/carol/2026-11-20",
            ["1", "unknown", "0.003200", "unknown", "1", "0"],
        ),
        // #1 + #2: 0.0045 + 0.0125 = 0.017 stored, 0.009 + 0.025 = 0.034 now: +0.017.
        (
            "gpt-4o/alice/2026-11-19",
            ["2", "0.017000", "0.034000", "+0.017000", "0", "0"],
        ),
        // #5: 0.00035 → 0.0007.
        (
            "gpt-4o/alice/2026-11-20",
            ["1", "0.000350", "0.000700", "+0.000350", "0", "0"],
        ),
        // #8: 0.005 → 0.01.
        (
            "gpt-4o/bob/2026-11-20",
            ["1", "0.005000", "0.010000", "+0.005000", "0", "0"],
        ),
        // #4 and #7: no new price; the new cost is unknown, not 0, and so is the difference.
        (
            "mistral-large/bob/2026-11-19",
            ["1", "0.026000", "unknown", "unknown", "0", "1"],
        ),
        (
            "mistral-large/bob/2026-11-20",
            ["1", "0.001300", "unknown", "unknown", "0", "1"],
        ),
    ];
    assert_eq!(rows.len(), expected.len(), "{csv}");
    for (key, want) in expected {
        let row = rows.get(key).unwrap_or_else(|| panic!("no {key}: {csv}"));
        assert_eq!(figures(row), want, "{key}: {csv}");
    }
    // The groups come in the order of their keys.
    let keys: Vec<&String> = rows.keys().collect();
    let printed: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join("/"))
        .collect();
    assert_eq!(keys, printed.iter().collect::<Vec<_>>());

    // The footer goes to stderr beside CSV.
    // Stored: 0.017 + 0.00035 + 0.005 + 0.0075 + 0.026 + 0.0013 = 0.05715, #6 left out.
    // New: 0.034 + 0.0007 + 0.01 + 0.0075 + 0.0032 = 0.0554, #4 and #7 left out.
    // Difference over #1, #2, #3, #5, #8: 0.017 + 0 + 0.00035 + 0.005 = 0.02235.
    assert!(
        stderr.contains(
            "total: 8 calls; stored at least $0.057150 (1 unpriced call); repriced at least \
             $0.055400 (2 unpriced calls); difference +$0.022350 over 5 of 8 calls"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 8 calls had no stored cost and 2 have none"),
        "{stderr}"
    );
    let old_label = PriceTable::from_litellm_file(log.prices.path("old.json"))
        .unwrap()
        .label();
    let new_label = PriceTable::from_litellm_file(log.prices.path("new.json"))
        .unwrap()
        .label();
    assert!(
        new_label.starts_with("litellm new.json sha256:"),
        "{new_label}"
    );
    assert!(
        stderr.contains(&format!("llm-audit:   7 calls  {old_label}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains("llm-audit:   1 call   unknown (written before provenance)\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("llm-audit: repriced with: {new_label}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains("llm-audit:   surge_cost_multiplier (1 model: odd-model)"),
        "{stderr}"
    );

    // The table: the same figures, the footer under it.
    let (table, _) = log.reprice(&new, &[], "table");
    let (rows, notes) = table_rows(&table, 3);
    assert_eq!(rows.len(), expected.len(), "{table}");
    for (key, want) in expected {
        assert_eq!(figures(&rows[key]), want, "{key}: {table}");
    }
    let notes = notes.join("\n");
    assert!(
        notes.contains("difference +$0.022350 over 5 of 8 calls"),
        "{notes}"
    );
    assert!(notes.contains("stored costs were priced with:"), "{notes}");
    assert!(
        notes.contains(&format!("  7 calls  {old_label}")),
        "{notes}"
    );
    assert!(
        notes.contains("  1 call   unknown (written before provenance)"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("repriced with: {new_label}")),
        "{notes}"
    );
    assert!(
        notes.contains("surge_cost_multiplier (1 model: odd-model)"),
        "{notes}"
    );

    // JSON lines: exact decimal strings, null for unknown, and what each figure leaves out.
    let (json, _) = log.reprice(&new, &[], "jsonl");
    let rows: BTreeMap<String, serde_json::Value> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let key = format!("{}/{}/{}", v["model"], v["user_id"], v["day"]).replace('"', "");
            (key, v)
        })
        .collect();
    let alice = &rows["gpt-4o/alice/2026-11-19"];
    assert_eq!(alice["calls"], 2);
    assert_eq!(alice["stored_cost"], "0.017");
    assert_eq!(alice["stored_cost_is_lower_bound"], false);
    assert_eq!(alice["repriced_cost"], "0.034");
    assert_eq!(alice["difference"], "0.017");
    assert_eq!(alice["difference_calls"], 2);
    let mistral = &rows["mistral-large/bob/2026-11-19"];
    assert_eq!(mistral["stored_cost"], "0.026");
    assert!(mistral["repriced_cost"].is_null(), "{json}");
    assert_eq!(mistral["repriced_cost_is_lower_bound"], true);
    assert!(mistral["difference"].is_null(), "{json}");
    assert_eq!(mistral["difference_calls"], 0);
    assert_eq!(mistral["unpriced_after"], 1);
    let carol = &rows["gemini-2.5-flash/carol/2026-11-20"];
    assert!(carol["stored_cost"].is_null(), "{json}");
    assert_eq!(carol["repriced_cost"], "0.0032");
    assert_eq!(carol["unpriced_before"], 1);

    // Nothing was written: the same files, byte for byte, with the same times; the same rows.
    assert_eq!(before, snapshot(log.dir.path()), "the log changed");
    if let Some(pg) = &log.pg {
        assert_eq!(pg_before.as_deref(), Some(pg_digest(pg).as_str()));
        assert!(pg_digest(pg).starts_with("10 "), "{}", pg_digest(pg));
    }
}

#[test]
fn a_difference_is_over_the_calls_priced_before_and_after() {
    let log = Log::new(true);
    let (csv, _) = log.reprice(&log.prices.arg("new.json"), &["--by", "user"], "csv");
    let rows = csv_rows(&csv, 1);
    assert_eq!(rows.len(), 3, "{csv}");
    // alice: #1, #2, #5: 0.0045 + 0.0125 + 0.00035 = 0.01735 → 0.009 + 0.025 + 0.0007 = 0.0347.
    assert_eq!(
        figures(&rows["alice"]),
        ["3", "0.017350", "0.034700", "+0.017350", "0", "0"]
    );
    // bob: #3, #4, #7, #8: stored 0.0075 + 0.026 + 0.0013 + 0.005 = 0.0398; new 0.0075 + 0.01 =
    // 0.0175 with #4 and #7 unpriced (at least); the difference over #3 and #8 only: 0 + 0.005.
    // Not 0.0175 − 0.0398: the unpriced calls are not $0.
    assert_eq!(
        figures(&rows["bob"]),
        [
            "4",
            "0.039800",
            "at least 0.017500",
            "+0.005000 over 2 of 4 calls",
            "0",
            "2"
        ]
    );
    // carol: #6, unpriced before.
    assert_eq!(
        figures(&rows["carol"]),
        ["1", "unknown", "0.003200", "unknown", "1", "0"]
    );

    // Filters narrow it as in the reports.
    let (csv, _) = log.reprice(
        &log.prices.arg("new.json"),
        &["--by", "day", "--user", "bob", "--model", "gpt-4o"],
        "csv",
    );
    let rows = csv_rows(&csv, 1);
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(
        figures(&rows["2026-11-20"]),
        ["1", "0.005000", "0.010000", "+0.005000", "0", "0"]
    );
}

#[test]
fn repricing_with_the_table_that_priced_the_log_gives_its_costs_back() {
    let log = Log::new(false);
    let (csv, stderr) = log.reprice(&log.prices.arg("old.json"), &["--by", "model"], "csv");
    let rows = csv_rows(&csv, 1);
    // Every stored cost comes back: cost_of_entry prices as the layer did.
    assert_eq!(
        figures(&rows["gpt-4o"]),
        ["4", "0.022350", "0.022350", "0.000000", "0", "0"]
    );
    assert_eq!(
        figures(&rows["mistral-large"]),
        ["2", "0.027300", "0.027300", "0.000000", "0", "0"]
    );
    assert_eq!(
        figures(&rows["gemini-2.5-flash"]),
        ["1", "unknown", "unknown", "unknown", "1", "1"]
    );
    // The footer says it is the table 7 of the calls were priced with.
    assert!(
        stderr.contains("(the table 7 calls were priced with)"),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot be applied"), "{stderr}");
}

#[test]
fn builtin_prices_reprice_old_entries() {
    let log = Log::new(false);
    let (csv, stderr) = log.reprice("builtin", &["--by", "model"], "csv");
    let rows = csv_rows(&csv, 1);
    // The built-in table prices gpt-4o and claude-sonnet-4-5 as the old file did, and
    // gemini-2.5-flash at $0.30/M in, $2.50/M out: 0.0012 + 0.002; it has no mistral-large.
    assert_eq!(
        figures(&rows["gpt-4o"]),
        ["4", "0.022350", "0.022350", "0.000000", "0", "0"]
    );
    assert_eq!(
        figures(&rows["claude-sonnet-4-5"]),
        ["1", "0.007500", "0.007500", "0.000000", "0", "0"]
    );
    assert_eq!(
        figures(&rows["gemini-2.5-flash"]),
        ["1", "unknown", "0.003200", "unknown", "1", "0"]
    );
    assert_eq!(
        figures(&rows["mistral-large"]),
        ["2", "0.027300", "unknown", "unknown", "0", "2"]
    );
    let label = PriceTable::builtin().label();
    assert!(label.starts_with("builtin "), "{label}");
    assert!(
        stderr.contains(&format!("repriced with: {label}\n")),
        "{stderr}"
    );
}

#[test]
fn a_price_file_that_cannot_be_loaded_is_one_sentence_naming_it() {
    let log = Log::new(false);
    let dir = log.dir.path().to_str().unwrap();
    let bad_json = log.prices.path("bad.json");
    std::fs::write(
        &bad_json,
        "{\"gpt-4o\": {\"input_cost_per_token\": 1e-06,}}",
    )
    .unwrap();
    let bad_field = log.prices.path("bad-field.json");
    std::fs::write(
        &bad_field,
        r#"{"gpt-4o": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-05}}"#,
    )
    .unwrap();
    let missing = log.prices.path("missing.json");
    let cases: [(&Path, &[&str]); 3] = [
        (&missing, &["cannot read the price file", "No such file"]),
        (&bad_json, &["not a JSON object of models (line 1, column"]),
        (&bad_field, &["model \"gpt-4o\"", "input_cost_per_token"]),
    ];
    let before = snapshot(log.dir.path());
    for (file, problem) in cases {
        let file = file.to_str().unwrap();
        let out = llm_audit(&["reprice", "--prices", file, "--dir", dir, "--format", "csv"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Exit code 1, as every bad argument value of the CLI (2 is clap's, for a malformed
        // command line), and nothing on stdout.
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(out.stdout.is_empty(), "{file}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        assert!(
            stderr.starts_with("llm-audit reprice: --prices"),
            "{stderr}"
        );
        assert!(stderr.contains(file), "names {file}: {stderr}");
        for words in problem {
            assert!(stderr.contains(words), "{words:?} not in {stderr}");
        }
    }
    assert_eq!(before, snapshot(log.dir.path()));

    // Without --prices at all: clap's usage error.
    let out = llm_audit(&["reprice", "--dir", dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prices"));
}

/// An aligned table (cells apart by two spaces or more) as rows of named cells keyed by the
/// first `keys` cells joined with `/`; the lines after the rows (the footer) apart.
fn table_rows(
    table: &str,
    keys: usize,
) -> (BTreeMap<String, BTreeMap<String, String>>, Vec<String>) {
    let split = |l: &str| -> Vec<String> {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut lines = table.lines();
    let header = split(lines.next().unwrap());
    let mut rows = BTreeMap::new();
    let mut notes = Vec::new();
    for line in lines {
        let cells = split(line);
        if cells.len() == header.len() && notes.is_empty() {
            let key = cells[..keys].join("/");
            rows.insert(key, header.iter().cloned().zip(cells).collect());
        } else {
            notes.push(line.to_owned());
        }
    }
    (rows, notes)
}
