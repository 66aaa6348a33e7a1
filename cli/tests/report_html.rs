//! `llm-audit report html` as an audit report, on a generated log with failures, blocked calls,
//! redactions, unpriced calls, a dropped-entries event and model names longer than any column:
//! what failed and why, what was blocked and redacted, which calls have no price, the integrity
//! of the trail (verified with the key given, and never called intact without one), full dates,
//! round axis ticks, whole model names, every text from the log escaped, and the file written
//! for its owner only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rust_decimal::Decimal;
use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::sink::postgres::PostgresSink;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status, ACTION_ENTRIES_DROPPED};

#[path = "support/pg.rs"]
mod pg;

const AS_OF: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const AS_OF_ARG: &str = "2026-11-20T12:00:00Z";

/// Longer than any label column: never to be cut.
const LONG_MODEL: &str =
    "anthropic.claude-3-5-sonnet-20241022-v2:0-provisioned-throughput-eu-west-1-deployment-7";
/// An error type and message an attacker chose.
const HOSTILE_TYPE: &str = "<script>alert('type')</script>";
const HOSTILE_MESSAGE: &str =
    "<img src=x onerror=alert(1)> \"quoted\" & 'single' \u{1b}[31mred\u{1b}[0m \u{202e}fdp.exe";

fn llm_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

#[track_caller]
fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn call(at: OffsetDateTime, model: &str) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at;
    e.user_id = Some("user-1".to_owned());
    e.provider = Some("openai".to_owned());
    e.model = Some(model.to_owned());
    e.input_tokens = Some(1_000);
    e.output_tokens = Some(100);
    e.latency_ms = 400;
    e.cost_usd = Some(Decimal::new(12_345, 6));
    e
}

/// The log of every test here: 5 days of priced calls on two models (one with a long name),
/// then the calls an auditor asks about.
fn dataset() -> Vec<AuditEntry> {
    let day = |d: i64, h: i64| AS_OF - Duration::days(d) + Duration::hours(h) - Duration::hours(12);
    let mut all = Vec::new();
    for d in 0..5 {
        for i in 0..4 {
            all.push(call(day(d, i + 1), "gpt-4o"));
            all.push(call(day(d, i + 1) + Duration::minutes(1), LONG_MODEL));
        }
    }
    // Failures: three rate limits, the latest message last written first.
    for (h, message) in [
        (3, "slow down (third)"),
        (1, "slow down (first)"),
        (2, "slow down (second)"),
    ] {
        let mut e = call(day(1, h), "gpt-4o");
        e.status = Status::Error;
        e.error_type = Some("rate_limit_error".to_owned());
        e.error_message = Some(message.to_owned());
        e.cost_usd = None;
        e.cost_note = Some("no usage recorded".to_owned());
        all.push(e);
    }
    let mut timeout = call(day(2, 5), LONG_MODEL);
    timeout.status = Status::Error;
    timeout.error_type = Some("timeout".to_owned());
    timeout.error_message = Some(format!("read timed out {}", "x".repeat(1_000)));
    all.push(timeout);
    let mut hostile = call(day(0, 6), "gpt-4o");
    hostile.status = Status::Error;
    hostile.error_type = Some(HOSTILE_TYPE.to_owned());
    hostile.error_message = Some(HOSTILE_MESSAGE.to_owned());
    all.push(hostile);
    // Blocked: two for one reason, one for another.
    for (h, reason) in [
        (1, "credit card number in the prompt"),
        (2, "credit card number in the prompt"),
        (3, "prompt injection suspected"),
    ] {
        let mut e = call(day(3, h) + Duration::minutes(30), "gpt-4o");
        e.status = Status::Blocked;
        e.error_type = Some("blocked".to_owned());
        e.error_message = Some(reason.to_owned());
        e.input_tokens = None;
        e.output_tokens = None;
        e.cost_usd = Some(Decimal::ZERO);
        all.push(e);
    }
    // Redactions: 3 emails in 2 calls, 1 credit card.
    all[0].sanitization.insert("email".to_owned(), 2);
    all[0].sanitization.insert("credit_card".to_owned(), 1);
    all[0].sanitization_count = 3;
    all[5].sanitization.insert("email".to_owned(), 1);
    all[5].sanitization_count = 1;
    // Unpriced: a model the price table does not know.
    for h in 1..=2 {
        let mut e = call(day(4, h) + Duration::minutes(45), "mystery-model");
        e.cost_usd = None;
        e.cost_note = Some("unknown model mystery-model".to_owned());
        all.push(e);
    }
    // The pipeline's own event: 7 entries dropped. Not a call.
    let mut dropped = AuditEntry::new(ACTION_ENTRIES_DROPPED);
    dropped.timestamp = day(0, 7);
    dropped.provider = Some("llm_audit".to_owned());
    dropped.status = Status::Error;
    dropped.error_type = Some("queue_overflow".to_owned());
    dropped.error_message =
        Some("7 audit entries were dropped because the audit queue was full".to_owned());
    dropped.metadata = serde_json::json!({"dropped": 7, "dropped_total": 7})
        .as_object()
        .cloned();
    all.push(dropped);
    all
}

