//! What the benchmarks share: sinks and exporters that discard, the subscribers under test, the
//! spans they run, a sample of entries, and a counting allocator.
//!
//! Each benchmark prints its non-timing figures (allocations, peak memory, drops) as lines
//! `llm-audit-bench <id> <key>=<value> ...`, which `scripts/benchmarks.sh` collects next to
//! criterion's estimates.
#![allow(dead_code, unreachable_pub)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use rust_decimal::Decimal;
use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, HashKey, LlmSpanExt, Overflow, SinkError, Status, Usage,
    WorkerGuard,
};
use tracing_subscriber::layer::{Layer, SubscriberExt};

/// Whether the benchmark was started with `--test` (criterion's smoke mode, what CI runs).
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Prints one figure line for `scripts/benchmarks.sh`.
pub fn report(id: &str, figures: &[(&str, String)]) {
    let pairs: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("llm-audit-bench {id} {}", pairs.join(" "));
}

// ---- counting allocator -------------------------------------------------------------------

/// `System`, counting while [`count`] or [`PeakMemory`] has switched counting on. Off, it costs
/// one relaxed load per call, so timing runs are not disturbed.
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed since counting was switched on (frees of older memory make
/// it go below zero, which is why it is signed).
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

thread_local! {
    // Const-initialized and without a destructor: safe to touch from inside the allocator.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static THREAD_BYTES: Cell<u64> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    if !COUNTING.load(Relaxed) {
        return;
    }
    ALL_ALLOCATIONS.fetch_add(1, Relaxed);
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = THREAD_BYTES.try_with(|n| n.set(n.get() + size as u64));
    let live = LIVE.fetch_add(size as i64, Relaxed) + size as i64;
    PEAK.fetch_max(live, Relaxed);
}

fn on_free(size: usize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_sub(size as i64, Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        System.dealloc(ptr, layout);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made while running a closure.
#[derive(Debug, Clone, Copy)]
pub struct Allocations {
    /// On the calling thread.
    pub this_thread: u64,
    /// Bytes requested on the calling thread.
    pub this_thread_bytes: u64,
    /// On every thread (the pipeline's worker, exporters' threads).
    pub all_threads: u64,
}

/// Runs `f` `n` times on this thread (after one uncounted run, which may set up thread-local
/// state) and returns the allocations per run.
pub fn allocations_per_run(n: u64, mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let counts = count(|| (0..n).for_each(|_| f()));
    (
        counts.this_thread as f64 / n as f64,
        counts.this_thread_bytes as f64 / n as f64,
        counts.all_threads as f64 / n as f64,
    )
}

/// Counts the allocations `f` makes.
pub fn count(f: impl FnOnce()) -> Allocations {
    let (thread_before, bytes_before) = (
        THREAD_ALLOCATIONS.with(Cell::get),
        THREAD_BYTES.with(Cell::get),
    );
    let all_before = ALL_ALLOCATIONS.load(Relaxed);
    COUNTING.store(true, Relaxed);
    f();
    COUNTING.store(false, Relaxed);
    Allocations {
        this_thread: THREAD_ALLOCATIONS.with(Cell::get) - thread_before,
        this_thread_bytes: THREAD_BYTES.with(Cell::get) - bytes_before,
        all_threads: ALL_ALLOCATIONS.load(Relaxed) - all_before,
    }
}

/// The high-water mark of memory allocated (and not yet freed) on every thread, over what was
/// live when it started.
pub struct PeakMemory(());

impl PeakMemory {
    pub fn start() -> Self {
        LIVE.store(0, Relaxed);
        PEAK.store(0, Relaxed);
        COUNTING.store(true, Relaxed);
        Self(())
    }

    /// Stops counting; returns the peak in bytes.
    pub fn stop(self) -> u64 {
        COUNTING.store(false, Relaxed);
        PEAK.load(Relaxed).max(0) as u64
    }
}

// ---- sinks, exporters, subscribers --------------------------------------------------------

/// A sink that accepts everything and keeps nothing.
#[derive(Debug)]
pub struct DiscardSink;

impl AuditSink for DiscardSink {
    fn name(&self) -> &str {
        "discard"
    }
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        black_box(entries);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// An OpenTelemetry span exporter that discards.
#[derive(Debug)]
pub struct DiscardExporter;

impl SpanExporter for DiscardExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// A layer that does nothing: the registry's own cost.
pub struct NoopLayer;
impl<S: tracing::Subscriber> Layer<S> for NoopLayer {}

pub fn hash_key() -> HashKey {
    HashKey::new("bench", [1u8; 32]).expect("valid key")
}

/// An `AuditLayer` writing to [`DiscardSink`].
pub fn audit_layer(overflow: Overflow) -> (AuditLayer, WorkerGuard) {
    AuditLayer::builder()
        .with_sink(DiscardSink)
        .with_hash_key(hash_key())
        .with_overflow(overflow)
        .build()
        .expect("audit layer")
}

/// The queue of the `BatchSpanProcessor` of [`otel_provider`]; 0 for the SDK's default (2,048).
pub static OTEL_QUEUE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `tracing-opentelemetry` with a `BatchSpanProcessor` and an exporter that discards.
pub fn otel_provider() -> SdkTracerProvider {
    let mut processor = BatchSpanProcessor::builder(DiscardExporter);
    let queue = OTEL_QUEUE.load(std::sync::atomic::Ordering::Relaxed);
    if queue > 0 {
        processor = processor.with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(queue)
                .build(),
        );
    }
    SdkTracerProvider::builder()
        .with_span_processor(processor.build())
        .build()
}

/// The subscribers that the audit layer is measured alone and behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The registry with [`NoopLayer`].
    Registry,
    /// The registry with `tracing_subscriber::fmt` writing JSON lines (every closed span) to
    /// nowhere.
    FmtJson,
    /// The registry with `tracing-opentelemetry` (batch processor, exporter that discards).
    Otel,
}

impl Base {
    pub fn name(self) -> &'static str {
        match self {
            Base::Registry => "noop_layer",
            Base::FmtJson => "fmt_json",
            Base::Otel => "tracing_opentelemetry_batch",
        }
    }
}

