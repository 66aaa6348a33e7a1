//! Every option that takes a time or a span (`--from`, `--to`, `--as-of`, `--window`,
//! `--baseline`, `retention apply --as-of`) goes through one parser: RFC 3339, a date, or a span
//! back from now. However large a value, it is an error that names the option and the value
//! (exit 1), never a panic (exit 101).

use proptest::prelude::*;
use time::macros::datetime;
use time::OffsetDateTime;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, llm_audit, ok, refused, write_jsonl, AS_OF_ARG};

/// The parser itself, as the CLI compiles it.
#[path = "../src/when.rs"]
mod when;

#[test]
fn huge_times_are_an_error_naming_the_option_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &[call("alice", 1, None)]);
    let d = dir.path().to_str().unwrap();
    let huge = "99999999999999d";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["query", "--from", huge], "--from", huge),
        (vec!["query", "--to", "9999-12-31"], "--to", "9999-12-31"),
        (vec!["query", "--to", huge], "--to", huge),
        (vec!["query", "--as-of", huge], "--as-of", huge),
        (
            vec!["query", "--from", "99999999999999999999999w"],
            "--from",
            "99999999999999999999999w",
        ),
        (
            vec!["query", "--from", "0000-01-01"],
            "--from",
            "0000-01-01",
        ),
        (vec!["report", "cost", "--from", huge], "--from", huge),
        (
            vec!["report", "usage", "--to", "9999-12-31"],
            "--to",
            "9999-12-31",
        ),
        (
            vec!["report", "anomalies", "--window", huge],
            "--window",
            huge,
        ),
        (
            vec!["report", "anomalies", "--baseline", huge],
            "--baseline",
            huge,
        ),
        // Not too long a span by itself, but it reaches back before year 1 from now.
        (
            vec!["report", "anomalies", "--window", "3000000d"],
            "--window",
            "3000000d",
        ),
        (vec!["report", "html", "--window", huge], "--window", huge),
        (
            vec!["reprice", "--prices", "builtin", "--from", huge],
            "--from",
            huge,
        ),
        (
            vec![
                "retention",
                "apply",
                "--policy",
                "standard",
                "--dry-run",
                "--as-of",
                huge,
            ],
            "--as-of",
            huge,
        ),
    ];
    for (mut args, option, value) in cases {
        args.extend(["--dir", d]);
        let err = refused(&llm_audit(&args));
        assert!(
            err.contains(&format!("{option}: `{value}` is out of range")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn retention_takes_a_date_and_a_span_as_the_other_commands_do() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), &[call("alice", 1, None)]);
    let d = dir.path().to_str().unwrap();
    for as_of in ["2029-01-01", "2029-01-01T00:00:00Z", "7d"] {
        let out = ok(&llm_audit(&[
            "retention",
            "apply",
            "--policy",
            "standard",
            "--dry-run",
            "--as-of",
            as_of,
            "--dir",
            d,
        ]));
        assert!(out.contains("would remove"), "{as_of}: {out}");
    }
    // More than two years after the entry, the standard policy (two years) removes it.
    let out = ok(&llm_audit(&[
        "retention",
        "apply",
        "--policy",
        "standard",
        "--dry-run",
        "--as-of",
        "2029-01-01",
        "--dir",
        d,
    ]));
    assert!(out.contains("would remove 1 entries"), "{out}");
    let err = refused(&llm_audit(&[
        "retention",
        "apply",
        "--policy",
        "standard",
        "--dry-run",
        "--as-of",
        "next year",
        "--dir",
        d,
    ]));
    assert!(err.contains("--as-of: `next year` is not a time"), "{err}");
}

#[test]
fn a_date_and_a_span_mean_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // 1 h and 30 h before the --as-of: one on 2026-11-20, one on 2026-11-19.
    write_jsonl(
        dir.path(),
        &[call("recent", 1, None), call("older", 30, None)],
    );
    let d = dir.path().to_str().unwrap();
    let users = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["query", "--as-of", AS_OF_ARG, "--dir", d, "--format", "csv"];
        all.extend(args);
        ok(&llm_audit(&all))
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().to_owned())
            .collect()
    };
    assert_eq!(users(&["--from", "2026-11-20"]), ["recent"]);
    assert_eq!(users(&["--from", "12h"]), ["recent"]);
    assert_eq!(
        users(&["--from", "2026-11-19T00:00:00Z", "--to", "2026-11-19"]),
        ["older"]
    );
    assert_eq!(users(&["--from", "2d", "--to", "1440m"]), ["older"]);
}

/// What the parser gives back for any input: an error, or a time within the range.
fn check_time(value: &str, end_of_day: bool) {
    let now = datetime!(2026-11-24 12:00 UTC);
    match when::time("--from", value, now, end_of_day) {
        Ok(at) => assert!(
            (when::EARLIEST..=when::LATEST).contains(&at),
            "{value:?} gave {at}"
        ),
        Err(e) => assert!(e.starts_with("--from: `"), "{value:?}: {e}"),
    }
    for at in [now, when::EARLIEST, when::LATEST] {
        if let Ok(span) = when::span("--window", value) {
            assert!(span.is_positive(), "{value:?}");
            if let Ok(start) = when::back("--window", value, at, span) {
                assert!(start >= when::EARLIEST && start < at, "{value:?} from {at}");
            }
        }
    }
    let _: Result<OffsetDateTime, String> = when::time("--to", value, when::LATEST, true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_text_makes_the_parser_panic(value in "\\PC{0,40}") {
        check_time(&value, false);
        check_time(&value, true);
    }

    #[test]
    fn no_number_of_any_unit_makes_it_panic(
        digits in "[0-9]{1,40}",
        unit in "[a-z]{0,2}",
        space in "[ \t]{0,2}",
    ) {
        check_time(&format!("{space}{digits}{unit}{space}"), false);
    }

    #[test]
    fn no_date_or_date_time_makes_it_panic(
        year in 0u32..=99_999,
        month in 0u8..=13,
        day in 0u8..=32,
        hour in 0u8..=25,
        minute in 0u8..=61,
        second in 0u8..=61,
        fraction in "(\\.[0-9]{1,12})?",
        offset in "(Z|[+-][0-9]{2}:[0-9]{2})",
    ) {
        check_time(&format!("{year:04}-{month:02}-{day:02}"), false);
        check_time(&format!("{year:04}-{month:02}-{day:02}"), true);
        check_time(
            &format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{offset}"),
            true,
        );
    }
}