fn write_jsonl(dir: &Path, entries: &[AuditEntry]) {
    let mut sink = JsonlSink::new(dir).unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
}

/// A tamper-evident log of `entries` and the public key file that verifies it.
struct Chained {
    dir: tempfile::TempDir,
    public: PathBuf,
    key: SigningKey,
    _keys: tempfile::TempDir,
}

fn chained(entries: &[AuditEntry]) -> Chained {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("signing.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let mut sink = JsonlSink::builder(dir.path())
        .chain(key.clone())
        .checkpoint_every(10)
        .build()
        .unwrap();
    sink.write_batch(entries).unwrap();
    sink.shutdown().unwrap();
    Chained {
        dir,
        public,
        key,
        _keys: keys,
    }
}

/// The page for the directory `dir`, with `extra` arguments; its stderr too.
fn page_with(dir: &Path, extra: &[&str]) -> (String, String) {
    let out_dir = tempfile::tempdir().unwrap();
    let path = out_dir.path().join("report.html");
    let mut args = vec![
        "report",
        "html",
        "-o",
        path.to_str().unwrap(),
        "--as-of",
        AS_OF_ARG,
        "--from",
        "30d",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = llm_audit(&args);
    ok(&out);
    (
        std::fs::read_to_string(&path).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn page(dir: &Path) -> String {
    page_with(dir, &[]).0
}

/// The part of the page from the element with `id` to the next element with an id.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id}"));
    let rest = &page[start..];
    let end = rest[1..].find(" id=\"").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// The cells of the table rows of `html`, as text (tags removed, entities as they are).
fn rows(html: &str) -> Vec<Vec<String>> {
    html.split("<tr>")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let cell = &cell[cell.find('>').unwrap() + 1..];
                    cell[..cell.find("</td>").unwrap()].to_owned()
                })
                .collect()
        })
        .filter(|cells: &Vec<String>| !cells.is_empty())
        .collect()
}

