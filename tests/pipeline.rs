//! The pipeline's promises: nothing accepted is lost, every drop is counted and reported, and
//! shutdown returns only when everything accepted is written.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, FsyncPolicy, HashKey, JsonlSink, LlmSpanExt, MemorySink,
    Overflow, SinkError, Usage, ACTION_ENTRIES_DROPPED,
};
use tracing_subscriber::layer::SubscriberExt;

fn key() -> HashKey {
    HashKey::new("test-key", [3u8; 32]).unwrap()
}

fn llm_call(i: u64) {
    let span =
        tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o-mini", user = "u1");
    span.record_usage(&Usage {
        input_tokens: Some(i),
        output_tokens: Some(1),
        ..Usage::default()
    });
    span.record_input(b"hello");
}

fn read_lines(dir: &Path) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    for file in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(file.unwrap().path()).unwrap();
        for line in text.lines() {
            entries.push(serde_json::from_str(line).unwrap());
        }
    }
    entries
}

fn run_threads(dispatch: &Dispatch, threads: u64, per_thread: u64) {
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                tracing::dispatcher::with_default(dispatch, || {
                    for i in 0..per_thread {
                        llm_call(i);
                    }
                });
            });
        }
    });
}

#[test]
fn block_policy_writes_every_entry_from_eight_threads() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::builder(dir.path())
        .fsync(FsyncPolicy::EveryN(10_000))
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_overflow(Overflow::Block)
        .with_queue_capacity(256)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    run_threads(&dispatch, 8, 10_000);
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    assert_eq!(stats.emitted, 80_000);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.sinks[0].written, 80_000);
    assert_eq!(stats.sinks[0].failed, 0);
    let entries = read_lines(dir.path());
    assert_eq!(
        entries.len(),
        80_000,
        "shutdown returned before every line was on disk"
    );
    assert!(entries.iter().all(|e| e.action == "chat"));
}

/// A sink that takes its time, so that a small queue overflows.
#[derive(Debug, Clone)]
struct SlowSink {
    inner: MemorySink,
    delay: Duration,
}

impl AuditSink for SlowSink {
    fn name(&self) -> &str {
        "slow"
    }
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        std::thread::sleep(self.delay);
        self.inner.write_batch(entries)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.inner.shutdown()
    }
}

#[test]
fn drop_newest_counts_every_drop_and_writes_a_drop_event() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(SlowSink {
            inner: memory.clone(),
            delay: Duration::from_millis(2),
        })
        .with_hash_key(key())
        .with_overflow(Overflow::DropNewest)
        .with_queue_capacity(4)
        .with_max_batch(2)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    run_threads(&dispatch, 4, 2_000);
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let entries = memory.entries();
    let calls = entries.iter().filter(|e| e.action == "chat").count() as u64;
    let events: Vec<_> = entries
        .iter()
        .filter(|e| e.action == ACTION_ENTRIES_DROPPED)
        .collect();

    assert_eq!(stats.emitted, 8_000);
    assert!(stats.dropped > 0, "the queue never overflowed: {stats:?}");
    assert_eq!(stats.sinks[0].written, calls);
    assert_eq!(calls + stats.dropped, stats.emitted, "{stats:?}");
    assert!(!events.is_empty(), "no drop event was written");
    let reported: u64 = events
        .iter()
        .map(|e| e.metadata.as_ref().unwrap()["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(
        reported, stats.dropped,
        "every drop is reported in an event"
    );
    assert_eq!(stats.sinks[0].events_written, events.len() as u64);
}

#[test]
fn byte_bound_drops_are_counted_too() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(SlowSink {
            inner: memory.clone(),
            delay: Duration::from_millis(20),
        })
        .with_hash_key(key())
        .with_queue_max_bytes(200 * 1024)
        .build()
        .unwrap();
    let prompt = vec![b'x'; 64 * 1024];
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..50 {
            let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
            span.record_input(&prompt);
        }
    });
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let calls = memory
        .entries()
        .iter()
        .filter(|e| e.action == "chat")
        .count() as u64;
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(calls + stats.dropped, 50);
}

