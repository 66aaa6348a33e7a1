//! The worker thread: batches entries, assembles them, hands each batch to every sink's lane,
//! answers flush and shutdown.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::lane::{Batch, FlushJoin, Lane};
use super::memory::entry_bytes;
use super::{Assembler, FlushError, Message, Overflow, Shared};
use crate::entry::{AuditEntry, Status, ACTION_ENTRIES_DROPPED};
use crate::layer::span_data::LlmSpanData;

/// How often a failed write is tried again, and how long to wait in between.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

pub(crate) struct Worker {
    pub(crate) rx: Receiver<Message>,
    pub(crate) lanes: Vec<Lane>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) assembler: Arc<Assembler>,
    pub(crate) overflow: Overflow,
    pub(crate) max_batch: usize,
    /// How long to wait after draining the queue before blocking on it again.
    pub(crate) linger: Duration,
}

/// What ended one round of the loop besides entries.
enum Control {
    Flush(crossbeam_channel::Sender<Result<(), FlushError>>),
    Shutdown(crossbeam_channel::Sender<()>),
}

/// Drops reported so far, so that each drop event says what is new, and the last event of
/// each kind: while a lane still holds it, drops add up for the next one instead of queueing
/// one event per round behind a sink that does not keep up.
#[derive(Default)]
struct Reported {
    queue: u64,
    queue_event: Weak<Batch>,
    sinks: Vec<u64>,
    sink_events: Vec<Weak<Batch>>,
}

/// Whether a lane still holds `event`.
fn in_flight(event: &Weak<Batch>) -> bool {
    event.strong_count() > 0
}

