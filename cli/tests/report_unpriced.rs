//! An unpriced call (`cost_usd: null`, with a `cost_note`) is never reported as $0: every report
//! that sums cost counts the unpriced calls of each group, says "at least" of a total that leaves
//! some out, and "unknown" of one that has no priced call at all; JSON says it in fields
//! (`unpriced_calls`, `total_cost_is_lower_bound`, a null total when nothing is priced).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rust_decimal::Decimal;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

#[path = "support/pg.rs"]
mod pg;
use pg::Schema;

const AS_OF: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const AS_OF_ARG: &str = "2026-11-20T12:00:00Z";

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

fn call(user: &str, model: &str, hours_back: i64, cost: Option<Decimal>) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = AS_OF - Duration::hours(hours_back);
    e.user_id = Some(user.to_owned());
    e.provider = Some("openai".to_owned());
    e.model = Some(model.to_owned());
    e.input_tokens = Some(100);
    e.output_tokens = Some(10);
    e.latency_ms = 200;
    e.cost_usd = cost;
    if cost.is_none() {
        e.cost_note = Some(format!("no price for {model}"));
    }
    e
}

/// alice: two priced calls (0.5 + 0.25) and one unpriced, all gpt-4o: at least 0.75.
/// bob: two unpriced calls of a model without a price: unknown.
/// carol: one priced call: exactly 0.1.
/// All on 2026-11-20. Overall: at least 0.85, 3 of 6 calls unpriced.
fn dataset() -> Vec<AuditEntry> {
    vec![
        call("alice", "gpt-4o", 1, Some(Decimal::new(5, 1))),
        call("alice", "gpt-4o", 2, Some(Decimal::new(25, 2))),
        call("alice", "gpt-4o", 3, None),
        call("bob", "mystery-model", 4, None),
        call("bob", "mystery-model", 5, None),
        call("carol", "gpt-4o", 6, Some(Decimal::new(1, 1))),
    ]
}

fn write_jsonl(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

/// The same entries in a schema of the test database, when PostgreSQL is there.
fn pg_with(entries: &[AuditEntry]) -> Option<Schema> {
    let schema = Schema::create("llm_audit_unpriced")?;
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

/// The report from the directory, after checking that PostgreSQL (when there) gives the same.
fn report(dir: &Path, pg: Option<&Schema>, args: &[&str], format: &str) -> String {
    let mut with_dir = args.to_vec();
    with_dir.extend([
        "--as-of",
        AS_OF_ARG,
        "--dir",
        dir.to_str().unwrap(),
        "--format",
        format,
    ]);
    let from_dir = ok(&llm_audit(&with_dir));
    if let Some(pg) = pg {
        let url = pg.url();
        let mut with_pg = args.to_vec();
        with_pg.extend(["--as-of", AS_OF_ARG, "--postgres", &url, "--format", format]);
        assert_eq!(
            from_dir,
            ok(&llm_audit(&with_pg)),
            "JSONL and PostgreSQL differ for {args:?} {format}"
        );
    }
    from_dir
}

/// CSV (no quoted fields here) as rows of named cells, keyed by the first column.
fn csv_by_key(csv: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect();
            (row[header[0]].clone(), row)
        })
        .collect()
}

/// An aligned table (cells apart by two spaces or more) as rows of named cells, keyed by the
/// first column; lines after the rows (notes) are returned apart.
fn table_by_key(table: &str) -> (BTreeMap<String, BTreeMap<String, String>>, Vec<String>) {
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
            let row: BTreeMap<String, String> = header.iter().cloned().zip(cells).collect();
            rows.insert(row[&header[0]].clone(), row);
        } else {
            notes.push(line.to_owned());
        }
    }
    (rows, notes)
}