#[test]
fn flush_returns_when_every_accepted_entry_is_written() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(SlowSink {
            inner: memory.clone(),
            delay: Duration::from_millis(5),
        })
        .with_hash_key(key())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..100 {
            llm_call(i);
        }
    });
    guard.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(memory.len(), 100);
    assert!(memory.flush_count() >= 1);
    guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(memory.shutdown_called());
}

#[test]
fn failed_writes_are_retried_then_counted() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(memory.clone())
        .with_hash_key(key())
        .with_retry(3, Duration::from_millis(1))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    memory.fail_next_writes(2);
    tracing::dispatcher::with_default(&dispatch, || llm_call(1));
    guard.flush(Duration::from_secs(10)).unwrap();
    let stats = guard.stats();
    assert_eq!(stats.sinks[0].written, 1);
    assert_eq!(stats.sinks[0].retries, 2);
    assert!(stats.sinks[0].last_error.is_some());

    memory.fail_next_writes(100);
    tracing::dispatcher::with_default(&dispatch, || llm_call(2));
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.sinks[0].written, 1);
    assert_eq!(stats.sinks[0].failed, 1);
    assert_eq!(
        stats.sinks[0].written + stats.sinks[0].failed,
        stats.emitted
    );
    assert!(!stats.is_lossless());
}

/// A sink that panics on every write.
#[derive(Debug)]
struct PanickingSink;

impl AuditSink for PanickingSink {
    fn name(&self) -> &str {
        "panicking"
    }
    fn write_batch(&mut self, _: &[AuditEntry]) -> Result<(), SinkError> {
        panic!("bug in a user's sink")
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_panicking_sink_does_not_stop_the_others() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(PanickingSink)
        .with_sink(memory.clone())
        .with_hash_key(key())
        .with_retry(0, Duration::from_millis(1))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..10 {
            llm_call(i);
        }
    });
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(memory.len(), 10);
    assert_eq!(stats.sinks[0].failed, 10);
    assert_eq!(stats.sinks[1].written, 10);
    assert!(stats.sinks[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("panicked"));
}

#[test]
fn entries_after_shutdown_are_counted_as_dropped() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(memory.clone())
        .with_hash_key(key())
        .build()
        .unwrap();
    let handle = guard.stats_handle();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || llm_call(1));
    guard.shutdown(Duration::from_secs(10)).unwrap();
    tracing::dispatcher::with_default(&dispatch, || llm_call(2));
    let stats = handle.snapshot();
    assert_eq!(stats.emitted, 2);
    assert_eq!(stats.dropped, 1);
    assert_eq!(memory.len(), 1);
}

#[test]
fn sinks_run_with_tracing_suppressed() {
    /// A sink that logs, and creates an LLM span, on every write: neither may loop back.
    #[derive(Debug)]
    struct ChattySink(MemorySink, Arc<AtomicUsize>);
    impl AuditSink for ChattySink {
        fn name(&self) -> &str {
            "chatty"
        }
        fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
            tracing::error!("sink log line");
            let _span = tracing_llm_audit::llm_span!(provider = "loop", model = "loop");
            self.1.fetch_add(entries.len(), Ordering::SeqCst);
            self.0.write_batch(entries)
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn shutdown(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }
    let memory = MemorySink::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let (layer, guard) = AuditLayer::builder()
        .with_sink(ChattySink(memory.clone(), seen.clone()))
        .with_hash_key(key())
        .build()
        .unwrap();
    // A global default, so that the worker thread would see it if it were not suppressed.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    for i in 0..5 {
        llm_call(i);
    }
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(
        stats.emitted, 5,
        "the sink's own span must not become an entry"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 5);
    assert!(memory
        .entries()
        .iter()
        .all(|e| e.provider.as_deref() == Some("openai")));
}

/// A sink whose writes hang until it is released, as a collector that accepts connections and
/// never answers.
#[derive(Debug, Clone)]
struct HangingSink {
    released: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    written: Arc<AtomicUsize>,
}

