//! How many entries a second each sink takes, next to its peer, in one run. Batches of 1,024
//! entries (the pipeline's default largest batch), each sink called directly as its lane does.
//!
//! - `jsonl`: `JsonlSink` at each fsync policy (`never`, `every_n_1000`, `interval_100ms`,
//!   `every_batch` with batches of 1,024 and of 64), plus `every_n_1000_chained` (tamper
//!   evidence on), into a fresh directory beside the build (a real disk, not tmpfs) for every
//!   sample. Peer: `serde_json_only`, serializing the same entries into a reused buffer (the
//!   sink's own encoder writes the same bytes without serde's data model, so it may beat it).
//!   Target: at least 1,000,000 entries/s syncing every 1,000 entries. Also printed: the
//!   allocations of a batch once the sink's buffers have grown (`allocations_per_batch`). The
//!   disk's floor for that policy is `write_and_fdatasync_only`: the same entries, serialized
//!   once beforehand (unchained), appended and synced once per batch of 1,024 (on a VM disk whose sync takes milliseconds, no
//!   sink syncing every 1,000 entries can beat it).
//! - `otlp` (feature `otlp`): `OtlpLogSink` over gRPC and over HTTP/protobuf to the in-process
//!   receivers of the tests on 127.0.0.1. Target: at least 200,000 entries/s. Each figure
//!   includes the receiver's work, on the same cores: decoding every request into
//!   `opentelemetry-proto` structs and keeping it (about half the CPU time of a sample). Also
//!   printed: the sink's own CPU time per entry (it encodes and exports on the calling thread)
//!   and the rate that alone would allow (`sink_cpu_ns_per_entry`, `sink_alone_per_second`).
//!   The peers `…/one_request_per_batch` send each batch as one request instead of the sink's
//!   requests of at most 512 KiB with several in flight.
//!
//! PostgreSQL batch sizes are in `benches/postgres.rs`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::{AuditEntry, AuditSink, FsyncPolicy, JsonlSink};

use support::entries;

const BATCH: usize = 1024;

/// A sink in a new directory beside the build (the directory goes when it is dropped).
fn jsonl_sink(policy: FsyncPolicy, chained: bool) -> (JsonlSink, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
    let mut builder = JsonlSink::builder(dir.path()).fsync(policy);
    if chained {
        builder = builder.chain(SigningKey::generate().expect("key"));
    }
    (builder.build().expect("sink"), dir)
}

/// Writes `iters` batches to a new sink in a new directory; the time of the writes alone (the
/// final sync at shutdown is not part of a policy's cost).
fn time_jsonl(policy: FsyncPolicy, chained: bool, batch: &[AuditEntry], iters: u64) -> Duration {
    let (mut sink, _dir) = jsonl_sink(policy, chained);
    let began = Instant::now();
    for _ in 0..iters {
        sink.write_batch(black_box(batch)).expect("write");
    }
    let elapsed = began.elapsed();
    sink.shutdown().expect("shutdown");
    elapsed
}

/// Prints the allocations of a batch once the sink's buffers have grown to the batch size
/// (after a first batch): the steady state of a lane.
fn report_jsonl_allocations(batch: &[AuditEntry]) {
    const BATCHES: u64 = 10;
    for (name, chained) in [("jsonl/never", false), ("jsonl/never_chained", true)] {
        let (mut sink, _dir) = jsonl_sink(FsyncPolicy::Never, chained);
        sink.write_batch(batch).expect("write");
        let counts = support::count(|| {
            for _ in 0..BATCHES {
                sink.write_batch(black_box(batch)).expect("write");
            }
        });
        sink.shutdown().expect("shutdown");
        support::report(
            name,
            &[(
                "allocations_per_batch",
                format!("{:.1}", counts.this_thread as f64 / BATCHES as f64),
            )],
        );
    }
}

