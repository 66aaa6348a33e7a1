//! Audited LLM calls exported over OTLP: spans (with cost, hashes and status on them), one log
//! record per call, and the GenAI metrics, to the collector at `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (default `http://127.0.0.1:4317`, gRPC; set `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` and
//! port 4318 for HTTP). The JSONL trail in `./audit_logs` is written as well.
//!
//! ```sh
//! cd collector-config && docker compose up -d && cd ..
//! cargo run --example otlp --features otlp
//! ```
//!
//! Then open Jaeger (<http://localhost:16686>, service `llm-audit-example`) or Grafana
//! (<http://localhost:3000>, dashboard "LLM audit"). With no collector running the example still
//! completes: the OTLP failures are counted and printed, and the JSONL trail has every call.

use std::time::Duration;

use tracing_llm_audit::otel::OtelSpans;
use tracing_llm_audit::otlp::OtlpSetup;
use tracing_llm_audit::{llm_span, AuditLayer, JsonlSink, LlmSpanExt, Usage};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4317";

/// One call to a simulated model.
fn ask(user: &str, model: &str, prompt: &str, fail: bool) {
    let span = llm_span!(provider = "anthropic", model = model, user = user);
    let _enter = span.enter();
    span.record_system_prompt(b"You are a helpful support assistant for Example Corp.");
    span.record_input(prompt.as_bytes());
    std::thread::sleep(Duration::from_millis(20));
    if fail {
        span.record_error("overloaded_error", &"529: the model is overloaded");
        return;
    }
    span.record_first_chunk();
    span.record_usage(&Usage {
        input_tokens: Some(prompt.len() as u64 * 40 + 2_000),
        output_tokens: Some(350),
        cache_read_input_tokens: Some(2_000),
        ..Usage::default()
    });
    span.record_response_model(&format!("{model}-20251001"));
    span.record_finish_reasons(&["end_turn"]);
    span.record_output(b"Here is what I found.");
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut otlp = OtlpSetup::builder()
        .with_service_name("llm-audit-example")
        .with_timeout(Duration::from_secs(3))
        .with_metrics_interval(Duration::from_secs(5));
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        otlp = otlp.with_endpoint(DEFAULT_ENDPOINT);
    }
    let otlp = otlp.build()?;
    let (audit, guard) = AuditLayer::builder()
        .with_sink(JsonlSink::new("./audit_logs")?)
        .with_sink(otlp.log_sink()?)
        .with_sink(otlp.metrics_sink())
        // OpenInference names too, so that LLM viewers such as Arize Phoenix show tokens and cost.
        .with_otel_spans(OtelSpans::new().with_openinference(true))
        .with_ephemeral_hash_key()
        .build()?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(LevelFilter::INFO),
        )
        .with(audit) // the audit layer first,
        .with(otlp.tracing_layer()) // the OpenTelemetry layer after it
        .init();

    let request = tracing::info_span!("support_ticket", ticket = 4711);
    request.in_scope(|| {
        ask("alice", "claude-sonnet-4-5", "reset my password", false);
        ask("bob", "claude-haiku-4-5", "where is my order 1234?", false);
        ask(
            "alice",
            "claude-sonnet-4-5",
            "cancel my subscription",
            false,
        );
        ask(
            "carol",
            "claude-haiku-4-5",
            "please summarize everything",
            true,
        );
    });
    drop(request);

    let done = otlp.shutdown_after(guard, Duration::from_secs(15));
    if let Err(error) = &done.providers {
        println!("span and metric export: {error}");
    }
    let stats = done.audit?;
    println!();
    for sink in &stats.sinks {
        println!(
            "{:<13} written {:>2}  failed {:>2}  dropped {:>2}  {}",
            sink.name,
            sink.written,
            sink.failed,
            sink.dropped,
            sink.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
