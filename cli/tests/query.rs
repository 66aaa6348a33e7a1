//! `llm-audit query` over a JSONL directory: filters, formats, bad lines, clear errors.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use time::{Duration, OffsetDateTime};
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .arg("query")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn jsonl(out: &Output) -> Vec<AuditEntry> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// 60 entries over the last 3 days (one file per day): 3 users, 2 models, every 7th an error.
fn dataset() -> (tempfile::TempDir, Vec<AuditEntry>) {
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let entries: Vec<AuditEntry> = (0..60)
        .map(|i| {
            let mut e = AuditEntry::new("chat");
            e.timestamp = now - Duration::hours(i) - Duration::minutes(1);
            e.user_id = Some(["alice", "bob", "carol"][(i % 3) as usize].to_owned());
            e.provider = Some(["openai", "anthropic"][(i % 2) as usize].to_owned());
            e.model = Some(["gpt-4o", "claude-haiku-4-5"][(i % 2) as usize].to_owned());
            e.input_tokens = Some(100 + i as u64);
            e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i, 6));
            e.trace_id = Some(format!("{i:032x}"));
            if i % 7 == 0 {
                e.status = Status::Error;
                e.error_type = Some("rate_limit_error".to_owned());
                e.error_message = Some("slow, down\n\"please\"".to_owned());
            }
            e
        })
        .collect();
    let mut sink = JsonlSink::new(dir.path()).unwrap();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    (dir, entries)
}

#[test]
fn filters_select_exactly_the_matching_entries() {
    let (dir, entries) = dataset();
    let all = jsonl(&run(dir.path(), &["--format", "jsonl"]));
    assert_eq!(all.len(), 60);
    let mut sorted = entries.clone();
    sorted.sort_by_key(|e| e.timestamp);
    let mut got = all.clone();
    got.sort_by_key(|e| e.timestamp);
    assert_eq!(got, sorted, "every entry, unchanged");

    let zeros = "0".repeat(30);
    type Want = Box<dyn Fn(&AuditEntry) -> bool>;
    let cases: Vec<(Vec<&str>, Want)> = vec![
        (
            vec!["--user", "bob"],
            Box::new(|e| e.user_id.as_deref() == Some("bob")),
        ),
        (
            vec!["--model", "gpt-4o", "--status", "error"],
            Box::new(|e| e.model.as_deref() == Some("gpt-4o") && e.status == Status::Error),
        ),
        (
            vec!["--provider", "anthropic"],
            Box::new(|e| e.provider.as_deref() == Some("anthropic")),
        ),
        (
            vec!["--from", "24h"],
            Box::new(|e| OffsetDateTime::now_utc() - e.timestamp <= Duration::hours(24)),
        ),
        (
            vec!["--trace-id", &zeros],
            Box::new(|_| false), // no trace id is 30 zeros: an exact match, not a prefix
        ),
    ];
    for (args, want) in cases {
        let mut args = args.clone();
        args.extend(["--format", "jsonl"]);
        let got = jsonl(&run(dir.path(), &args));
        let expected = entries.iter().filter(|e| want(e)).count();
        assert_eq!(got.len(), expected, "{args:?}");
        assert!(got.iter().all(&want), "{args:?}");
    }
    let one = &entries[17];
    let got = jsonl(&run(
        dir.path(),
        &[
            "--request-id",
            &one.request_id.to_string(),
            "--format",
            "jsonl",
        ],
    ));
    assert_eq!(got, vec![one.clone()]);
    let got = jsonl(&run(dir.path(), &["--limit", "5", "--format", "jsonl"]));
    assert_eq!(got.len(), 5);
}

