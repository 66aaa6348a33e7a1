//! `llm-audit report` on one generated dataset, from a JSONL directory and from the real
//! PostgreSQL: the same figures from both, and the figures this file computes on its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rust_decimal::Decimal;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

#[path = "support/pg.rs"]
mod pg;
use pg::Schema;

/// The "now" of every report here.
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

/// A small deterministic generator (no dependency, same numbers everywhere).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 3,000 entries over the 12 days before AS_OF: 6 users (and some with none), 4 models on 2
/// providers, errors, unpriced calls, calls without usage. Input tokens are 200–1,800, except the
/// planted outliers: three in the last 24 h (flagged) and one four days back (too old to be).
fn dataset() -> (Vec<AuditEntry>, Vec<uuid::Uuid>) {
    let mut rng = Lcg(42);
    let models = [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
    ];
    let mut entries: Vec<AuditEntry> = (0..3_000)
        .map(|_| {
            let mut e = AuditEntry::new("chat");
            let back = rng.below(12 * 24 * 3_600 * 1_000_000 - 1) + 1;
            e.timestamp = AS_OF - Duration::microseconds(back as i64);
            let user = rng.below(7);
            e.user_id = (user < 6).then(|| format!("user-{user}"));
            let (provider, model) = models[rng.below(4) as usize];
            e.provider = Some(provider.to_owned());
            e.model = Some(model.to_owned());
            e.response_model = Some(format!("{model}-2026"));
            e.latency_ms = 100 + rng.below(5_000);
            if rng.below(20) != 0 {
                e.input_tokens = Some(200 + rng.below(1_600));
                e.output_tokens = Some(10 + rng.below(900));
                e.thinking_tokens = (rng.below(3) == 0).then(|| rng.below(300));
                e.cache_read_tokens = (rng.below(4) == 0).then(|| rng.below(150));
                e.cache_write_tokens = (rng.below(8) == 0).then(|| rng.below(100));
            }
            if rng.below(10) != 0 {
                e.cost_usd = Some(Decimal::new(rng.below(50_000_000) as i64, 9));
            }
            if rng.below(9) == 0 {
                e.status = Status::Error;
                e.error_type = Some("rate_limit_error".to_owned());
            }
            e
        })
        .collect();
    let mut planted = Vec::new();
    for (hours_back, tokens) in [(2, 48_000u64), (9, 51_000), (20, 60_000), (96, 70_000)] {
        let mut e = AuditEntry::new("chat");
        e.timestamp = AS_OF - Duration::hours(hours_back) - Duration::minutes(7);
        e.user_id = Some("user-9".to_owned());
        e.provider = Some("openai".to_owned());
        e.model = Some("gpt-4o".to_owned());
        e.input_tokens = Some(tokens);
        e.output_tokens = Some(5);
        e.cost_usd = Some(Decimal::new(123, 4));
        e.latency_ms = 777;
        if hours_back < 24 {
            planted.push(e.request_id);
        }
        entries.push(e);
    }
    (entries, planted)
}

