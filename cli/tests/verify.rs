//! `llm-audit verify` on tamper-evident JSONL directories: an honest log written by several
//! writers across restarts and a day rotation verifies; every kind of tampering is found and
//! named with its stream and sequence number.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use time::macros::datetime;
use tracing_llm_audit::chain::{entry_digest, link_hash, SigningKey};
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

fn entry(i: u64, at: time::OffsetDateTime) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = at + time::Duration::seconds(i as i64);
    e.user_id = Some(format!("user-{}", i % 3));
    e.provider = Some("openai".to_owned());
    e.model = Some("gpt-4o".to_owned());
    e.input_tokens = Some(100 + i);
    e.output_tokens = Some(10);
    e.latency_ms = 200 + i;
    e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i as i64, 6));
    e.input_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
    if i.is_multiple_of(5) {
        e.status = Status::Error;
        e.error_type = Some("rate_limit_error".to_owned());
        e.error_message = Some("slow down".to_owned());
    }
    e
}

struct Log {
    dir: tempfile::TempDir,
    public: PathBuf,
    /// Stream ids of the writers, in the order they started.
    streams: Vec<String>,
    key: SigningKey,
    _keys: tempfile::TempDir,
}

/// Two writers side by side over midnight (two daily files), then a restart (a third stream).
fn honest_log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("signing.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let sink = |every| {
        JsonlSink::builder(dir.path())
            .chain(key.clone())
            .checkpoint_every(every)
            .build()
            .unwrap()
    };
    let (mut a, mut b) = (sink(7), sink(4));
    let streams = vec![
        a.stream_id().unwrap().to_owned(),
        b.stream_id().unwrap().to_owned(),
    ];
    let start = datetime!(2026-11-23 23:59:40 UTC);
    for batch in 0..8u64 {
        let entries: Vec<AuditEntry> = (0..5).map(|i| entry(batch * 5 + i, start)).collect();
        a.write_batch(&entries).unwrap();
        b.write_batch(&entries[..3]).unwrap();
    }
    a.shutdown().unwrap();
    b.shutdown().unwrap();
    let mut c = sink(10);
    let mut streams = streams;
    streams.push(c.stream_id().unwrap().to_owned());
    let later: Vec<AuditEntry> = (0..12)
        .map(|i| entry(i, datetime!(2026-11-24 08:00 UTC)))
        .collect();
    c.write_batch(&later).unwrap();
    c.shutdown().unwrap();
    Log {
        dir,
        public,
        streams,
        key,
        _keys: keys,
    }
}

fn verify(dir: &Path, public: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["verify", "--format", "jsonl", "--dir"])
        .arg(dir)
        .arg("--public-key")
        .arg(public)
        .env("LLM_AUDIT_PROGRESS", "never")
        .output()
        .unwrap()
}

/// The problems, as (stream, seq, kind).
fn problems(out: &Output) -> Vec<(String, Option<u64>, String)> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["stream"].as_str().unwrap_or_default().to_owned(),
                v["seq"].as_u64(),
                v["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn copy(log: &Log) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(log.dir.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

fn day_file(dir: &Path, day: &str) -> PathBuf {
    dir.join(format!("audit_{day}.jsonl"))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn link(line: &str) -> (String, u64) {
    let v: Value = serde_json::from_str(line).unwrap();
    (
        v["chain"]["stream"].as_str().unwrap().to_owned(),
        v["chain"]["seq"].as_u64().unwrap(),
    )
}

/// Asserts that verification fails and names (stream, seq) with one of `kinds`.
#[track_caller]
fn found(out: &Output, stream: &str, seq: u64, kinds: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "verify must fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = problems(out);
    assert!(
        all.iter()
            .any(|(s, q, k)| s == stream && *q == Some(seq) && kinds.contains(&k.as_str())),
        "expected {kinds:?} at {stream} seq {seq}, got {all:?}"
    );
}

#[test]
fn an_honest_log_verifies() {
    let log = honest_log();
    let out = verify(log.dir.path(), &log.public);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("76 entries in 3 stream(s)"), "{err}");
    assert!(err.contains("intact"), "{err}");
    assert!(
        std::fs::read_dir(log.dir.path()).unwrap().count() >= 5,
        "two daily files and three checkpoint files"
    );
}

#[test]
fn a_wrong_public_key_fails() {
    let log = honest_log();
    let other = tempfile::tempdir().unwrap();
    let public = other.path().join("other.pub");
    std::fs::write(
        &public,
        SigningKey::generate()
            .unwrap()
            .verifying_key()
            .to_public_text(),
    )
    .unwrap();
    let out = verify(log.dir.path(), &public);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        problems(&out).iter().all(|(_, _, k)| k == "bad signature"),
        "{:?}",
        problems(&out)
    );
    assert!(!problems(&out).is_empty());
    let bad = verify(log.dir.path(), &log.dir.path().join("nope.pub"));
    assert_eq!(
        bad.status.code(),
        Some(1),
        "an unreadable key is an error, not a verdict"
    );
}

