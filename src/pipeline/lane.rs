//! One thread per sink, so that a slow or failing sink delays only itself.
//!
//! The worker assembles each batch once and hands the same `Arc` to every lane. A lane holds at
//! most its backlog of entries; when a sink falls that far behind, the worker waits for it under
//! [`Overflow::Block`](super::Overflow::Block) and drops the batch for that sink alone (counted in
//! its [`SinkStats::dropped`](super::SinkStats::dropped)) under `DropNewest`. The other sinks
//! keep receiving every entry.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tracing::Dispatch;

use super::stats::SinkCounters;
use super::{FlushError, RetryPolicy, Shared};
use crate::entry::AuditEntry;
use crate::sink::{error_chain, AuditSink, SinkError, MAX_RETRY_AFTER};

/// Assembled entries on their way to the sinks. The batch keeps its charge against the
/// pipeline's byte bound until the last lane that took it is done with it.
pub(crate) struct Batch {
    entries: Vec<AuditEntry>,
    charge: Option<(Arc<Shared>, usize)>,
}

impl Batch {
    /// Entries charged `bytes` against `shared`'s bound, released when the batch is dropped.
    pub(crate) fn charged(entries: Vec<AuditEntry>, shared: Arc<Shared>, bytes: usize) -> Self {
        Self {
            entries,
            charge: Some((shared, bytes)),
        }
    }
}

impl Batch {
    /// The bytes the batch is charged against the bound.
    pub(crate) fn bytes(&self) -> usize {
        self.charge.as_ref().map_or(0, |(_, bytes)| *bytes)
    }
}

impl std::ops::Deref for Batch {
    type Target = [AuditEntry];

    fn deref(&self) -> &[AuditEntry] {
        &self.entries
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some((shared, bytes)) = self.charge.take() {
            // The entries go first, then their charge: the bound never reads low.
            drop(std::mem::take(&mut self.entries));
            shared.budget.release(bytes);
        }
    }
}

pub(crate) enum LaneMessage {
    Batch {
        entries: Arc<Batch>,
        /// Pipeline events, counted apart from the entries of calls.
        events: bool,
    },
    Flush(Arc<FlushJoin>),
    Shutdown,
}

/// Collects the answers of every lane to one flush and replies once the last has answered.
pub(crate) struct FlushJoin {
    remaining: AtomicUsize,
    first_error: Mutex<Option<FlushError>>,
    reply: Sender<Result<(), FlushError>>,
}

impl FlushJoin {
    pub(crate) fn new(lanes: usize, reply: Sender<Result<(), FlushError>>) -> Arc<Self> {
        let join = Arc::new(Self {
            remaining: AtomicUsize::new(lanes),
            first_error: Mutex::new(None),
            reply,
        });
        if lanes == 0 {
            let _ = join.reply.send(Ok(()));
        }
        join
    }

    fn done(&self, result: Result<(), FlushError>) {
        if let Err(error) = result {
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert(error);
            }
        }
        if self.remaining.fetch_sub(1, SeqCst) == 1 {
            let error = self.first_error.lock().ok().and_then(|mut e| e.take());
            let _ = self.reply.send(error.map_or(Ok(()), Err));
        }
    }
}

/// How far one sink may fall behind: in entries (`with_sink_backlog`) and in bytes (a share
/// of the pipeline's byte bound, so that a sink that hangs cannot take the whole bound and make
/// the queue drop entries the other sinks would have written).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backlog {
    pub(crate) entries: usize,
    pub(crate) bytes: usize,
}

/// What a lane holds and has not written yet.
#[derive(Debug, Default)]
pub(crate) struct Unwritten {
    entries: AtomicUsize,
    bytes: AtomicUsize,
}

impl Unwritten {
    fn add(&self, batch: &Batch) {
        self.bytes.fetch_add(batch.bytes(), SeqCst);
        self.entries.fetch_add(batch.len(), SeqCst);
    }

    fn sub(&self, batch: &Batch) {
        self.entries.fetch_sub(batch.len(), SeqCst);
        self.bytes.fetch_sub(batch.bytes(), SeqCst);
    }
}

/// The worker's handle on one lane.
pub(crate) struct Lane {
    tx: Sender<LaneMessage>,
    /// Entries handed to the lane and not yet written (or given up on), and their bytes.
    pending: Arc<Unwritten>,
    backlog: Backlog,
    thread: Option<JoinHandle<()>>,
}