/// The text of every SVG `<text>` element of `html`, its lines (tspans) put together.
fn svg_texts(html: &str) -> Vec<String> {
    html.split("<text")
        .skip(1)
        .map(|t| {
            let t = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            let mut text = String::new();
            let mut in_tag = false;
            for c in t.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// The ticks of the value axis of a chart: texts of its grid labels, as numbers.
fn ticks(figure: &str, prefix: &str, suffix: &str) -> Vec<Decimal> {
    let texts: Vec<String> = figure
        .split("<text")
        .skip(1)
        .filter(|t| t[..t.find('>').unwrap()].contains("class=\"axis tick\""))
        .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].to_owned())
        .collect();
    assert!(!texts.is_empty(), "no tick labels");
    let found: Vec<Decimal> = texts
        .iter()
        .filter(|t| *t == "0" || (t.starts_with(prefix) && t.ends_with(suffix)))
        .filter_map(|t| {
            t.trim_start_matches(prefix)
                .trim_end_matches(suffix)
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(found.len(), texts.len(), "every tick a number: {texts:?}");
    found
}

/// Ticks from 0, evenly apart by 1, 2 or 5 times a power of ten.
#[track_caller]
fn assert_round(ticks: &[Decimal]) {
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert_eq!(ticks[0], Decimal::ZERO, "{ticks:?}");
    let step = ticks[1];
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(
            *t,
            step * Decimal::from(i as u64),
            "evenly apart: {ticks:?}"
        );
    }
    let mut mantissa = step.normalize();
    while mantissa >= Decimal::TEN {
        mantissa /= Decimal::TEN;
    }
    while mantissa < Decimal::ONE {
        mantissa *= Decimal::TEN;
    }
    assert!(
        [Decimal::ONE, Decimal::TWO, Decimal::from(5)].contains(&mantissa.normalize()),
        "a round step: {ticks:?}"
    );
}

#[test]
fn failures_are_listed_by_type_and_model_with_the_latest_message() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    let failures = section(&page, "failures");
    let rows = rows(failures);
    assert_eq!(
        rows[0][..3],
        ["rate_limit_error", "3", "gpt-4o (3)"],
        "most frequent first: {rows:?}"
    );
    assert_eq!(rows[0][3], "2026-11-19 01:00:00", "first, with the year");
    assert_eq!(rows[0][4], "2026-11-19 03:00:00", "latest, with the year");
    assert!(failures.contains("<th>first (UTC)</th>"), "{failures}");
    assert_eq!(rows[0][5], "slow down (third)", "the latest message");
    let timeout = rows
        .iter()
        .find(|r| r[0] == "timeout")
        .expect("timeout row");
    assert_eq!(timeout[1], "1");
    assert_eq!(
        timeout[2],
        format!("{LONG_MODEL} (1)"),
        "the whole model name"
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        failures.contains("5 of 50 calls failed"),
        "the dropped-entries event is not a call: {failures}"
    );
    // The pipeline's event is not a failed call: it has its own section, with its count.
    assert!(!failures.contains("queue_overflow"), "{failures}");
    let events = section(&page, "trail-events");
    assert!(
        events.contains("7 audit entries were dropped by the writers"),
        "{events}"
    );
    assert!(events.contains("llm_audit.entries_dropped"), "{events}");
    let cards = &page[page.find("class=\"cards\"").unwrap()..];
    assert!(cards.contains("· 5 failed</div>"), "failed calls on a card");
}

#[test]
fn long_and_hostile_messages_are_bounded_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    let failures = section(&page, "failures");
    let rows = rows(failures);
    let timeout = rows.iter().find(|r| r[0] == "timeout").unwrap();
    assert!(
        timeout[5].chars().count() < 400 && timeout[5].ends_with("(715 more characters)"),
        "bounded, saying how much is left out: {}",
        timeout[5]
    );
    // No markup from the log, in any section.
    for raw in [
        "<script>alert",
        "<img",
        "onerror=alert(1)>",
        "\"quoted\"",
        "'single'",
        "\u{1b}",
        "\u{202e}",
    ] {
        assert!(!page.contains(raw), "{raw:?} reached the page");
    }
    let hostile = rows
        .iter()
        .find(|r| r[0].contains("script"))
        .expect("the hostile row");
    assert_eq!(
        hostile[0],
        "&lt;script&gt;alert(&#39;type&#39;)&lt;/script&gt;"
    );
    assert_eq!(
        hostile[5],
        "&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot; &amp; &#39;single&#39; \
         \\u{1b}[31mred\\u{1b}[0m \\u{202e}fdp.exe",
        "controls shown as escapes, not acted upon"
    );
    // Nothing that a browser would fetch or run.
    let lower = page.to_ascii_lowercase();
    for forbidden in [
        "<script", "<img", "<link", "src=\"", "href=", "url(", "@import", "//",
    ] {
        assert!(!lower.contains(forbidden), "{forbidden}");
    }
}

#[test]
fn blocked_calls_and_redactions_are_counted_by_reason_and_type() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    let blocked = section(&page, "blocked");
    assert!(blocked.contains("3 calls were blocked"), "{blocked}");
    let rows_b = rows(blocked);
    assert_eq!(
        rows_b[0][..3],
        ["credit card number in the prompt", "2", "gpt-4o (2)"],
        "{rows_b:?}"
    );
    assert_eq!(
        rows_b[1][..3],
        ["prompt injection suspected", "1", "gpt-4o (1)"]
    );
    let redactions = section(&page, "redactions");
    assert!(
        redactions.contains("4 value(s) redacted before sending, in 2 of 50 calls"),
        "{redactions}"
    );
    assert_eq!(
        rows(redactions),
        [["email", "3", "2"], ["credit_card", "1", "1"]]
    );
    let cards = &page[page.find("class=\"cards\"").unwrap()..page.find("</div></div>").unwrap()];
    assert!(cards.contains("<b>3</b>blocked"), "{cards}");
    assert!(
        cards.contains("<b>4</b>values redacted in 2 calls"),
        "{cards}"
    );
}

