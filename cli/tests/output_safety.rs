//! What the logs hold cannot act on the reader's terminal or spreadsheet: control characters
//! (ANSI escapes, other C0 and C1 controls, bidirectional overrides) are escaped in every
//! human-readable output (tables, warnings and notes on stderr), and CSV text cells that a
//! spreadsheet would take for a formula start with `'`. Numbers stay numbers.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rust_decimal::Decimal;

#[path = "support/pg.rs"]
mod pg;
#[path = "support/cli.rs"]
mod support;
use support::{call, csv_rows, llm_audit, ok, pg_with, stderr, write_jsonl, AS_OF_ARG};

const ESC: char = '\u{1b}';

/// A user id that paints the terminal red, sets its title and reverses the line after it.
const HOSTILE: &str = "eve\u{1b}[31mRED\u{1b}]0;pwned\u{7}\u{9b}2J\u{202e}gnp.exe";
/// The same, as the human-readable outputs show it.
const SHOWN: &str = r"eve\u{1b}[31mRED\u{1b}]0;pwned\u{7}\u{9b}2J\u{202e}gnp.exe";

/// No character of `text` may act on a terminal.
fn assert_inert(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?} in {text:?}");
}

fn hostile_log() -> (tempfile::TempDir, Vec<tracing_llm_audit::AuditEntry>) {
    let dir = tempfile::tempdir().unwrap();
    let mut evil = call(HOSTILE, 1, Some(Decimal::new(5, 3)));
    evil.model = Some(format!("gpt-4o{ESC}[2J"));
    evil.error_type = Some("\u{202e}rorre".to_owned());
    let entries = vec![evil, call("alice", 2, Some(Decimal::new(1, 3)))];
    write_jsonl(dir.path(), &entries);
    // A line that is no entry, whose decoding error quotes what it holds.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut text = std::fs::read_to_string(&file).unwrap();
    let mut bad: serde_json::Value = serde_json::to_value(&entries[1]).unwrap();
    bad["status"] = format!("{ESC}[2J{ESC}[31mfake").into();
    text.push_str(&format!("{bad}\n"));
    std::fs::write(&file, text).unwrap();
    (dir, entries)
}