#[test]
fn a_changed_field_is_found_with_its_seq() {
    let log = honest_log();
    let changes: [(&str, Value); 8] = [
        ("latency_ms", 999.into()),
        ("user_id", "mallory".into()),
        (
            "input_hash",
            format!("hmac-sha256:{}", "cd".repeat(32)).into(),
        ),
        ("cost_usd", "0.000001".into()),
        ("status", "blocked".into()),
        ("model", "gpt-4o-mini".into()),
        ("error_message", "nothing happened".into()),
        ("input_tokens", Value::Null),
    ];
    for (field, value) in changes {
        let dir = copy(&log);
        let path = day_file(dir.path(), "2026-11-24");
        let mut all = lines(&path);
        let mut v: Value = serde_json::from_str(&all[3]).unwrap();
        v[field] = value;
        let (stream, seq) = link(&all[3]);
        all[3] = serde_json::to_string(&v).unwrap();
        write_lines(&path, &all);
        found(
            &verify(dir.path(), &log.public),
            &stream,
            seq,
            &["modified"],
        );
    }
}

#[test]
fn every_flipped_byte_is_found() {
    let log = honest_log();
    let path = day_file(log.dir.path(), "2026-11-23");
    let original = std::fs::read(&path).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let first_line = text.lines().next().unwrap();
    let (stream, seq) = link(first_line);
    let dir = copy(&log);
    let target = day_file(dir.path(), "2026-11-23");
    for offset in 0..first_line.len() {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        std::fs::write(&target, &bytes).unwrap();
        let out = verify(dir.path(), &log.public);
        assert_eq!(
            out.status.code(),
            Some(2),
            "byte {offset} ({:?})",
            first_line.as_bytes()[offset] as char
        );
        let all = problems(&out);
        assert!(
            all.iter().any(|(s, q, _)| s == &stream && *q == Some(seq)),
            "byte {offset} ({:?}) not named as seq {seq}: {all:?}",
            first_line.as_bytes()[offset] as char
        );
    }
}

