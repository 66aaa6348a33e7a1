//! A sink that keeps entries in memory, for tests (feature `testing`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{AuditSink, SinkError};
use crate::entry::AuditEntry;

/// Keeps every entry it is given in memory, for tests.
///
/// A `MemorySink` is a handle: clones share the same entries. A test keeps one clone, gives the
/// other to the layer, and reads what arrived. It can also be told to fail, to test what the
/// pipeline does when a sink breaks.
///
/// ```
/// use std::time::Duration;
/// use tracing_llm_audit::{AuditEntry, AuditSink, MemorySink};
///
/// let sink = MemorySink::new();
/// let mut given_away = sink.clone();
///
/// sink.fail_next_writes(1);
/// assert!(given_away.write_batch(&[AuditEntry::new("chat")]).is_err());
/// given_away.write_batch(&[AuditEntry::new("chat")]).unwrap();
///
/// assert!(sink.wait_for(1, Duration::from_secs(1)));
/// assert_eq!(sink.entries()[0].action, "chat");
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever entries arrive.
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<AuditEntry>,
    failures_left: usize,
    flushes: usize,
    shut_down: bool,
}

impl MemorySink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every entry received so far, in order.
    #[must_use]
    pub fn entries(&self) -> Vec<AuditEntry> {
        self.state().entries.clone()
    }

    /// How many entries were received.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no entry was received.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.state().entries.is_empty()
    }

    /// Forgets the entries received so far.
    pub fn clear(&self) {
        self.state().entries.clear();
    }

    /// Waits until at least `count` entries were received or `timeout` passed, and says whether
    /// they were.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_llm_audit::MemorySink;
    ///
    /// assert!(!MemorySink::new().wait_for(1, Duration::from_millis(10)));
    /// ```
    #[must_use]
    pub fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let state = self.state();
        let (state, _) = self
            .shared
            .arrived
            .wait_timeout_while(state, timeout, |state| state.entries.len() < count)
            .unwrap_or_else(PoisonError::into_inner);
        state.entries.len() >= count
    }

    /// Makes the next `count` calls of [`write_batch`](AuditSink::write_batch) fail, accepting
    /// none of their entries. Call it again to change the count; `0` stops failing.
    pub fn fail_next_writes(&self, count: usize) {
        self.state().failures_left = count;
    }

    /// How many times [`flush`](AuditSink::flush) was called.
    #[must_use]
    pub fn flush_count(&self) -> usize {
        self.state().flushes
    }

    /// Whether [`shutdown`](AuditSink::shutdown) was called.
    #[must_use]
    pub fn shutdown_called(&self) -> bool {
        self.state().shut_down
    }

    /// The state, also after a test thread panicked while holding it: one failing assertion
    /// should not turn every later one into a poisoned-lock panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let mut state = self.state();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(SinkError::new(
                "the memory sink was told to fail (MemorySink::fail_next_writes)",
            ));
        }
        state.entries.extend_from_slice(entries);
        drop(state);
        self.shared.arrived.notify_all();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.state().flushes += 1;
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.state().shut_down = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::thread;

    #[test]
    fn clones_share_entries_and_counters() {
        let sink = MemorySink::new();
        let mut other = sink.clone();
        assert!(sink.is_empty());
        other
            .write_batch(&[AuditEntry::new("a"), AuditEntry::new("b")])
            .unwrap();
        other.flush().unwrap();
        other.shutdown().unwrap();
        assert_eq!(sink.len(), 2);
        assert_eq!(sink.entries()[1].action, "b");
        assert_eq!(sink.flush_count(), 1);
        assert!(sink.shutdown_called());
        sink.clear();
        assert!(other.is_empty());
    }

    #[test]
    fn failures_accept_nothing_and_run_out() {
        let mut sink = MemorySink::new();
        sink.fail_next_writes(2);
        for _ in 0..2 {
            let error = sink.write_batch(&[AuditEntry::new("chat")]).unwrap_err();
            assert_eq!(error.accepted(), 0);
        }
        sink.write_batch(&[AuditEntry::new("chat")]).unwrap();
        assert_eq!(sink.len(), 1);
    }

    #[test]
    fn wait_for_wakes_when_entries_arrive() {
        let sink = MemorySink::new();
        let mut writer = sink.clone();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            writer.write_batch(&[AuditEntry::new("chat")]).unwrap();
        });
        assert!(sink.wait_for(1, Duration::from_secs(10)));
        handle.join().unwrap();
        assert!(!sink.wait_for(2, Duration::from_millis(10)));
    }
}
