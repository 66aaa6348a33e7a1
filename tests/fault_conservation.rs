//! Conservation under faults (a property test): random calls go through sinks that fail at
//! random — errors, stalls, partial writes, entries refused for good, panics — under random
//! queue sizes, overflow policies and retry budgets. At the end, for every sink,
//! `emitted == dropped + internal_errors + written + spilled + failed + sink.dropped`, and what a sink
//! acknowledged is really there, exactly once: in the chaos sink's own store, and, for the sink
//! that wraps a real `JsonlSink`, in its files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, HashKey, JsonlSink, LlmSpanExt, Overflow, SinkError, Usage,
    ACTION_ENTRIES_DROPPED,
};
use tracing_subscriber::layer::SubscriberExt;

/// What a chaos sink does on one call of `write_batch`.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Accepts the whole batch.
    Ok,
    /// Accepts nothing and fails.
    Error,
    /// Sleeps, then accepts the whole batch.
    Stall(u8),
    /// Accepts the first n (modulo the batch length), then fails.
    Partial(u8),
    /// Accepts the first n, of which the last m are refused for good (never stored), then
    /// fails.
    Refuse(u8, u8),
    /// Panics before accepting anything.
    Panic,
    /// A broken sink, never in the strategy: stores the first n and reports none accepted, so
    /// a retry stores them again. The checks must catch it.
    Lie(u8),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::Ok),
        2 => Just(Fault::Error),
        1 => (1u8..4).prop_map(Fault::Stall),
        3 => any::<u8>().prop_map(Fault::Partial),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(n, m)| Fault::Refuse(n, m)),
        1 => Just(Fault::Panic),
    ]
}

/// A sink that follows a script of faults (cycling), storing what it acknowledges: in memory,
/// and through a real sink when it wraps one.
#[derive(Debug)]
struct Chaos {
    name: String,
    script: Vec<Fault>,
    call: usize,
    stored: Arc<Mutex<Vec<AuditEntry>>>,
    events: Arc<Mutex<u64>>,
    inner: Option<JsonlSink>,
}

impl Chaos {
    fn store(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let (events, calls): (Vec<&AuditEntry>, Vec<&AuditEntry>) = entries
            .iter()
            .partition(|e| e.action == ACTION_ENTRIES_DROPPED);
        *self.events.lock().unwrap() += events.len() as u64;
        if let Some(inner) = &mut self.inner {
            let owned: Vec<AuditEntry> = calls.iter().map(|e| (*e).clone()).collect();
            inner
                .write_batch(&owned)
                .map_err(|e| SinkError::new(format!("the real sink failed: {e}")))?;
        }
        self.stored
            .lock()
            .unwrap()
            .extend(calls.into_iter().cloned());
        Ok(())
    }
}

