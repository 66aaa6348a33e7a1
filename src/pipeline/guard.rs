//! The handle that flushes and stops the worker.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::{Message, Shared, Stats};
use crate::layer::BuildWarning;

/// How long dropping a [`WorkerGuard`] without [`shutdown`](WorkerGuard::shutdown) waits for the
/// worker to write what it holds.
pub const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the audit worker running; returned by [`AuditLayerBuilder::build`].
///
/// Call [`shutdown`](Self::shutdown) before the process exits: it returns once every entry the
/// layer accepted is written and flushed by every sink, and says what was lost, if anything.
/// Dropping the guard instead does the same on a best-effort basis (waiting at most
/// [`DROP_FLUSH_TIMEOUT`]) and reports nothing; it never prints.
///
/// [`AuditLayerBuilder::build`]: crate::AuditLayerBuilder::build
#[derive(Debug)]
#[must_use = "dropping the guard shuts the audit worker down; keep it for the life of the program"]
pub struct WorkerGuard {
    tx: Sender<Message>,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    warnings: Vec<BuildWarning>,
}

/// [`WorkerGuard::flush`] did not complete.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The worker did not answer in time; it goes on working.
    #[error("the audit worker did not finish flushing within {0:?}")]
    Timeout(Duration),
    /// The worker has shut down.
    #[error("the audit worker has shut down; nothing more can be flushed")]
    WorkerStopped,
    /// A sink failed to flush (the first one that failed; see [`Stats`] for all).
    #[error("audit sink `{sink}` failed to flush: {message}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// The sink's error with its causes.
        message: String,
    },
}

/// [`WorkerGuard::shutdown`] did not complete in time.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "the audit worker did not shut down within {timeout:?}: {pending} entries may not be written \
     (emitted {}, dropped {})",
    stats.emitted,
    stats.dropped
)]
pub struct ShutdownError {
    /// The timeout that passed.
    pub timeout: Duration,
    /// Entries emitted but not yet written by the slowest sink.
    pub pending: u64,
    /// The counters at the time of the timeout.
    pub stats: Stats,
}

impl WorkerGuard {
    pub(crate) fn new(
        tx: Sender<Message>,
        shared: Arc<Shared>,
        worker: JoinHandle<()>,
        warnings: Vec<BuildWarning>,
    ) -> Self {
        Self {
            tx,
            shared,
            worker: Some(worker),
            warnings,
        }
    }

    /// What [`build`](crate::AuditLayerBuilder::build) warned of (an ephemeral hash key,
    /// content kept in plain text), in the order it warned; empty when all is as production
    /// wants it. `build` also reported each one as it went (see [`BuildWarning`]).
    #[must_use]
    pub fn warnings(&self) -> &[BuildWarning] {
        &self.warnings
    }

    /// The counters so far: emitted, dropped, and per sink written and failed.
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// A handle that reads the counters at any time, also after the guard is gone (entries
    /// offered after shutdown are still counted as dropped).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.shared.clone())
    }

    /// Waits until every entry accepted before this call is written and flushed by every sink.
    ///
    /// # Errors
    /// When the worker does not answer within `timeout`, has shut down, or a sink failed to
    /// flush.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        self.tx
            .send_deadline(Message::Flush(reply_tx), deadline)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(_) => FlushError::Timeout(timeout),
                crossbeam_channel::SendTimeoutError::Disconnected(_) => FlushError::WorkerStopped,
            })?;
        match reply_rx.recv_deadline(deadline) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(FlushError::Timeout(timeout)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(FlushError::WorkerStopped)
            }
        }
    }

    /// Stops accepting entries, writes and flushes every entry accepted so far, shuts every sink
    /// down, and returns the final counters. Entries offered after this call are dropped and
    /// counted.
    ///
    /// # Errors
    /// When the worker does not finish within `timeout`; it goes on in the background.
    pub fn shutdown(mut self, timeout: Duration) -> Result<Stats, ShutdownError> {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> Result<Stats, ShutdownError> {
        let Some(worker) = self.worker.take() else {
            return Ok(self.stats());
        };
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        let answered = match self.tx.send_deadline(Message::Shutdown(reply_tx), deadline) {
            Ok(()) => !matches!(
                reply_rx.recv_deadline(deadline),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ),
            // The worker is already gone; it drained everything when it went.
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(_)) => false,
        };
        // Calls still running now are never written: counted, not lost in silence.
        let unfinished = self
            .shared
            .open_llm_spans
            .load(std::sync::atomic::Ordering::SeqCst) as u64;
        if answered {
            let _ = worker.join();
            let mut stats = self.stats();
            stats.unfinished_at_shutdown = unfinished;
            return Ok(stats);
        }
        let mut stats = self.stats();
        stats.unfinished_at_shutdown = unfinished;
        let slowest = stats
            .sinks
            .iter()
            .map(|s| s.written + s.failed + s.dropped)
            .min();
        let pending = stats
            .emitted
            .saturating_sub(stats.dropped)
            .saturating_sub(slowest.unwrap_or(0));
        Err(ShutdownError {
            timeout,
            pending,
            stats,
        })
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let _ = self.stop(DROP_FLUSH_TIMEOUT);
    }
}

/// Reads the pipeline's counters; made by [`WorkerGuard::stats_handle`].
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Shared>);

impl StatsHandle {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> Stats {
        self.0.snapshot()
    }
}