fn write_jsonl(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

/// A schema of its own in the test database, filled with `entries` by the real sink; `None`
/// when PostgreSQL is not there (see `support::pg`).
struct Pg(Schema);

impl Pg {
    fn with(entries: &[AuditEntry]) -> Option<Self> {
        let pg = Self(Schema::create("llm_audit_report")?);
        let spill = tempfile::tempdir().unwrap();
        let mut sink = PostgresSink::builder(&pg.url())
            .with_spill_dir(spill.path())
            .build()
            .unwrap();
        sink.write_batch(entries).unwrap();
        sink.shutdown().unwrap();
        assert_eq!(sink.spill_status().pending_entries(), 0, "all in the table");
        Some(pg)
    }

    fn url(&self) -> String {
        self.0.url()
    }
}

/// Rounds `num / den` to two decimals, halves up, in integers: `(200·num + den) / (2·den)`.
fn fixed2(num: u64, den: u64) -> String {
    let hundredths = (200 * num + den) / (2 * den);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn day(e: &AuditEntry) -> String {
    e.timestamp.date().to_string()
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn csv_rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn in_range(e: &AuditEntry, back: Duration) -> bool {
    e.timestamp >= AS_OF - back && e.timestamp < AS_OF
}

/// A total cost as the reports print it: the priced calls' sum to six decimal places, "at
/// least" it when some calls of the group are unpriced, "unknown" when all are.
fn total_cost(sum: Decimal, requests: u64, unpriced: u64) -> String {
    let sum = sum.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    match unpriced {
        0 => format!("{sum:.6}"),
        u if u == requests => "unknown".to_owned(),
        _ => format!("at least {sum:.6}"),
    }
}

/// The daily cost by user, computed here: requests, cost, unpriced calls, mean latency; sorted
/// by cost.
fn expected_cost(entries: &[AuditEntry]) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<(String, String), (u64, Decimal, u64, u64)> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_range(e, Duration::days(30))) {
        let g = groups.entry((opt(&e.user_id), day(e))).or_default();
        g.0 += 1;
        g.1 += e.cost_usd.unwrap_or_default();
        g.2 += e.latency_ms;
        g.3 += u64::from(e.cost_usd.is_none());
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    // Cost descending; ties by user (absent last) and day.
    rows.sort_by(|a, b| {
        b.1 .1
            .cmp(&a.1 .1)
            .then((a.0 .0.is_empty(), &a.0 .0).cmp(&(b.0 .0.is_empty(), &b.0 .0)))
            .then(a.0 .1.cmp(&b.0 .1))
    });
    rows.into_iter()
        .map(|((user, day), (n, cost, lat, unpriced))| {
            vec![
                user,
                day,
                n.to_string(),
                total_cost(cost, n, unpriced),
                unpriced.to_string(),
                fixed2(lat, n),
            ]
        })
        .collect()
}

fn expected_errors(entries: &[AuditEntry]) -> BTreeMap<String, (u64, u64, String)> {
    let mut groups: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_range(e, Duration::hours(24))) {
        let g = groups.entry(opt(&e.model)).or_default();
        g.1 += 1;
        if e.status == Status::Error {
            g.0 += 1;
        }
    }
    groups
        .into_iter()
        .map(|(m, (err, n))| (m, (err, n, fixed2(err * 100, n))))
        .collect()
}

fn expected_latency(entries: &[AuditEntry]) -> BTreeMap<String, (u64, u64)> {
    let mut groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_range(e, Duration::days(30))) {
        groups.entry(opt(&e.model)).or_default().push(e.latency_ms);
    }
    groups
        .into_iter()
        .map(|(m, mut v)| {
            v.sort_unstable();
            // Nearest rank: the smallest value with at least p of the values at or below it.
            let rank = |p: usize| v[(p * v.len()).div_ceil(100) - 1];
            (m, (rank(50), rank(95)))
        })
        .collect()
}

fn expected_usage(entries: &[AuditEntry]) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<(String, String), [u64; 6]> = BTreeMap::new();
    let mut costs: BTreeMap<(String, String), (Decimal, u64)> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_range(e, Duration::days(30))) {
        let key = (day(e), opt(&e.model));
        let g = groups.entry(key.clone()).or_default();
        g[0] += 1;
        g[1] += e.input_tokens.unwrap_or(0);
        g[2] += e.output_tokens.unwrap_or(0);
        g[3] += e.thinking_tokens.unwrap_or(0);
        g[4] += e.cache_read_tokens.unwrap_or(0);
        g[5] += e.cache_write_tokens.unwrap_or(0);
        let c = costs.entry(key).or_default();
        c.0 += e.cost_usd.unwrap_or_default();
        c.1 += u64::from(e.cost_usd.is_none());
    }
    groups
        .into_iter()
        .map(|(key, g)| {
            let mut row = vec![key.0.clone(), key.1.clone()];
            row.extend(g.iter().map(u64::to_string));
            let (cost, unpriced) = costs[&key];
            row.push(total_cost(cost, g[0], unpriced));
            row.push(unpriced.to_string());
            row
        })
        .collect()
}

/// The planted outliers and nothing else, by this file's own arithmetic (floating point: the
/// planted values are far from the bound).
fn expected_anomalies(entries: &[AuditEntry]) -> Vec<uuid::Uuid> {
    let base: Vec<f64> = entries
        .iter()
        .filter(|e| in_range(e, Duration::days(7)))
        .filter_map(|e| e.input_tokens.map(|x| x as f64))
        .collect();
    let n = base.len() as f64;
    let mean = base.iter().sum::<f64>() / n;
    let sd = (base.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut found: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| in_range(e, Duration::hours(24)))
        .filter(|e| e.input_tokens.is_some_and(|x| x as f64 > mean + 3.0 * sd))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.input_tokens));
    found.iter().map(|e| e.request_id).collect()
}