#[test]
fn deleted_swapped_and_inserted_lines_are_found() {
    let log = honest_log();
    let path = |d: &tempfile::TempDir| day_file(d.path(), "2026-11-24");

    // Deleted.
    let dir = copy(&log);
    let mut all = lines(&path(&dir));
    let (stream, seq) = link(&all[5]);
    all.remove(5);
    write_lines(&path(&dir), &all);
    found(&verify(dir.path(), &log.public), &stream, seq, &["deleted"]);

    // Two lines of one stream swapped.
    let dir = copy(&log);
    let mut all = lines(&path(&dir));
    let (stream, _) = link(&all[0]);
    let j = (1..all.len()).find(|&j| link(&all[j]).0 == stream).unwrap();
    let later_seq = link(&all[j]).1;
    all.swap(0, j);
    write_lines(&path(&dir), &all);
    let out = verify(dir.path(), &log.public);
    let first_seq = link(&all[j]).1;
    assert!(first_seq < later_seq);
    found(&out, &stream, first_seq, &["reordered"]);

    // A forged copy of an entry, re-hashed by someone who knows the format but not the key.
    let dir = copy(&log);
    let mut all = lines(&path(&dir));
    let mut forged: Value = serde_json::from_str(&all[2]).unwrap();
    forged["user_id"] = "mallory".into();
    let digest = entry_digest(&forged).unwrap();
    let c = forged["chain"].clone();
    forged["chain"]["hash"] = link_hash(
        c["stream"].as_str().unwrap(),
        c["seq"].as_u64().unwrap(),
        c["prev"].as_str().unwrap(),
        &digest,
    )
    .into();
    let (stream, seq) = link(&all[2]);
    all.insert(3, serde_json::to_string(&forged).unwrap());
    write_lines(&path(&dir), &all);
    found(
        &verify(dir.path(), &log.public),
        &stream,
        seq,
        &["inserted"],
    );

    // A forged entry appended after a stream's final checkpoint, chained correctly.
    let dir = copy(&log);
    let mut all = lines(&path(&dir));
    let last = all
        .iter()
        .rev()
        .find(|l| link(l).0 == log.streams[2])
        .unwrap()
        .clone();
    let mut forged: Value = serde_json::from_str(&last).unwrap();
    let seq = forged["chain"]["seq"].as_u64().unwrap() + 1;
    let prev = forged["chain"]["hash"].as_str().unwrap().to_owned();
    forged["request_id"] = uuid::Uuid::now_v7().to_string().into();
    forged["chain"]["seq"] = seq.into();
    forged["chain"]["prev"] = prev.clone().into();
    let digest = entry_digest(&forged).unwrap();
    forged["chain"]["hash"] = link_hash(&log.streams[2], seq, &prev, &digest).into();
    all.push(serde_json::to_string(&forged).unwrap());
    write_lines(&path(&dir), &all);
    found(
        &verify(dir.path(), &log.public),
        &log.streams[2],
        seq,
        &["inserted"],
    );

    // A line without any chain.
    let dir = copy(&log);
    let mut all = lines(&path(&dir));
    all.push(serde_json::to_string(&entry(1, datetime!(2026-11-24 09:00 UTC))).unwrap());
    write_lines(&path(&dir), &all);
    let out = verify(dir.path(), &log.public);
    assert_eq!(out.status.code(), Some(2));
    assert!(problems(&out).iter().any(|(_, _, k)| k == "unchained"));
}

#[test]
fn removed_checkpoints_are_found() {
    let log = honest_log();
    let checkpoints = |d: &Path, stream: &str| d.join(format!("audit_checkpoints_{stream}.jsonl"));

    // One from the middle.
    let dir = copy(&log);
    let path = checkpoints(dir.path(), &log.streams[1]);
    let mut all = lines(&path);
    assert!(all.len() >= 3, "{all:?}");
    let removed: Value = serde_json::from_str(&all[1]).unwrap();
    all.remove(1);
    write_lines(&path, &all);
    let next: Value = serde_json::from_str(&all[1]).unwrap();
    found(
        &verify(dir.path(), &log.public),
        &log.streams[1],
        next["seq"].as_u64().unwrap(),
        &["missing checkpoint"],
    );
    assert!(removed["seq"].as_u64() < next["seq"].as_u64());

    // The final one.
    let dir = copy(&log);
    let path = checkpoints(dir.path(), &log.streams[0]);
    let mut all = lines(&path);
    let last: Value = serde_json::from_str(all.last().unwrap()).unwrap();
    assert_eq!(last["final"], true);
    all.pop();
    write_lines(&path, &all);
    let out = verify(dir.path(), &log.public);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        problems(&out)
            .iter()
            .any(|(s, _, k)| s == &log.streams[0] && k == "missing checkpoint"),
        "{:?}",
        problems(&out)
    );

    // The whole file.
    let dir = copy(&log);
    std::fs::remove_file(checkpoints(dir.path(), &log.streams[2])).unwrap();
    let out = verify(dir.path(), &log.public);
    assert!(
        problems(&out)
            .iter()
            .any(|(s, _, k)| s == &log.streams[2] && k == "missing checkpoint"),
        "{:?}",
        problems(&out)
    );
}

