//! The worker thread: batches entries, writes them to every sink, answers flush and shutdown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tracing::Dispatch;

use super::{Assembler, FlushError, Message, Shared};
use crate::entry::{AuditEntry, Status, ACTION_ENTRIES_DROPPED};
use crate::layer::span_data::LlmSpanData;
use crate::sink::{error_chain, AuditSink, SinkError};

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
    pub(crate) sinks: Vec<Box<dyn AuditSink>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) assembler: Assembler,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_batch: usize,
    /// After a write, flush every sink once no entry arrived for this long, so that policies
    /// like "fsync every N entries" cannot leave the tail of a quiet period unsynced.
    pub(crate) idle_flush: Duration,
    /// How long to wait after draining the queue before blocking on it again.
    pub(crate) linger: Duration,
}

/// What ended one round of the loop besides entries.
enum Control {
    Flush(crossbeam_channel::Sender<Result<(), FlushError>>),
    Shutdown(crossbeam_channel::Sender<()>),
}

impl Worker {
    pub(crate) fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut dirty = false;
        let mut reported_drops = 0;
        loop {
            let first = if dirty {
                match self.rx.recv_timeout(self.idle_flush) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => {
                        let _ = self.flush_sinks();
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
            let control = self.fill_batch(first, &mut batch);
            let drained = batch.len() < self.max_batch;
            if !batch.is_empty() {
                self.write_calls(&mut batch);
                dirty = true;
            }
            reported_drops = self.report_drops(reported_drops);
            match control {
                // The queue was drained: linger before waiting on it again. Entries that arrive
                // meanwhile find no sleeping worker to wake, which would cost each of them a
                // system call on the application's thread; they make the next batch instead.
                None if drained && !self.linger.is_zero() => std::thread::sleep(self.linger),
                None => {}
                Some(Control::Flush(reply)) => {
                    let _ = reply.send(self.flush_sinks());
                    dirty = false;
                }
                Some(Control::Shutdown(reply)) => {
                    self.close_and_drain(&mut batch, reported_drops);
                    let _ = reply.send(());
                    return;
                }
            }
        }
        // Every producer is gone: nothing more can arrive.
        self.close_and_drain(&mut batch, reported_drops);
    }

    /// Takes `first` and whatever else is queued, up to a batch, stopping at a control message.
    fn fill_batch(
        &mut self,
        first: Message,
        batch: &mut Vec<(Box<LlmSpanData>, usize)>,
    ) -> Option<Control> {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Call { data, bytes } => batch.push((data, bytes)),
                Message::Flush(reply) => return Some(Control::Flush(reply)),
                Message::Shutdown(reply) => return Some(Control::Shutdown(reply)),
            }
            if batch.len() < self.max_batch {
                next = self.rx.try_recv().ok();
            }
        }
        None
    }

    fn write_calls(&mut self, batch: &mut Vec<(Box<LlmSpanData>, usize)>) {
        let mut bytes = 0;
        let entries: Vec<AuditEntry> = batch
            .drain(..)
            .map(|(mut data, size)| {
                bytes += size;
                let entry = self.assembler.assemble(&mut data);
                self.shared.recycle(data);
                entry
            })
            .collect();
        self.write_to_sinks(&entries, false);
        self.shared.budget.release(bytes);
    }

    /// Writes an `llm_audit.entries_dropped` entry when drops happened since the last report.
    fn report_drops(&mut self, reported: u64) -> u64 {
        let dropped = self.shared.counters.dropped.load(SeqCst);
        if dropped > reported {
            let event = dropped_event(dropped - reported, dropped);
            self.write_to_sinks(std::slice::from_ref(&event), true);
        }
        dropped
    }

    fn write_to_sinks(&mut self, entries: &[AuditEntry], events: bool) {
        let retry = self.retry;
        for (sink, counters) in self.sinks.iter_mut().zip(&self.shared.counters.sinks) {
            let mut start = 0;
            let mut rejected = 0;
            let mut attempt = 0;
            let mut backoff = retry.initial_backoff;
            while start < entries.len() {
                match suppressed(|| sink.write_batch(&entries[start..])) {
                    Ok(()) => start = entries.len(),
                    Err(error) => {
                        let accepted = error.accepted().min(entries.len() - start);
                        start += accepted;
                        rejected += error.rejected().min(accepted);
                        counters.set_error(error_chain(&error));
                        if attempt >= retry.attempts {
                            break;
                        }
                        attempt += 1;
                        counters.retries.fetch_add(1, Relaxed);
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(retry.max_backoff);
                    }
                }
            }
            let written = (start - rejected) as u64;
            let failed = (entries.len() - start + rejected) as u64;
            let done = if events {
                &counters.events_written
            } else {
                &counters.written
            };
            done.fetch_add(written, Relaxed);
            if !events {
                counters.failed.fetch_add(failed, Relaxed);
            }
        }
    }

    fn flush_sinks(&mut self) -> Result<(), FlushError> {
        let mut first_error = None;
        for (sink, counters) in self.sinks.iter_mut().zip(&self.shared.counters.sinks) {
            if let Err(error) = suppressed(|| sink.flush()) {
                counters.flush_failures.fetch_add(1, Relaxed);
                let message = error_chain(&error);
                counters.set_error(message.clone());
                first_error.get_or_insert(FlushError::Sink {
                    sink: counters.name.clone(),
                    message,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Refuses new entries, writes every entry already offered, and shuts the sinks down.
    fn close_and_drain(&mut self, batch: &mut Vec<(Box<LlmSpanData>, usize)>, reported_drops: u64) {
        self.shared.close();
        loop {
            // Offers that passed the `closed` check before it was set are still sending; they
            // count on this drain, so keep draining until none is left in flight.
            let idle = self.shared.in_flight.load(SeqCst) == 0;
            while let Ok(message) = self.rx.try_recv() {
                match message {
                    Message::Call { data, bytes } => batch.push((data, bytes)),
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
        self.report_drops(reported_drops);
        let _ = self.flush_sinks();
        for (sink, counters) in self.sinks.iter_mut().zip(&self.shared.counters.sinks) {
            if let Err(error) = suppressed(|| sink.shutdown()) {
                counters.flush_failures.fetch_add(1, Relaxed);
                counters.set_error(error_chain(&error));
            }
        }
    }
}

/// Runs a sink call with tracing turned off on this thread, so that a sink's own logging can
/// never loop back into the audit layer, and with panics turned into errors, so that one broken
/// sink cannot take the worker (and every other sink) down.
fn suppressed<T>(f: impl FnOnce() -> Result<T, SinkError>) -> Result<T, SinkError> {
    let none = Dispatch::none();
    tracing::dispatcher::with_default(&none, || {
        catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(SinkError::new("the sink panicked")))
    })
}

fn dropped_event(dropped_now: u64, dropped_total: u64) -> AuditEntry {
    let mut event = AuditEntry::new(ACTION_ENTRIES_DROPPED);
    event.provider = Some("llm_audit".to_owned());
    event.status = Status::Error;
    event.error_type = Some("queue_overflow".to_owned());
    event.error_message = Some(format!(
        "{dropped_now} audit entries were dropped because the audit queue was full \
         ({dropped_total} since start)"
    ));
    let mut metadata = serde_json::Map::new();
    metadata.insert("dropped".to_owned(), dropped_now.into());
    metadata.insert("dropped_total".to_owned(), dropped_total.into());
    event.metadata = Some(metadata);
    event
}
