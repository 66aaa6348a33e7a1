//! An attacker's review of the witnesses, the crash repair and erasure v2 (issue 20): each
//! attack it confirmed, as a test that failed before the fix. The attacker can write anything in
//! the log directory and holds no key.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use time::macros::datetime;
use tracing_llm_audit::chain::{entry_digest, link_hash, SigningKey};
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink};

const DAY: &str = "2026-11-24";

fn entry(i: u64) -> AuditEntry {
    let mut e = AuditEntry::new("chat");
    e.timestamp = datetime!(2026-11-24 08:00 UTC) + time::Duration::seconds(i as i64);
    e.user_id = Some(format!("user-{}", i % 3));
    e.input_tokens = Some(100 + i);
    e.cost_usd = Some(rust_decimal::Decimal::new(1_000 + i as i64, 6));
    e
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

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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

fn sink(dir: &Path, key: &SigningKey, every: u64) -> JsonlSink {
    JsonlSink::builder(dir)
        .chain(key.clone())
        .checkpoint_every(every)
        .build()
        .unwrap()
}

struct Setup {
    _tmp: tempfile::TempDir,
    logs: PathBuf,
    public: PathBuf,
    key: SigningKey,
    a: String,
}

/// A long-running writer A; a short writer C starts and stops while A runs (C witnesses A's
/// checkpoint of that moment); A goes on, signs more checkpoints and closes with a final one.
fn long_runner_and_short_job() -> (Setup, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut a = sink(&logs, &key, 2);
    let a_id = a.stream_id().unwrap().to_owned();
    a.write_batch(&(0..4).map(entry).collect::<Vec<_>>())
        .unwrap();
    // C starts while A is alive.
    let mut c = sink(&logs, &key, 100);
    let c_id = c.stream_id().unwrap().to_owned();
    c.write_batch(&(100..103).map(entry).collect::<Vec<_>>())
        .unwrap();
    c.shutdown().unwrap();
    drop(c);
    // A goes on: more entries and checkpoints, then its final one.
    for b in 0..5u64 {
        a.write_batch(&(10 + b * 2..12 + b * 2).map(entry).collect::<Vec<_>>())
            .unwrap();
    }
    a.shutdown().unwrap();
    drop(a);
    let c_cp: Value =
        serde_json::from_str(&lines(&logs.join(format!("audit_checkpoints_{c_id}.jsonl")))[0])
            .unwrap();
    let w = c_cp["witness"][0].clone();
    assert_eq!(w[0].as_str().unwrap(), a_id, "C witnessed A: {c_cp}");
    (
        Setup {
            _tmp: tmp,
            logs,
            public,
            key,
            a: a_id,
        },
        w,
    )
}

/// Cuts A back to the checkpoint C witnessed: A's later checkpoints (the final included) and
/// the entries they cover are removed.
fn cut_back_to_witness(s: &Setup, w: &Value) -> u64 {
    let index = w[1].as_u64().unwrap();
    let seq = w[2].as_u64().unwrap();
    let cps = s.logs.join(format!("audit_checkpoints_{}.jsonl", s.a));
    let kept: Vec<String> = lines(&cps)
        .into_iter()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
                <= index
        })
        .collect();
    write_lines(&cps, &kept);
    seq
}

fn restart(s: &Setup) {
    let mut d = sink(&s.logs, &s.key, 100);
    d.write_batch(&[entry(500)]).unwrap();
    d.shutdown().unwrap();
}

#[test]
fn a_stream_cut_back_to_its_witnessed_checkpoint_is_not_intact_after_a_restart() {
    let (s, w) = long_runner_and_short_job();
    let before = verify(&s.logs, &s.public);
    assert_eq!(before.status.code(), Some(0), "{}", show(&before));
    let day = s.logs.join(format!("audit_{DAY}.jsonl"));
    let n_before = lines(&day).len();
    let seq = cut_back_to_witness(&s, &w);
    // A's entries after the witnessed checkpoint removed.
    let kept: Vec<String> = lines(&day)
        .into_iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            !(v["chain"]["stream"] == s.a.as_str() && v["chain"]["seq"].as_u64().unwrap() > seq)
        })
        .collect();
    eprintln!(
        "removed {} of A's entries (after seq {seq})",
        n_before - kept.len()
    );
    write_lines(&day, &kept);
    let mid = verify(&s.logs, &s.public);
    eprintln!("before restart: {}", show(&mid));
    assert_eq!(mid.status.code(), Some(2));
    restart(&s);
    let after = verify(&s.logs, &s.public);
    eprintln!("after restart: {}", show(&after));
    // A crash and checkpoints removed after the last witness look the same: never intact.
    assert_eq!(after.status.code(), Some(3), "{}", show(&after));
}

