//! What the audit layer costs the application's thread, next to its peers, in one run.
//!
//! - `plain_span`: a span that is not an LLM call, with no subscriber, with a registry and a
//!   no-op layer, and with the registry and `AuditLayer`. Target: `AuditLayer` adds at most
//!   10 ns over the no-op layer.
//! - `llm_span_1k`: an LLM call span with usage and a 1 KiB prompt, through `AuditLayer`
//!   (hashing happens on the worker) and through `tracing-opentelemetry` with a
//!   `BatchSpanProcessor` and an exporter that discards. Target: `AuditLayer` costs at most 1/3.
//!
//! The LLM span runs through the audit layer twice: with the default `Overflow::DropNewest`
//! (like the batch span processor, which also drops when its queue is full, this is what the
//! caller's thread pays), and with `Overflow::Block`, where back-to-back spans wait for the
//! worker, so the figure is the worker's throughput rather than the caller's cost. Both write
//! to a sink that discards.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing::Dispatch;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink, HashKey, LlmSpanExt, Overflow, SinkError, Usage,
};
use tracing_subscriber::layer::{Layer, SubscriberExt};

#[derive(Debug)]
struct DiscardSink;

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

#[derive(Debug)]
struct DiscardExporter;

impl SpanExporter for DiscardExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

struct NoopLayer;
impl<S: tracing::Subscriber> Layer<S> for NoopLayer {}

fn audit_dispatch(overflow: Overflow) -> (Dispatch, tracing_llm_audit::WorkerGuard) {
    let (layer, guard) = AuditLayer::builder()
        .with_sink(DiscardSink)
        .with_hash_key(HashKey::new("bench", [1u8; 32]).expect("valid key"))
        .with_overflow(overflow)
        .build()
        .expect("audit layer");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

fn otel_dispatch() -> (Dispatch, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(DiscardExporter).build())
        .build();
    let tracer = provider.tracer("bench");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        provider,
    )
}

fn plain_span() {
    let span = tracing::info_span!("handle_request", route = "/v1/orders");
    let _enter = span.enter();
    black_box(&span);
}

fn bench_plain_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("plain_span");
    group.bench_function("no_subscriber", |b| b.iter(plain_span));
    let noop = Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    tracing::dispatcher::with_default(&noop, || {
        group.bench_function("registry+noop_layer", |b| b.iter(plain_span));
    });
    let (audit, guard) = audit_dispatch(Overflow::DropNewest);
    tracing::dispatcher::with_default(&audit, || {
        group.bench_function("registry+audit_layer", |b| b.iter(plain_span));
    });
    group.finish();
    let stats = guard.shutdown(Duration::from_secs(30)).expect("shutdown");
    assert_eq!(stats.emitted, 0, "plain spans must not become entries");
}

fn llm_span_audit(prompt: &[u8]) {
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

fn llm_span_otel(prompt: &str) {
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

fn bench_llm_span(c: &mut Criterion) {
    let prompt = "x".repeat(1024);
    let mut group = c.benchmark_group("llm_span_1k");
    for (name, overflow) in [
        ("audit_layer", Overflow::DropNewest),
        ("audit_layer_block", Overflow::Block),
    ] {
        let (audit, guard) = audit_dispatch(overflow);
        tracing::dispatcher::with_default(&audit, || {
            group.bench_function(name, |b| b.iter(|| llm_span_audit(prompt.as_bytes())));
        });
        let stats = guard.shutdown(Duration::from_secs(60)).expect("shutdown");
        if overflow == Overflow::Block {
            assert_eq!(stats.dropped, 0, "{stats:?}");
        }
    }
    let (otel, provider) = otel_dispatch();
    tracing::dispatcher::with_default(&otel, || {
        group.bench_function("tracing_opentelemetry_batch", |b| {
            b.iter(|| llm_span_otel(&prompt));
        });
    });
    let _ = provider.shutdown();
    // Both, in the documented order: the audit layer assembles the entry (hash, cost) on the
    // caller's thread to put its values on the OpenTelemetry span before it is exported.
    let (both, guard, provider) = audit_and_otel_dispatch();
    tracing::dispatcher::with_default(&both, || {
        group.bench_function("audit_layer+tracing_opentelemetry", |b| {
            b.iter(|| llm_span_audit(prompt.as_bytes()));
        });
    });
    group.finish();
    guard.shutdown(Duration::from_secs(60)).expect("shutdown");
    let _ = provider.shutdown();
}

fn audit_and_otel_dispatch() -> (Dispatch, tracing_llm_audit::WorkerGuard, SdkTracerProvider) {
    let (audit, guard) = AuditLayer::builder()
        .with_sink(DiscardSink)
        .with_hash_key(HashKey::new("bench", [1u8; 32]).expect("valid key"))
        .build()
        .expect("audit layer");
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(DiscardExporter).build())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    (
        Dispatch::new(tracing_subscriber::registry().with(audit).with(otel)),
        guard,
        provider,
    )
}

criterion_group!(benches, bench_plain_span, bench_llm_span);
criterion_main!(benches);