impl AuditSink for Chaos {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let fault = self.script[self.call % self.script.len()];
        self.call += 1;
        let n = entries.len();
        match fault {
            Fault::Ok => self.store(entries),
            Fault::Error => Err(SinkError::new("chaos: the write failed")),
            Fault::Stall(ms) => {
                std::thread::sleep(Duration::from_millis(u64::from(ms)));
                self.store(entries)
            }
            Fault::Partial(k) => {
                let k = usize::from(k) % (n + 1);
                self.store(&entries[..k])?;
                Err(SinkError::new("chaos: a partial write").accepted_before_failure(k))
            }
            Fault::Refuse(k, m) => {
                let k = usize::from(k) % (n + 1);
                let m = usize::from(m) % (k + 1);
                // The refused ones are the last m of the accepted k: left out, never stored.
                self.store(&entries[..k - m])?;
                Err(SinkError::new("chaos: refused for good")
                    .accepted_before_failure(k)
                    .with_rejected(m))
            }
            Fault::Panic => panic!("chaos: the sink panicked"),
            Fault::Lie(k) => {
                let k = usize::from(k) % (n + 1);
                self.store(&entries[..k])?;
                Err(SinkError::new("chaos: a lie"))
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        match &mut self.inner {
            Some(inner) => inner
                .flush()
                .map_err(|e| SinkError::new(format!("flush: {e}"))),
            None => Ok(()),
        }
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        match &mut self.inner {
            Some(inner) => inner
                .shutdown()
                .map_err(|e| SinkError::new(format!("shutdown: {e}"))),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone)]
struct Setup {
    calls: u64,
    threads: u64,
    queue: usize,
    block: bool,
    retries: u32,
    max_batch: usize,
    backlog: usize,
    scripts: [Vec<Fault>; 2],
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1u64..400,
        1u64..4,
        1usize..64,
        any::<bool>(),
        0u32..3,
        1usize..50,
        1usize..200,
        prop::collection::vec(fault(), 1..12),
        prop::collection::vec(fault(), 1..12),
    )
        .prop_map(
            |(calls, threads, queue, block, retries, max_batch, backlog, a, b)| Setup {
                calls,
                threads,
                queue,
                block,
                retries,
                max_batch,
                backlog,
                scripts: [a, b],
            },
        )
}

fn run(setup: &Setup) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<Mutex<Vec<AuditEntry>>>> = (0..2).map(|_| Arc::default()).collect();
    let events: Vec<Arc<Mutex<u64>>> = (0..2).map(|_| Arc::default()).collect();
    let chaos = |i: usize, inner: Option<JsonlSink>| Chaos {
        name: format!("chaos-{i}"),
        script: setup.scripts[i].clone(),
        call: 0,
        stored: stores[i].clone(),
        events: events[i].clone(),
        inner,
    };
    let (layer, guard) = AuditLayer::builder()
        .with_sink(chaos(0, None))
        .with_sink(chaos(1, Some(JsonlSink::new(dir.path()).unwrap())))
        .with_hash_key(HashKey::new("chaos", [9u8; 32]).unwrap())
        .with_queue_capacity(setup.queue)
        .with_overflow(if setup.block {
            Overflow::Block
        } else {
            Overflow::DropNewest
        })
        .with_retry(setup.retries, Duration::from_micros(50))
        .with_max_batch(setup.max_batch)
        .with_sink_backlog(setup.backlog)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let per_thread = setup.calls / setup.threads + 1;
    std::thread::scope(|scope| {
        for t in 0..setup.threads {
            let dispatch = &dispatch;
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for i in 0..per_thread {
                        let span = tracing_llm_audit::llm_span!(
                            provider = "openai",
                            model = "gpt-4o-mini",
                            user = format!("thread-{t}")
                        );
                        span.record_usage(&Usage {
                            input_tokens: Some(i + 1),
                            output_tokens: Some(1),
                            ..Usage::default()
                        });
                        span.record_input(b"hello");
                    }
                });
            });
        }
    });
    let emitted = per_thread * setup.threads;
    let stats = guard
        .shutdown(Duration::from_secs(60))
        .map_err(|e| TestCaseError::fail(format!("shutdown timed out: {e:?}")))?;
    prop_assert_eq!(stats.emitted, emitted);
    prop_assert_eq!(stats.internal_errors, 0);
    prop_assert_eq!(stats.sinks.len(), 2);
    for (i, sink) in stats.sinks.iter().enumerate() {
        prop_assert_eq!(
            emitted,
            stats.dropped
                + stats.internal_errors
                + sink.written
                + sink.spilled
                + sink.failed
                + sink.dropped,
            "sink {}: {:?}",
            i,
            stats
        );
        let stored = stores[i].lock().unwrap();
        let ids: BTreeSet<_> = stored.iter().map(|e| e.request_id).collect();
        prop_assert_eq!(ids.len(), stored.len(), "sink {} stored an entry twice", i);
        prop_assert_eq!(
            sink.written,
            stored.len() as u64,
            "sink {}: written is what it acknowledged",
            i
        );
        prop_assert_eq!(sink.events_written, *events[i].lock().unwrap());
    }
    // Both sinks saw the same calls, each the ones it acknowledged: no entry is invented.
    let all: BTreeMap<_, _> = stores
        .iter()
        .flat_map(|s| s.lock().unwrap().clone())
        .map(|e| (e.request_id, e))
        .collect();
    prop_assert!(all.len() as u64 <= emitted);
    // The real sink's files hold exactly what it acknowledged, once each.
    let mut on_disk = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let e: AuditEntry = serde_json::from_str(line).unwrap();
            if e.action != ACTION_ENTRIES_DROPPED {
                on_disk.push(e.request_id);
            }
        }
    }
    let acknowledged: Vec<_> = stores[1]
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.request_id)
        .collect();
    on_disk.sort();
    let mut expected = acknowledged.clone();
    expected.sort();
    prop_assert_eq!(
        on_disk,
        expected,
        "the files hold what the sink acknowledged"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_entry_is_written_dropped_or_failed_and_counted_once(setup in setup()) {
        run(&setup)?;
    }
}

/// The checks can fail: a sink that says it accepted nothing after storing part of a batch
/// (so that the retry stores it again) is caught, while the same setup with honest sinks passes.
#[test]
fn the_checks_catch_a_sink_that_stores_twice() {
    let honest = Setup {
        calls: 50,
        threads: 1,
        queue: 64,
        block: true,
        retries: 2,
        max_batch: 10,
        backlog: 100,
        scripts: [vec![Fault::Partial(5), Fault::Ok], vec![Fault::Ok]],
    };
    assert!(run(&honest).is_ok());
    for scripts in [
        [vec![Fault::Lie(5), Fault::Ok], vec![Fault::Ok]],
        [vec![Fault::Ok], vec![Fault::Lie(3), Fault::Ok]],
    ] {
        let lying = Setup {
            scripts,
            ..honest.clone()
        };
        assert!(run(&lying).is_err(), "{lying:?}");
    }
}
