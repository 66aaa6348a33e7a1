//! Scanning a JSONL audit directory of 1,000,000 entries (about 1 GB) with the `llm-audit`
//! binary, as a user runs it: `report usage` and `report cost` (parallel, lean decoding) and
//! `query` with a filter that matches nothing (every line decoded into a whole entry, in order).
//! The peer is `wc -l`, the cost of reading the bytes. Target: well under 2 s for a report.
//!
//! `cargo bench -p llm-audit --bench scan -- --test` (the CI smoke run) uses 10,000 entries.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use tracing_llm_audit::{AuditEntry, AuditSink, JsonlSink, Status};

fn dataset(dir: &Path, n: usize) {
    dataset_with(JsonlSink::new(dir).unwrap(), n);
}

fn dataset_with(mut sink: JsonlSink, n: usize) {
    let now = OffsetDateTime::now_utc();
    let span = time::Duration::days(2).whole_seconds() as usize;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let mut e = AuditEntry::new("chat");
        e.timestamp = now - time::Duration::seconds(((n - i) * span / n) as i64);
        e.timestamp = e
            .timestamp
            .replace_nanosecond(e.timestamp.microsecond() * 1_000)
            .unwrap();
        e.user_id = Some(format!("user-{}", i % 500));
        e.provider = Some(["openai", "anthropic"][i % 2].into());
        e.model = Some(
            [
                "gpt-4o-mini",
                "claude-sonnet-4-5",
                "gpt-4.1",
                "claude-haiku-4-5",
            ][i % 4]
                .into(),
        );
        e.response_model = e.model.clone();
        e.input_tokens = Some(500 + (i % 3_000) as u64);
        e.output_tokens = Some(100 + (i % 700) as u64);
        e.cache_read_tokens = Some((i % 200) as u64);
        e.cost_usd = Some(Decimal::new(1_234_567 + (i % 10_000) as i64, 9));
        e.latency_ms = 300 + (i % 4_000) as u64;
        e.input_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
        e.output_hash = Some(format!("hmac-sha256:{}", "cd".repeat(32)));
        e.hash_key_id = Some("k1".into());
        e.trace_id = Some(format!("{i:032x}"));
        e.span_id = Some(format!("{i:016x}"));
        e.finish_reasons = Some(vec!["stop".into()]);
        if i % 50 == 0 {
            e.status = Status::Error;
            e.error_type = Some("rate_limit_error".into());
        }
        batch.push(e);
        if batch.len() == batch.capacity() {
            sink.write_batch(&batch).unwrap();
            batch.clear();
        }
    }
    sink.write_batch(&batch).unwrap();
    sink.shutdown().unwrap();
}

fn run(args: &[&str], dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .args(["--format", "csv", "--from", "30d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scan(c: &mut Criterion) {
    let smoke = std::env::args().any(|a| a == "--test");
    let n = if smoke { 10_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), n);
    let mut group = c.benchmark_group(format!("scan_{n}_entries"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("wc -l (reading the bytes)", |b| {
        b.iter(|| {
            let files: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            let out = Command::new("wc").arg("-l").args(&files).output().unwrap();
            assert!(out.status.success());
        });
    });
    group.bench_function("report usage", |b| {
        b.iter(|| run(&["report", "usage"], dir.path()))
    });
    group.bench_function("report cost --by user,day", |b| {
        b.iter(|| run(&["report", "cost", "--by", "user,day"], dir.path()));
    });
    group.bench_function("query --user nobody", |b| {
        b.iter(|| run(&["query", "--user", "nobody"], dir.path()));
    });
    group.finish();
}

/// `llm-audit verify` over a tamper-evident log (chained lines, a checkpoint every 10,000).
/// Target: at least 500,000 entries/s.
fn verify(c: &mut Criterion) {
    let smoke = std::env::args().any(|a| a == "--test");
    let n = if smoke { 2_000 } else { 500_000 };
    // For profiling: LLM_AUDIT_BENCH_KEEP=<dir> writes the dataset and its public key there,
    // and leaves them.
    let temp = tempfile::tempdir().unwrap();
    let root = std::env::var_os("LLM_AUDIT_BENCH_KEEP")
        .map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);
    let dir = root.join("log");
    std::fs::create_dir_all(&dir).unwrap();
    let key = tracing_llm_audit::chain::SigningKey::generate().unwrap();
    let public = root.join("k.pub");
    std::fs::write(&public, key.verifying_key().to_public_text()).unwrap();
    dataset_with(JsonlSink::builder(&dir).chain(key).build().unwrap(), n);
    let mut group = c.benchmark_group(format!("verify_{n}_entries"));
    group
        .sample_size(10)
        .throughput(criterion::Throughput::Elements(n as u64));
    group.bench_function("llm-audit verify", |b| {
        b.iter(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
                .args(["verify", "--dir"])
                .arg(&dir)
                .arg("--public-key")
                .arg(&public)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
    });
    group.finish();
    // The verifier's peak memory: it checks each stream as it reads, so this should not grow
    // with the number of entries.
    let child = Command::new(env!("CARGO_BIN_EXE_llm-audit"))
        .args(["verify", "--dir"])
        .arg(&dir)
        .arg("--public-key")
        .arg(&public)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(child);
    assert!(status.success());
    println!("llm-audit-bench verify/peak_rss entries={n} peak_rss_bytes={peak}");
}

/// Waits for `child`; its exit status and its peak resident memory in bytes.
fn wait_with_peak_rss(child: std::process::Child) -> (std::process::ExitStatus, u64) {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `usage` is written by `wait4` before it is read; the child is ours and not yet
    // waited for (`Child` is not used again, and its drop neither waits nor kills).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        usage
    };
    drop(child);
    // Linux reports `ru_maxrss` in KiB.
    let peak = u64::try_from(usage.ru_maxrss).unwrap() * 1024;
    (std::process::ExitStatus::from_raw(status), peak)
}

criterion_group!(benches, scan, verify);
criterion_main!(benches);