impl Worker {
    pub(crate) fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut reported = Reported {
            sinks: vec![0; self.lanes.len()],
            sink_events: self.lanes.iter().map(|_| Weak::new()).collect(),
            ..Reported::default()
        };
        loop {
            let Ok(first) = self.rx.recv() else { break };
            let control = self.fill_batch(first, &mut batch);
            let drained = batch.len() < self.max_batch;
            if !batch.is_empty() {
                self.write_calls(&mut batch);
            }
            self.report_drops(&mut reported, false);
            match control {
                // The queue was drained: linger before waiting on it again. Entries that arrive
                // meanwhile find no sleeping worker to wake, which would cost each of them a
                // system call on the application's thread; they make the next batch instead.
                None if drained && !self.linger.is_zero() => std::thread::sleep(self.linger),
                None => {}
                Some(Control::Flush(reply)) => {
                    let join = FlushJoin::new(self.lanes.len(), reply);
                    for lane in &self.lanes {
                        lane.send_flush(join.clone());
                    }
                }
                Some(Control::Shutdown(reply)) => {
                    self.close_and_drain(&mut batch, &mut reported);
                    let _ = reply.send(());
                    return;
                }
            }
        }
        // Every producer is gone: nothing more can arrive.
        self.close_and_drain(&mut batch, &mut reported);
    }

    /// Takes `first` and whatever else is queued, up to a batch, stopping at a control message.
    fn fill_batch(&mut self, first: Message, batch: &mut Vec<Pending>) -> Option<Control> {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Call { data, bytes } => batch.push(Pending::Call(data, bytes)),
                Message::Entry { entry, bytes } => batch.push(Pending::Entry(entry, bytes)),
                Message::Flush(reply) => return Some(Control::Flush(reply)),
                Message::Shutdown(reply) => return Some(Control::Shutdown(reply)),
            }
            if batch.len() < self.max_batch {
                next = self.rx.try_recv().ok();
            }
        }
        None
    }

    /// Assembles the batch's calls and hands them on. Each record's charge against the byte
    /// bound becomes its entry's as soon as the entry exists; the batch carries the charge
    /// until every lane is done with it.
    fn write_calls(&mut self, batch: &mut Vec<Pending>) {
        let shared = &*self.shared;
        let mut charged = 0;
        let entries: Vec<AuditEntry> = batch
            .drain(..)
            .map(|pending| {
                let (entry, bytes) = match pending {
                    Pending::Call(mut data, size) => {
                        let entry = self.assembler.assemble(&mut data);
                        let bytes = entry_bytes(&entry);
                        shared.budget.exchange(size, bytes);
                        shared.recycle(data);
                        (entry, bytes)
                    }
                    Pending::Entry(entry, bytes) => (*entry, bytes),
                };
                charged += bytes;
                entry
            })
            .collect();
        let batch = Batch::charged(entries, self.shared.clone(), charged);
        self.dispatch(batch);
    }

    /// Hands one batch to every lane; a lane a whole backlog behind gets it only under
    /// [`Overflow::Block`], after it made room.
    fn dispatch(&mut self, entries: Batch) {
        let n = entries.len();
        let entries = Arc::new(entries);
        for (lane, counters) in self.lanes.iter().zip(&self.shared.counters.sinks) {
            if self.overflow == Overflow::Block {
                while !lane.has_room(&entries) && !lane.is_dead() {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            if !(lane.has_room(&entries) && lane.send_batch(entries.clone(), false)) {
                counters.dropped.fetch_add(n as u64, Relaxed);
            }
        }
    }

    /// Writes an `llm_audit.entries_dropped` entry when drops happened since the last report:
    /// one for the queue, to every sink, and one for each sink that fell a backlog behind, to
    /// every other sink. Events pass a lane's backlog bound; they are charged against the byte
    /// bound, and at most one of each kind is in flight unless `last` (at shutdown, when every
    /// drop must be reported). The sink that is behind does not get its own.
    fn report_drops(&mut self, reported: &mut Reported, last: bool) {
        let dropped = self.shared.counters.dropped.load(SeqCst);
        if dropped > reported.queue && (last || !in_flight(&reported.queue_event)) {
            let event = dropped_event(dropped - reported.queue, dropped, None);
            if let Some(event) = self.charged(event, last) {
                let event = Arc::new(event);
                reported.queue = dropped;
                for lane in &self.lanes {
                    let _ = lane.send_batch(event.clone(), true);
                }
                reported.queue_event = Arc::downgrade(&event);
            }
        }
        for (index, counters) in self.shared.counters.sinks.iter().enumerate() {
            let dropped = counters.dropped.load(Relaxed);
            let seen = &mut reported.sinks[index];
            if dropped > *seen && (last || !in_flight(&reported.sink_events[index])) {
                let event = dropped_event(dropped - *seen, dropped, Some(&counters.name));
                let Some(event) = self.charged(event, last) else {
                    continue;
                };
                let event = Arc::new(event);
                *seen = dropped;
                for (_, lane) in self.lanes.iter().enumerate().filter(|(i, _)| *i != index) {
                    let _ = lane.send_batch(event.clone(), true);
                }
                reported.sink_events[index] = Arc::downgrade(&event);
            }
        }
    }

    /// A drop report as a batch charged against the byte bound, which keeps a reserve for
    /// them; `None` when even that is full (the drops are reported later, added up). The last
    /// report is charged in any case.
    fn charged(&self, event: AuditEntry, last: bool) -> Option<Batch> {
        let bytes = entry_bytes(&event);
        if last {
            self.shared.budget.exchange(0, bytes);
        } else if !self.shared.budget.try_reserve_report(bytes) {
            return None;
        }
        Some(Batch::charged(vec![event], self.shared.clone(), bytes))
    }

    /// Refuses new entries, writes every entry already offered, and shuts the sinks down.
    fn close_and_drain(&mut self, batch: &mut Vec<Pending>, reported: &mut Reported) {
        self.shared.close();
        loop {
            // Offers that passed the `closed` check before it was set are still sending; they
            // count on this drain, so keep draining until none is left in flight.
            let idle = self.shared.in_flight.load(SeqCst) == 0;
            while let Ok(message) = self.rx.try_recv() {
                match message {
                    Message::Call { data, bytes } => batch.push(Pending::Call(data, bytes)),
                    Message::Entry { entry, bytes } => batch.push(Pending::Entry(entry, bytes)),
                    Message::Flush(reply) => {
                        let _ = reply.send(Err(FlushError::WorkerStopped));
                    }
                    Message::Shutdown(reply) => {
                        let _ = reply.send(());
                    }
                }
                if batch.len() >= self.max_batch {
                    self.write_calls(batch);
                }
            }
            if idle {
                break;
            }
            std::thread::yield_now();
        }
        if !batch.is_empty() {
            self.write_calls(batch);
        }
        self.report_drops(reported, true);
        for lane in &self.lanes {
            lane.send_shutdown();
        }
        for lane in &mut self.lanes {
            lane.join();
        }
    }
}

/// A finished call waiting in a batch, with its size in the queue's byte budget.
enum Pending {
    Call(Box<LlmSpanData>, usize),
    Entry(Box<AuditEntry>, usize),
}

fn dropped_event(dropped_now: u64, dropped_total: u64, sink: Option<&str>) -> AuditEntry {
    let mut event = AuditEntry::new(ACTION_ENTRIES_DROPPED);
    event.provider = Some("llm_audit".to_owned());
    event.status = Status::Error;
    let mut metadata = serde_json::Map::new();
    if let Some(sink) = sink {
        event.error_type = Some("sink_backlog_full".to_owned());
        event.error_message = Some(format!(
            "{dropped_now} audit entries were not delivered to sink `{sink}` because it fell a \
             whole backlog behind ({dropped_total} since start); the other sinks received them"
        ));
        metadata.insert("sink".to_owned(), sink.into());
    } else {
        event.error_type = Some("queue_overflow".to_owned());
        event.error_message = Some(format!(
            "{dropped_now} audit entries were dropped because the audit queue was full \
             ({dropped_total} since start)"
        ));
    }
    metadata.insert("dropped".to_owned(), dropped_now.into());
    metadata.insert("dropped_total".to_owned(), dropped_total.into());
    event.metadata = Some(metadata);
    event
}
