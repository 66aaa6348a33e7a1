//! The way from a closed LLM span to the sinks.
//!
//! ```text
//!  application threads                          worker thread "llm-audit-worker"
//!  ───────────────────                          ─────────────────────────────────
//!  on_close ─▶ Queue::offer ──┐                 ┌─▶ recv (blocks on the first message)
//!              (try_send, or  │  bounded queue  │   try_recv the rest, up to a batch
//!               send under    ├──────────────▶──┤   assemble entries (hash, cost)
//!               Block)        │  entries+bytes  │   hand the batch to every sink's lane
//!  WorkerGuard::flush ────────┤                 │   report drops as an entry of its own
//!  WorkerGuard::shutdown ─────┘                 └─▶ pass Flush / Shutdown on to the lanes
//!
//!  lane threads "llm-audit-sink-N", one per sink, each with a bounded backlog:
//!  write_batch (retried with backoff), flush when idle, answer flush, shut the sink down
//! ```
//!
//! A sink that is slow or down holds up only its own lane: once it is a whole backlog behind,
//! its batches are dropped for it alone and counted (`DropNewest`), or the worker waits for it
//! (`Block`).
//!
//! Flush and shutdown travel through the same queue as entries, so they are answered only after
//! everything offered before them was written. Every entry that does not get through is counted
//! in [`Stats`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use crossbeam_queue::ArrayQueue;

use crate::entry::AuditEntry;
use crate::layer::span_data::LlmSpanData;

mod assemble;
mod guard;
mod lane;
mod memory;
mod stats;
mod worker;

pub(crate) use assemble::Assembler;
pub use guard::{FlushError, ShutdownError, StatsHandle, WorkerGuard, DROP_FLUSH_TIMEOUT};
pub(crate) use lane::{Backlog, Lane};
pub(crate) use stats::Counters;
pub use stats::{SinkStats, Stats};
pub(crate) use worker::{RetryPolicy, Worker};

/// What happens when an entry arrives and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The application thread waits until the worker makes room. Nothing is lost while the
    /// worker runs, but a stalled sink stalls the application.
    Block,
    /// The entry is dropped and counted; the worker writes an `llm_audit.entries_dropped` entry
    /// with the count when it catches up. The application never waits. This is the default.
    #[default]
    DropNewest,
}

pub(crate) enum Message {
    Call {
        data: Box<LlmSpanData>,
        bytes: usize,
    },
    /// An entry the layer already assembled (to put its values on an OpenTelemetry span).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    Entry {
        entry: Box<AuditEntry>,
        bytes: usize,
    },
    Flush(Sender<Result<(), FlushError>>),
    Shutdown(Sender<()>),
}

/// State shared by every producer and the worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Arc<Counters>,
    pub(crate) budget: ByteBudget,
    /// Set by the worker when it shuts down; later offers are dropped and counted.
    pub(crate) closed: AtomicBool,
    /// Offers between their `closed` check and the end of their send. Shutdown waits for it to
    /// reach zero, so that no entry can slip into the queue after the final drain.
    pub(crate) in_flight: AtomicUsize,
    /// Records the worker is done with, for the application's threads to reuse: a record
    /// allocated on one thread and freed on another makes the allocator's locks contended.
    recycled: ArrayQueue<Box<LlmSpanData>>,
    /// Whether a content policy keeps content in entries (encrypted or plain), which makes an
    /// entry larger than its hashes.
    stores_content: bool,
    /// LLM spans created and not closed yet, for the shutdown's count of unfinished calls.
    /// (The layer keeps its own counter, on a cache line of its own, for its fast path.)
    pub(crate) open_llm_spans: AtomicUsize,
}

/// How many used records are kept for reuse.
const RECYCLED_RECORDS: usize = 256;

impl Shared {
    pub(crate) fn new(
        counters: Arc<Counters>,
        max_bytes: usize,
        stores_content: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            counters,
            budget: ByteBudget::new(max_bytes),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            recycled: ArrayQueue::new(RECYCLED_RECORDS),
            stores_content,
            open_llm_spans: AtomicUsize::new(0),
        })
    }

    /// What a call is charged against the byte bound when it is offered: its record, and room
    /// for the entry the worker will make of it, so that assembling never grows the charge
    /// (the worker gives back what the entry does not use).
    fn charge(&self, data: &LlmSpanData) -> usize {
        let mut bytes = data.approx_bytes()
            + memory::ENTRY_ALLOWANCE
            + (data.fields.metadata.len() + data.sanitization.len()) * memory::MAP_ENTRY_ALLOWANCE;
        if self.stores_content {
            bytes += memory::stored_content_allowance(&data.content);
        }
        bytes
    }

    /// A record for a call starting now: a recycled one when there is one.
    pub(crate) fn new_record(&self) -> Box<LlmSpanData> {
        match self.recycled.pop() {
            Some(mut record) => {
                // The record now belongs to a call; the queue charges it again when the call
                // is offered.
                self.budget.unpool(record.retained_bytes());
                record.restart();
                record
            }
            None => Box::new(LlmSpanData::new()),
        }
    }

    /// Keeps a record the worker is done with for reuse, or frees it when enough are kept or
    /// the byte bound has no room for it: a kept record's buffers count against the bound
    /// until it is reused.
    pub(crate) fn recycle(&self, mut record: Box<LlmSpanData>) {
        record.forget();
        let kept = record.retained_bytes();
        // Charged before it can be taken, so that the charge never goes below zero.
        if self.budget.try_pool(kept) && self.recycled.push(record).is_err() {
            self.budget.unpool(kept);
        }
    }

    /// The counters and the bytes held now.
    pub(crate) fn snapshot(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        stats.held_bytes = self.budget.held() as u64;
        stats.peak_held_bytes = self.budget.peak() as u64;
        stats
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.budget.wake_all();
    }
}