impl HangingSink {
    fn new() -> Self {
        Self {
            released: Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new())),
            written: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn release(&self) {
        let (lock, cvar) = &*self.released;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
}

impl AuditSink for HangingSink {
    fn name(&self) -> &str {
        "hanging"
    }
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let (lock, cvar) = &*self.released;
        let _released = cvar.wait_while(lock.lock().unwrap(), |r| !*r).unwrap();
        self.written.fetch_add(entries.len(), Ordering::SeqCst);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Calls `memory` has, not counting the pipeline's own drop reports.
fn calls_in(memory: &MemorySink) -> usize {
    memory
        .entries()
        .iter()
        .filter(|e| e.action != ACTION_ENTRIES_DROPPED)
        .count()
}

/// Sends `bursts` bursts of 50 calls, each waited for until `memory` has it (or `give_up`
/// says so, or 30 s passed), so that a healthy sink never falls behind however slow the
/// machine.
fn send_in_bursts(
    dispatch: &Dispatch,
    memory: &MemorySink,
    bursts: u64,
    give_up: impl Fn() -> bool,
) {
    tracing::dispatcher::with_default(dispatch, || {
        for burst in 0..bursts {
            for i in 0..50 {
                llm_call(burst * 50 + i);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while calls_in(memory) < (burst as usize + 1) * 50
                && !give_up()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
}

#[test]
fn a_hanging_sink_delays_only_itself_and_its_drops_are_counted() {
    let hanging = HangingSink::new();
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(hanging.clone())
        .with_sink(memory.clone())
        .with_hash_key(key())
        .with_sink_backlog(100)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let calls = || calls_in(&memory);
    // The healthy sink never falls a backlog (100) behind, however slow the machine, while the
    // hanging one overflows its backlog after 100.
    send_in_bursts(&dispatch, &memory, 20, || false);
    // The healthy sink receives every call while the other one hangs.
    assert_eq!(
        calls(),
        1_000,
        "the healthy sink got every call while the other hung"
    );
    guard.flush(Duration::from_millis(50)).unwrap_err();
    hanging.release();
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(stats.emitted, 1_000);
    assert_eq!(stats.dropped, 0);
    let (hung, healthy) = (&stats.sinks[0], &stats.sinks[1]);
    assert_eq!(healthy.written, 1_000);
    assert_eq!(healthy.dropped, 0);
    assert!(hung.dropped > 0, "the hanging sink's overflow is counted");
    assert_eq!(hung.written + hung.failed + hung.dropped, 1_000);
    assert_eq!(
        hanging.written.load(Ordering::SeqCst) as u64,
        hung.written + hung.events_written
    );
    // The healthy sink's trail says what the other one missed.
    let reported: u64 = memory
        .entries()
        .iter()
        .filter(|e| e.action == ACTION_ENTRIES_DROPPED)
        .inspect(|e| assert_eq!(e.error_type.as_deref(), Some("sink_backlog_full")))
        .map(|e| e.metadata.as_ref().unwrap()["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(
        reported, hung.dropped,
        "every drop of the hanging sink is reported"
    );
}

#[test]
fn a_hanging_sink_cannot_take_the_whole_byte_bound_from_the_others() {
    // The byte bound is shared by the queue and every sink's backlog. A sink that hangs may
    // hold only its share of it: past that its batches are dropped for it alone, and the queue
    // keeps room for the calls the healthy sink writes. The backlog in entries (65,536 by
    // default) is far larger than the bound, so the bytes are what stops the hanging sink.
    let hanging = HangingSink::new();
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(hanging.clone())
        .with_sink(memory.clone())
        .with_hash_key(key())
        .with_queue_max_bytes(512 * 1024)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let calls = || calls_in(&memory);
    send_in_bursts(&dispatch, &memory, 60, || guard.stats().dropped > 0);
    let during = guard.stats();
    assert_eq!(during.dropped, 0, "the queue dropped calls: {during:?}");
    assert_eq!(calls(), 3_000, "the healthy sink got every call");
    assert!(
        during.peak_held_bytes <= 512 * 1024,
        "the pipeline held more than its bound: {during:?}"
    );
    hanging.release();
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    let hung = &stats.sinks[0];
    assert!(
        hung.dropped > 2_000,
        "the hanging sink's overflow is counted: {stats:?}"
    );
    assert_eq!(hung.written + hung.failed + hung.dropped, 3_000);
    assert_eq!(stats.sinks[1].written, 3_000);
}