#[test]
fn table_and_csv_formats() {
    let (dir, entries) = dataset();
    let table = stdout(&run(dir.path(), &["--user", "alice", "--format", "table"]));
    let lines: Vec<&str> = table.lines().collect();
    let alice = entries
        .iter()
        .filter(|e| e.user_id.as_deref() == Some("alice"))
        .count();
    assert_eq!(lines.len(), alice + 1, "a header and one line per entry");
    assert!(lines[0].starts_with("timestamp"));
    // Aligned: every row has its status column where the header has it.
    let status_at = lines[0].find("status").unwrap();
    for line in &lines[1..] {
        let status = &line[status_at..status_at + 7];
        assert!(status == "success" || status.starts_with("error"), "{line}");
    }
    let csv = stdout(&run(dir.path(), &["--status", "error", "--format", "csv"]));
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "timestamp,request_id,user_id,provider,model,status,input_tokens,output_tokens,cost_usd,latency_ms,error_type"
    );
    let errors = entries.iter().filter(|e| e.status == Status::Error).count();
    assert_eq!(rows.count(), errors);
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_skipped_unless_strict() {
    let (dir, entries) = dataset();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    let lines_before = std::fs::read_to_string(&file).unwrap().lines().count();
    f.write_all(b"{\"not\": \"an entry\"}\n{\"schema_version\": 1, \"requ")
        .unwrap();
    drop(f);
    let out = run(dir.path(), &["--format", "jsonl"]);
    assert!(out.status.success());
    assert_eq!(jsonl(&out).len(), entries.len(), "the rest still counts");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:{}: not an audit entry",
            file.display(),
            lines_before + 1
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:{}: a torn last line",
            file.display(),
            lines_before + 2
        )),
        "{err}"
    );
    assert!(err.contains("2 line(s) were not audit entries"), "{err}");
    let strict = run(dir.path(), &["--format", "jsonl", "--strict"]);
    assert!(!strict.status.success());
    assert!(stderr(&strict).contains(":1") || stderr(&strict).contains("not an audit entry"));
}

#[test]
fn mistakes_are_one_clear_sentence() {
    let (dir, _) = dataset();
    let missing = run(&dir.path().join("nope"), &[]);
    assert!(!missing.status.success());
    assert_eq!(stderr(&missing).lines().count(), 1);
    assert!(
        stderr(&missing).contains("there is no audit log directory at"),
        "{}",
        stderr(&missing)
    );
    let bad_date = run(dir.path(), &["--from", "last tuesday"]);
    assert!(!bad_date.status.success());
    assert_eq!(stderr(&bad_date).lines().count(), 1);
    assert!(stderr(&bad_date).starts_with("llm-audit query: --from: `last tuesday` is not a time"));
    let bad_status = run(dir.path(), &["--status", "failed"]);
    assert!(stderr(&bad_status).contains("`failed` is not a status"));
    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path(), &["--format", "jsonl"]);
    assert!(out.status.success(), "an empty directory is no error");
    assert!(stdout(&out).is_empty());
}

#[test]
fn times_with_an_offset_pick_the_right_daily_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut late = AuditEntry::new("chat");
    late.timestamp = time::macros::datetime!(2026-11-23 21:00 UTC);
    let mut sink = JsonlSink::new(dir.path()).unwrap();
    sink.write_batch(std::slice::from_ref(&late)).unwrap();
    sink.shutdown().unwrap();
    // 01:00 at +05:00 is 20:00 UTC the day before: the file of 2026-11-23 must be read.
    let got = jsonl(&run(
        dir.path(),
        &["--from", "2026-11-24T01:00:00+05:00", "--format", "jsonl"],
    ));
    assert_eq!(got, vec![late.clone()]);
    let got = jsonl(&run(
        dir.path(),
        &[
            "--to",
            "2026-11-24T03:00:00+05:00",
            "--from",
            "2026-11-23T00:00:00Z",
            "--format",
            "jsonl",
        ],
    ));
    assert_eq!(got, vec![late]);
    let none = run(dir.path(), &["--limit", "0", "--format", "jsonl"]);
    assert!(stdout(&none).is_empty(), "--limit 0 prints nothing");
}
