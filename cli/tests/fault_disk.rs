//! Fault suite, disk full: a chained JSONL sink writes until the file size limit
//! (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored, so that `write` fails with `EFBIG` as on a full
//! disk) stops it, then the limit is lifted, as when space returns.
//!
//! The limit is set in a child process (this test binary, started again), so that nothing else
//! in the test run is limited, and needs no privileges. The child:
//! 1. writes with `JsonlSink::write_batch` directly: the error names the file and the cause, it
//!    counts exactly the entries that reached the file as complete lines, and once the limit is
//!    lifted the rest of the batch is written, each entry once;
//! 2. writes through the pipeline (`AuditLayer`, `Overflow::Block`): what the sink could not
//!    write is counted as failed with the sink's error, `emitted == written + failed + dropped`,
//!    and once the limit is lifted every new entry is written.
//!
//! The parent then checks the files against what the child reported and runs
//! `llm-audit verify`, which passes: the line cut short is a fragment, a note, not a problem.

#![cfg(unix)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tracing::Dispatch;
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, FsyncPolicy, HashKey, JsonlSink, LlmSpanExt, Overflow, Usage,
};
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/fault.rs"]
mod fault;

/// The file size limit while the "disk" is full, for the pipeline.
const LIMIT: u64 = 96 * 1024;
/// Entries of the direct write, about 2 KiB each: more than the limit holds.
const DIRECT_ENTRIES: u64 = 100;
/// LLM calls through the pipeline while the disk is full, and after.
const CALLS_FULL: u64 = 400;
const CALLS_AFTER: u64 = 100;
/// Entries written around a shutdown while the disk is full.
const RESTART_ENTRIES: u64 = 15;

const CHILD_DIR: &str = "LLM_AUDIT_FAULT_DISK_DIR";
const CHILD_KEY: &str = "LLM_AUDIT_FAULT_DISK_KEY";
const TEST_NAME: &str = "a_full_disk_is_reported_counted_and_survived";

#[test]
fn a_full_disk_is_reported_counted_and_survived() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        write_into_a_full_disk(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("signing.pub");
    fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let started = std::time::Instant::now();
    let out = fault::child(TEST_NAME)
        .env(CHILD_DIR, dir.path())
        .env(CHILD_KEY, key.to_secret_text().as_str())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the writer failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report "))
        .map(|r| serde_json::from_str(r).unwrap())
        .expect("the writer's report");
    eprintln!("fault_disk: {report}");

    // The direct write: all entries once, in order; the cut line stands alone.
    let direct = read_day_files(&dir.path().join("direct"));
    assert_eq!(
        direct.entries,
        (0..DIRECT_ENTRIES).collect::<Vec<_>>(),
        "every entry of the batch once, in order"
    );
    assert_eq!(direct.fragments, 1, "one line was cut by the full disk");

    // Through the pipeline: the entries it counted as written, and only those.
    let piped = read_day_files(&dir.path().join("pipeline"));
    let written_full = report["written_while_full"].as_u64().unwrap();
    let expected: Vec<u64> = (0..written_full)
        .chain(CALLS_FULL..CALLS_FULL + CALLS_AFTER)
        .collect();
    assert_eq!(
        piped.entries, expected,
        "on disk: the calls written before the disk was full, then every call after"
    );
    assert!(
        piped.fragments <= 1,
        "at most one line was cut (none if the limit fell between two lines)"
    );

    // Stopped while full and started again: every entry once, and the stream repaired.
    let restart = read_day_files(&dir.path().join("restart"));
    assert_eq!(restart.entries, (0..RESTART_ENTRIES).collect::<Vec<_>>());
    assert_eq!(restart.repairs, 1);
    assert_eq!(direct.repairs + piped.repairs, 0);

    // The stream stopped while the disk was full ended without a final checkpoint: not
    // proven after its last one (exit 3), never a problem.
    for (sub, notes, exit) in [
        ("direct", vec!["fragment"; direct.fragments], 0),
        ("pipeline", vec!["fragment"; piped.fragments], 0),
        ("restart", vec!["fragment", "unsigned"], 3),
    ] {
        let (code, mut kinds, output) = fault::verify(&dir.path().join(sub), &public);
        assert_eq!(code, Some(exit), "verify {sub}:\n{output}");
        kinds.sort();
        assert_eq!(kinds, notes, "verify {sub}: {output}");
    }
    eprintln!("fault_disk: {:.1?}", started.elapsed());
}

