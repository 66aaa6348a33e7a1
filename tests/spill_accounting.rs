//! Entries a sink keeps for later instead of delivering (a spill directory while its database
//! is down) are counted as spilled, never as written, and the pipeline's sum still holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, HashKey, LlmSpanExt, Overflow, SinkError, Usage,
};
use tracing_subscriber::layer::SubscriberExt;

/// What the sink does with each batch, in turn (the last one for every later batch).
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Deliver,
    Spill,
    Refuse,
}

#[derive(Debug)]
struct Planned {
    plan: Vec<Outcome>,
    batches: usize,
    last_spilled: usize,
    delivered: Arc<Mutex<usize>>,
}

impl Planned {
    fn new(plan: Vec<Outcome>) -> (Self, Arc<Mutex<usize>>) {
        let delivered = Arc::new(Mutex::new(0));
        let sink = Self {
            plan,
            batches: 0,
            last_spilled: 0,
            delivered: delivered.clone(),
        };
        (sink, delivered)
    }
}

impl AuditSink for Planned {
    fn name(&self) -> &str {
        "planned"
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let outcome = self.plan[self.batches.min(self.plan.len() - 1)];
        self.batches += 1;
        self.last_spilled = 0;
        match outcome {
            Outcome::Deliver => {
                *self.delivered.lock().unwrap() += entries.len();
                Ok(())
            }
            Outcome::Spill => {
                self.last_spilled = entries.len();
                Ok(())
            }
            Outcome::Refuse => Err(SinkError::new("refused for good")
                .accepted_before_failure(entries.len())
                .with_rejected(entries.len())),
        }
    }

    fn spilled_in_last_batch(&self) -> usize {
        self.last_spilled
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn run(sink: Planned, calls: u64) -> tracing_llm_audit::Stats {
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(HashKey::new("k", [4u8; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .with_max_batch(4)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..calls {
            let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
            span.record_usage(&Usage {
                input_tokens: Some(i),
                ..Usage::default()
            });
            // One entry at a time, so that every batch is one entry (nothing depends on timing).
            drop(span);
            guard.flush(Duration::from_secs(10)).unwrap();
        }
    });
    guard.shutdown(Duration::from_secs(10)).unwrap()
}

#[test]
fn spilled_entries_are_counted_as_spilled_never_as_written() {
    let (sink, delivered) = Planned::new(vec![Outcome::Spill]);
    let stats = run(sink, 5);
    let sink = &stats.sinks[0];
    assert_eq!(*delivered.lock().unwrap(), 0);
    assert_eq!(
        (sink.written, sink.spilled, sink.failed),
        (0, 5, 0),
        "{sink:?}"
    );
    assert_eq!(sink.retries, 0, "a spilled entry is not retried");
    assert_eq!(stats.emitted, 5);
    // Spilled entries are in the sink's keeping, durable: nothing was lost.
    assert!(stats.is_lossless(), "{stats:?}");
}

#[test]
fn written_spilled_and_refused_add_up() {
    use Outcome::{Deliver, Refuse, Spill};
    let (sink, delivered) =
        Planned::new(vec![Deliver, Spill, Spill, Refuse, Deliver, Spill, Deliver]);
    let stats = run(sink, 9);
    let sink = &stats.sinks[0];
    assert_eq!(*delivered.lock().unwrap(), 5);
    assert_eq!(
        (sink.written, sink.spilled, sink.failed),
        (5, 3, 1),
        "{sink:?}"
    );
    assert_eq!(
        stats.emitted,
        stats.dropped
            + stats.internal_errors
            + sink.written
            + sink.spilled
            + sink.failed
            + sink.dropped
    );
    assert!(!stats.is_lossless());
}