#[test]
fn truncation_at_every_byte_of_the_last_entries_is_found() {
    let log = honest_log();
    let path = day_file(log.dir.path(), "2026-11-24");
    let original = std::fs::read(&path).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let all: Vec<&str> = text.lines().collect();
    // The last two lines: the last entries of the restarted writer.
    let (stream, _) = link(all[all.len() - 1]);
    let cut_from = original.len() - all[all.len() - 1].len() - all[all.len() - 2].len() - 2;
    let dir = copy(&log);
    let target = day_file(dir.path(), "2026-11-24");
    // Every cut but the one that takes only the final newline (the entries are then intact).
    for offset in cut_from..original.len() - 1 {
        std::fs::write(&target, &original[..offset]).unwrap();
        let out = verify(dir.path(), &log.public);
        assert_eq!(out.status.code(), Some(2), "cut at {offset}");
        let problems = problems(&out);
        assert!(
            problems
                .iter()
                .any(|(s, _, k)| s == &stream && k == "truncated"),
            "cut at {offset}: {problems:?}"
        );
    }
}

/// What a failed write leaves (disk full, say): part of a line, then the writer goes on with a
/// new line. With the chains whole, that is a note, not tampering; and an entry that was cut
/// that way is still found missing.
#[test]
fn fragments_of_failed_writes_are_notes_while_the_chains_are_whole() {
    let log = honest_log();
    let dir = copy(&log);
    let day = day_file(dir.path(), "2026-11-24");
    let mut lines = lines(&day);
    let fragment = lines[3][..lines[3].len() / 2].to_owned();
    lines.insert(4, fragment.clone());
    write_lines(&day, &lines);
    let cps = dir
        .path()
        .join(format!("audit_checkpoints_{}.jsonl", log.streams[1]));
    let mut checkpoints = self::lines(&cps);
    let half = checkpoints[0][..40].to_owned();
    checkpoints.insert(1, half);
    write_lines(&cps, &checkpoints);
    let out = verify(dir.path(), &log.public);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = problems(&out);
    assert_eq!(
        notes.iter().filter(|(_, _, k)| k == "fragment").count(),
        2,
        "{notes:?}"
    );

    // The same cut, but of an entry that was written and signed: it is missing from its chain.
    let (stream, seq) = link(&lines[3]);
    lines[3] = fragment;
    lines.remove(4);
    write_lines(&day, &lines);
    found(&verify(dir.path(), &log.public), &stream, seq, &["deleted"]);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_crashed_writer_is_repaired_and_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = keys.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    // Entries of today: the repair entry is stamped with the time of the repair and goes into
    // the file of its day, which must be the entries' file. Not within seconds of midnight.
    if time::OffsetDateTime::now_utc().time() > time::macros::time!(23:59:30) {
        std::thread::sleep(std::time::Duration::from_secs(31));
    }
    let start = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    let sink = || {
        JsonlSink::builder(dir.path())
            .chain(key.clone())
            .checkpoint_every(5)
            .build()
            .unwrap()
    };

    // A writer dies: no final checkpoint, and half a line at the end of the file.
    let mut crashed = sink();
    let crashed_stream = crashed.stream_id().unwrap().to_owned();
    crashed
        .write_batch(&(0..12).map(|i| entry(i, start)).collect::<Vec<_>>())
        .unwrap();
    // Too few for a checkpoint: entries 12 and 13 are covered by none.
    crashed
        .write_batch(&(12..14).map(|i| entry(i, start)).collect::<Vec<_>>())
        .unwrap();
    drop(crashed); // the process is gone: its lock with it
    let file = day_file(dir.path(), &start.date().to_string());
    let fragment = b"{\"schema_version\":1,\"request_id\":\"0190";
    let mut bytes = std::fs::read(&file).unwrap();
    let honest_len = bytes.len();
    bytes.extend_from_slice(fragment);
    std::fs::write(&file, &bytes).unwrap();
    let before = verify(dir.path(), &public);
    assert_eq!(
        before.status.code(),
        Some(2),
        "unrepaired, the crash shows as problems"
    );

    // The next writer repairs: the fragment goes to quarantine, a repair entry opens its chain.
    let mut next = sink();
    let now = std::fs::read(&file).unwrap();
    assert_eq!(&now[..honest_len], &bytes[..honest_len]);
    assert!(
        !now[honest_len..].starts_with(fragment),
        "the torn line is cut off"
    );
    assert!(
        now.ends_with(b"\n"),
        "and the repair entry follows on a line of its own"
    );
    let quarantine: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("audit_quarantine.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(quarantine["fragment_hex"], hex_of(fragment));
    assert_eq!(quarantine["offset"], honest_len as u64);
    next.write_batch(&[entry(50, start)]).unwrap();
    next.shutdown().unwrap();
    let lines = lines(&file);
    let repair: Value = serde_json::from_str(&lines[14]).unwrap();
    assert_eq!(repair["action"], "llm_audit.repair");
    assert_eq!(repair["chain"]["seq"], 0);
    assert_eq!(
        repair["metadata"]["crashed_streams"][0]["stream"],
        crashed_stream.as_str()
    );
    assert_eq!(
        repair["metadata"]["crashed_streams"][0]["seq"], 11,
        "its last signed seq"
    );
    assert_eq!(
        repair["metadata"]["quarantined"][0]["length"],
        fragment.len() as u64
    );

    // Not tampering, but not proven either: the crashed writer's entries 12 and 13 came after
    // its last checkpoint (seq 11), and only the unkeyed chain covers them. Exit 3, with the
    // stream and the range.
    let after = verify(dir.path(), &public);
    assert_eq!(
        after.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    assert_eq!(
        problems(&after)
            .into_iter()
            .filter(|(_, _, k)| k != "fragment")
            .collect::<Vec<_>>(),
        vec![(crashed_stream.clone(), Some(12), "unsigned".to_owned())],
    );
    let summary = String::from_utf8_lossy(&after.stderr);
    assert!(
        summary.contains("1 stream(s) stopped without a final checkpoint")
            && summary.contains("2 of their entries are covered by no signed checkpoint"),
        "{summary}"
    );

    // While another writer is alive, a half line may be its own: nothing is touched.
    let mut alive = sink();
    alive.write_batch(&[entry(60, start)]).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(fragment);
    std::fs::write(&file, &bytes).unwrap();
    let len = bytes.len();
    let mut other = sink();
    assert_eq!(
        std::fs::read(&file).unwrap().len(),
        len,
        "a live writer's line is left alone"
    );
    other.shutdown().unwrap();
    alive.shutdown().unwrap();
}

#[test]
fn a_forged_repair_entry_does_not_excuse_a_removed_final_checkpoint() {
    let log = honest_log();
    let dir = copy(&log);
    // Remove stream 0's final checkpoint...
    let cps = dir
        .path()
        .join(format!("audit_checkpoints_{}.jsonl", log.streams[0]));
    let mut all = lines(&cps);
    all.pop();
    write_lines(&cps, &all);
    // ...and add a stream of one forged, correctly hashed repair entry naming it (and itself).
    let forged_stream = uuid::Uuid::now_v7().to_string();
    let mut repair = serde_json::to_value(AuditEntry::new("llm_audit.repair")).unwrap();
    repair["metadata"] = serde_json::json!({
        "crashed_streams": [{"stream": log.streams[0]}, {"stream": forged_stream}],
        "quarantined": []
    });
    let digest = entry_digest(&repair).unwrap();
    let genesis = tracing_llm_audit::chain::GENESIS;
    repair["chain"] = serde_json::json!({
        "stream": forged_stream,
        "seq": 0,
        "prev": genesis,
        "hash": link_hash(&forged_stream, 0, genesis, &digest),
    });
    let day = day_file(dir.path(), "2026-11-24");
    let mut all = lines(&day);
    all.push(serde_json::to_string(&repair).unwrap());
    write_lines(&day, &all);
    let out = verify(dir.path(), &log.public);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let found = problems(&out);
    assert!(
        found
            .iter()
            .any(|(s, _, k)| s == &log.streams[0] && k == "missing checkpoint"),
        "{found:?}"
    );
    assert!(!found.iter().any(|(_, _, k)| k == "unsigned"), "{found:?}");
}

/// Rewrites every entry of `stream` in the day files with `change`, then recomputes the
/// stream's whole chain: what anyone can do without the key, since the chain is unkeyed.
fn rewrite_stream(dir: &Path, stream: &str, change: impl Fn(&mut Value)) {
    let mut prev = tracing_llm_audit::chain::GENESIS.to_owned();
    for day in ["2026-11-23", "2026-11-24"] {
        let path = day_file(dir, day);
        if !path.exists() {
            continue;
        }
        let mut all = lines(&path);
        for line in &mut all {
            let mut v: Value = serde_json::from_str(line).unwrap();
            if v["chain"]["stream"] != stream {
                continue;
            }
            change(&mut v);
            let seq = v["chain"]["seq"].as_u64().unwrap();
            let digest = entry_digest(&v).unwrap();
            let hash = link_hash(stream, seq, &prev, &digest);
            v["chain"] =
                serde_json::json!({"stream": stream, "seq": seq, "prev": prev, "hash": hash});
            prev = hash;
            *line = serde_json::to_string(&v).unwrap();
        }
        write_lines(&path, &all);
    }
}

/// An ordinary start of a writer with the key, as the service would do after the attack.
fn restart(dir: &Path, key: &SigningKey) {
    let mut sink = JsonlSink::builder(dir).chain(key.clone()).build().unwrap();
    sink.write_batch(&[entry(99, datetime!(2026-11-24 09:00 UTC))])
        .unwrap();
    sink.shutdown().unwrap();
}

fn cost_999(v: &mut Value) {
    v["cost_usd"] = Value::from("999.99");
}

/// Finding 5 of issue 20: a closed stream's checkpoints removed, its entries rewritten and its
/// chain recomputed; the next ordinary start took it for a crashed writer and `verify` excused
/// it. The writer that started after it witnessed its final checkpoint: found.
#[test]
fn laundering_a_closed_stream_through_the_crash_repair_is_found() {
    let log = honest_log();
    let a = &log.streams[0];
    let cps = |d: &Path| d.join(format!("audit_checkpoints_{a}.jsonl"));

    // All its checkpoints removed.
    let dir = copy(&log);
    std::fs::write(cps(dir.path()), "").unwrap();
    rewrite_stream(dir.path(), a, cost_999);
    restart(dir.path(), &log.key);
    let out = verify(dir.path(), &log.public);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let all = problems(&out);
    assert!(
        all.iter()
            .any(|(s, _, k)| s == a && k == "missing checkpoint"),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|(s, _, k)| s == a && k == "unsigned"),
        "{all:?}"
    );

    // Only its first checkpoint kept, the entries after it rewritten.
    let dir = copy(&log);
    let first = lines(&cps(dir.path()))[0].clone();
    let kept: Value = serde_json::from_str(&first).unwrap();
    let kept_seq = kept["seq"].as_u64().unwrap();
    write_lines(&cps(dir.path()), &[first]);
    rewrite_stream(dir.path(), a, |v| {
        if v["chain"]["seq"].as_u64().unwrap() > kept_seq {
            cost_999(v);
        }
    });
    restart(dir.path(), &log.key);
    let out = verify(dir.path(), &log.public);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let all = problems(&out);
    assert!(
        all.iter()
            .any(|(s, _, k)| s == a && k == "missing checkpoint"),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|(s, _, k)| s == a && k == "unsigned"),
        "{all:?}"
    );
}