#[test]
fn a_stream_rewritten_after_its_witnessed_checkpoint_is_not_intact_after_a_restart() {
    let (s, w) = long_runner_and_short_job();
    let seq = cut_back_to_witness(&s, &w);
    let day = s.logs.join(format!("audit_{DAY}.jsonl"));
    let mut all = lines(&day);
    let mut prev: Option<String> = None;
    for line in &mut all {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["chain"]["stream"] != s.a.as_str() {
            continue;
        }
        let q = v["chain"]["seq"].as_u64().unwrap();
        if q > seq {
            v["cost_usd"] = Value::from("999.99");
            let p = prev.clone().unwrap();
            let digest = entry_digest(&v).unwrap();
            let hash = link_hash(&s.a, q, &p, &digest);
            v["chain"] = serde_json::json!({"stream": s.a, "seq": q, "prev": p, "hash": hash});
            *line = serde_json::to_string(&v).unwrap();
        }
        prev = Some(v["chain"]["hash"].as_str().unwrap().to_owned());
    }
    write_lines(&day, &all);
    restart(&s);
    let after = verify(&s.logs, &s.public);
    eprintln!("after restart: {}", show(&after));
    assert_ne!(after.status.code(), Some(0), "{}", show(&after));
}

const USER: &str = "alice@example.com";
const HASH_KEY: &str =
    "pseudonyms-1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn grep_dir(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    hits
}

