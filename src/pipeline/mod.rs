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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use crossbeam_queue::ArrayQueue;

use crate::entry::AuditEntry;
use crate::layer::span_data::LlmSpanData;

mod assemble;
mod guard;
mod lane;
mod stats;
mod worker;

pub(crate) use assemble::Assembler;
pub use guard::{FlushError, ShutdownError, StatsHandle, WorkerGuard, DROP_FLUSH_TIMEOUT};
pub(crate) use lane::Lane;
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
}

/// How many used records are kept for reuse.
const RECYCLED_RECORDS: usize = 256;

impl Shared {
    pub(crate) fn new(counters: Arc<Counters>, max_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            counters,
            budget: ByteBudget::new(max_bytes),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            recycled: ArrayQueue::new(RECYCLED_RECORDS),
        })
    }

    /// A record for a call starting now: a recycled one when there is one.
    pub(crate) fn new_record(&self) -> Box<LlmSpanData> {
        match self.recycled.pop() {
            Some(mut record) => {
                record.restart();
                record
            }
            None => Box::new(LlmSpanData::new()),
        }
    }

    /// Keeps a record the worker is done with for reuse, or frees it when enough are kept.
    pub(crate) fn recycle(&self, mut record: Box<LlmSpanData>) {
        record.forget();
        let _ = self.recycled.push(record);
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
        let bytes = data.approx_bytes();
        self.offer_message(Message::Call { data, bytes }, bytes);
    }

    /// Hands an entry the layer assembled itself to the worker, or counts it as dropped.
    #[cfg(feature = "otel")]
    pub(crate) fn offer_entry(&self, entry: Box<AuditEntry>, bytes: usize) {
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

/// The queue's bound in bytes. An entry larger than the whole bound still passes when the queue
/// is empty, so that one huge prompt cannot wedge the pipeline.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    used: AtomicUsize,
    max: usize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
}

impl ByteBudget {
    fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
        }
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        let mut used = self.used.load(SeqCst);
        loop {
            if used != 0 && used.saturating_add(bytes) > self.max {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + bytes, SeqCst, SeqCst)
            {
                Ok(_) => return true,
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

    pub(crate) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            self.wake_all();
        }
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
        let budget = ByteBudget::new(100);
        assert!(budget.try_reserve(500));
        assert!(!budget.try_reserve(1));
        budget.release(500);
        assert!(budget.try_reserve(60));
        assert!(budget.try_reserve(40));
        assert!(!budget.try_reserve(1));
    }

    #[test]
    fn blocked_reservation_gives_up_when_closed() {
        let budget = ByteBudget::new(10);
        assert!(budget.try_reserve(10));
        let closed = AtomicBool::new(true);
        assert!(!budget.reserve_blocking(5, &closed));
    }
}