fn json_by_key(jsonl: &str, key: &str) -> BTreeMap<String, serde_json::Value> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v[key].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[test]
fn cost_and_usage_reports_count_unpriced_calls_and_never_show_them_as_zero() {
    let entries = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let pg = pg_with(&entries);
    let pg = pg.as_ref();

    for kind in ["cost", "usage"] {
        let args = ["report", kind, "--by", "user"];

        // CSV: the count per group, "at least" on a partial total, "unknown" for none priced.
        let csv = report(dir.path(), pg, &args, "csv");
        let rows = csv_by_key(&csv);
        assert_eq!(rows.len(), 3, "{kind}: {csv}");
        assert_eq!(rows["alice"]["unpriced_calls"], "1", "{kind}: {csv}");
        assert_eq!(
            rows["alice"]["total_cost"], "at least 0.750000",
            "{kind}: {csv}"
        );
        assert_eq!(rows["bob"]["unpriced_calls"], "2", "{kind}: {csv}");
        assert_eq!(rows["bob"]["total_cost"], "unknown", "{kind}: {csv}");
        assert_eq!(rows["carol"]["unpriced_calls"], "0", "{kind}: {csv}");
        assert_eq!(rows["carol"]["total_cost"], "0.100000", "{kind}: {csv}");

        // The table says the same, and a note says what "at least" means.
        let table = report(dir.path(), pg, &args, "table");
        let (rows, notes) = table_by_key(&table);
        assert_eq!(rows.len(), 3, "{kind}: {table}");
        assert_eq!(rows["alice"]["unpriced_calls"], "1", "{kind}: {table}");
        assert_eq!(
            rows["alice"]["total_cost"], "at least 0.750000",
            "{kind}: {table}"
        );
        assert_eq!(rows["bob"]["unpriced_calls"], "2", "{kind}: {table}");
        assert_eq!(rows["bob"]["total_cost"], "unknown", "{kind}: {table}");
        assert_eq!(rows["carol"]["total_cost"], "0.100000", "{kind}: {table}");
        let notes = notes.join("\n");
        assert!(notes.contains("3 of 6 calls"), "{kind}: {table}");
        assert!(notes.contains("at least"), "{kind}: {table}");

        // JSON lines: fields a program can read, money still an exact decimal string.
        let json = report(dir.path(), pg, &args, "jsonl");
        let rows = json_by_key(&json, "user_id");
        let alice = &rows["alice"];
        assert_eq!(alice["total_cost"], "0.75", "{kind}: {json}");
        assert_eq!(alice["unpriced_calls"], 1, "{kind}: {json}");
        assert_eq!(alice["total_cost_is_lower_bound"], true, "{kind}: {json}");
        let bob = &rows["bob"];
        assert!(bob["total_cost"].is_null(), "{kind}: {json}");
        assert_eq!(bob["unpriced_calls"], 2, "{kind}: {json}");
        assert_eq!(bob["total_cost_is_lower_bound"], true, "{kind}: {json}");
        let carol = &rows["carol"];
        assert_eq!(carol["total_cost"], "0.1", "{kind}: {json}");
        assert_eq!(carol["unpriced_calls"], 0, "{kind}: {json}");
        assert_eq!(carol["total_cost_is_lower_bound"], false, "{kind}: {json}");
    }

    // Grouped by model too: the unpriced call of a priced model makes its total a lower bound.
    let rows = csv_by_key(&report(
        dir.path(),
        pg,
        &["report", "cost", "--by", "model"],
        "csv",
    ));
    assert_eq!(rows["gpt-4o"]["total_cost"], "at least 0.850000");
    assert_eq!(rows["gpt-4o"]["unpriced_calls"], "1");
    assert_eq!(rows["mystery-model"]["total_cost"], "unknown");
    assert_eq!(rows["mystery-model"]["unpriced_calls"], "2");
}