#[test]
fn unpriced_calls_are_listed_with_their_reason_and_never_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    let unpriced = section(&page, "unpriced");
    assert!(
        unpriced.contains("5 of 50 calls have no cost"),
        "{unpriced}"
    );
    let rows = rows(unpriced);
    assert_eq!(
        rows[0][..3],
        ["gpt-4o", "no usage recorded", "3"],
        "{rows:?}"
    );
    assert_eq!(
        rows[1][..3],
        ["mystery-model", "unknown model mystery-model", "2"]
    );
    let models = section(&page, "cost-per-model");
    assert!(
        models.contains("<tr><td>mystery-model</td><td>2</td><td>unknown</td><td>2</td></tr>"),
        "{models}"
    );
    assert!(!page.contains(">$0<"), "no cost shown as $0");
}

#[test]
fn dates_carry_their_year_and_axis_ticks_are_round() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    let meta = &page[page.find("class=\"meta\"").unwrap()..];
    assert!(
        meta.starts_with("class=\"meta\">since 2026-10-21 12:00:00 UTC"),
        "{}",
        &meta[..80]
    );
    let days = section(&page, "cost-per-day");
    let labels: Vec<String> = svg_texts(days)
        .into_iter()
        .filter(|t| t.starts_with("20"))
        .collect();
    assert_eq!(
        labels,
        [
            "2026-11-16",
            "2026-11-17",
            "2026-11-18",
            "2026-11-19",
            "2026-11-20"
        ],
        "every day, with its year"
    );
    for id in ["cost-per-day", "tokens-per-day"] {
        assert!(
            !svg_texts(section(&page, id))
                .iter()
                .any(|t| t.len() == 5 && t.as_bytes()[2] == b'-'),
            "{id}: a day without its year"
        );
    }
    let cost = ticks(days, "$", "");
    assert_round(&cost);
    assert_eq!(
        cost,
        [0, 5, 10, 15].map(|c| Decimal::new(c, 2)),
        "the costliest day is $0.111105"
    );
    assert_round(&ticks(section(&page, "error-rate-per-model"), "", "%"));
    assert_round(&ticks(section(&page, "latency-per-model"), "", " ms"));
    assert_round(&ticks(section(&page, "top-users"), "$", ""));
    // Tooltips keep every digit.
    assert!(
        days.contains("2026-11-18 · gpt-4o: $0.04938<"),
        "the exact cost of the day"
    );
}

#[test]
fn model_names_are_never_cut() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    for id in ["latency-per-model", "error-rate-per-model"] {
        let figure = section(&page, id);
        assert!(
            svg_texts(figure).iter().any(|t| t == LONG_MODEL),
            "{id}: the whole name as a label: {:?}",
            svg_texts(figure)
        );
    }
    let legend = section(&page, "cost-per-day");
    assert!(
        legend.contains(&format!("</i>{LONG_MODEL}</li>")),
        "the whole name in the legend"
    );
    assert!(section(&page, "cost-per-model").contains(&format!("<td>{LONG_MODEL}</td>")));
    let charts = &page
        [page.find("id=\"cost-per-day\"").unwrap()..page.find("id=\"cost-per-model\"").unwrap()];
    assert!(!charts.contains('…'), "nothing cut in the charts");
}