fn bench_jsonl(c: &mut Criterion) {
    let batch = entries(BATCH);
    report_jsonl_allocations(&batch);
    let mut group = c.benchmark_group("jsonl");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("serde_json_only", |b| {
        let mut buf = Vec::with_capacity(BATCH * 1024);
        b.iter(|| {
            buf.clear();
            for entry in &batch {
                serde_json::to_writer(&mut buf, entry).expect("serialize");
                buf.push(b'\n');
            }
            black_box(&buf);
        });
    });
    // The disk's floor for a sync about every 1,000 entries: the same entries, serialized once
    // beforehand (unchained), appended to a file and `fdatasync`ed once per batch of 1,024.
    group.bench_function("write_and_fdatasync_only", |b| {
        let mut bytes = Vec::new();
        for entry in &batch {
            serde_json::to_writer(&mut bytes, entry).expect("serialize");
            bytes.push(b'\n');
        }
        b.iter_custom(|iters| {
            use std::io::Write;
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
            let mut file = std::fs::File::create(dir.path().join("floor.jsonl")).expect("file");
            let began = Instant::now();
            for _ in 0..iters {
                file.write_all(black_box(&bytes)).expect("write");
                file.sync_data().expect("fdatasync");
            }
            began.elapsed()
        });
    });
    for (name, policy, chained) in [
        ("never", FsyncPolicy::Never, false),
        ("every_n_1000", FsyncPolicy::EveryN(1000), false),
        ("every_n_1000_chained", FsyncPolicy::EveryN(1000), true),
        (
            "interval_100ms",
            FsyncPolicy::Interval(Duration::from_millis(100)),
            false,
        ),
        ("every_batch", FsyncPolicy::EveryBatch, false),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| time_jsonl(policy, chained, &batch, iters));
        });
    }
    let small = entries(64);
    group.throughput(Throughput::Elements(small.len() as u64));
    group.bench_function("every_batch_of_64", |b| {
        b.iter_custom(|iters| time_jsonl(FsyncPolicy::EveryBatch, false, &small, iters));
    });
    group.finish();
}

#[cfg(feature = "otlp")]
#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../tests/support/otlp_receiver.rs"]
mod otlp_receiver;

#[cfg(feature = "otlp")]
fn bench_otlp(c: &mut Criterion) {
    use tracing_llm_audit::otlp::{OtlpLogSink, Protocol};

    let batch = entries(BATCH);
    let grpc = otlp_receiver::GrpcReceiver::start();
    let http = otlp_receiver::HttpReceiver::start();
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(BATCH as u64));
    // Each protocol twice: as the sink sends a batch (requests of at most 512 KiB, several in
    // flight), and as one request per batch (the peer: what the sink did before).
    for (name, protocol, endpoint, received, max_request_bytes) in [
        (
            "grpc",
            Protocol::Grpc,
            grpc.endpoint(),
            &grpc.received,
            None,
        ),
        (
            "grpc/one_request_per_batch",
            Protocol::Grpc,
            grpc.endpoint(),
            &grpc.received,
            Some(usize::MAX),
        ),
        (
            "http_protobuf",
            Protocol::HttpProtobuf,
            http.endpoint(),
            &http.received,
            None,
        ),
        (
            "http_protobuf/one_request_per_batch",
            Protocol::HttpProtobuf,
            http.endpoint(),
            &http.received,
            Some(usize::MAX),
        ),
    ] {
        let mut builder = OtlpLogSink::builder()
            .with_endpoint(endpoint)
            .with_protocol(protocol);
        if let Some(bytes) = max_request_bytes {
            builder = builder.with_max_request_bytes(bytes);
        }
        let mut sink = builder.build().expect("sink");
        // Connects.
        sink.write_batch(&batch).expect("first export");
        // The sink's own CPU time: it encodes and exports on the calling thread (a runtime of
        // its own on that thread), while the receiver decodes on threads of its own.
        let (mut sink_cpu, mut exported) = (Duration::ZERO, 0u64);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let began = Instant::now();
                let cpu = support::thread_cpu_time();
                for _ in 0..iters {
                    sink.write_batch(black_box(&batch)).expect("export");
                }
                let elapsed = began.elapsed();
                sink_cpu += support::thread_cpu_time() - cpu;
                exported += iters * BATCH as u64;
                // The receivers keep what they get; a long run would fill the memory.
                let mut received = received.lock().expect("receiver");
                received.requests.clear();
                received.headers.clear();
                elapsed
            });
        });
        let per_entry = sink_cpu.as_nanos() as f64 / exported.max(1) as f64;
        // Not when the filter left this one out.
        if exported > 0 {
            support::report(
                &format!("otlp/{name}"),
                &[
                    ("sink_cpu_ns_per_entry", format!("{per_entry:.0}")),
                    (
                        "sink_alone_per_second",
                        format!("{:.0}", 1e9 / per_entry.max(1.0)),
                    ),
                ],
            );
        }
        sink.shutdown().expect("shutdown");
    }
    group.finish();
}

#[cfg(not(feature = "otlp"))]
fn bench_otlp(_: &mut Criterion) {
    eprintln!("skipped: the OTLP sink needs the feature `otlp`");
}

criterion_group!(benches, bench_jsonl, bench_otlp);
criterion_main!(benches);