#[test]
fn a_fully_priced_report_says_nothing_of_unpriced_calls() {
    let entries: Vec<AuditEntry> = dataset()
        .into_iter()
        .filter(|e| e.cost_usd.is_some())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let table = report(
        dir.path(),
        None,
        &["report", "cost", "--by", "user"],
        "table",
    );
    let (rows, notes) = table_by_key(&table);
    assert_eq!(rows["alice"]["total_cost"], "0.750000", "{table}");
    assert_eq!(rows["alice"]["unpriced_calls"], "0", "{table}");
    assert!(notes.is_empty(), "{table}");
    assert!(
        !table.contains("at least") && !table.contains("unknown"),
        "{table}"
    );
}

#[test]
fn the_html_report_says_at_least_and_counts_unpriced_calls() {
    let entries = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let page_path = dir.path().join("report.html");
    ok(&llm_audit(&[
        "report",
        "html",
        "-o",
        page_path.to_str().unwrap(),
        "--as-of",
        AS_OF_ARG,
        "--dir",
        dir.path().to_str().unwrap(),
    ]));
    let page = std::fs::read_to_string(&page_path).unwrap();
    let section = |id: &str| -> &str {
        let start = page
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}"));
        let rest = &page[start..];
        let end = rest[1..].find(" id=\"").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    };

    // The headline: a lower bound, and how many calls it leaves out.
    let cards = &page[page.find("class=\"cards\"").unwrap()..page.find("</div></div>").unwrap()];
    assert!(cards.contains("at least $0.85"), "{cards}");
    assert!(cards.contains("3 unpriced calls"), "{cards}");

    // Top users: bob's cost is unknown, not $0; alice's a lower bound; both with their counts.
    let users = section("top-users");
    assert!(!users.contains("$0<") && !users.contains("$0 "), "{users}");
    assert!(users.contains("bob: unknown (2 unpriced calls)"), "{users}");
    assert!(
        users.contains("alice: at least $0.75 (1 unpriced call)"),
        "{users}"
    );
    assert!(users.contains("carol: $0.1<"), "{users}");

    // Cost per day: the bars leave the unpriced calls out, and say so where they are.
    let days = section("cost-per-day");
    assert!(days.contains("3 unpriced calls"), "{days}");
    assert!(
        days.contains("mystery-model: unknown (2 unpriced calls)"),
        "{days}"
    );
    assert!(
        days.contains("gpt-4o: at least $0.85 (1 unpriced call)"),
        "{days}"
    );

    // Cost per model, with the count of unpriced calls of each.
    let models = section("cost-per-model");
    let row = |model: &str| -> Vec<String> {
        let start = models
            .find(&format!("<tr><td>{model}</td>"))
            .unwrap_or_else(|| panic!("no row for {model}: {models}"));
        let row = &models[start..start + models[start..].find("</tr>").unwrap()];
        row.split("<td>")
            .skip(1)
            .map(|c| c.trim_end_matches("</td>").to_owned())
            .collect()
    };
    assert_eq!(row("gpt-4o"), ["gpt-4o", "4", "at least $0.85", "1"]);
    assert_eq!(row("mystery-model"), ["mystery-model", "2", "unknown", "2"]);
}

#[test]
fn an_unpriced_anomaly_has_an_unknown_cost() {
    // A baseline of calls of 100 input tokens, and one of 10,000 in the last 24 h, unpriced.
    let mut entries: Vec<AuditEntry> = (0..20)
        .map(|i| call("dave", "gpt-4o", 30 + i, Some(Decimal::new(1, 2))))
        .collect();
    let mut big = call("erin", "mystery-model", 2, None);
    big.input_tokens = Some(10_000);
    entries.push(big);
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let pg = pg_with(&entries);
    let csv = report(dir.path(), pg.as_ref(), &["report", "anomalies"], "csv");
    let rows = csv_by_key(&csv);
    assert_eq!(rows.len(), 1, "{csv}");
    let row = rows.values().next().unwrap();
    assert_eq!(row["cost_usd"], "unknown", "{csv}");
    let json = report(dir.path(), pg.as_ref(), &["report", "anomalies"], "jsonl");
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert!(v["cost_usd"].is_null(), "{json}");
}