/// What the day files of a directory hold: the `fault_i` of every entry in order, how many
/// lines are not entries, and how many are repair entries.
struct DayFiles {
    entries: Vec<u64>,
    fragments: usize,
    repairs: usize,
}

fn read_day_files(dir: &Path) -> DayFiles {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("audit_20") && name.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    let mut found = DayFiles {
        entries: Vec::new(),
        fragments: 0,
        repairs: 0,
    };
    for file in files {
        let bytes = fs::read(&file).unwrap();
        assert!(bytes.ends_with(b"\n"), "{} ends mid-line", file.display());
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Value>(line) {
                Ok(entry) if entry["action"] == "llm_audit.repair" => found.repairs += 1,
                Ok(entry) => found.entries.push(fault_index(&entry)),
                Err(_) => found.fragments += 1,
            }
        }
    }
    found
}

/// The index the child gave an entry: in its metadata (direct), or as its input tokens (calls).
fn fault_index(entry: &Value) -> u64 {
    entry["metadata"]["fault_i"]
        .as_u64()
        .or_else(|| entry["input_tokens"].as_u64())
        .unwrap_or_else(|| panic!("an entry the test did not write: {entry}"))
}

/// The child: runs out of "disk" twice, and reports what the pipeline counted.
fn write_into_a_full_disk(dir: &Path) {
    // SAFETY: setting a signal's disposition to "ignore" has no handler to race with.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let key = SigningKey::from_env(CHILD_KEY).unwrap();
    let sink = |sub: &str| {
        JsonlSink::builder(dir.join(sub))
            .fsync(FsyncPolicy::EveryBatch)
            .chain(key.clone())
            .build()
            .unwrap()
    };
    write_directly(sink("direct"));
    let written_while_full = write_through_the_pipeline(sink("pipeline"));
    shut_down_while_full(&dir.join("restart"), &key);
    println!(
        "report {}",
        json!({ "written_while_full": written_while_full })
    );
}

/// An entry of about 2 KiB that the test can tell by `i`.
fn padded_entry(i: u64) -> AuditEntry {
    let mut entry = AuditEntry::new("chat");
    let mut metadata = serde_json::Map::new();
    metadata.insert("fault_i".to_owned(), i.into());
    metadata.insert("padding".to_owned(), "x".repeat(2048).into());
    entry.metadata = Some(metadata);
    entry
}

fn write_directly(mut sink: JsonlSink) {
    let entries: Vec<AuditEntry> = (0..DIRECT_ENTRIES).map(padded_entry).collect();
    let file = sink.file_for(entries[0].timestamp.date());
    // The first entry tells the length of a line: the limit falls in the middle of the 20th
    // line after it.
    sink.write_batch(&entries[..1]).unwrap();
    let line = fs::metadata(&file).unwrap().len();
    let limit = line * 21 + line / 2;
    set_file_size_limit(Some(limit));
    let error = sink.write_batch(&entries[1..]).unwrap_err();
    let accepted = 1 + error.accepted();
    let message = error_chain(&error);
    assert!(
        message.contains(&file.display().to_string()) && message.contains("File too large"),
        "the error names the file and the cause: {message}"
    );
    let on_disk = fs::read(&file).unwrap();
    assert_eq!(on_disk.len() as u64, limit, "written up to the limit");
    assert!(!on_disk.ends_with(b"\n"), "the limit cut a line");
    let complete = on_disk.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        accepted, complete,
        "accepted: the entries on complete lines"
    );
    let error = sink.write_batch(&entries[accepted..]).unwrap_err();
    assert_eq!(error.accepted(), 0, "still full: {}", error_chain(&error));
    set_file_size_limit(None);
    sink.write_batch(&entries[accepted..]).unwrap();
    sink.shutdown().unwrap();
}