#[test]
fn tables_warnings_and_notes_escape_control_characters() {
    let (dir, _) = hostile_log();
    let d = dir.path().to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["query"],
        vec!["report", "cost", "--by", "user,day"],
        vec!["report", "usage", "--by", "user,model"],
        vec!["report", "errors", "--by", "user"],
        vec!["report", "latency", "--by", "user"],
        vec!["reprice", "--prices", "builtin", "--by", "user,model"],
    ];
    for args in runs {
        let mut all = args.clone();
        all.extend(["--as-of", AS_OF_ARG, "--dir", d, "--format", "table"]);
        let out = llm_audit(&all);
        let table = ok(&out);
        assert_inert(&table, &format!("{args:?} stdout"));
        assert_inert(&stderr(&out), &format!("{args:?} stderr"));
        assert!(table.contains(r"\u{1b}"), "{args:?}: {table}");
        // The warning about the bad line quotes it, escaped.
        assert!(
            stderr(&out).contains(r"\u{1b}[2J\u{1b}[31mfake"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The user id whole, in the listing and in the report by user.
    for args in [&["query"][..], &["report", "cost", "--by", "user"]] {
        let mut all = args.to_vec();
        all.extend(["--as-of", AS_OF_ARG, "--dir", d, "--format", "table"]);
        let table = ok(&llm_audit(&all));
        assert!(table.contains(SHOWN), "{args:?}: {table}");
    }
    // An error that quotes what it was given.
    let err = stderr(&llm_audit(&[
        "query",
        "--user",
        "x",
        "--from",
        "\u{1b}[2J",
        "--dir",
        d,
    ]));
    assert!(err.contains(r"`\u{1b}[2J` is not a time"), "{err}");
    assert_inert(&err, "an error");
}

#[test]
fn the_json_of_show_is_the_same_value_with_nothing_that_acts_on_a_terminal() {
    let (dir, entries) = hostile_log();
    let id = entries[0].request_id.to_string();
    let out = llm_audit(&["show", &id, "--dir", dir.path().to_str().unwrap()]);
    let text = ok(&out);
    assert_inert(&text, "show");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["user_id"], HOSTILE);
}

#[test]
fn tail_escapes_what_it_prints() {
    let (dir, _) = hostile_log();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args([
            "tail",
            "--from-start",
            "--format",
            "table",
            "--poll-ms",
            "20",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = out_tx.send(("out", line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(("err", line));
        }
    });
    let mut lines = Vec::new();
    while lines.len() < 4 {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_eq!(lines.len(), 4, "a header, two entries and a warning: {all}");
    assert_inert(&all, "tail");
    assert!(all.contains(SHOWN), "{all}");
    assert!(all.contains(r"\u{1b}[2J\u{1b}[31mfake"), "{all}");
}

#[test]
fn csv_text_cannot_be_a_formula_and_numbers_stay_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let users = [
        "=1+1",
        "+41",
        "-2",
        "@SUM(A1:A9)",
        "\tTAB",
        "=HYPERLINK(\"http://x\",\"y\")",
    ];
    let entries: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| call(u, i as i64 + 1, Some(Decimal::new(5, 3))))
        .collect();
    write_jsonl(dir.path(), &entries);
    let d = dir.path().to_str().unwrap();
    let cell = |u: &str| -> String {
        let neutral = format!("'{u}");
        match neutral.contains(['"', ',']) {
            true => format!("\"{}\"", neutral.replace('"', "\"\"")),
            false => neutral,
        }
    };
    for args in [
        &["query"][..],
        &["report", "cost", "--by", "user"],
        &["report", "usage", "--by", "user"],
        &["reprice", "--prices", "builtin", "--by", "user"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--as-of", AS_OF_ARG, "--dir", d, "--format", "csv"]);
        let csv = ok(&llm_audit(&all));
        for u in users {
            assert!(csv.contains(&cell(u)), "{args:?}: {u:?} in {csv}");
        }
        for line in csv.lines().skip(1) {
            let first_text = line
                .split(',')
                .find(|c| c.starts_with(['=', '+', '-', '@', '\t']) && c.parse::<f64>().is_err());
            assert!(first_text.is_none(), "{args:?}: {line}");
        }
    }
}

#[test]
fn a_negative_difference_stays_a_number_in_csv() {
    // Stored at $1 each; the built-in table prices these calls at a fraction of a cent, so the
    // difference is negative: a number, not text to neutralise.
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<_> = (0..2)
        .map(|i| call(&format!("-user{i}"), i + 1, Some(Decimal::ONE)))
        .collect();
    write_jsonl(dir.path(), &entries);
    let pg = pg_with("llm_audit_csv", &entries);
    let mut outputs = vec![ok(&llm_audit(&[
        "reprice",
        "--prices",
        "builtin",
        "--by",
        "user",
        "--as-of",
        AS_OF_ARG,
        "--dir",
        dir.path().to_str().unwrap(),
        "--format",
        "csv",
    ]))];
    if let Some(pg) = &pg {
        outputs.push(ok(&llm_audit(&[
            "reprice",
            "--prices",
            "builtin",
            "--by",
            "user",
            "--as-of",
            AS_OF_ARG,
            "--postgres",
            &pg.url(),
            "--format",
            "csv",
        ])));
    }
    for csv in outputs {
        let rows = csv_rows(&csv);
        assert_eq!(rows.len(), 2, "{csv}");
        for row in rows {
            assert!(row["user_id"].starts_with("'-user"), "{csv}");
            let difference = &row["difference"];
            assert!(difference.starts_with("-0.99"), "{csv}");
            assert!(difference.parse::<f64>().is_ok(), "{difference}: {csv}");
        }
    }
}
