//! Where audit entries go: the [`AuditSink`] trait and the built-in sinks.
//!
//! The pipeline's worker thread owns every sink and calls them one after another with the same
//! batch, so a sink needs no locking of its own. Sinks run with tracing suppressed: whatever they
//! log cannot come back into the audit layer.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::entry::AuditEntry;

#[cfg(feature = "jsonl")]
mod jsonl;
#[cfg(feature = "jsonl")]
pub mod log_file;
#[cfg(feature = "jsonl")]
pub mod repair;
#[cfg(feature = "jsonl")]
pub use jsonl::{
    FsyncPolicy, JsonlError, JsonlSink, JsonlSinkBuilder, DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_CHECKPOINT_INTERVAL,
};

mod stdout;
pub use stdout::StdoutSink;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresError, PostgresSink, PostgresSinkBuilder};

#[cfg(feature = "testing")]
mod memory;
#[cfg(feature = "testing")]
pub use memory::MemorySink;

pub(crate) mod line;

/// The longest line a sink writes for one entry, its `chain` member included: 64 MiB. An entry
/// whose line would be longer is not written (counted failed, with the reason), and readers
/// (`llm-audit verify`, `query`, `report`, ...) refuse a longer line without holding it in
/// memory: no line of an audit log, forged or not, can make a reader use more.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// A destination for audit entries.
///
/// Object-safe, so that several sinks of different kinds run side by side. Every lifecycle method
/// is required: a sink that buffers must say what `flush` and `shutdown` mean for it.
///
/// The worker retries a failed batch with backoff, starting after the entries the error reports
/// as [accepted](SinkError::accepted), or after the wait the error asks for
/// ([`retry_after`](SinkError::retry_after)); what cannot be delivered is counted as failed for
/// that sink in [`Stats`](crate::Stats).
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// A short name for statistics and error messages, for example `jsonl`.
    fn name(&self) -> &str;

    /// Writes a batch of entries, in order.
    ///
    /// `Ok` means every entry was accepted. On error, [`SinkError::accepted`] tells how many
    /// entries at the front of the batch were accepted before the failure; the rest were not.
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError>;

    /// Makes everything accepted so far durable (written to disk, committed, acknowledged).
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Flushes and releases the sink's resources; no call follows it.
    fn shutdown(&mut self) -> Result<(), SinkError>;

    /// How many entries of the last [`write_batch`](Self::write_batch) the sink accepted
    /// without delivering them: it keeps them durably to deliver later, such as
    /// `PostgresSink`'s spill directory while its database is unreachable. The pipeline counts them in [`SinkStats::spilled`](crate::SinkStats::spilled),
    /// never in `written`. Default: 0, for a sink that delivers everything it accepts.
    fn spilled_in_last_batch(&self) -> usize {
        0
    }
}

impl<S: AuditSink + ?Sized> AuditSink for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        (**self).write_batch(entries)
    }

    fn spilled_in_last_batch(&self) -> usize {
        (**self).spilled_in_last_batch()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        (**self).shutdown()
    }
}

/// A sink could not do what was asked.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    accepted: usize,
    rejected: usize,
    retry_after: Option<Duration>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The longest wait before a retry that a [`SinkError::with_retry_after`] gets: 5 minutes.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

impl SinkError {
    /// An error described by `message`, with no entry of the batch accepted.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            accepted: 0,
            rejected: 0,
            retry_after: None,
            source: None,
        }
    }

    /// An error described by `message`, caused by `source`.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            accepted: 0,
            rejected: 0,
            retry_after: None,
            source: Some(source.into()),
        }
    }

    /// Says that the first `accepted` entries of the batch were accepted before the failure.
    #[must_use]
    pub fn accepted_before_failure(mut self, accepted: usize) -> Self {
        self.accepted = accepted;
        self
    }

    /// How many entries at the front of the batch were accepted before the failure.
    #[must_use]
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// Says that `rejected` of the accepted entries were refused for good (they would fail on
    /// every retry, like an entry that cannot be serialized) and were left out, while the
    /// others were written. The pipeline counts them as failed and does not retry them.
    #[must_use]
    pub fn with_rejected(mut self, rejected: usize) -> Self {
        self.rejected = rejected;
        self
    }

    /// How many of the accepted entries were refused for good; see
    /// [`with_rejected`](Self::with_rejected).
    #[must_use]
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// Says that the receiver asked to be left alone for `wait` (an HTTP `Retry-After`, a gRPC
    /// `RetryInfo`): the pipeline waits that long before the next attempt, instead of its
    /// backoff, and at most [`MAX_RETRY_AFTER`]. While the sink's backlog has room and the
    /// pipeline is not shutting down, such a wait is a delay: it uses none of the retries of
    /// [`with_retry`](crate::AuditLayerBuilder::with_retry), and nothing is counted failed for
    /// it.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.min(MAX_RETRY_AFTER));
        self
    }

    /// The wait the receiver asked for before the next attempt, at most [`MAX_RETRY_AFTER`];
    /// see [`with_retry_after`](Self::with_retry_after).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Formats an error with its chain of sources, `outer: inner: innermost`.
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        out.push_str(": ");
        out.push_str(&source.to_string());
        next = source.source();
    }
    out
}

/// An error's sentence for a person: its `Display`, then each cause that the text does not
/// already say (`cannot read key.pem: No such file or directory (os error 2)`).
pub(crate) fn sentence(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        let text = source.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = source.source();
    }
    out
}