/// A writer that stops while the disk is full: its final checkpoint is cut short. The next
/// writer, once there is space again, repairs the stream.
fn shut_down_while_full(dir: &Path, key: &SigningKey) {
    let sink = || {
        JsonlSink::builder(dir)
            .chain(key.clone())
            .checkpoint_every(5)
            .build()
            .unwrap()
    };
    let entries: Vec<AuditEntry> = (0..RESTART_ENTRIES).map(padded_entry).collect();
    let mut first = sink();
    first.write_batch(&entries[..10]).unwrap();
    let checkpoints = dir.join(format!(
        "audit_checkpoints_{}.jsonl",
        first.stream_id().unwrap()
    ));
    set_file_size_limit(Some(fs::metadata(&checkpoints).unwrap().len() + 100));
    let error = first.write_batch(&entries[10..]).unwrap_err();
    assert_eq!(error.accepted(), 0, "{}", error_chain(&error));
    let error = first.shutdown().unwrap_err();
    assert!(
        error_chain(&error).contains(&checkpoints.display().to_string()),
        "the error names the checkpoint file: {}",
        error_chain(&error)
    );
    drop(first);
    set_file_size_limit(None);
    let mut next = sink();
    next.write_batch(&entries[10..]).unwrap();
    next.shutdown().unwrap();
}

/// Returns how many calls were written while the disk was full.
fn write_through_the_pipeline(sink: JsonlSink) -> u64 {
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(HashKey::new("fault", [7; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .with_retry(2, Duration::from_millis(1))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let timeout = Duration::from_secs(60);
    set_file_size_limit(Some(LIMIT));
    tracing::dispatcher::with_default(&dispatch, || (0..CALLS_FULL).for_each(llm_call));
    guard.flush(timeout).unwrap();
    let full = guard.stats();
    let sink = &full.sinks[0];
    assert_eq!(full.emitted, CALLS_FULL);
    assert_eq!(full.dropped, 0, "{full:?}");
    assert_eq!(sink.written + sink.failed, CALLS_FULL, "{full:?}");
    assert!(sink.failed > 0, "the disk never filled: {full:?}");
    assert!(sink.retries > 0, "{full:?}");
    let error = sink.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("audit_20") && error.contains("File too large"),
        "the sink's error names the file and the cause: {error}"
    );

    set_file_size_limit(None);
    tracing::dispatcher::with_default(&dispatch, || {
        (CALLS_FULL..CALLS_FULL + CALLS_AFTER).for_each(llm_call);
    });
    guard.flush(timeout).unwrap();
    drop(dispatch);
    let stats = guard.shutdown(timeout).unwrap();
    let sink = &stats.sinks[0];
    assert_eq!(stats.emitted, CALLS_FULL + CALLS_AFTER);
    assert_eq!(
        stats.emitted,
        stats.dropped + stats.internal_errors + sink.written + sink.failed + sink.dropped,
        "{stats:?}"
    );
    assert_eq!(
        sink.failed, full.sinks[0].failed,
        "nothing failed after: {stats:?}"
    );
    assert_eq!(
        sink.written,
        full.sinks[0].written + CALLS_AFTER,
        "{stats:?}"
    );
    full.sinks[0].written
}

fn llm_call(i: u64) {
    let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u1");
    span.record_usage(&Usage {
        input_tokens: Some(i),
        output_tokens: Some(1),
        ..Usage::default()
    });
    span.record_input(b"hello");
}

/// Sets the soft file size limit of this process (`None`: back to the hard limit).
fn set_file_size_limit(bytes: Option<u64>) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill and read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.map_or(limit.rlim_max, |b| b as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        out.push_str(": ");
        out.push_str(&source.to_string());
        next = source.source();
    }
    out
}