/// A closed stream removed whole, entries and checkpoint file: a later stream witnessed it.
#[test]
fn a_closed_stream_removed_whole_is_found_through_a_later_one() {
    let log = honest_log();
    for gone in [&log.streams[0], &log.streams[1]] {
        let dir = copy(&log);
        std::fs::remove_file(dir.path().join(format!("audit_checkpoints_{gone}.jsonl"))).unwrap();
        for day in ["2026-11-23", "2026-11-24"] {
            let path = day_file(dir.path(), day);
            let kept: Vec<String> = lines(&path)
                .into_iter()
                .filter(|l| &link(l).0 != gone)
                .collect();
            write_lines(&path, &kept);
        }
        let out = verify(dir.path(), &log.public);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let all = problems(&out);
        assert!(
            all.iter()
                .any(|(s, _, k)| s == gone && k == "missing checkpoint"),
            "{all:?}"
        );
    }
}

/// With no later stream to witness it, a laundered stream is not proven either: the repair
/// names it crashed with no checkpoint, and its entries are reported as covered only by the
/// unkeyed chain (exit 3), never as intact.
#[test]
fn a_laundered_stream_no_one_witnessed_is_reported_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = dir.path().join("k.pub");
    let logs = dir.path().join("logs");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let mut only = JsonlSink::builder(&logs)
        .chain(key.clone())
        .checkpoint_every(4)
        .build()
        .unwrap();
    let stream = only.stream_id().unwrap().to_owned();
    let entries: Vec<AuditEntry> = (0..10)
        .map(|i| entry(i, datetime!(2026-11-24 08:00 UTC)))
        .collect();
    only.write_batch(&entries).unwrap();
    only.shutdown().unwrap();
    drop(only);
    assert_eq!(verify(&logs, &public).status.code(), Some(0));

    std::fs::write(logs.join(format!("audit_checkpoints_{stream}.jsonl")), "").unwrap();
    rewrite_stream(&logs, &stream, cost_999);
    restart(&logs, &key);
    let out = verify(&logs, &public);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        problems(&out),
        vec![(stream.clone(), Some(0), "unsigned".to_owned())]
    );
}

