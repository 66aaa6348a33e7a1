//! The builder wins over `OTEL_EXPORTER_OTLP_*` for every signal of `OtlpSetup`, although the
//! OpenTelemetry SDK reads the environment again underneath. A test binary of its own: it sets
//! process environment variables.
#![cfg(feature = "otlp")]

mod support;

use std::time::Duration;

use support::otlp_receiver::GrpcReceiver;
use tracing_llm_audit::otlp::OtlpSetup;
use tracing_llm_audit::{AuditLayer, HashKey, LlmSpanExt};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn builder_headers_win_over_the_environment_for_spans_and_logs() {
    let receiver = GrpcReceiver::start();
    // The only test in this process: nothing else reads the environment meanwhile.
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=from-env,x-tenant=env-tenant",
    );
    let otlp = OtlpSetup::builder()
        .with_endpoint(receiver.endpoint())
        .with_header("authorization", "from-builder")
        .build()
        .unwrap();
    let (audit, guard) = AuditLayer::builder()
        .with_sink(otlp.log_sink().unwrap())
        .with_hash_key(HashKey::new("env", [2u8; 32]).unwrap())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(audit)
        .with(otlp.tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u");
        span.record_input(b"hi");
    });
    let done = otlp.shutdown_after(guard, Duration::from_secs(30));
    done.providers.unwrap();
    done.audit.unwrap();
    std::env::remove_var("OTEL_EXPORTER_OTLP_HEADERS");
    let expected = [
        ("authorization".to_owned(), "from-builder".to_owned()),
        ("x-tenant".to_owned(), "env-tenant".to_owned()),
    ];
    let signals = receiver.signals.lock().unwrap();
    assert!(!signals.trace_headers.is_empty());
    for headers in &signals.trace_headers {
        for header in &expected {
            assert!(
                headers.contains(header),
                "spans: {header:?} not in {headers:?}"
            );
        }
    }
    let logs = receiver.received.lock().unwrap();
    for headers in &logs.headers {
        for header in &expected {
            assert!(
                headers.contains(header),
                "logs: {header:?} not in {headers:?}"
            );
        }
    }
}
