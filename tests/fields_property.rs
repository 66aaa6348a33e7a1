//! Every field a span records arrives in the entry, whatever its value.

use std::time::Duration;

use proptest::prelude::*;
use tracing::field::Empty;
use tracing::subscriber::with_default;
use tracing_llm_audit::{AuditLayer, HashKey, MemorySink, Overflow, Status};
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone)]
struct Recorded {
    operation: String,
    provider: String,
    model: String,
    response_model: String,
    response_id: String,
    finish_reasons: Vec<String>,
    stream: bool,
    ttfc_ms: u64,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    user: String,
    session: String,
    sanitized: u64,
    error_type: Option<String>,
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including newlines, quotes, NUL and line separators.
    any::<String>().prop_filter("not empty", |s| !s.is_empty())
}

fn recorded() -> impl Strategy<Value = Recorded> {
    (
        (text(), text(), text(), text(), text()),
        prop::collection::vec("[a-z_]{1,12}", 1..4),
        (any::<bool>(), 0u64..10_000_000),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            text(),
            text(),
            any::<u64>(),
            prop::option::of("[a-z_]{1,20}"),
        ),
    )
        .prop_map(
            |(
                (operation, provider, model, response_model, response_id),
                finish_reasons,
                (stream, ttfc_ms),
                (input, output, cache_read, cache_write, reasoning),
                (user, session, sanitized, error_type),
            )| Recorded {
                operation,
                provider,
                model,
                response_model,
                response_id,
                finish_reasons,
                stream,
                ttfc_ms,
                input,
                output,
                cache_read,
                cache_write,
                reasoning,
                user,
                session,
                sanitized,
                error_type,
            },
        )
}

fn emit(r: &Recorded) {
    let span = tracing::info_span!(
        "llm",
        "gen_ai.operation.name" = r.operation.as_str(),
        "gen_ai.provider.name" = r.provider.as_str(),
        "gen_ai.request.model" = r.model.as_str(),
        "gen_ai.response.model" = Empty,
        "gen_ai.response.id" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "gen_ai.request.stream" = r.stream,
        "gen_ai.response.time_to_first_chunk" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "gen_ai.usage.cache_read.input_tokens" = Empty,
        "gen_ai.usage.cache_creation.input_tokens" = Empty,
        "gen_ai.usage.reasoning.output_tokens" = Empty,
        "user.id" = r.user.as_str(),
        "session.id" = Empty,
        "error.type" = Empty,
        "llm_audit.sanitization.count" = Empty,
    );
    span.record("gen_ai.response.model", r.response_model.as_str());
    span.record("gen_ai.response.id", r.response_id.as_str());
    let reasons = serde_json::to_string(&r.finish_reasons).unwrap();
    span.record("gen_ai.response.finish_reasons", reasons.as_str());
    span.record(
        "gen_ai.response.time_to_first_chunk",
        r.ttfc_ms as f64 / 1000.0,
    );
    span.record("gen_ai.usage.input_tokens", r.input);
    span.record("gen_ai.usage.output_tokens", r.output);
    span.record("gen_ai.usage.cache_read.input_tokens", r.cache_read);
    span.record("gen_ai.usage.cache_creation.input_tokens", r.cache_write);
    span.record("gen_ai.usage.reasoning.output_tokens", r.reasoning);
    span.record("session.id", r.session.as_str());
    span.record("llm_audit.sanitization.count", r.sanitized);
    if let Some(error_type) = &r.error_type {
        span.record("error.type", error_type.as_str());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_recorded_field_arrives_in_the_entry(r in recorded()) {
        let sink = MemorySink::new();
        let (layer, guard) = AuditLayer::builder()
            .with_sink(sink.clone())
            .with_hash_key(HashKey::new("k", [1u8; 32]).unwrap())
            .with_overflow(Overflow::Block)
            .build()
            .unwrap();
        with_default(tracing_subscriber::registry().with(layer), || emit(&r));
        guard.shutdown(Duration::from_secs(10)).unwrap();
        let entries = sink.entries();
        prop_assert_eq!(entries.len(), 1);
        let e = &entries[0];
        prop_assert_eq!(&e.action, &r.operation);
        prop_assert_eq!(e.provider.as_deref(), Some(r.provider.as_str()));
        prop_assert_eq!(e.model.as_deref(), Some(r.model.as_str()));
        prop_assert_eq!(e.response_model.as_deref(), Some(r.response_model.as_str()));
        prop_assert_eq!(e.response_id.as_deref(), Some(r.response_id.as_str()));
        prop_assert_eq!(e.finish_reasons.as_ref(), Some(&r.finish_reasons));
        prop_assert_eq!(e.streaming, Some(r.stream));
        prop_assert_eq!(e.time_to_first_chunk_ms, Some(r.ttfc_ms));
        prop_assert_eq!(e.input_tokens, Some(r.input));
        prop_assert_eq!(e.output_tokens, Some(r.output));
        prop_assert_eq!(e.cache_read_tokens, Some(r.cache_read));
        prop_assert_eq!(e.cache_write_tokens, Some(r.cache_write));
        prop_assert_eq!(e.thinking_tokens, Some(r.reasoning));
        prop_assert_eq!(e.user_id.as_deref(), Some(r.user.as_str()));
        prop_assert_eq!(e.session_id.as_deref(), Some(r.session.as_str()));
        prop_assert_eq!(e.sanitization_count, r.sanitized);
        prop_assert_eq!(e.error_type.as_deref(), r.error_type.as_deref());
        let status = if r.error_type.is_some() { Status::Error } else { Status::Success };
        prop_assert_eq!(e.status, status);
        // The entry survives its own serialization unchanged.
        let line = serde_json::to_string(e).unwrap();
        prop_assert_eq!(&serde_json::from_str::<tracing_llm_audit::AuditEntry>(&line).unwrap(), e);
    }
}