/// Witnesses are signed: one removed from a checkpoint, or changed, breaks its signature.
#[test]
fn a_removed_or_changed_witness_breaks_the_signature() {
    let log = honest_log();
    let c = &log.streams[2];
    let path = |d: &Path| d.join(format!("audit_checkpoints_{c}.jsonl"));
    let first: Value = serde_json::from_str(&lines(&path(log.dir.path()))[0]).unwrap();
    let witnessed: Vec<String> = first["witness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        witnessed.iter().collect::<std::collections::BTreeSet<_>>(),
        log.streams[..2].iter().collect(),
        "the writer that started after both witnessed both"
    );
    for change in [
        |v: &mut Value| {
            v.as_object_mut()
                .unwrap()
                .remove("witness")
                .map(drop)
                .unwrap()
        },
        |v: &mut Value| v["witness"][0][2] = Value::from(3),
    ] {
        let dir = copy(&log);
        let mut all = lines(&path(dir.path()));
        let mut v: Value = serde_json::from_str(&all[0]).unwrap();
        change(&mut v);
        all[0] = serde_json::to_string(&v).unwrap();
        write_lines(&path(dir.path()), &all);
        found(
            &verify(dir.path(), &log.public),
            c,
            v["seq"].as_u64().unwrap(),
            &["bad signature"],
        );
    }
}
