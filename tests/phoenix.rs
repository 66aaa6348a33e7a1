//! Against a real receiver none of us wrote: Arize Phoenix (`bash scripts/services.sh start
//! phoenix`, OTLP gRPC on 127.0.0.1:4317, HTTP and its REST API on 127.0.0.1:6006). Audited
//! calls go out over gRPC and over HTTP through `OtlpSetup`, and are read back through Phoenix's
//! REST API.
//!
//! Skips with a reason when Phoenix is not running, except under `CI=true`, where it must run.
#![cfg(feature = "otlp")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tracing_llm_audit::names::{self, openinference};
use tracing_llm_audit::otel::OtelSpans;
use tracing_llm_audit::otlp::{OtlpSetup, Protocol};
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, LlmSpanExt, MemorySink, Usage};
use tracing_subscriber::layer::SubscriberExt;

const REST: &str = "http://127.0.0.1:6006";
const PROMPT: &str = "Patient Jane Roe, born 1970-01-01, asks about her results";

/// Whether Phoenix answers; under CI it must.
fn phoenix_available() -> bool {
    let up = reqwest::blocking::Client::new()
        .get(format!("{REST}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|r| r.status().is_success());
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Phoenix is not running at {REST}; under CI=true it must be (bash scripts/services.sh start phoenix)"
        );
        eprintln!(
            "skipped: Phoenix is not running at {REST} (start it: bash scripts/services.sh start phoenix)"
        );
    }
    up
}

fn call(user: &str, model: &str) {
    let span = tracing_llm_audit::llm_span!(provider = "anthropic", model = model, user = user);
    let _enter = span.enter();
    span.record_system_prompt(b"You are a clinical assistant.");
    span.record_input(PROMPT.as_bytes());
    span.record_usage(&Usage {
        input_tokens: Some(1_000),
        output_tokens: Some(200),
        ..Usage::default()
    });
    span.record_output(b"Your results are normal.");
}

/// Sends three audited calls to Phoenix and returns the entries and the spans it stored.
fn send(protocol: Protocol, endpoint: &str) -> (Vec<AuditEntry>, Vec<Value>) {
    let project = format!("llm-audit-test-{}", uuid::Uuid::now_v7());
    let otlp = OtlpSetup::builder()
        .with_endpoint(endpoint)
        .with_protocol(protocol)
        .with_service_name("llm-audit-phoenix-test")
        .with_resource_attribute("openinference.project.name", &project)
        .build()
        .unwrap();
    let memory = MemorySink::new();
    let (audit, guard) = AuditLayer::builder()
        .with_sink(memory.clone())
        .with_hash_key(HashKey::new("phoenix-test", [7u8; 32]).unwrap())
        .with_otel_spans(OtelSpans::new().with_openinference(true))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(audit)
        .with(otlp.tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        call("alice", "claude-sonnet-4-5");
        call("bob", "claude-haiku-4-5");
        call("alice", "claude-haiku-4-5");
    });
    // Phoenix takes traces only: the metrics exporter's failure at shutdown is expected here.
    let done = otlp.shutdown_after(guard, Duration::from_secs(20));
    let stats = done.audit.unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    let spans = read_spans(&project, 3);
    let _ = reqwest::blocking::Client::new()
        .delete(format!("{REST}/v1/projects/{project}"))
        .send();
    (memory.entries(), spans)
}

/// Polls Phoenix's REST API until `want` spans are stored (ingestion is asynchronous).
fn read_spans(project: &str, want: usize) -> Vec<Value> {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client
            .get(format!("{REST}/v1/projects/{project}/spans?limit=100"))
            .send()
            .unwrap();
        if response.status().is_success() {
            let body: Value = response.json().unwrap();
            let spans = body["data"].as_array().cloned().unwrap_or_default();
            if spans.len() >= want {
                return spans;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Phoenix did not show {want} spans in project {project} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check(entries: &[AuditEntry], spans: &[Value]) {
    assert_eq!(entries.len(), 3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let entries: HashMap<String, &AuditEntry> = entries
        .iter()
        .map(|e| (e.request_id.to_string(), e))
        .collect();
    for span in spans {
        let attrs = &span["attributes"];
        let entry = entries[attrs[names::REQUEST_ID].as_str().unwrap()];
        // Named as the GenAI conventions name spans: `{operation} {model}`.
        assert_eq!(
            span["name"].as_str(),
            Some(format!("chat {}", entry.model.as_deref().unwrap()).as_str()),
            "{span:#}"
        );
        assert_eq!(
            attrs[names::USAGE_INPUT_TOKENS],
            1_000,
            "token counts are numbers"
        );
        assert_eq!(span["span_kind"], "LLM");
        // Success leaves the status unset, as the conventions ask of instrumentation.
        assert_eq!(span["status_code"], "UNSET");
        assert_eq!(
            span["context"]["trace_id"].as_str(),
            entry.trace_id.as_deref()
        );
        assert_eq!(
            span["context"]["span_id"].as_str(),
            entry.span_id.as_deref()
        );
        assert_eq!(attrs[names::REQUEST_MODEL].as_str(), entry.model.as_deref());
        assert_eq!(attrs[names::USER_ID].as_str(), entry.user_id.as_deref());
        assert_eq!(attrs[openinference::TOKEN_COUNT_PROMPT], 1_000);
        assert_eq!(attrs[openinference::TOKEN_COUNT_COMPLETION], 200);
        assert_eq!(
            attrs[names::USAGE_COST].as_str(),
            Some(entry.cost_usd.unwrap().to_string().as_str()),
            "the exact cost"
        );
        let cost: f64 = entry.cost_usd.unwrap().to_string().parse().unwrap();
        assert_eq!(attrs[openinference::COST_TOTAL].as_f64(), Some(cost));
        assert_eq!(
            attrs[names::INPUT_HASH].as_str(),
            entry.input_hash.as_deref()
        );
        assert_eq!(
            attrs[names::OUTPUT_HASH].as_str(),
            entry.output_hash.as_deref()
        );
        assert_eq!(
            attrs[names::SYSTEM_PROMPT_HASH].as_str(),
            entry.system_prompt_hash.as_deref()
        );
        assert_eq!(attrs[names::STATUS], "success");
        // Hash-only content: no raw prompt, system prompt or completion reached Phoenix.
        let everything = span.to_string();
        for raw in ["Jane Roe", "clinical assistant", "results are normal"] {
            assert!(!everything.contains(raw), "{raw:?} leaked: {everything}");
        }
    }
}

#[test]
fn phoenix_receives_audited_spans_over_grpc() {
    if !phoenix_available() {
        return;
    }
    let (entries, spans) = send(Protocol::Grpc, "http://127.0.0.1:4317");
    check(&entries, &spans);
}

#[test]
fn phoenix_receives_audited_spans_over_http() {
    if !phoenix_available() {
        return;
    }
    let (entries, spans) = send(Protocol::HttpProtobuf, REST);
    check(&entries, &spans);
}
