//! Counters the pipeline keeps, readable at any time through [`WorkerGuard::stats`].
//!
//! [`WorkerGuard::stats`]: crate::WorkerGuard::stats

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What the pipeline did with the entries it was given.
///
/// For every sink, once the worker has shut down:
/// `emitted == dropped + internal_errors + sink.written + sink.spilled + sink.failed +
/// sink.dropped`, where `dropped` counts entries that never reached the queue and
/// `sink.dropped` entries that the sink's backlog had no room for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// LLM spans that closed and were offered to the pipeline.
    pub emitted: u64,
    /// Entries refused because the queue was full (overflow policy `DropNewest`), larger than
    /// the whole byte bound, or offered after the worker had shut down.
    pub dropped: u64,
    /// Entries whose content could not be turned into an entry (never expected; counted so that
    /// the sum above holds).
    pub internal_errors: u64,
    /// Per sink, in the order they were added.
    pub sinks: Vec<SinkStats>,
    /// Bytes the pipeline holds now, as charged against its bound (`queue_max_bytes`): calls
    /// in the queue with their content, entries assembled and not yet written by every sink,
    /// and records kept for reuse.
    pub held_bytes: u64,
    /// The most bytes the pipeline held at once since it started. It stays within the bound,
    /// except by one call larger than the whole bound, which is let through when nothing else
    /// is held.
    pub peak_held_bytes: u64,
    /// Set by [`shutdown`](crate::WorkerGuard::shutdown) only: LLM spans still open then
    /// (calls in flight, a stream the application never finished). Their entries are never
    /// written; before, they were not counted anywhere.
    pub unfinished_at_shutdown: u64,
}

impl Stats {
    /// Whether every emitted entry reached every sink, and no call was still running at
    /// shutdown. An entry a sink [spilled](SinkStats::spilled) reached it: it is durable in
    /// the sink's keeping, waiting to be delivered.
    #[must_use]
    pub fn is_lossless(&self) -> bool {
        self.dropped == 0
            && self.unfinished_at_shutdown == 0
            && self.internal_errors == 0
            && self
                .sinks
                .iter()
                .all(|s| s.failed == 0 && s.dropped == 0 && s.written + s.spilled == self.emitted)
    }
}

/// What one sink did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's [`name`](crate::AuditSink::name).
    pub name: String,
    /// Entries of LLM calls the sink accepted and delivered (for `PostgresSink`, committed to
    /// the table).
    pub written: u64,
    /// Entries of LLM calls the sink accepted without delivering them, keeping them durably
    /// to deliver later ([`AuditSink::spilled_in_last_batch`](crate::AuditSink::spilled_in_last_batch)):
    /// `PostgresSink` while its database is unreachable or not set up for it, in its spill
    /// directory. Never counted in `written`, also once delivered later (the spill's own
    /// status counts what it replayed).
    pub spilled: u64,
    /// Entries the sink did not accept after every retry.
    pub failed: u64,
    /// Entries never handed to the sink because it had fallen a whole backlog behind (overflow
    /// policy `DropNewest`); the other sinks received them.
    pub dropped: u64,
    /// Pipeline events (such as "entries were dropped") the sink accepted.
    pub events_written: u64,
    /// Retries of failed writes.
    pub retries: u64,
    /// Waits the sink's receiver asked for before the next attempt
    /// ([`SinkError::retry_after`](crate::SinkError::retry_after): an HTTP `Retry-After`, a gRPC
    /// `RetryInfo`), taken while the sink's backlog had room: delays, not failures, and not
    /// counted in `retries`.
    pub throttled: u64,
    /// Failed flushes: entries written before one may not be durable.
    pub flush_failures: u64,
    /// The last error the sink returned, with its causes.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    pub(crate) name: String,
    pub(crate) written: AtomicU64,
    pub(crate) spilled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) events_written: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) flush_failures: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl SinkCounters {
    pub(crate) fn set_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }
}

/// The counters shared by the layer (on the application's threads) and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) emitted: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) internal_errors: AtomicU64,
    pub(crate) sinks: Vec<Arc<SinkCounters>>,
}

impl Counters {
    pub(crate) fn new(sink_names: impl IntoIterator<Item = String>) -> Arc<Self> {
        Arc::new(Self {
            sinks: sink_names
                .into_iter()
                .map(|name| {
                    Arc::new(SinkCounters {
                        name,
                        ..SinkCounters::default()
                    })
                })
                .collect(),
            ..Self::default()
        })
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            emitted: self.emitted.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            internal_errors: self.internal_errors.load(Relaxed),
            sinks: self
                .sinks
                .iter()
                .map(|s| SinkStats {
                    name: s.name.clone(),
                    written: s.written.load(Relaxed),
                    spilled: s.spilled.load(Relaxed),
                    failed: s.failed.load(Relaxed),
                    dropped: s.dropped.load(Relaxed),
                    events_written: s.events_written.load(Relaxed),
                    retries: s.retries.load(Relaxed),
                    throttled: s.throttled.load(Relaxed),
                    flush_failures: s.flush_failures.load(Relaxed),
                    last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
                })
                .collect(),
            held_bytes: 0,
            unfinished_at_shutdown: 0,
            peak_held_bytes: 0,
        }
    }
}