#[test]
fn erase_removes_the_id_as_hex_from_torn_quarantine_records_and_torn_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let secret = tmp.path().join("k.key");
    std::fs::write(&secret, key.to_secret_text().as_bytes()).unwrap();
    let logs = tmp.path().join("logs");
    let mut s = sink(&logs, &key, 100);
    let mut e = entry(1);
    e.user_id = Some(USER.to_owned());
    s.write_batch(&[e, entry(2)]).unwrap();
    s.shutdown().unwrap();
    drop(s);
    let fragment = format!(
        "{{\"schema_version\":1,\"request_id\":\"x\",\"timestamp\":\"2026-11-24T08:00:00Z\",\"user_id\":\"{USER}\",\"sess"
    );
    let hex_user = hex::encode(USER);
    // (a) A quarantine file whose last record was torn (a writer killed while appending it,
    // which the repair code expects), holding the fragment's bytes as hex.
    let full = serde_json::json!({"file": format!("audit_{DAY}.jsonl"), "offset": 0, "length": fragment.len(),
        "sha256": "00", "by_stream": "s", "fragment_hex": hex::encode(&fragment)});
    let mut torn_record = serde_json::to_string(&full).unwrap();
    torn_record.truncate(torn_record.len() - 10); // torn
    std::fs::write(
        logs.join("audit_quarantine.jsonl"),
        format!("{torn_record}\n"),
    )
    .unwrap();
    // (b) A torn line in a day file that holds the user as hex (an old-format repair entry,
    // which kept fragment_hex in its metadata, cut short by a crash).
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let mut all = lines(&day);
    all.push(format!(
        "{{\"schema_version\":1,\"action\":\"llm_audit.repair\",\"metadata\":{{\"quarantined\":[{{\"fragment_hex\":\"{}",
        hex::encode(&fragment)
    ));
    write_lines(&day, &all);
    assert_eq!(grep_dir(&logs, &hex_user).len(), 2);

    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["erase", "--user", USER, "--dir"])
        .arg(&logs)
        .arg("--signing-key")
        .arg(&secret)
        .env("LLM_AUDIT_PROGRESS", "never")
        .env("LLM_AUDIT_HASH_KEY", HASH_KEY)
        .output()
        .unwrap();
    eprintln!("erase: {}", show(&out));
    assert_eq!(out.status.code(), Some(0));
    eprintln!("raw user left in: {:?}", grep_dir(&logs, USER));
    let left = grep_dir(&logs, &hex_user);
    assert!(left.is_empty(), "hex of the user id left in {left:?}");
    assert!(grep_dir(&logs, USER).is_empty());
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// A planted sparse file named like a checkpoint file (no disk space used): the writer's
/// start-up read it whole into memory, in growing blocks (3 GB for a 3 GiB file); `verify`
/// read it whole too. Now at most 16 MiB of its end, and a line at a time.
#[test]
fn a_planted_sparse_checkpoint_file_costs_a_starting_writer_little() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let size: u64 = std::env::var("ATTACK_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 30);
    let f = std::fs::File::create(logs.join("audit_checkpoints_zz.jsonl")).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let before = vm_hwm_kb();
    let t = std::time::Instant::now();
    let built = JsonlSink::builder(&logs).chain(key.clone()).build();
    let grown_mib = (vm_hwm_kb().saturating_sub(before)) >> 10;
    eprintln!(
        "build ok={} in {:?}; peak grew {grown_mib} MiB",
        built.is_ok(),
        t.elapsed()
    );
    assert!(built.is_ok());
    assert!(grown_mib < 256, "the peak grew by {grown_mib} MiB");
    drop(built);
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let out = verify(&logs, &public);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

/// Replaying an old checkpoint line at the end of a closed stream's checkpoint file (verify
/// ignores duplicates) makes the next writer's start-up take that old checkpoint for the
/// stream's last: it names the stream crashed there and witnesses only that old checkpoint.
/// Much later, after more restarts, the final checkpoint and the tail can be removed: exit 0.
#[test]
fn a_replayed_checkpoint_line_is_found_and_does_not_defeat_later_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut x = sink(&logs, &key, 2);
    let x_id = x.stream_id().unwrap().to_owned();
    for b in 0..5u64 {
        x.write_batch(&(b * 2..b * 2 + 2).map(entry).collect::<Vec<_>>())
            .unwrap();
    }
    x.shutdown().unwrap();
    drop(x);
    assert_eq!(verify(&logs, &public).status.code(), Some(0));
    let cps = logs.join(format!("audit_checkpoints_{x_id}.jsonl"));
    let all = lines(&cps);
    let old: Value = serde_json::from_str(&all[1]).unwrap(); // checkpoint #1, open
    assert_eq!(old["index"], 1);
    assert_eq!(old["final"], false);
    // Step 1: replay #1 at the end of the file. Nothing else changes.
    let mut replayed = all.clone();
    replayed.push(all[1].clone());
    write_lines(&cps, &replayed);
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(2), "the copy is found: {}", show(&o));
    assert!(show(&o).contains("reordered"), "{}", show(&o));
    // Ordinary restarts, later: D then E. They take X's highest checkpoint, its final one.
    for i in 0..2 {
        let mut w = sink(&logs, &key, 100);
        w.write_batch(&[entry(600 + i)]).unwrap();
        w.shutdown().unwrap();
        drop(w);
    }
    // Had the attacker removed the copy again, the restarts' witnesses still hold X's final.
    write_lines(&cps, &all);
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // Step 2, any time later: X's checkpoints after #1 (its final one included) and its
    // entries after #1's seq are removed.
    let seq = old["seq"].as_u64().unwrap();
    write_lines(&cps, &all[..2]);
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let kept: Vec<String> = lines(&day)
        .into_iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            !(v["chain"]["stream"] == x_id.as_str() && v["chain"]["seq"].as_u64().unwrap() > seq)
        })
        .collect();
    write_lines(&day, &kept);
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

/// Replaying an old checkpoint line at the end of a closed stream's checkpoint file (verify
/// ignores duplicates) makes the next writer's start-up take that old checkpoint for the
/// stream's last: it names the stream crashed there and witnesses only that old checkpoint.
/// Much later, after more restarts, the final checkpoint and the tail can be removed: exit 0.
#[test]
fn a_second_file_named_for_a_stream_is_found_and_ignored_by_the_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut x = sink(&logs, &key, 2);
    let x_id = x.stream_id().unwrap().to_owned();
    for b in 0..5u64 {
        x.write_batch(&(b * 2..b * 2 + 2).map(entry).collect::<Vec<_>>())
            .unwrap();
    }
    x.shutdown().unwrap();
    drop(x);
    assert_eq!(verify(&logs, &public).status.code(), Some(0));
    let cps = logs.join(format!("audit_checkpoints_{x_id}.jsonl"));
    let all = lines(&cps);
    let old: Value = serde_json::from_str(&all[1]).unwrap(); // checkpoint #1, open
    assert_eq!(old["index"], 1);
    assert_eq!(old["final"], false);
    // Step 1: replay #1 at the end of the file. Nothing else changes.
    let fake = logs.join(format!("audit_checkpoints_{x_id}.jsonl.jsonl"));
    write_lines(&fake, &all[1..2]);
    let o = verify(&logs, &public);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the planted file is found: {}",
        show(&o)
    );
    // Ordinary restarts, later: D then E.
    for i in 0..2 {
        let mut w = sink(&logs, &key, 100);
        w.write_batch(&[entry(600 + i)]).unwrap();
        w.shutdown().unwrap();
        drop(w);
    }
    // Step 2, any time later: X's checkpoints after #1 (its final one included) and its
    // entries after #1's seq are removed.
    let seq = old["seq"].as_u64().unwrap();
    write_lines(&cps, &all[..2]);
    std::fs::remove_file(&fake).unwrap();
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let kept: Vec<String> = lines(&day)
        .into_iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            !(v["chain"]["stream"] == x_id.as_str() && v["chain"]["seq"].as_u64().unwrap() > seq)
        })
        .collect();
    write_lines(&day, &kept);
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