/// The producer side of the queue, held by the layer.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    tx: Sender<Message>,
    shared: Arc<Shared>,
    overflow: Overflow,
}

impl Queue {
    /// An LLM span was created (`true`) or closed (`false`).
    pub(crate) fn llm_span(&self, opened: bool) {
        if opened {
            self.shared.open_llm_spans.fetch_add(1, SeqCst);
        } else {
            self.shared.open_llm_spans.fetch_sub(1, SeqCst);
        }
    }

    pub(crate) fn new(tx: Sender<Message>, shared: Arc<Shared>, overflow: Overflow) -> Self {
        Self {
            tx,
            shared,
            overflow,
        }
    }

    /// A record for a call starting now, recycled when possible.
    pub(crate) fn new_record(&self) -> Box<LlmSpanData> {
        self.shared.new_record()
    }

    /// Hands a finished call to the worker, or counts it as dropped. Waits only under
    /// [`Overflow::Block`].
    pub(crate) fn offer(&self, data: Box<LlmSpanData>) {
        let bytes = self.shared.charge(&data);
        self.offer_message(Message::Call { data, bytes }, bytes);
    }

    /// Hands an entry the layer assembled itself to the worker, or counts it as dropped.
    #[cfg(feature = "otel")]
    pub(crate) fn offer_entry(&self, entry: Box<AuditEntry>) {
        let bytes = memory::entry_bytes(&entry);
        self.offer_message(Message::Entry { entry, bytes }, bytes);
    }

    fn offer_message(&self, message: Message, bytes: usize) {
        let shared = &*self.shared;
        shared.counters.emitted.fetch_add(1, SeqCst);
        shared.in_flight.fetch_add(1, SeqCst);
        let delivered = !shared.closed.load(SeqCst) && self.send(message, bytes);
        shared.in_flight.fetch_sub(1, SeqCst);
        if !delivered {
            shared.counters.dropped.fetch_add(1, SeqCst);
        }
    }

    /// Keeps a record the layer is done with for reuse.
    #[cfg(feature = "otel")]
    pub(crate) fn recycle(&self, record: Box<LlmSpanData>) {
        self.shared.recycle(record);
    }

    fn send(&self, message: Message, bytes: usize) -> bool {
        let budget = &self.shared.budget;
        let reserved = match self.overflow {
            Overflow::DropNewest => budget.try_reserve(bytes),
            Overflow::Block => budget.reserve_blocking(bytes, &self.shared.closed),
        };
        if !reserved {
            return false;
        }
        let sent = match self.overflow {
            Overflow::DropNewest => match self.tx.try_send(message) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            Overflow::Block => self.tx.send(message).is_ok(),
        };
        if !sent {
            budget.release(bytes);
        }
        sent
    }
}

/// The pipeline's bound in bytes (`queue_max_bytes`).
///
/// It is charged for everything the pipeline holds: a call's record from the moment it is
/// offered (with room for the entry it will become) until the worker has assembled it, then
/// the assembled entry until every sink's lane is done with its batch, and the records kept
/// for reuse. Calls are admitted against it up to the bound less a small reserve; the
/// pipeline's own drop reports may use the reserve, so that a full pipeline can still say
/// that it dropped entries. The worker and the lanes never wait on it, so that it cannot
/// deadlock them. A call larger than the whole bound still passes when nothing else is
/// charged, so that one huge prompt cannot wedge the pipeline.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    /// Records in the queue and in the batch being assembled, and assembled batches.
    used: AtomicUsize,
    /// Records kept for reuse.
    pooled: AtomicUsize,
    /// The highest `used + pooled` seen.
    peak: AtomicUsize,
    max: usize,
    /// The bound for calls and for records kept for reuse: `max` less the reserve.
    calls_max: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

