//! The audit layer through its public API: which spans become entries, and what an entry holds.

use std::time::Duration;

use tracing::subscriber::with_default;
use tracing_llm_audit::{
    AuditEntry, AuditLayer, HashKey, LlmSpanExt, MemorySink, Overflow, Status, Usage,
};
use tracing_subscriber::layer::SubscriberExt;

fn key() -> HashKey {
    HashKey::new("test-key", [9u8; 32]).unwrap()
}

/// Runs `f` under a registry with an audit layer writing to a memory sink, shuts the pipeline
/// down, and returns what the sink received.
fn audited(f: impl FnOnce()) -> Vec<AuditEntry> {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(key())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    with_default(tracing_subscriber::registry().with(layer), f);
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    sink.entries()
}

#[test]
fn spans_without_the_operation_field_produce_no_entries() {
    let entries = audited(|| {
        let span = tracing::info_span!("http.request", "http.method" = "GET", model = "gpt-4o");
        let _enter = span.enter();
        tracing::error!("an error outside any LLM span");
    });
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn third_party_genai_spans_become_entries() {
    // Emitted the way another crate following the GenAI conventions would: plain tracing
    // macros, the older `gen_ai.system` name, numbers recorded later.
    let entries = audited(|| {
        let span = tracing::info_span!(
            "chat claude-haiku-4-5",
            "gen_ai.operation.name" = "chat",
            "gen_ai.system" = "anthropic",
            "gen_ai.request.model" = "claude-haiku-4-5",
            "gen_ai.usage.input_tokens" = tracing::field::Empty,
            "gen_ai.usage.output_tokens" = tracing::field::Empty,
            "gen_ai.request.temperature" = 0.2,
            "otel.kind" = "client",
        );
        span.record("gen_ai.usage.input_tokens", 1_000_u64);
        span.record("gen_ai.usage.output_tokens", 200_i64);
    });
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.action, "chat");
    assert_eq!(entry.provider.as_deref(), Some("anthropic"));
    assert_eq!(entry.model.as_deref(), Some("claude-haiku-4-5"));
    assert_eq!(entry.input_tokens, Some(1_000));
    assert_eq!(entry.output_tokens, Some(200));
    assert_eq!(entry.status, Status::Success);
    // claude-haiku-4-5: 1,000 × $1/M + 200 × $5/M = $0.001 + $0.001 = $0.002
    assert_eq!(entry.cost_usd, Some("0.002".parse().unwrap()));
    let metadata = entry.metadata.as_ref().unwrap();
    assert_eq!(metadata["gen_ai.request.temperature"], 0.2);
    assert!(!metadata.contains_key("otel.kind"));
}

#[test]
fn provider_name_wins_over_the_older_system_field() {
    let entries = audited(|| {
        let _span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.system" = "old",
            "gen_ai.provider.name" = "openai",
        );
    });
    assert_eq!(entries[0].provider.as_deref(), Some("openai"));
}

#[test]
fn usage_never_recorded_stays_null_and_cost_says_why() {
    let entries = audited(|| {
        let _span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
        );
    });
    let entry = &entries[0];
    assert_eq!(entry.input_tokens, None);
    assert_eq!(entry.output_tokens, None);
    assert_eq!(entry.cost_usd, None);
    assert!(
        entry.cost_note.as_deref().unwrap().contains("input_tokens"),
        "{entry:?}"
    );
}

#[test]
fn unknown_model_gets_null_cost_with_a_reason() {
    let entries = audited(|| {
        let span = tracing_llm_audit::llm_span!(provider = "acme", model = "acme-llm-9");
        span.record_usage(&Usage {
            input_tokens: Some(10),
            output_tokens: Some(10),
            ..Usage::default()
        });
    });
    assert_eq!(entries[0].cost_usd, None);
    assert!(entries[0]
        .cost_note
        .as_deref()
        .unwrap()
        .contains("acme-llm-9"));
}

