//! Entries that record events, not calls (an erasure, a report of dropped entries, a writer's
//! repair), are not counted as requests by the reports; a note says how many were left out, and
//! the listing names them.

use rust_decimal::Decimal;
use tracing_llm_audit::AuditEntry;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, csv_rows, llm_audit, ok, pg_with, stderr, write_jsonl, AS_OF, AS_OF_ARG};

fn event(action: &str, hours_back: i64) -> AuditEntry {
    let mut e = AuditEntry::new(action);
    e.timestamp = AS_OF - time::Duration::hours(hours_back);
    e
}

/// Two calls of alice; an erasure, a drop report and a repair.
fn dataset() -> Vec<AuditEntry> {
    let mut erasure = event("llm_audit.erasure", 3);
    let mut metadata = serde_json::Map::new();
    metadata.insert("llm_audit.erased_user".to_owned(), "pseudonym:ab".into());
    metadata.insert("llm_audit.erased_entries".to_owned(), 3.into());
    erasure.metadata = Some(metadata);
    vec![
        call("alice", 1, Some(Decimal::new(1, 2))),
        call("alice", 2, Some(Decimal::new(2, 2))),
        erasure,
        event(tracing_llm_audit::ACTION_ENTRIES_DROPPED, 4),
        event(tracing_llm_audit::sink::repair::ACTION_REPAIR, 5),
    ]
}

#[test]
fn reports_count_calls_only_and_say_what_they_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let entries = dataset();
    write_jsonl(dir.path(), &entries);
    let pg = pg_with("llm_audit_events", &entries);
    let mut sources = vec![vec!["--dir".to_owned(), dir.path().display().to_string()]];
    if let Some(pg) = &pg {
        sources.push(vec!["--postgres".to_owned(), pg.url()]);
    }
    let note = "3 entries are events, not calls (llm_audit.entries_dropped: 1, \
                llm_audit.erasure: 1, llm_audit.repair: 1): not counted as requests";
    for source in &sources {
        let source: Vec<&str> = source.iter().map(String::as_str).collect();
        let run = |args: &[&str], format: &str| {
            let mut all = args.to_vec();
            all.extend(["--as-of", AS_OF_ARG]);
            if !format.is_empty() {
                all.extend(["--format", format]);
            }
            all.extend(&source);
            llm_audit(&all)
        };
        // Every grouped report: one group of two requests, nothing unpriced, no error.
        for (report, requests) in [
            ("cost", "requests"),
            ("usage", "requests"),
            ("latency", "requests"),
            ("errors", "total"),
        ] {
            let out = run(&["report", report, "--by", "day"], "csv");
            let rows = csv_rows(&ok(&out));
            assert_eq!(rows.len(), 1, "{report}: {rows:?}");
            assert_eq!(rows[0][requests], "2", "{report} {source:?}: {rows:?}");
            if report == "cost" {
                assert_eq!(rows[0]["total_cost"], "0.030000");
                assert_eq!(rows[0]["unpriced_calls"], "0");
            }
            if report == "errors" {
                assert_eq!(rows[0]["error_rate"], "0.00");
            }
            // Beside CSV the note is on stderr; under a table, in its notes.
            assert!(stderr(&out).contains(note), "{report}: {}", stderr(&out));
            let table = ok(&run(&["report", report, "--by", "day"], "table"));
            assert!(table.contains(note), "{report}: {table}");
        }
        // By user: no group of no user made of events.
        let rows = csv_rows(&ok(&run(&["report", "cost", "--by", "user"], "csv")));
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["user_id"], "alice");
        // The HTML page's figures leave them out too, and say so on stderr.
        let out = run(&["report", "html"], "");
        assert!(stderr(&out).contains(note), "{}", stderr(&out));
        // Repricing: two calls.
        let rows = csv_rows(&ok(&run(
            &["reprice", "--prices", "builtin", "--by", "day"],
            "csv",
        )));
        assert_eq!(rows[0]["calls"], "2", "{rows:?}");
    }
}

#[test]
fn the_listing_names_the_events_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let d = dir.path().to_str().unwrap();
    let table = ok(&llm_audit(&[
        "query", "--as-of", AS_OF_ARG, "--format", "table", "--dir", d,
    ]));
    assert_eq!(table.lines().count(), 1 + 5 + 1, "{table}");
    assert!(
        table.contains(
            "3 entries are events, not calls (llm_audit.entries_dropped: 1, llm_audit.erasure: \
             1, llm_audit.repair: 1): listed, its action says what it records"
        ),
        "{table}"
    );
    let out = llm_audit(&["query", "--as-of", AS_OF_ARG, "--format", "csv", "--dir", d]);
    assert_eq!(ok(&out).lines().count(), 1 + 5);
    assert!(
        stderr(&out).contains("3 entries are events"),
        "{}",
        stderr(&out)
    );
    // JSON lines are the entries as stored: their action says it.
    let json = ok(&llm_audit(&[
        "query", "--as-of", AS_OF_ARG, "--format", "jsonl", "--dir", d,
    ]));
    assert_eq!(json.lines().count(), 5);
}
