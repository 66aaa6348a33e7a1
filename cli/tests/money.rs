//! One money format in every human-readable output: six decimal places in tables and CSV
//! (`0.049140`, `0.000000`, `0.006300`), with "at least" and "unknown" kept for sums that leave
//! unpriced calls out; JSON keeps the exact decimal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rust_decimal::Decimal;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, csv_rows, llm_audit, ok, pg_with, write_jsonl, AS_OF_ARG};

fn dataset() -> Vec<tracing_llm_audit::AuditEntry> {
    // In time order, as a sink writes them.
    vec![
        call("dave", 5, Some(Decimal::new(123_456_789, 9))), // 0.123456789
        call("carol", 4, None),                              // unpriced
        call("carol", 3, Some(Decimal::new(63, 4))),         // 0.0063
        call("bob", 2, Some(Decimal::ZERO)),                 // 0
        call("alice", 1, Some(Decimal::new(4914, 5))),       // 0.04914
    ]
}

/// Runs `args` on the directory and, when PostgreSQL is there, on the same entries in it: both
/// print the same.
fn both(dir: &std::path::Path, pg: Option<&pg::Schema>, args: &[&str], format: &str) -> String {
    let mut with_dir = args.to_vec();
    with_dir.extend([
        "--as-of",
        AS_OF_ARG,
        "--format",
        format,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let out = ok(&llm_audit(&with_dir));
    if let Some(pg) = pg {
        let url = pg.url();
        let mut with_pg = args.to_vec();
        with_pg.extend(["--as-of", AS_OF_ARG, "--format", format, "--postgres", &url]);
        assert_eq!(out, ok(&llm_audit(&with_pg)), "{args:?} {format}");
    }
    out
}

#[test]
fn money_has_six_decimal_places_in_tables_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let entries = dataset();
    write_jsonl(dir.path(), &entries);
    let pg = pg_with("llm_audit_money", &entries);
    let pg = pg.as_ref();

    // The listing: each call's cost.
    let csv = both(dir.path(), pg, &["query"], "csv");
    let costs: Vec<String> = csv_rows(&csv)
        .iter()
        .map(|r| r["cost_usd"].clone())
        .collect();
    assert_eq!(
        costs,
        ["0.123457", "", "0.006300", "0.000000", "0.049140"],
        "{csv}"
    );
    let table = both(dir.path(), pg, &["query"], "table");
    for cost in ["0.123457", "0.006300", "0.000000", "0.049140"] {
        assert!(table.contains(&format!(" {cost} ")), "{cost}: {table}");
    }

    // A report: totals, a lower bound, none unknown here.
    let csv = both(dir.path(), pg, &["report", "cost", "--by", "user"], "csv");
    let total = |user: &str| {
        csv_rows(&csv)
            .into_iter()
            .find(|r| r["user_id"] == user)
            .unwrap()["total_cost"]
            .clone()
    };
    assert_eq!(total("alice"), "0.049140");
    assert_eq!(total("bob"), "0.000000");
    assert_eq!(total("carol"), "at least 0.006300");
    assert_eq!(total("dave"), "0.123457");
    let table = both(
        dir.path(),
        pg,
        &["report", "usage", "--by", "user"],
        "table",
    );
    assert!(table.contains("at least 0.006300"), "{table}");
    assert!(table.contains(" 0.049140"), "{table}");

    // JSON keeps the exact decimals.
    let json = both(dir.path(), pg, &["report", "cost", "--by", "user"], "jsonl");
    assert!(json.contains("\"total_cost\":\"0.123456789\""), "{json}");
    assert!(json.contains("\"total_cost\":\"0.04914\""), "{json}");
    // (The entries as stored: PostgreSQL's NUMERIC keeps its own scale, `0.006300`.)
    let json = both(dir.path(), None, &["query"], "jsonl");
    assert!(json.contains("\"cost_usd\":\"0.123456789\""), "{json}");
}

#[test]
fn anomalies_and_tail_show_money_the_same_way() {
    // A baseline of 20 calls of 100 input tokens and one of 10,000 in the last hours.
    let mut entries: Vec<_> = (0..20)
        .map(|i| call("dave", 30 + i, Some(Decimal::new(1, 2))))
        .collect();
    let mut big = call("erin", 2, Some(Decimal::new(4914, 5)));
    big.input_tokens = Some(10_000);
    entries.push(big);
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let csv = ok(&llm_audit(&[
        "report",
        "anomalies",
        "--as-of",
        AS_OF_ARG,
        "--format",
        "csv",
        "--dir",
        dir.path().to_str().unwrap(),
    ]));
    assert_eq!(csv_rows(&csv)[0]["cost_usd"], "0.049140", "{csv}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args([
            "tail",
            "--from-start",
            "--format",
            "csv",
            "--poll-ms",
            "20",
            "--user",
            "erin",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let row = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let rows = csv_rows(&format!("{header}\n{row}\n"));
    assert_eq!(rows[0]["cost_usd"], "0.049140");
}
