//! `llm-audit tail` follows a JSONL directory as entries arrive, line by whole line, and moves
//! on to the next day's file when the sink rotates at midnight.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use time::macros::datetime;
use tracing_llm_audit::AuditEntry;

#[path = "support/pg.rs"]
mod pg;

fn entry(at: time::OffsetDateTime, user: &str) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at;
    e.user_id = Some(user.to_owned());
    e.model = Some("gpt-4o".to_owned());
    e
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
}

fn line(e: &AuditEntry) -> String {
    format!("{}\n", serde_json::to_string(e).unwrap())
}

/// A running `llm-audit tail`; its stdout and stderr lines arrive on channels. Killed when
/// the test ends, passed or not.
struct Tail {
    child: std::process::Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(args: &[&str]) -> Tail {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .arg("tail")
        .args(args)
        .env_remove("LLM_AUDIT_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = |from: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(from).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = lines(Box::new(child.stdout.take().unwrap()));
    let err = lines(Box::new(child.stderr.take().unwrap()));
    Tail { child, out, err }
}

#[test]
fn tail_follows_new_entries_across_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let monday = dir.path().join("audit_2026-11-23.jsonl");
    let tuesday = dir.path().join("audit_2026-11-24.jsonl");
    let old = entry(datetime!(2026-11-23 23:58 UTC), "old");
    append(&monday, &line(&old));

    let child = tail(&[
        "--from-start",
        "--poll-ms",
        "20",
        "--format",
        "jsonl",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let rx = &child.out;
    let next = || -> AuditEntry {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tail printed nothing within 20 s");
        serde_json::from_str(&l).unwrap()
    };
    assert_eq!(next(), old, "--from-start prints what is there");

    // A line written in two pieces is printed once, whole, when its newline arrives.
    let late = entry(datetime!(2026-11-23 23:59:30 UTC), "late");
    let text = line(&late);
    let (a, b) = text.split_at(text.len() / 2);
    append(&monday, a);
    std::thread::sleep(Duration::from_millis(100));
    append(&monday, b);
    assert_eq!(next(), late);

    // Midnight: the sink starts the next file; the tail moves on to it.
    let first = entry(datetime!(2026-11-24 00:00:01 UTC), "first");
    append(&tuesday, &line(&first));
    assert_eq!(next(), first);
    append(&tuesday, "this is not an entry\n");
    let second = entry(datetime!(2026-11-24 00:00:02 UTC), "second");
    append(&tuesday, &line(&second));
    assert_eq!(next(), second, "a bad line is skipped, not the end");
    let warning = child.err.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        warning.contains(&format!("{}:2: not an audit entry", tuesday.display())),
        "{warning}"
    );
    // A call that started before midnight and ended after it lands in Monday's file late.
    let straggler = entry(datetime!(2026-11-23 23:59:59 UTC), "straggler");
    append(&monday, &line(&straggler));
    assert_eq!(
        next(),
        straggler,
        "the previous day's file is still followed"
    );
    drop(child);
}

#[test]
fn tail_started_mid_line_skips_the_rest_of_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let today = dir.path().join("audit_2026-11-24.jsonl");
    let first = line(&entry(datetime!(2026-11-24 08:00 UTC), "first"));
    let (a, b) = first.split_at(40);
    append(&today, a);
    let mut child = tail(&[
        "--strict",
        "--poll-ms",
        "20",
        "--format",
        "jsonl",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let rx = &child.out;
    std::thread::sleep(Duration::from_millis(300));
    append(&today, b);
    let second = entry(datetime!(2026-11-24 08:01 UTC), "second");
    append(&today, &line(&second));
    let got: AuditEntry = serde_json::from_str(
        &rx.recv_timeout(Duration::from_secs(20))
            .expect("nothing printed"),
    )
    .unwrap();
    assert_eq!(
        got, second,
        "the line it started inside is not half-read (and --strict did not stop it)"
    );
    assert!(child.child.try_wait().unwrap().is_none(), "still following");
    drop(child);
}

#[test]
fn tail_prints_only_new_entries_and_applies_filters() {
    let dir = tempfile::tempdir().unwrap();
    let today = dir.path().join("audit_2026-11-24.jsonl");
    append(
        &today,
        &line(&entry(datetime!(2026-11-24 08:00 UTC), "old")),
    );
    let child = tail(&[
        "--user",
        "bob",
        "--poll-ms",
        "20",
        "--format",
        "jsonl",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let rx = &child.out;
    // Keep writing until the tail has seen one of bob's entries; alice's never show.
    let mut printed = None;
    for i in 0..200 {
        append(
            &today,
            &line(&entry(datetime!(2026-11-24 09:00 UTC), "alice")),
        );
        append(
            &today,
            &line(&entry(datetime!(2026-11-24 09:00 UTC), "bob")),
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(50 + i)) {
            printed = Some(l);
            break;
        }
    }
    let printed: AuditEntry =
        serde_json::from_str(&printed.expect("tail printed nothing")).unwrap();
    assert_eq!(printed.user_id.as_deref(), Some("bob"));
    std::thread::sleep(Duration::from_millis(200));
    while let Ok(l) = rx.try_recv() {
        let e: AuditEntry = serde_json::from_str(&l).unwrap();
        assert_eq!(
            e.user_id.as_deref(),
            Some("bob"),
            "only bob, and never the old entry"
        );
    }
    drop(child);
}

#[test]
fn tail_follows_the_postgresql_table() {
    let Some(schema) = pg::Schema::create("llm_audit_tail") else {
        return;
    };
    let url = schema.url();
    let spill = tempfile::tempdir().unwrap();
    let mut sink = tracing_llm_audit::sink::postgres::PostgresSink::builder(&url)
        .with_spill_dir(spill.path())
        .build()
        .unwrap();
    use tracing_llm_audit::AuditSink;
    let now = time::OffsetDateTime::now_utc();
    sink.write_batch(&[entry(now - time::Duration::seconds(30), "before")])
        .unwrap();
    let child = tail(&["--poll-ms", "50", "--format", "jsonl", "--postgres", &url]);
    let rx = &child.out;
    // Calls that start after the tail did, committed in two batches, one of them late.
    let later = now + time::Duration::seconds(5);
    let batch1 = [entry(later, "a"), entry(later, "b")];
    let batch2 = [entry(later + time::Duration::seconds(1), "c")];
    sink.write_batch(&batch1).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sink.write_batch(&batch2).unwrap();
    let mut users = Vec::new();
    for _ in 0..3 {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tail printed nothing");
        let e: AuditEntry = serde_json::from_str(&l).unwrap();
        users.push(e.user_id.unwrap());
    }
    users.sort();
    assert_eq!(
        users,
        ["a", "b", "c"],
        "each once, and not the entry from before"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "nothing twice");
    sink.shutdown().unwrap();
    drop(child);
}

/// A line longer than any a writer writes (a file planted without newlines) is skipped to its
/// end with a warning, not gathered whole: the entry after it is printed. Before, `tail` read
/// it into memory whole, whatever its length.
#[test]
fn a_line_longer_than_a_writer_writes_is_skipped_unread() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("audit_2026-11-23.jsonl");
    {
        let mut f = std::fs::File::create(&day).unwrap();
        let mib = vec![b'x'; 1 << 20];
        for _ in 0..70 {
            f.write_all(&mib).unwrap();
        }
        f.write_all(b"\n").unwrap();
    }
    let after = entry(datetime!(2026-11-23 10:00 UTC), "after");
    append(&day, &line(&after));
    let child = tail(&[
        "--from-start",
        "--poll-ms",
        "20",
        "--format",
        "jsonl",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    let printed = child
        .out
        .recv_timeout(Duration::from_secs(30))
        .expect("tail printed nothing within 30 s");
    assert_eq!(serde_json::from_str::<AuditEntry>(&printed).unwrap(), after);
    let warning = child.err.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        warning.contains("64 MiB") && warning.contains(":1:"),
        "{warning}"
    );
}

#[test]
fn a_table_starts_with_its_header_and_machine_formats_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let today = dir.path().join("audit_2026-11-24.jsonl");
    let mut alice = entry(datetime!(2026-11-24 08:00 UTC), "alice");
    alice.input_tokens = Some(1234);
    alice.cost_usd = Some(rust_decimal::Decimal::new(5, 3));
    append(&today, &line(&alice));
    let d = dir.path().to_str().unwrap();
    let first_two = |format: &str| -> (String, String) {
        let child = tail(&[
            "--from-start",
            "--poll-ms",
            "20",
            "--format",
            format,
            "--dir",
            d,
        ]);
        let next = || {
            child
                .out
                .recv_timeout(Duration::from_secs(20))
                .expect("tail printed nothing within 20 s")
        };
        (next(), next())
    };

    let (header, row) = first_two("table");
    assert!(header.starts_with("timestamp "), "{header}");
    for column in [
        "request_id",
        "user_id",
        "model",
        "status",
        "cost_usd",
        "error_type",
    ] {
        assert!(header.contains(column), "{column}: {header}");
    }
    // The columns sit under their names: text from where the name starts, numbers up to where
    // it ends.
    let at = |name: &str| header.find(name).unwrap();
    assert_eq!(
        &row[at("user_id")..at("user_id") + 5],
        "alice",
        "{header}\n{row}"
    );
    let end = at("input_tokens") + "input_tokens".len();
    assert_eq!(&row[end - 4..end], "1234", "{header}\n{row}");
    let end = at("cost_usd") + "cost_usd".len();
    assert_eq!(&row[end - 8..end], "0.005000", "{header}\n{row}");

    let (header, _) = first_two("csv");
    assert!(header.starts_with("timestamp,request_id,"), "{header}");
    // JSON lines: entries only.
    let child = tail(&[
        "--from-start",
        "--poll-ms",
        "20",
        "--format",
        "jsonl",
        "--dir",
        d,
    ]);
    let first = child.out.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(serde_json::from_str::<AuditEntry>(&first).unwrap(), alice);
}
