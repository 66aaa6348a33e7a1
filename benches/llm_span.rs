//! What an LLM call span costs the caller's thread, by prompt size (0 B, 1 KiB, 16 KiB,
//! 256 KiB), next to its peers, in one run (group `llm_span`, ids `<subscriber>/<bytes>`).
//!
//! - `audit_layer`: the registry and `AuditLayer` (default `Overflow::DropNewest`), the prompt
//!   given with `record_input`; hashing and cost happen on the worker.
//! - `tracing_opentelemetry_batch`: `tracing-opentelemetry` with a `BatchSpanProcessor` and an
//!   exporter that discards, the prompt as the `gen_ai.input.messages` field.
//! - `fmt_json`: `tracing_subscriber::fmt` writing every closed span as a JSON line to nowhere.
//! - `hmac_sha256`: hashing the prompt alone (`HashKey::hash`), the cost per byte to compare the
//!   audit layer's growth with.
//!
//! - `audit_layer+tracing_opentelemetry`: both layers (the `otel` feature). The entry is assembled
//!   on the caller's thread, HMAC of the content included, to put its values on the
//!   OpenTelemetry span before that span is exported: compare with `tracing_opentelemetry_batch`
//!   and `hmac_sha256` at the same size.
//!
//! At 1 KiB only: `audit_layer_block` (`Overflow::Block`: back-to-back spans wait for the
//! worker, so this is the worker's throughput, HMAC included).
//!
//! Targets: at most 1 µs at 1 KiB (about 1/3 of tracing-opentelemetry), growth per byte no faster
//! than hashing, at most 6 allocations per span on the caller's thread (printed as
//! `llm-audit-bench llm_span/<subscriber>/<bytes> allocations_per_span=...`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tracing::Dispatch;
use tracing_llm_audit::Overflow;

use support::{
    allocations_per_run, dispatch, hash_key, llm_span_audit, llm_span_fields, report,
    thread_cpu_time, Base,
};

const SIZES: [usize; 4] = [0, 1024, 16 * 1024, 256 * 1024];

/// Runs one subscriber over every prompt size: allocations first, then timings.
fn bench_subscriber(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    dispatch: &Dispatch,
    sizes: &[usize],
    span: impl Fn(&str),
) {
    tracing::dispatcher::with_default(dispatch, || {
        for &size in sizes {
            let id = format!("llm_span/{name}/{size}");
            // In CPU-time mode, the spans not asked for do not run at all (their allocation
            // runs would be most of a profile of this mode).
            if cpu_time_filter()
                .is_some_and(|filter| !filter.iter().any(|f| id.contains(f.as_str())))
            {
                continue;
            }
            let prompt = "x".repeat(size);
            let runs = if support::smoke() { 10 } else { 2_000 };
            let (per_span, bytes, _) = allocations_per_run(runs, || span(&prompt));
            report(
                &id,
                &[
                    ("allocations_per_span", format!("{per_span:.2}")),
                    ("bytes_per_span", format!("{bytes:.0}")),
                ],
            );
            if cpu_time_filter().is_some() {
                cpu_time_per_span(&id, || span(&prompt));
            } else {
                group.bench_with_input(BenchmarkId::new(name, size), &prompt, |b, prompt| {
                    b.iter(|| span(prompt));
                });
            }
        }
    });
}

/// When this variable is set, the benchmarks whose id contains one of its comma-separated parts
/// (`audit_layer/,tracing_opentelemetry_batch/`; empty for all) are measured in CPU time of the
/// calling thread instead of criterion's wall-clock time, and nothing else is timed. On a
/// machine shared with other work, preemption inflates wall-clock medians by more than the
/// differences being measured, while the thread's CPU time counts only what the span costs
/// the caller (other threads, the audit worker included, do not count).
const CPU_TIME_ENV: &str = "LLM_SPAN_CPU_TIME";

/// The parts of [`CPU_TIME_ENV`], `None` when it is not set.
fn cpu_time_filter() -> Option<Vec<String>> {
    let value = std::env::var(CPU_TIME_ENV).ok()?;
    Some(value.split(',').map(str::to_owned).collect())
}

/// Prints the median and the lowest CPU time per span over batches of spans, as
/// `llm-audit-bench <id> cpu_ns_median=... cpu_ns_min=...`.
fn cpu_time_per_span(id: &str, mut span: impl FnMut()) {
    // Batches of about 20 ms (at least 100 spans).
    let start = thread_cpu_time();
    for _ in 0..100 {
        span();
    }
    let calibration = (thread_cpu_time() - start).as_secs_f64() / 100.0;
    let (batches, per_batch) = if support::smoke() {
        (3, 100)
    } else {
        (
            21,
            ((0.02 / calibration.max(1e-9)) as u32).clamp(100, 100_000),
        )
    };
    // Criterion's warm-up: 3 s, by which time the audit queue is full and the pipeline is in
    // its steady state (the queue filling costs the caller fresh pages).
    let warm_up = std::time::Instant::now();
    while warm_up.elapsed() < std::time::Duration::from_secs(if support::smoke() { 0 } else { 3 }) {
        for _ in 0..per_batch {
            span();
        }
    }
    let mut per_span: Vec<f64> = (0..batches)
        .map(|_| {
            let start = thread_cpu_time();
            for _ in 0..per_batch {
                span();
            }
            (thread_cpu_time() - start).as_nanos() as f64 / f64::from(per_batch)
        })
        .collect();
    per_span.sort_by(f64::total_cmp);
    report(
        id,
        &[
            (
                "cpu_ns_median",
                format!("{:.0}", per_span[per_span.len() / 2]),
            ),
            ("cpu_ns_min", format!("{:.0}", per_span[0])),
        ],
    );
}

fn bench_llm_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm_span");
    let audit = |prompt: &str| llm_span_audit(prompt.as_bytes());
    let one_kib = [1024];
    for (name, base, overflow, sizes, by_fields) in [
        (
            "audit_layer",
            Base::Registry,
            Some(Overflow::DropNewest),
            &SIZES[..],
            false,
        ),
        (
            "audit_layer_block",
            Base::Registry,
            Some(Overflow::Block),
            &one_kib[..],
            false,
        ),
        (
            "tracing_opentelemetry_batch",
            Base::Otel,
            None,
            &SIZES[..],
            true,
        ),
        (
            "audit_layer+tracing_opentelemetry",
            Base::Otel,
            Some(Overflow::DropNewest),
            &SIZES[..],
            false,
        ),
        ("fmt_json", Base::FmtJson, None, &SIZES[..], true),
    ] {
        let (d, running) = dispatch(base, overflow);
        if by_fields {
            bench_subscriber(&mut group, name, &d, sizes, llm_span_fields);
        } else {
            bench_subscriber(&mut group, name, &d, sizes, audit);
        }
        if let Some(stats) = running.shutdown() {
            if overflow == Some(Overflow::Block) {
                assert_eq!(stats.dropped, 0, "{stats:?}");
            }
        }
    }
    let key = hash_key();
    for size in SIZES {
        let prompt = "x".repeat(size);
        if let Some(filter) = cpu_time_filter() {
            let id = format!("llm_span/hmac_sha256/{size}");
            if filter.iter().any(|f| id.contains(f.as_str())) {
                cpu_time_per_span(&id, || {
                    black_box(key.hash(prompt.as_bytes()));
                });
            }
        } else {
            group.bench_with_input(BenchmarkId::new("hmac_sha256", size), &prompt, |b, p| {
                b.iter(|| black_box(key.hash(p.as_bytes())));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_llm_span);
criterion_main!(benches);