#[test]
fn content_is_hashed_with_the_key_and_never_printed_by_other_layers() {
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = printed.clone();
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(key())
        .build()
        .unwrap();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || SharedBuf(writer.clone()))
        .with_ansi(false);
    let request_id = with_default(tracing_subscriber::registry().with(fmt).with(layer), || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        let _enter = span.enter();
        span.record_system_prompt(b"You are a SECRET-SYSTEM-PROMPT.");
        span.record_input(b"my card is SECRET-INPUT");
        span.record_output(b"SECRET-");
        span.record_output(b"OUTPUT");
        tracing::info!("call done");
        span.audit_request_id()
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entries = sink.entries();
    let entry = &entries[0];
    assert_eq!(Some(entry.request_id), request_id);
    let key = key();
    assert_eq!(
        entry.system_prompt_hash,
        Some(key.hash(b"You are a SECRET-SYSTEM-PROMPT."))
    );
    assert_eq!(entry.input_hash, Some(key.hash(b"my card is SECRET-INPUT")));
    assert_eq!(
        entry.output_hash,
        Some(key.hash(b"SECRET-OUTPUT")),
        "chunks are appended"
    );
    assert_eq!(entry.hash_key_id.as_deref(), Some("test-key"));
    let line = serde_json::to_string(entry).unwrap();
    assert!(!line.contains("SECRET"), "{line}");
    let printed = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    assert!(printed.contains("call done"), "fmt saw the span: {printed}");
    assert!(!printed.contains("SECRET"), "{printed}");
}