/// Runs a report against the directory and, when PostgreSQL is there, the database; returns
/// the CSV, after checking that both gave the same to the byte.
fn both(dir: &Path, pg: Option<&Pg>, args: &[&str]) -> String {
    let mut with_dir = args.to_vec();
    with_dir.extend(["--dir", dir.to_str().unwrap(), "--format", "csv"]);
    let from_dir = ok(&llm_audit(&with_dir));
    if let Some(pg) = pg {
        let url = pg.url();
        let mut with_pg = args.to_vec();
        with_pg.extend(["--postgres", &url, "--format", "csv"]);
        let from_pg = ok(&llm_audit(&with_pg));
        assert_eq!(
            from_dir, from_pg,
            "JSONL and PostgreSQL differ for {args:?}"
        );
    }
    from_dir
}

#[test]
fn every_report_gives_the_same_figures_from_jsonl_and_postgres() {
    let (entries, planted) = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let pg = Pg::with(&entries);
    let pg = pg.as_ref();

    let cost = both(
        dir.path(),
        pg,
        &["report", "cost", "--by", "user,day", "--as-of", AS_OF_ARG],
    );
    assert!(cost.starts_with("user_id,day,requests,total_cost,unpriced_calls,avg_latency_ms\n"));
    assert!(
        cost.contains(",at least "),
        "the dataset's unpriced calls make some totals lower bounds"
    );
    assert_eq!(csv_rows(&cost), expected_cost(&entries));

    let errors = both(
        dir.path(),
        pg,
        &["report", "errors", "--by", "model", "--as-of", AS_OF_ARG],
    );
    let got: BTreeMap<String, (u64, u64, String)> = csv_rows(&errors)
        .into_iter()
        .map(|r| {
            (
                r[0].clone(),
                (r[1].parse().unwrap(), r[2].parse().unwrap(), r[3].clone()),
            )
        })
        .collect();
    assert_eq!(got, expected_errors(&entries));
    let rates: Vec<f64> = csv_rows(&errors)
        .iter()
        .map(|r| r[3].parse().unwrap())
        .collect();
    assert!(
        rates.windows(2).all(|w| w[0] >= w[1]),
        "worst first: {errors}"
    );

    let usage = both(dir.path(), pg, &["report", "usage", "--as-of", AS_OF_ARG]);
    assert_eq!(csv_rows(&usage), expected_usage(&entries));

    let latency = both(dir.path(), pg, &["report", "latency", "--as-of", AS_OF_ARG]);
    let got: BTreeMap<String, (u64, u64)> = csv_rows(&latency)
        .into_iter()
        .map(|r| (r[0].clone(), (r[2].parse().unwrap(), r[3].parse().unwrap())))
        .collect();
    assert_eq!(got, expected_latency(&entries));

    // Other groupings and a filter go through the same code on both sides.
    both(
        dir.path(),
        pg,
        &[
            "report",
            "cost",
            "--by",
            "provider,status,day",
            "--as-of",
            AS_OF_ARG,
        ],
    );
    both(
        dir.path(),
        pg,
        &[
            "report",
            "usage",
            "--by",
            "user",
            "--user",
            "user-3",
            "--from",
            "2026-11-10",
            "--to",
            "2026-11-15",
        ],
    );

    let anomalies = both(
        dir.path(),
        pg,
        &["report", "anomalies", "--as-of", AS_OF_ARG],
    );
    let flagged: Vec<uuid::Uuid> = csv_rows(&anomalies)
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(flagged, expected_anomalies(&entries));
    let mut planted_sorted = planted.clone();
    planted_sorted.reverse(); // planted in rising token order; reported largest first
    assert_eq!(
        flagged, planted_sorted,
        "the planted outliers and nothing else"
    );
}

