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

use criterion::{criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, bench_passthrough);
criterion_main!(benches);