#[test]
fn third_party_content_attributes_are_hashed_not_kept() {
    let entries = audited(|| {
        let _span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.input.messages" = r#"[{"role":"user","content":"SECRET"}]"#,
            "gen_ai.tool.call.arguments" = r#"{"ssn":"SECRET"}"#,
        );
    });
    let entry = &entries[0];
    assert_eq!(
        entry.input_hash,
        Some(key().hash(br#"[{"role":"user","content":"SECRET"}]"#))
    );
    assert!(!serde_json::to_string(entry).unwrap().contains("SECRET"));
}

#[test]
fn error_events_inside_the_span_make_the_status_error() {
    let entries = audited(|| {
        let span = tracing_llm_audit::llm_span!(provider = "anthropic", model = "claude-opus-4-5");
        let _enter = span.enter();
        tracing::warn!("retrying");
        let inner = tracing::info_span!("http");
        let _inner = inner.enter();
        tracing::error!(error.type = "overloaded_error", "upstream said {}", "529 Overloaded");
    });
    let entry = &entries[0];
    assert_eq!(entry.status, Status::Error);
    assert_eq!(entry.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(
        entry.error_message.as_deref(),
        Some("upstream said 529 Overloaded")
    );
}

#[test]
fn error_messages_are_bounded() {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(key())
        .with_max_error_message_len(64)
        .build()
        .unwrap();
    with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        span.record_error("invalid_request_error", &"é".repeat(500));
        span.record_error("second", &"also long ".repeat(50));
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entry = &sink.entries()[0];
    let message = entry.error_message.as_deref().unwrap();
    assert!(message.len() <= 64, "{} bytes", message.len());
    assert!(message.ends_with('…'));
    // The latest error's class wins; the messages of both are kept, in order.
    assert_eq!(entry.error_type.as_deref(), Some("second"));
    assert!(message.starts_with("ééé"), "{message}");
    assert_eq!(entry.status, Status::Error);
}

#[test]
fn explicit_status_wins() {
    let entries = audited(|| {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        span.record_status(Status::Blocked);
        span.record_sanitization("email", 2);
        span.record_sanitization("email", 1);
        span.record_sanitization("credit_card", 1);
    });
    let entry = &entries[0];
    assert_eq!(entry.status, Status::Blocked);
    assert_eq!(entry.sanitization_count, 4);
    assert_eq!(entry.sanitization["email"], 3);
    assert_eq!(entry.sanitization["credit_card"], 1);
}

#[test]
fn nested_llm_spans_give_one_entry_each_with_parent_ids() {
    let entries = audited(|| {
        let agent = tracing::info_span!(
            "invoke_agent",
            "gen_ai.operation.name" = "invoke_agent",
            "gen_ai.provider.name" = "anthropic",
        );
        let _agent = agent.enter();
        for _ in 0..2 {
            let plain = tracing::info_span!("tool step");
            let _plain = plain.enter();
            let _call =
                tracing_llm_audit::llm_span!(provider = "anthropic", model = "claude-haiku-4-5");
        }
    });
    assert_eq!(entries.len(), 3);
    let agent = entries.iter().find(|e| e.action == "invoke_agent").unwrap();
    let calls: Vec<_> = entries.iter().filter(|e| e.action == "chat").collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(agent.parent_span_id, None);
    for call in calls {
        assert_eq!(call.parent_span_id, agent.span_id);
        assert_eq!(call.trace_id, agent.trace_id);
        assert_ne!(call.span_id, agent.span_id);
    }
}

#[test]
fn latency_and_time_to_first_chunk_come_from_a_monotonic_clock() {
    let entries = audited(|| {
        let span =
            tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", stream = true);
        std::thread::sleep(Duration::from_millis(20));
        span.record_first_chunk();
        std::thread::sleep(Duration::from_millis(20));
        span.record_first_chunk(); // only the first counts
    });
    let entry = &entries[0];
    let ttfc = entry.time_to_first_chunk_ms.unwrap();
    assert!(ttfc >= 20, "{entry:?}");
    assert!(entry.latency_ms >= ttfc + 20, "{entry:?}");
    assert_eq!(entry.streaming, Some(true));
}

#[test]
fn time_to_first_chunk_is_also_read_from_the_span_field() {
    let entries = audited(|| {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        span.record("gen_ai.response.time_to_first_chunk", 0.25_f64);
    });
    assert_eq!(entries[0].time_to_first_chunk_ms, Some(250));
}

#[test]
fn request_ids_are_unique_v7_and_timestamps_utc() {
    let entries = audited(|| {
        for _ in 0..100 {
            let _span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        }
    });
    let mut ids: Vec<_> = entries.iter().map(|e| e.request_id).collect();
    assert!(ids.iter().all(|id| id.get_version_num() == 7));
    ids.dedup();
    assert_eq!(ids.len(), 100);
    assert!(entries.iter().all(|e| e.timestamp.offset().is_utc()));
}

#[derive(Clone)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_call_never_inherits_anything_from_an_earlier_one() {
    // Records are recycled between calls; what one call recorded must not leak into the next.
    let entries = audited(|| {
        for i in 0..600_u64 {
            let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
            if i % 2 == 0 {
                span.record_input(b"secret input");
                span.record_output(b"secret output");
                span.record_error("timeout", &"took too long");
                span.record_sanitization("email", 1);
                span.record_first_chunk();
                span.record_usage(&Usage {
                    input_tokens: Some(5),
                    output_tokens: Some(5),
                    ..Usage::default()
                });
            }
            // Give the worker time to recycle records now and then.
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    assert_eq!(entries.len(), 600);
    let clean: Vec<_> = entries
        .iter()
        .filter(|e| e.input_tokens.is_none())
        .collect();
    assert_eq!(clean.len(), 300);
    for entry in clean {
        assert_eq!(entry.input_hash, None, "{entry:?}");
        assert_eq!(entry.output_hash, None);
        assert_eq!(entry.hash_key_id, None);
        assert_eq!(entry.error_type, None);
        assert_eq!(entry.error_message, None);
        assert_eq!(entry.status, Status::Success);
        assert_eq!(entry.sanitization_count, 0);
        assert_eq!(entry.time_to_first_chunk_ms, None);
    }
}
