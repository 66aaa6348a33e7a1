//! What `AuditLayer` costs a span that is not an LLM call (new, enter, exit, close), next to the
//! same subscriber without it, in one run.
//!
//! Subscribers: none; the registry with a no-op layer; `fmt` writing JSON lines to nowhere; and
//! `tracing-opentelemetry` with a `BatchSpanProcessor` and an exporter that discards. Each is
//! measured alone and with `AuditLayer` after it, on one thread (`passthrough_1_thread`) and on
//! two threads at once (`passthrough_2_threads`: the time per span on each thread while the
//! other runs the same loop).
//!
//! Target: `AuditLayer` adds at most 10 ns and no allocation per span to the subscriber it joins.
//! The allocations on the calling thread per span are printed for every subscriber
//! (`llm-audit-bench passthrough/<subscriber> allocations_per_span=...`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

mod support;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use tracing::Dispatch;
use tracing_llm_audit::Overflow;

use support::{allocations_per_run, dispatch, plain_span, report, Base, Running};

/// Every subscriber of the group, by name; `None` is no subscriber at all.
fn subscribers() -> Vec<(String, Option<(Dispatch, Running)>)> {
    let mut all = vec![("no_subscriber".to_owned(), None)];
    for base in [Base::Registry, Base::FmtJson, Base::Otel] {
        all.push((base.name().to_owned(), Some(dispatch(base, None))));
        all.push((
            format!("{}+audit_layer", base.name()),
            Some(dispatch(base, Some(Overflow::DropNewest))),
        ));
    }
    all
}

fn with(dispatch: Option<&Dispatch>, f: impl FnOnce()) {
    let none = Dispatch::none();
    tracing::dispatcher::with_default(dispatch.unwrap_or(&none), f);
}

/// Times `iters` spans on each of `threads` threads started together; the slowest thread's time.
fn time_threads(dispatch: Option<&Dispatch>, threads: usize, iters: u64) -> Duration {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut elapsed = Duration::ZERO;
                    with(dispatch, || {
                        start.wait();
                        let began = Instant::now();
                        (0..iters).for_each(|_| plain_span());
                        elapsed = began.elapsed();
                    });
                    elapsed
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn bench_passthrough(c: &mut Criterion) {
    let subscribers = subscribers();
    let spans = if support::smoke() { 100 } else { 100_000 };
    for (name, running) in &subscribers {
        let d = running.as_ref().map(|(d, _)| d);
        with(d, || {
            let (per_span, bytes, _) = allocations_per_run(spans, plain_span);
            report(
                &format!("passthrough/{name}"),
                &[
                    ("allocations_per_span", format!("{per_span:.3}")),
                    ("bytes_per_span", format!("{bytes:.1}")),
                ],
            );
        });
    }
    let mut group = c.benchmark_group("passthrough_1_thread");
    for (name, running) in &subscribers {
        let d = running.as_ref().map(|(d, _)| d);
        with(d, || {
            group.bench_function(name, |b| b.iter(plain_span));
        });
    }
    group.finish();
    let mut group = c.benchmark_group("passthrough_2_threads");
    for (name, running) in &subscribers {
        let d = running.as_ref().map(|(d, _)| d);
        group.bench_function(name, |b| b.iter_custom(|iters| time_threads(d, 2, iters)));
    }
    group.finish();
    for (name, running) in subscribers {
        if let Some(stats) = running.and_then(|(_, r)| r.shutdown()) {
            assert_eq!(
                stats.emitted, 0,
                "{name}: plain spans must not become entries"
            );
        }
    }
}

/// `n` plain spans, and nothing else: what `scripts/passthrough_instructions.sh` counts the
/// instructions of (callgrind, collecting only inside this function, so on the calling thread).
#[inline(never)]
fn measured_spans(n: u64) {
    for _ in 0..n {
        plain_span();
    }
}

/// With `LLM_AUDIT_PASSTHROUGH_SPANS=<n>` and `LLM_AUDIT_PASSTHROUGH_SUBSCRIBER=<name>` (one of
/// the group's subscribers), runs `n` plain spans through that subscriber after a warm-up, and
/// no benchmark. Instruction counts do not move with the machine's load, as times do.
fn count_mode() -> bool {
    let Ok(spans) = std::env::var("LLM_AUDIT_PASSTHROUGH_SPANS") else {
        return false;
    };
    let spans: u64 = spans
        .parse()
        .expect("LLM_AUDIT_PASSTHROUGH_SPANS: a number");
    let wanted = std::env::var("LLM_AUDIT_PASSTHROUGH_SUBSCRIBER")
        .expect("LLM_AUDIT_PASSTHROUGH_SUBSCRIBER: a subscriber's name");
    // Room for every span: a full queue drops spans on the calling thread, and how many it
    // drops depends on when the export thread runs, so the count would too.
    let queue = usize::try_from(spans).expect("spans") + 2_000;
    support::OTEL_QUEUE.store(queue, std::sync::atomic::Ordering::Relaxed);
    let mut found = false;
    for (name, running) in subscribers() {
        if name != wanted {
            continue;
        }
        found = true;
        with(running.as_ref().map(|(d, _)| d), || {
            // The warm-up (the registry's slab and pools) is outside what is counted.
            (0..1_000).for_each(|_| plain_span());
            measured_spans(spans);
        });
        if let Some(stats) = running.and_then(|(_, r)| r.shutdown()) {
            assert_eq!(
                stats.emitted, 0,
                "{name}: plain spans must not become entries"
            );
        }
    }
    assert!(found, "no subscriber named `{wanted}`");
    true
}

criterion_group!(benches, bench_passthrough);

fn main() {
    if !count_mode() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