/// The part of the bound kept for the pipeline's drop reports: at most one report per sink
/// and one for the queue are in flight, about 1.5 KB each.
fn reserve(max: usize) -> usize {
    (max / 16).min(64 * 1024)
}

impl ByteBudget {
    fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            pooled: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            max,
            calls_max: max - reserve(max),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        self.try_reserve_within(bytes, self.calls_max)
    }

    /// Charges a report of the pipeline's own, which may use the reserve.
    pub(crate) fn try_reserve_report(&self, bytes: usize) -> bool {
        self.try_reserve_within(bytes, self.max)
    }

    fn try_reserve_within(&self, bytes: usize, max: usize) -> bool {
        let pooled = self.pooled.load(SeqCst);
        let mut used = self.used.load(SeqCst);
        loop {
            if used != 0 && used.saturating_add(pooled).saturating_add(bytes) > max {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + bytes, SeqCst, SeqCst)
            {
                Ok(_) => {
                    self.note_peak(used + bytes + pooled);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    fn reserve_blocking(&self, bytes: usize, closed: &AtomicBool) -> bool {
        if self.try_reserve(bytes) {
            return true;
        }
        self.waiters.fetch_add(1, SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let reserved = loop {
            if self.try_reserve(bytes) {
                break true;
            }
            if closed.load(SeqCst) {
                break false;
            }
            // The timeout only guards against a worker that died without closing the queue.
            guard = self
                .room
                .wait_timeout(guard, Duration::from_millis(100))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        };
        drop(guard);
        self.waiters.fetch_sub(1, SeqCst);
        reserved
    }

    /// Swaps the charge of a call (`old`) for that of the entry made from it (`new`), without
    /// waiting: the worker must never block on the bound. The call's charge leaves room for
    /// its entry, so this gives bytes back, except for an entry larger than foreseen.
    pub(crate) fn exchange(&self, old: usize, new: usize) {
        if new > old {
            let now = self.used.fetch_add(new - old, SeqCst) + (new - old);
            self.note_peak(now + self.pooled.load(Relaxed));
        } else if new < old {
            self.release(old - new);
        }
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            self.wake_all();
        }
    }

    /// Charges a record kept for reuse, if it fits within the bound for calls.
    fn try_pool(&self, bytes: usize) -> bool {
        let used = self.used.load(SeqCst);
        let mut pooled = self.pooled.load(SeqCst);
        loop {
            if used.saturating_add(pooled).saturating_add(bytes) > self.calls_max {
                return false;
            }
            match self
                .pooled
                .compare_exchange_weak(pooled, pooled + bytes, SeqCst, SeqCst)
            {
                Ok(_) => {
                    self.note_peak(used + pooled + bytes);
                    return true;
                }
                Err(now) => pooled = now,
            }
        }
    }

    /// Takes a kept record's charge off: it was freed, or reused by a call that is charged
    /// for it when offered (so there is no room to announce to waiting callers).
    fn unpool(&self, bytes: usize) {
        self.pooled.fetch_sub(bytes, SeqCst);
    }

    fn note_peak(&self, now: usize) {
        if now > self.peak.load(Relaxed) {
            self.peak.fetch_max(now, Relaxed);
        }
    }

    /// Bytes charged now.
    pub(crate) fn held(&self) -> usize {
        self.used.load(Relaxed) + self.pooled.load(Relaxed)
    }

    /// The most bytes charged at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }

    fn wake_all(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_budget_admits_an_oversized_entry_only_when_empty() {
        // A bound of 1,600 keeps 100 for the pipeline's reports: calls get 1,500.
        let budget = ByteBudget::new(1_600);
        assert!(budget.try_reserve(5_000));
        assert!(!budget.try_reserve(1));
        budget.release(5_000);
        assert!(budget.try_reserve(900));
        assert!(budget.try_reserve(600));
        assert!(!budget.try_reserve(1));
        assert!(budget.try_reserve_report(100));
        assert!(!budget.try_reserve_report(1));
        assert_eq!(budget.held(), 1_600);
        assert_eq!(budget.peak(), 5_000);
    }

    #[test]
    fn kept_records_count_and_are_kept_only_when_they_fit() {
        let budget = ByteBudget::new(1_600);
        assert!(budget.try_reserve(1_000));
        assert!(budget.try_pool(500));
        assert!(!budget.try_pool(1), "the pool may not use the reserve");
        assert!(!budget.try_reserve(1), "kept records count against calls");
        budget.unpool(500);
        assert!(budget.try_reserve(500));
        // An entry larger than its call's charge is charged in full, never refused.
        budget.exchange(1_500, 1_700);
        assert_eq!(budget.held(), 1_700);
        budget.exchange(1_700, 0);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn blocked_reservation_gives_up_when_closed() {
        let budget = ByteBudget::new(10);
        assert!(budget.try_reserve(10));
        let closed = AtomicBool::new(true);
        assert!(!budget.reserve_blocking(5, &closed));
    }
}
