//! A burst of 1,000,000 LLM spans, with 1 KiB and with 64 KiB prompts, at ten times the speed of
//! the sink, through an `AuditLayer` with its defaults (`Overflow::DropNewest`, queue bounds of
//! 65,536 entries and `DEFAULT_QUEUE_MAX_BYTES`, 64 MiB).
//!
//! The calling thread runs flat out; first a short run into a sink that discards measures its
//! speed, then the sink under test takes entries at a tenth of it. The figures, printed as
//! `llm-audit-bench burst/<prompt bytes> ...`: the peak of memory allocated and not freed on
//! every thread during the burst and its drain (a counting global allocator), next to the
//! configured bound; the entries dropped (the guard's `Stats`: at the queue, and at the sink's
//! backlog); and whether and how fast the pipeline drained afterwards.
//!
//! The byte bound covers everything the pipeline holds: calls in the queue with their content,
//! the batch the worker is assembling, each sink's backlog of assembled entries (up to
//! `DEFAULT_SINK_BACKLOG` entries and half the bound), and the records kept for reuse. The
//! pipeline's own account of it is printed as `peak_held_bytes`. The 1 KiB burst runs a second
//! time with a backlog of 1,024 entries (`burst/1024/backlog_1024`) to show the entry bound.
//!
//! Not a criterion benchmark: one burst is the measurement. `--test` (CI's smoke run) sends
//! 10,000 spans.

mod support;

use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, SinkError, Stats, DEFAULT_QUEUE_MAX_BYTES,
};
use tracing_subscriber::layer::SubscriberExt;

use support::{hash_key, llm_span_audit, report, DiscardSink, PeakMemory};

/// A sink that takes `per_second` entries a second, sleeping to keep to it.
#[derive(Debug)]
struct PacedSink {
    per_second: f64,
    started: Option<Instant>,
    accepted: u64,
}

impl AuditSink for PacedSink {
    fn name(&self) -> &str {
        "paced"
    }
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let started = *self.started.get_or_insert_with(Instant::now);
        self.accepted += entries.len() as u64;
        let due = started + Duration::from_secs_f64(self.accepted as f64 / self.per_second);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Sends `spans` LLM spans with `prompt` through a layer writing to `sink` (with a backlog of
/// `backlog` entries, else the default): the time it took, the final stats, the time the queue
/// took to drain and the peak of memory.
fn send(
    sink: impl AuditSink,
    backlog: Option<usize>,
    spans: u64,
    prompt: &[u8],
) -> (Duration, Stats, Duration, u64) {
    let mut builder = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(hash_key());
    if let Some(entries) = backlog {
        builder = builder.with_sink_backlog(entries);
    }
    let (layer, guard) = builder.build().expect("audit layer");
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let peak = PeakMemory::start();
    let began = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        (0..spans).for_each(|_| llm_span_audit(prompt));
    });
    let sent = began.elapsed();
    let drain_began = Instant::now();
    guard
        .flush(Duration::from_secs(600))
        .expect("the queue drains");
    let drained = drain_began.elapsed();
    let peak = peak.stop();
    let stats = guard.shutdown(Duration::from_secs(60)).expect("shutdown");
    (sent, stats, drained, peak)
}

fn burst(spans: u64, prompt_bytes: usize, backlog: Option<usize>) {
    let prompt = vec![b'x'; prompt_bytes];
    let calibration = (spans / 20).max(1_000);
    let (took, ..) = send(DiscardSink, backlog, calibration, &prompt);
    let producer_rate = calibration as f64 / took.as_secs_f64();
    let sink_rate = producer_rate / 10.0;
    let sink = PacedSink {
        per_second: sink_rate,
        started: None,
        accepted: 0,
    };
    let (sent, stats, drained, peak) = send(sink, backlog, spans, &prompt);
    let sink = &stats.sinks[0];
    let accounted =
        stats.dropped + stats.internal_errors + sink.written + sink.failed + sink.dropped;
    let id = match backlog {
        Some(entries) => format!("burst/{prompt_bytes}/backlog_{entries}"),
        None => format!("burst/{prompt_bytes}"),
    };
    report(
        &id,
        &[
            ("spans", spans.to_string()),
            ("producer_per_s", format!("{producer_rate:.0}")),
            ("sink_per_s", format!("{sink_rate:.0}")),
            ("burst_s", format!("{:.2}", sent.as_secs_f64())),
            ("peak_bytes", peak.to_string()),
            ("bound_bytes", DEFAULT_QUEUE_MAX_BYTES.to_string()),
            ("peak_held_bytes", stats.peak_held_bytes.to_string()),
            ("emitted", stats.emitted.to_string()),
            ("dropped_at_queue", stats.dropped.to_string()),
            ("dropped_at_sink_backlog", sink.dropped.to_string()),
            ("written", sink.written.to_string()),
            ("drop_reports_written", sink.events_written.to_string()),
            ("drain_s", format!("{:.2}", drained.as_secs_f64())),
            (
                "drained",
                (accounted == stats.emitted && stats.emitted == spans).to_string(),
            ),
        ],
    );
}

fn main() {
    let spans = if support::smoke() { 10_000 } else { 1_000_000 };
    burst(spans, 1024, None);
    burst(spans, 1024, Some(1024));
    burst(spans, 64 * 1024, None);
}
