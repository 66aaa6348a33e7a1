//! The pipeline's byte bound (`with_queue_max_bytes`) holds for everything the pipeline keeps:
//! calls waiting in the queue, and assembled entries waiting in a sink's backlog behind a sink
//! that does not keep up. Measured with a counting global allocator, so this file holds one
//! test: the allocations of other tests running beside it would count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, HashKey, LlmSpanExt, Overflow, SinkError, Stats,
};
use tracing_subscriber::layer::SubscriberExt;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn on_alloc(size: usize) {
    if COUNTING.load(Relaxed) {
        let live = LIVE.fetch_add(size as i64, Relaxed) + size as i64;
        PEAK.fetch_max(live, Relaxed);
    }
}

fn on_free(size: usize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_sub(size as i64, Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new_size);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts counting: the peak is measured from what is live now.
fn count_from_here() {
    LIVE.store(0, SeqCst);
    PEAK.store(0, SeqCst);
    COUNTING.store(true, SeqCst);
}

/// Stops counting; the peak of memory allocated and not freed since [`count_from_here`].
fn peak() -> u64 {
    COUNTING.store(false, SeqCst);
    PEAK.load(SeqCst).max(0) as u64
}

/// A gate that a sink waits on until it is opened.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// A sink that takes its first batch, then nothing until its gate opens.
#[derive(Debug)]
struct GatedSink {
    gate: Gate,
    written: u64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl AuditSink for GatedSink {
    fn name(&self) -> &str {
        "gated"
    }
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        // The first batch (the warm-up call) passes; the rest wait for the gate.
        if self.written > 0 {
            let (open, changed) = &*self.gate.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
        }
        self.written += entries.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

const BOUND: usize = 4 * 1024 * 1024;
const PROMPT: [u8; 1024] = [b'p'; 1024];

fn call(i: u64) {
    let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u1");
    span.record_input(&PROMPT);
    span.record_output(format!("answer {i}").as_bytes());
}

/// Sends `calls` calls into a sink that is closed until they are all sent, through a layer with
/// a byte bound of [`BOUND`] and the default backlog of 65,536 entries (at about 1.1 KB an
/// assembled entry, far more than the bound). Returns the peak of memory allocated while the
/// calls were sent and drained, and the final counters.
fn stalled_burst(overflow: Overflow, calls: u64) -> (u64, Stats) {
    let gate = Gate::default();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(GatedSink {
            gate: gate.clone(),
            written: 0,
        })
        .with_hash_key(HashKey::new("test-key", [7u8; 32]).unwrap())
        .with_queue_max_bytes(BOUND)
        .with_overflow(overflow)
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    // The registry's span slab and thread-locals are set up by a first call.
    tracing::dispatcher::with_default(&dispatch, || call(0));
    guard.flush(Duration::from_secs(10)).unwrap();
    count_from_here();
    let opener = match overflow {
        // Under `Block` the calls wait for room: the sink must open while they are sent.
        Overflow::Block => {
            let gate = gate.clone();
            Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                gate.open();
            }))
        }
        _ => None,
    };
    tracing::dispatcher::with_default(&dispatch, || (1..calls).for_each(call));
    gate.open();
    if let Some(opener) = opener {
        opener.join().unwrap();
    }
    guard.flush(Duration::from_secs(60)).unwrap();
    let peak = peak();
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    eprintln!("{overflow:?}: allocated at the peak {peak} bytes, bound {BOUND}; {stats:?}");
    (peak, stats)
}

#[test]
fn the_byte_bound_covers_the_queue_and_the_sink_backlog() {
    // DropNewest: the sink takes nothing while 20,000 calls of 1 KiB arrive. The queue's share
    // and the backlog's together stay within the bound; the rest is dropped and counted.
    let (peak, stats) = stalled_burst(Overflow::DropNewest, 20_000);
    let sink = &stats.sinks[0];
    assert_eq!(
        stats.emitted,
        stats.dropped + stats.internal_errors + sink.written + sink.failed + sink.dropped,
        "every call is written or counted: {stats:?}"
    );
    // Refused at the queue, or, past the sink's share of the bound, at its backlog: which of
    // the two depends on how the worker's rounds fall.
    assert!(
        stats.dropped + sink.dropped > 10_000,
        "the bound refused calls: {stats:?}"
    );
    assert!(
        stats.peak_held_bytes <= BOUND as u64,
        "the pipeline charged itself {} bytes, over the bound of {BOUND}",
        stats.peak_held_bytes
    );
    assert!(
        peak <= BOUND as u64,
        "the pipeline allocated {peak} bytes at its peak, over the bound of {BOUND}: {stats:?}"
    );
    // What was written is what the bound let in: far fewer than the backlog's 65,536 entries.
    assert!(sink.written < 4_000, "{stats:?}");

    // Block: nothing is lost, and the callers waited instead of the pipeline growing.
    let (peak, stats) = stalled_burst(Overflow::Block, 20_000);
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.sinks[0].written, 20_000, "{stats:?}");
    assert!(stats.peak_held_bytes <= BOUND as u64, "{stats:?}");
    assert!(
        peak <= BOUND as u64,
        "the pipeline allocated {peak} bytes at its peak, over the bound of {BOUND}: {stats:?}"
    );
}