#[cfg(unix)]
#[test]
fn the_page_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("report.html");
    let run = || {
        ok(&llm_audit(&[
            "report",
            "html",
            "-o",
            path.to_str().unwrap(),
            "--as-of",
            AS_OF_ARG,
            "--dir",
            dir.path().to_str().unwrap(),
        ]))
    };
    let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    run();
    assert_eq!(mode(), 0o600, "a new page");
    std::fs::write(&path, "an old, longer page ".repeat(10_000)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    run();
    assert_eq!(mode(), 0o600, "a page written over");
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(
        page.ends_with("</html>\n") && !page.contains("an old"),
        "replaced whole"
    );
    // A link planted where the page goes is not followed.
    let target = out.path().join("elsewhere");
    std::fs::write(&target, "keep").unwrap();
    let link = out.path().join("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let refused = llm_audit(&[
        "report",
        "html",
        "-o",
        link.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}

/// Whether the page calls the trail intact anywhere.
fn says_intact(page: &str) -> bool {
    let body = &page[page.find("<body>").unwrap()..];
    body.contains("intact")
}

/// The integrity banner: its class and headline.
fn integrity(page: &str) -> (&str, &str) {
    let s = section(page, "integrity");
    let class = s["id=\"integrity\" class=\"integrity ".len()..]
        .split('"')
        .next()
        .unwrap();
    let h = &s[s.find("<h2>").unwrap() + 4..s.find("</h2>").unwrap()];
    (class, h)
}

#[test]
fn an_unchained_log_is_not_tamper_evident_and_a_key_does_not_make_it_intact() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let page = page(dir.path());
    assert_eq!(integrity(&page), ("none", "Integrity: not tamper-evident"));
    assert!(!says_intact(&page), "never intact unchecked");
    // With a key: verified, and found wanting.
    let keys = tempfile::tempdir().unwrap();
    let public = keys.path().join("k.pub");
    let key = SigningKey::generate().unwrap();
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let (page, stderr) = page_with(dir.path(), &["--public-key", public.to_str().unwrap()]);
    let (class, headline) = integrity(&page);
    assert_eq!(class, "problems", "{headline}");
    let banner = section(&page, "integrity");
    assert!(banner.contains("There is no signed checkpoint"), "{banner}");
    assert!(rows(banner).iter().any(|r| r[0] == "unchained"), "{banner}");
    assert!(stderr.contains("llm-audit: verify: "), "{stderr}");
}

#[test]
fn a_chained_log_is_not_verified_without_a_key_and_intact_with_it() {
    let log = chained(&dataset());
    let page = page(log.dir.path());
    assert_eq!(
        integrity(&page),
        ("unverified", "Integrity: not verified: no key given")
    );
    assert!(!says_intact(&page), "never intact unchecked");
    assert!(section(&page, "integrity").contains("--public-key FILE"));

    let (page, stderr) = page_with(
        log.dir.path(),
        &["--public-key", log.public.to_str().unwrap()],
    );
    assert_eq!(integrity(&page), ("intact", "Integrity: intact"));
    let banner = section(&page, "integrity");
    let key_id = log.key.verifying_key().key_id().to_owned();
    assert!(
        banner.contains(&format!("public key <code>{key_id}</code>")),
        "which key: {banner}"
    );
    assert!(banner.contains(log.public.to_str().unwrap()), "{banner}");
    assert!(
        banner.contains("51 entries in 1 stream(s), 2 checkpoint(s): intact"),
        "verify's own summary: {banner}"
    );
    assert!(stderr.contains("llm-audit: verify: 51 entries"), "{stderr}");
    let cards = &page[page.find("class=\"cards\"").unwrap()..];
    assert!(cards.starts_with("class=\"cards\"><div class=\"intact\"><b>intact</b>"));
}