impl Lane {
    pub(crate) fn spawn(
        index: usize,
        sink: Box<dyn AuditSink>,
        counters: Arc<SinkCounters>,
        retry: RetryPolicy,
        idle_flush: Duration,
        backlog: Backlog,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let pending = Arc::new(Unwritten::default());
        let runner = LaneRunner {
            rx,
            sink,
            counters,
            pending: pending.clone(),
            retry,
            idle_flush,
            backlog,
            held: VecDeque::new(),
            closing: false,
        };
        let thread = std::thread::Builder::new()
            .name(format!("llm-audit-sink-{index}"))
            .spawn(move || runner.run())?;
        Ok(Self {
            tx,
            pending,
            backlog,
            thread: Some(thread),
        })
    }

    /// Whether `batch` fits. A batch larger than the whole backlog still goes into an empty
    /// lane, so that the backlog cannot wedge a sink.
    pub(crate) fn has_room(&self, batch: &Batch) -> bool {
        let entries = self.pending.entries.load(SeqCst);
        entries == 0
            || (entries + batch.len() <= self.backlog.entries
                && self.pending.bytes.load(SeqCst) + batch.bytes() <= self.backlog.bytes)
    }

    /// Whether the lane's thread is gone (it never should be; a sink's panic is caught).
    pub(crate) fn is_dead(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Hands a batch to the lane. Returns `false` when the lane's thread is gone (it never
    /// should be); the caller counts the batch as dropped for this sink.
    pub(crate) fn send_batch(&self, entries: Arc<Batch>, events: bool) -> bool {
        self.pending.add(&entries);
        if let Err(crossbeam_channel::SendError(LaneMessage::Batch { entries, .. })) =
            self.tx.send(LaneMessage::Batch { entries, events })
        {
            self.pending.sub(&entries);
            return false;
        }
        true
    }

    pub(crate) fn send_flush(&self, join: Arc<FlushJoin>) {
        if let Err(crossbeam_channel::SendError(LaneMessage::Flush(join))) =
            self.tx.send(LaneMessage::Flush(join))
        {
            join.done(Err(FlushError::WorkerStopped));
        }
    }

    /// Asks the lane to flush and shut its sink down after what it holds.
    pub(crate) fn send_shutdown(&self) {
        let _ = self.tx.send(LaneMessage::Shutdown);
    }

    /// Waits for the lane's thread to end (after [`send_shutdown`](Self::send_shutdown)).
    pub(crate) fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct LaneRunner {
    rx: Receiver<LaneMessage>,
    sink: Box<dyn AuditSink>,
    counters: Arc<SinkCounters>,
    pending: Arc<Unwritten>,
    retry: RetryPolicy,
    idle_flush: Duration,
    backlog: Backlog,
    /// Messages that arrived while the lane waited out a receiver's `Retry-After`, in order.
    held: VecDeque<LaneMessage>,
    /// Whether the lane was told to shut down (or the worker is gone): no more waiting for a
    /// receiver that asks for time.
    closing: bool,
}

impl LaneRunner {
    fn run(mut self) {
        let mut dirty = false;
        loop {
            let message = if let Some(message) = self.held.pop_front() {
                message
            } else if dirty {
                match self.rx.recv_timeout(self.idle_flush) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => {
                        // A quiet moment: make what was written durable (fsync every N, ...).
                        let _ = self.flush();
                        dirty = false;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            };
            match message {
                LaneMessage::Batch { entries, events } => {
                    // `write` catches the sink's panics; this catches any of its own, so that
                    // the lane lives on and the batch is counted.
                    if catch_unwind(AssertUnwindSafe(|| self.write(&entries, events))).is_err()
                        && !events
                    {
                        self.counters
                            .failed
                            .fetch_add(entries.len() as u64, Relaxed);
                    }
                    self.pending.sub(&entries);
                    dirty = true;
                }
                LaneMessage::Flush(join) => {
                    join.done(self.flush());
                    dirty = false;
                }
                LaneMessage::Shutdown => break,
            }
        }
        let _ = self.flush();
        if let Err(error) = suppressed(|| self.sink.shutdown()) {
            self.counters.flush_failures.fetch_add(1, Relaxed);
            self.counters.set_error(error_chain(&error));
        }
    }

    /// Writes `entries`, retrying with backoff from the first entry not yet accepted, or after
    /// the wait the sink asked for.
    fn write(&mut self, entries: &[AuditEntry], events: bool) {
        let retry = self.retry;
        let counters = self.counters.clone();
        let mut start = 0;
        let mut rejected = 0;
        let mut spilled = 0;
        let mut attempt = 0;
        let mut backoff = retry.initial_backoff;
        while start < entries.len() {
            let written = suppressed(|| self.sink.write_batch(&entries[start..]));
            // Accepted, but kept for later rather than delivered: spilled, never written.
            let kept = self.sink.spilled_in_last_batch();
            match written {
                Ok(()) => {
                    spilled += kept.min(entries.len() - start);
                    start = entries.len();
                }
                Err(error) => {
                    let accepted = error.accepted().min(entries.len() - start);
                    start += accepted;
                    let refused = error.rejected().min(accepted);
                    rejected += refused;
                    spilled += kept.min(accepted - refused);
                    counters.set_error(error_chain(&error));
                    // Nothing left to retry when the rest was accepted (or refused for good).
                    if start >= entries.len() {
                        break;
                    }
                    // A receiver that asks for time gets it, at least the backoff ("retry now"
                    // must not make a busy loop). While the backlog holds what arrives
                    // meanwhile, the wait is a delay and loses nothing; past that, or once
                    // shutting down, it is a retry like any other, so that a receiver that
                    // throttles for good cannot hold the lane or the shutdown for ever.
                    let throttle = error
                        .retry_after()
                        .map(|wait| wait.max(retry.initial_backoff).min(MAX_RETRY_AFTER));
                    if let Some(wait) = throttle.filter(|_| self.may_wait()) {
                        counters.throttled.fetch_add(1, Relaxed);
                        self.wait(wait);
                        continue;
                    }
                    if attempt >= retry.attempts {
                        break;
                    }
                    attempt += 1;
                    counters.retries.fetch_add(1, Relaxed);
                    match throttle {
                        Some(wait) => self.wait(wait),
                        None => {
                            std::thread::sleep(backoff);
                            backoff = backoff.saturating_mul(2).min(retry.max_backoff);
                        }
                    }
                }
            }
        }
        let written = (start - rejected - spilled) as u64;
        let failed = (entries.len() - start + rejected) as u64;
        if events {
            counters.events_written.fetch_add(written, Relaxed);
        } else {
            counters.written.fetch_add(written, Relaxed);
            counters.spilled.fetch_add(spilled as u64, Relaxed);
            counters.failed.fetch_add(failed, Relaxed);
        }
    }

    /// Whether a wait the sink asks for is a delay: the lane is not shutting down and has room
    /// for more than it holds.
    fn may_wait(&self) -> bool {
        !self.closing
            && self.pending.entries.load(SeqCst) < self.backlog.entries
            && self.pending.bytes.load(SeqCst) < self.backlog.bytes
    }

    /// Waits `wait`, keeping the messages that arrive meanwhile for later and noting a
    /// shutdown among them.
    fn wait(&mut self, wait: Duration) {
        let deadline = Instant::now().checked_add(wait);
        loop {
            let left = deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return;
            }
            match self.rx.recv_timeout(left) {
                Ok(message) => {
                    self.closing |= matches!(message, LaneMessage::Shutdown);
                    self.held.push_back(message);
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closing = true;
                    std::thread::sleep(left);
                    return;
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), FlushError> {
        suppressed(|| self.sink.flush()).map_err(|error| {
            self.counters.flush_failures.fetch_add(1, Relaxed);
            let message = error_chain(&error);
            self.counters.set_error(message.clone());
            FlushError::Sink {
                sink: self.counters.name.clone(),
                message,
            }
        })
    }
}

/// Runs a sink call with tracing turned off on this thread, so that a sink's own logging can
/// never loop back into the audit layer, and with panics turned into errors, so that one broken
/// sink cannot take its lane down.
fn suppressed<T>(f: impl FnOnce() -> Result<T, SinkError>) -> Result<T, SinkError> {
    let none = Dispatch::none();
    tracing::dispatcher::with_default(&none, || {
        catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(SinkError::new("the sink panicked")))
    })
}