/// A log erased by the previous release (format v1: `erased.digests.user_id` = the unkeyed
/// SHA-256 of the id) keeps that guessable digest: the new `erase --user` finds no entry whose
/// user_id is the user any more, so it never rewrites them in format v2.
#[test]
fn entries_erased_in_format_v1_lose_their_guessable_digest() {
    use tracing_llm_audit::chain::{erasable_digest, erase_member, sign_erasure};
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let secret = tmp.path().join("k.key");
    std::fs::write(&secret, key.to_secret_text().as_bytes()).unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut s = sink(&logs, &key, 100);
    let mut e = entry(1);
    e.user_id = Some(USER.to_owned());
    s.write_batch(&[e, entry(2)]).unwrap();
    s.shutdown().unwrap();
    drop(s);
    // What the previous release's `erase` did to the entry.
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let mut all = lines(&day);
    let mut v: Value = serde_json::from_str(&all[0]).unwrap();
    erase_member(&mut v, "user_id", Some(Value::from("pseudonym:old"))).unwrap();
    erase_member(&mut v, "input_hash", None).unwrap();
    sign_erasure(&mut v, &key, "2026-11-25T00:00:00Z").unwrap();
    all[0] = serde_json::to_string(&v).unwrap();
    write_lines(&day, &all);
    assert_eq!(verify(&logs, &public).status.code(), Some(0));
    let digest = erasable_digest(&Value::from(USER));
    let hexd = digest.trim_start_matches("sha256:").to_owned();
    assert_eq!(grep_dir(&logs, &hexd).len(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["erase", "--user", USER, "--dir"])
        .arg(&logs)
        .arg("--signing-key")
        .arg(&secret)
        .env("LLM_AUDIT_PROGRESS", "never")
        .env("LLM_AUDIT_HASH_KEY", HASH_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let left = grep_dir(&logs, &hexd);
    assert!(left.is_empty(), "sha256(C(user)) still in {left:?}");
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

/// A `chain` member with more than the four members of a link: notes no hash covers.
#[test]
fn a_chain_member_with_extra_members_is_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut s = sink(&logs, &key, 100);
    s.write_batch(&[entry(1), entry(2)]).unwrap();
    s.shutdown().unwrap();
    drop(s);
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let mut all = lines(&day);
    let mut v: Value = serde_json::from_str(&all[0]).unwrap();
    v["chain"]["note"] = Value::from("forged by attacker");
    all[0] = serde_json::to_string(&v).unwrap();
    write_lines(&day, &all);
    let o = verify(&logs, &public);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(show(&o).contains("malformed"), "{}", show(&o));
}

/// A line of 60 MiB of `[0,0,…]` took 1.1 GB to decode; it is refused before.
#[test]
fn a_line_of_millions_of_values_is_refused_undecoded() {
    let tmp = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public = tmp.path().join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    let logs = tmp.path().join("logs");
    let mut s = sink(&logs, &key, 100);
    s.write_batch(&[entry(1)]).unwrap();
    s.shutdown().unwrap();
    drop(s);
    let day = logs.join(format!("audit_{DAY}.jsonl"));
    let mut all = lines(&day);
    all.push(format!("{{\"a\":[{}0]}}", "0,".repeat(2 << 20)));
    write_lines(&day, &all);
    let o = verify(&logs, &public);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        show(&o).chars().take(2000).collect::<String>()
    );
    assert!(show(&o).contains("100000 JSON values"));
}