#[test]
fn a_tampered_log_shows_its_problems_by_kind() {
    let log = chained(&dataset());
    // One entry's cost lowered, another removed.
    let day = log.dir.path().join("audit_2026-11-19.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&day)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut v: Value = serde_json::from_str(&lines[2]).unwrap();
    v["cost_usd"] = Value::from("0.000001");
    lines[2] = serde_json::to_string(&v).unwrap();
    lines.remove(5);
    std::fs::write(
        &day,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();

    let (page, _) = page_with(
        log.dir.path(),
        &["--public-key", log.public.to_str().unwrap()],
    );
    let (class, headline) = integrity(&page);
    assert_eq!(class, "problems");
    assert!(headline.ends_with("problem(s) found"), "{headline}");
    let banner = section(&page, "integrity");
    let kinds: Vec<Vec<String>> = rows(banner).into_iter().filter(|r| r.len() == 3).collect();
    for kind in ["modified", "deleted"] {
        assert!(
            kinds.iter().any(|r| r[0] == kind && r[1] != "0"),
            "{kind}: {kinds:?}"
        );
    }
    assert!(!page.contains("class=\"intact\""), "never green");

    // The right log, the wrong key.
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("other.pub");
    std::fs::write(
        &wrong,
        SigningKey::generate()
            .unwrap()
            .verifying_key()
            .to_public_text(),
    )
    .unwrap();
    let honest = chained(&dataset());
    let (page, _) = page_with(
        honest.dir.path(),
        &["--public-key", wrong.to_str().unwrap()],
    );
    assert_eq!(integrity(&page).0, "problems");
    assert!(rows(section(&page, "integrity"))
        .iter()
        .any(|r| r[0] == "bad signature"));
}

#[test]
fn a_crashed_writer_leaves_its_tail_unproven() {
    // Entries of today: the repair entry goes into the file of the day it is made.
    if OffsetDateTime::now_utc().time() > time::macros::time!(23:59:30) {
        std::thread::sleep(std::time::Duration::from_secs(31));
    }
    let now = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let sink = || {
        JsonlSink::builder(dir.path())
            .chain(key.clone())
            .checkpoint_every(5)
            .build()
            .unwrap()
    };
    let mut crashed = sink();
    let entries: Vec<AuditEntry> = (0..7)
        .map(|i| call(now + Duration::seconds(i), "gpt-4o"))
        .collect();
    crashed.write_batch(&entries[..5]).unwrap();
    crashed.write_batch(&entries[5..]).unwrap();
    drop(crashed); // no final checkpoint: 2 entries covered by none
    let mut next = sink();
    next.write_batch(&[call(now + Duration::seconds(30), "gpt-4o")])
        .unwrap();
    next.shutdown().unwrap();
    let path = dir.path().join("page.html");
    ok(&llm_audit(&[
        "report",
        "html",
        "-o",
        path.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ]));
    let page = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        integrity(&page),
        (
            "unproven",
            "Integrity: not proven: 2 entries covered by no signed checkpoint"
        )
    );
    let banner = section(&page, "integrity");
    assert!(
        rows(banner)
            .iter()
            .any(|r| r.len() == 4 && r[2] == "unsigned" && r[1] == "5"),
        "the range, from its first seq: {banner}"
    );
}

#[test]
fn a_key_that_cannot_be_read_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &dataset());
    let out_path = dir.path().join("page.html");
    let out = llm_audit(&[
        "report",
        "html",
        "-o",
        out_path.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--public-key",
        dir.path().join("nope.pub").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--public-key"), "{err}");
    assert!(!out_path.exists(), "no page");
}

/// PostgreSQL: the same audit sections, and `verify_postgres`'s verdict (skipped when no server
/// is reachable; see `support::pg`).
#[test]
fn postgres_gives_the_same_audit_sections_and_verdict() {
    let Some(schema) = pg::Schema::create("llm_audit_report_html") else {
        return;
    };
    let entries = dataset();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let mut sink = PostgresSink::builder(&schema.url())
        .with_spill_dir(keys.path().join("spill"))
        .chain(key)
        .checkpoint_every(10)
        .build()
        .unwrap();
    sink.write_batch(&entries).unwrap();
    sink.shutdown().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &entries);
    let from_dir = page(dir.path());
    let render = |extra: &[&str]| {
        let path = keys.path().join("page.html");
        let url = schema.url();
        let mut args = vec![
            "report",
            "html",
            "-o",
            path.to_str().unwrap(),
            "--as-of",
            AS_OF_ARG,
            "--from",
            "30d",
            "--postgres",
            &url,
        ];
        args.extend(extra);
        ok(&llm_audit(&args));
        std::fs::read_to_string(&path).unwrap()
    };
    let from_pg = render(&[]);
    for id in [
        "failures",
        "blocked",
        "redactions",
        "unpriced",
        "trail-events",
    ] {
        assert_eq!(section(&from_pg, id), section(&from_dir, id), "{id}");
    }
    assert_eq!(
        integrity(&from_pg),
        ("unverified", "Integrity: not verified: no key given")
    );
    let verified = render(&["--public-key", public.to_str().unwrap()]);
    assert_eq!(integrity(&verified), ("intact", "Integrity: intact"));
}