/// What must live as long as a [`Dispatch`] is used and be shut down after.
#[derive(Default)]
pub struct Running {
    pub guard: Option<WorkerGuard>,
    pub provider: Option<SdkTracerProvider>,
}

impl Running {
    /// Shuts the pipeline and the tracer provider down; returns the pipeline's stats.
    pub fn shutdown(self) -> Option<tracing_llm_audit::Stats> {
        if let Some(provider) = self.provider {
            let _ = provider.shutdown();
        }
        self.guard.map(|g| {
            g.shutdown(std::time::Duration::from_secs(120))
                .expect("shutdown")
        })
    }
}

/// `base`, with an `AuditLayer` (writing to [`DiscardSink`]) when `audit` is set: after `fmt`,
/// before `tracing-opentelemetry`, as the README shows.
pub fn dispatch(base: Base, audit: Option<Overflow>) -> (Dispatch, Running) {
    let mut running = Running::default();
    let audit = audit.map(|overflow| {
        let (layer, guard) = audit_layer(overflow);
        running.guard = Some(guard);
        layer
    });
    let registry = tracing_subscriber::registry();
    let dispatch = match base {
        Base::Registry => Dispatch::new(registry.with(NoopLayer).with(audit)),
        Base::FmtJson => Dispatch::new(
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                        .with_writer(std::io::sink),
                )
                .with(audit),
        ),
        Base::Otel => {
            let provider = otel_provider();
            let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
            running.provider = Some(provider);
            // The documented order: the audit layer sees the close while the OpenTelemetry span
            // is still open.
            Dispatch::new(registry.with(audit).with(layer))
        }
    };
    (dispatch, running)
}

// ---- the spans ---------------------------------------------------------------------------

/// A span that is not an LLM call: new, enter, exit, close.
pub fn plain_span() {
    let span = tracing::info_span!("handle_request", route = "/v1/orders");
    let _enter = span.enter();
    black_box(&span);
}

/// An LLM call span with usage and a prompt, as the audit layer wants it.
pub fn llm_span_audit(prompt: &[u8]) {
    let span =
        tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "user-42");
    let _enter = span.enter();
    span.record_input(prompt);
    span.record_usage(&Usage {
        input_tokens: Some(300),
        output_tokens: Some(120),
        ..Usage::default()
    });
}

/// The same call as the GenAI conventions put it on a span for tracing-opentelemetry or fmt:
/// the prompt as a span field.
pub fn llm_span_fields(prompt: &str) {
    let span = tracing::info_span!(
        "chat gpt-4o",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = "openai",
        "gen_ai.request.model" = "gpt-4o",
        "user.id" = "user-42",
        "gen_ai.input.messages" = tracing::field::Empty,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
    );
    let _enter = span.enter();
    span.record("gen_ai.input.messages", prompt);
    span.record("gen_ai.usage.input_tokens", 300_u64);
    span.record("gen_ai.usage.output_tokens", 120_u64);
}

// ---- entries ------------------------------------------------------------------------------

/// `n` entries as the worker makes them from LLM calls (content hashed), varied a little.
pub fn entries(n: usize) -> Vec<AuditEntry> {
    (0..n)
        .map(|i| {
            let mut e = AuditEntry::new("chat");
            e.user_id = Some(format!("user-{}", i % 50));
            e.model = Some("gpt-4o-mini".to_owned());
            e.provider = Some("openai".to_owned());
            e.system_prompt_hash = Some(format!("hmac-sha256:{}", "ab".repeat(32)));
            e.input_hash = Some(format!("hmac-sha256:{}", "cd".repeat(32)));
            e.output_hash = Some(format!("hmac-sha256:{}", "ef".repeat(32)));
            e.input_tokens = Some(1_000 + i as u64 % 300);
            e.output_tokens = Some(200);
            e.thinking_tokens = Some(0);
            e.latency_ms = 800;
            e.cost_usd = Some(Decimal::new(345_000, 9));
            e.status = Status::Success;
            e
        })
        .collect()
}

/// The calling thread's CPU time (Linux `CLOCK_THREAD_CPUTIME_ID`).
#[cfg(target_os = "linux")]
pub fn thread_cpu_time() -> std::time::Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec for the call's duration.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time() -> std::time::Duration {
    panic!("measuring CPU time needs Linux's CLOCK_THREAD_CPUTIME_ID")
}