#[test]
fn anomaly_window_and_threshold_are_settings() {
    let (entries, planted) = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let run = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "report",
            "anomalies",
            "--as-of",
            AS_OF_ARG,
            "--dir",
            dir.path().to_str().unwrap(),
            "--format",
            "csv",
        ];
        args.extend(extra);
        csv_rows(&ok(&llm_audit(&args)))
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    // A 5-day window reaches the outlier planted four days back.
    assert_eq!(run(&["--window", "5d"]).len(), planted.len() + 1);
    // Only the last 6 hours: the one planted 2 hours back.
    assert_eq!(run(&["--window", "6h"]), vec![planted[0].to_string()]);
    // A threshold of 100 standard deviations flags nothing.
    assert!(run(&["--threshold", "100"]).is_empty());
    let out = llm_audit(&[
        "report",
        "anomalies",
        "--dir",
        dir.path().to_str().unwrap(),
        "--threshold",
        "lots",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--threshold: `lots` is not a number"), "{err}");
}

#[test]
fn bad_input_gives_the_documented_results() {
    let (entries, _) = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let expected = expected_cost(&entries);
    // A corrupt line in the middle of one file, a torn last line in another, and an empty file.
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let middle = &files[files.len() / 2];
    let text = std::fs::read_to_string(middle).unwrap();
    let (head, tail) = text.split_at(text.find('\n').unwrap() + 1);
    std::fs::write(middle, format!("{head}this is not json\n{tail}")).unwrap();
    let last = files.last().unwrap();
    let mut text = std::fs::read_to_string(last).unwrap();
    text.push_str("{\"schema_version\":1,\"request_id\":\"0190");
    std::fs::write(last, &text).unwrap();
    std::fs::write(
        dir.path().join("audit_2026-11-19.jsonl.tmp"),
        "not a daily file",
    )
    .unwrap();
    std::fs::write(dir.path().join("audit_2026-11-01.jsonl"), "").unwrap();
    let args = [
        "report",
        "cost",
        "--as-of",
        AS_OF_ARG,
        "--dir",
        dir.path().to_str().unwrap(),
        "--format",
        "csv",
    ];
    let out = llm_audit(&args);
    let stdout = ok(&out);
    assert_eq!(
        csv_rows(&stdout),
        expected,
        "the report runs on the rest, unchanged"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{}:2: not an audit entry", middle.display())),
        "{stderr}"
    );
    let last_line = text.lines().count();
    assert!(
        stderr.contains(&format!("{}:{last_line}: a torn last line", last.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 line(s) were not audit entries and were skipped"),
        "{stderr}"
    );

    let mut strict = args.to_vec();
    strict.push("--strict");
    let out = llm_audit(&strict);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:2: not an audit entry", middle.display())),
        "{err}"
    );

    // An empty directory: an empty report, no error.
    let empty = tempfile::tempdir().unwrap();
    let out = llm_audit(&[
        "report",
        "usage",
        "--dir",
        empty.path().to_str().unwrap(),
        "--format",
        "table",
    ]);
    assert!(ok(&out).contains("(no entries)"));

    // Mistakes: one sentence each, exit code 1.
    let missing = dir.path().join("nope");
    for (args, says) in [
        (
            vec!["report", "cost", "--dir", missing.to_str().unwrap()],
            "there is no audit log directory at",
        ),
        (
            vec![
                "report",
                "cost",
                "--by",
                "user,colour",
                "--dir",
                dir.path().to_str().unwrap(),
            ],
            "unknown column `colour` for --by",
        ),
        (
            vec![
                "report",
                "usage",
                "--from",
                "2026-13-45",
                "--dir",
                dir.path().to_str().unwrap(),
            ],
            "--from: `2026-13-45` is not a time",
        ),
        (
            vec![
                "report",
                "errors",
                "--from",
                "2026-11-10",
                "--to",
                "2026-11-01",
                "--dir",
                dir.path().to_str().unwrap(),
            ],
            "is not before --to",
        ),
    ] {
        let out = llm_audit(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn a_bad_database_is_one_sentence_without_the_password() {
    let out = llm_audit(&[
        "report",
        "cost",
        "--postgres",
        "postgres://u:hunter2-SECRET@127.0.0.1:1/db?connect_timeout=1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn the_html_report_is_self_contained_and_has_every_chart() {
    let (mut entries, planted) = dataset();
    let mut hostile = AuditEntry::new("chat");
    hostile.timestamp = AS_OF - Duration::hours(30);
    hostile.user_id = Some("<script>alert(1)</script>".to_owned());
    hostile.cost_usd = Some(Decimal::from(1_000));
    hostile.model = Some("gpt-4o".to_owned());
    entries.push(hostile);
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let page_path = dir.path().join("report.html");
    let out = llm_audit(&[
        "report",
        "html",
        "-o",
        page_path.to_str().unwrap(),
        "--as-of",
        AS_OF_ARG,
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    ok(&out);
    let page = std::fs::read_to_string(&page_path).unwrap();
    for id in [
        "cost-per-day",
        "top-users",
        "tokens-per-day",
        "latency-per-model",
        "error-rate-per-model",
        "anomalies",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
    assert_eq!(page.matches("<svg").count(), 5, "five charts");
    // Nothing that a browser would fetch: no address, script, stylesheet link or font.
    let lower = page.to_ascii_lowercase();
    for forbidden in [
        "http:", "https:", "//", "<script", "<link", "src=", "href=", "url(", "@import",
    ] {
        let hits: Vec<_> = lower
            .match_indices(forbidden)
            .map(|(i, _)| &page[i.saturating_sub(40)..(i + 40).min(page.len())])
            .collect();
        assert!(hits.is_empty(), "{forbidden}: {hits:?}");
    }
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "user ids are escaped"
    );
    // Every model has its bars; every planted anomaly is in the table; the top user leads.
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    ] {
        assert!(page.contains(&format!("<title>{model} · p95:")), "{model}");
    }
    let table = &page[page.find("id=\"anomalies\"").unwrap()..];
    for id in &planted {
        assert!(table.contains(&id.to_string()), "{id}");
    }
    assert_eq!(table.matches("<tr>").count(), planted.len() + 1);
    let users =
        &page[page.find("id=\"top-users\"").unwrap()..page.find("id=\"tokens-per-day\"").unwrap()];
    assert!(
        users.find("&lt;script&gt;").unwrap() < users.find("user-").unwrap(),
        "largest first"
    );
}

#[test]
fn a_progress_bar_shows_only_when_asked_or_on_a_terminal() {
    let (entries, _) = dataset();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let args = [
        "report",
        "usage",
        "--dir",
        dir.path().to_str().unwrap(),
        "--format",
        "csv",
    ];
    // Not a terminal: no progress on stderr (only the note that this log is not
    // tamper-evident).
    let quiet = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env_remove("LLM_AUDIT_PROGRESS")
        .output()
        .unwrap();
    assert!(quiet.status.success());
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        stderr.lines().all(|l| l.contains("is not tamper-evident")),
        "{stderr}"
    );
    let shown = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env("LLM_AUDIT_PROGRESS", "always")
        .output()
        .unwrap();
    assert!(shown.status.success());
    let err = String::from_utf8(shown.stderr).unwrap();
    assert!(err.contains("scanning [") && err.contains("MiB"), "{err:?}");
    assert_eq!(quiet.stdout, shown.stdout, "stdout is the same");
}

#[test]
fn line_numbers_are_right_beyond_the_first_chunk() {
    // 6,000 entries in one file (several MiB: the scan reads it in 1 MiB chunks on all cores),
    // with bad lines at 1,234, 4,999 and 6,001.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit_2026-11-19.jsonl");
    let mut text = String::new();
    let mut users = BTreeMap::<String, u64>::new();
    let mut line = 0;
    for i in 0..6_003u64 {
        line += 1;
        if [1_234, 4_999, 6_001].contains(&line) {
            text.push_str("{\"broken\":\n");
            continue;
        }
        let mut e = AuditEntry::new("chat");
        e.timestamp = datetime!(2026-11-19 10:00 UTC) + Duration::milliseconds(i as i64);
        e.user_id = Some(format!("u{}", i % 7));
        e.input_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
        e.metadata = Some(serde_json::Map::from_iter([(
            "pad".to_owned(),
            "x".repeat(600).into(),
        )]));
        *users.entry(format!("u{}", i % 7)).or_default() += 1;
        text.push_str(&serde_json::to_string(&e).unwrap());
        text.push('\n');
    }
    assert!(text.len() > 3 << 20);
    std::fs::write(&path, &text).unwrap();
    let d = dir.path().to_str().unwrap();
    let expect = |stderr: &str| {
        for n in [1_234, 4_999, 6_001] {
            assert!(
                stderr.contains(&format!("{}:{n}: not an audit entry", path.display())),
                "{n}: {stderr}"
            );
        }
        assert_eq!(stderr.matches("not an audit entry").count(), 3, "{stderr}");
    };
    let out = llm_audit(&[
        "report",
        "usage",
        "--by",
        "user",
        "--dir",
        d,
        "--from",
        "2026-11-01",
        "--format",
        "csv",
    ]);
    let got: BTreeMap<String, u64> = csv_rows(&ok(&out))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    assert_eq!(got, users);
    expect(&String::from_utf8(out.stderr).unwrap());
    let out = llm_audit(&["query", "--dir", d, "--format", "jsonl"]);
    let entries: Vec<AuditEntry> = ok(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 6_000);
    assert!(
        entries.windows(2).all(|w| w[0].timestamp < w[1].timestamp),
        "in file order"
    );
    expect(&String::from_utf8(out.stderr).unwrap());
    let out = llm_audit(&["query", "--dir", d, "--format", "jsonl", "--limit", "4000"]);
    assert_eq!(ok(&out).lines().count(), 4_000);
}
