//! Hostile input through the public API: multi-megabyte field values, invalid UTF-8 content,
//! negative and absurd token counts, a 100 KiB model name, control characters in ids, a
//! thousand finish reasons. Nothing panics, every entry is one valid line of bounded length,
//! and each problem is recorded in the entry: cut values with their length and keyed hash
//! (`llm_audit.truncated`), the rest in `llm_audit.problems`.

use std::time::Duration;

use serde_json::Value;
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, JsonlSink, LlmSpanExt, MemorySink};
use tracing_subscriber::layer::SubscriberExt;

fn key() -> HashKey {
    HashKey::new("hostile", [4u8; 32]).unwrap()
}

/// The calls, each hostile in its own way; returns what the memory sink got and the JSONL lines.
fn hostile_calls() -> (Vec<AuditEntry>, Vec<String>, Hostile) {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(memory.clone())
        .with_sink(JsonlSink::new(dir.path()).unwrap())
        .with_hash_key(key())
        .build()
        .unwrap();
    let hostile = Hostile::new();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        // 0: a 100 KiB model name and control characters in the user and session ids.
        let span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = "openai",
            "gen_ai.request.model" = hostile.model.as_str(),
            "user.id" = "mallory\u{0}\n\u{1b}[31mred",
            "session.id" = "s\u{7}1",
            "openai.response.service_tier" = hostile.model.as_str(),
        );
        drop(span);
        // 1: a 5 MiB metadata value, 3 MiB of invalid UTF-8 as input, a 5 MiB error message.
        let span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "app.blob" = hostile.blob.as_str(),
        );
        span.record_input(&hostile.invalid_utf8);
        span.in_scope(|| tracing::error!(error.type = "huge", "{}", hostile.blob));
        drop(span);
        // 2: negative and absurd token counts.
        let span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "gen_ai.usage.input_tokens" = -5_i64,
            "gen_ai.usage.output_tokens" = u64::MAX,
            "gen_ai.usage.cache_read.input_tokens" = i64::MIN,
        );
        drop(span);
        // 3: a thousand finish reasons, each of 2 KiB.
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
        let reasons: Vec<String> = (0..1_000)
            .map(|i| format!("{i}{}", "r".repeat(2048)))
            .collect();
        let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
        span.record_finish_reasons(&reasons);
        drop(span);
    });
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    let mut lines = Vec::new();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    (memory.entries(), lines, hostile)
}

struct Hostile {
    model: String,
    blob: String,
    invalid_utf8: Vec<u8>,
}

impl Hostile {
    fn new() -> Self {
        Self {
            model: "m".repeat(100 * 1024),
            blob: "x".repeat(5 * 1024 * 1024),
            invalid_utf8: [0xff, 0xfe, 0xc3].repeat(1024 * 1024),
        }
    }
}

fn problems(entry: &AuditEntry) -> Vec<String> {
    entry
        .metadata
        .as_ref()
        .and_then(|m| m.get("llm_audit.problems"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn truncated(entry: &AuditEntry) -> serde_json::Map<String, Value> {
    entry
        .metadata
        .as_ref()
        .and_then(|m| m.get("llm_audit.truncated"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn hostile_values_are_bounded_recorded_and_every_entry_is_one_valid_line() {
    let (entries, lines, hostile) = hostile_calls();
    assert_eq!(entries.len(), 4);
    assert_eq!(lines.len(), 4, "one line per entry");
    for line in &lines {
        let parsed: AuditEntry = serde_json::from_str(line).expect("a valid entry");
        assert!(
            line.len() < 64 * 1024,
            "entry {} is {} bytes",
            parsed.request_id,
            line.len()
        );
    }
    let key = key();

    // 0: the model name cut to 1 KiB, its length and keyed hash kept; control characters kept
    // (escaped in JSON, so the line stays one line) and reported.
    let e = &entries[0];
    let model = e.model.as_deref().unwrap();
    assert!(
        model.len() <= 1024 && model.ends_with('…'),
        "{}",
        model.len()
    );
    let cut = &truncated(e)["model"];
    assert_eq!(cut["bytes"], 100 * 1024);
    assert_eq!(cut["hash"], key.hash(hostile.model.as_bytes()));
    // The service tier, which a server or a span says, is bounded the same way.
    let tier = e.service_tier.as_deref().unwrap();
    assert!(tier.len() <= 1024 && tier.ends_with('…'), "{}", tier.len());
    assert_eq!(truncated(e)["service_tier"]["bytes"], 100 * 1024);
    assert_eq!(e.user_id.as_deref(), Some("mallory\u{0}\n\u{1b}[31mred"));
    let p = problems(e);
    assert!(
        p.contains(&"user_id contains control characters".to_owned()),
        "{p:?}"
    );
    assert!(
        p.contains(&"session_id contains control characters".to_owned()),
        "{p:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "escaped in the line"
    );

    // 1: the metadata value cut, the invalid UTF-8 content hashed as bytes, the error message
    // bounded.
    let e = &entries[1];
    let blob = e.metadata.as_ref().unwrap()["app.blob"].as_str().unwrap();
    assert!(blob.len() <= 8 * 1024, "{}", blob.len());
    assert_eq!(truncated(e)["metadata.app.blob"]["bytes"], 5 * 1024 * 1024);
    assert_eq!(
        truncated(e)["metadata.app.blob"]["hash"],
        key.hash(hostile.blob.as_bytes())
    );
    assert_eq!(
        e.input_hash.as_deref(),
        Some(key.hash(&hostile.invalid_utf8).as_str())
    );
    assert!(e.error_message.as_ref().unwrap().len() <= 1024);
    assert_eq!(e.error_type.as_deref(), Some("huge"));

    // 2: a negative count is left out and reported; an absurd one is kept, and its cost,
    // which no decimal can hold, is reported instead of computed.
    let e = &entries[2];
    assert_eq!(e.input_tokens, None);
    assert_eq!(e.cache_read_tokens, None);
    assert_eq!(e.output_tokens, Some(u64::MAX));
    let p = problems(e);
    assert!(
        p.iter()
            .any(|p| p.starts_with("gen_ai.usage.input_tokens: -5 is not a count")),
        "{p:?}"
    );
    assert!(p.iter().any(|p| p.contains(&i64::MIN.to_string())), "{p:?}");
    assert!(e.cost_usd.is_none());
    assert!(e.cost_note.is_some(), "the cost problem is recorded");

    // 3: finish reasons bounded in number and length.
    let e = &entries[3];
    let reasons = e.finish_reasons.as_ref().unwrap();
    assert_eq!(reasons.len(), 16);
    assert!(reasons.iter().all(|r| r.len() <= 128));
    assert!(
        problems(e).contains(&"1000 finish reasons; the first 16 kept".to_owned()),
        "{:?}",
        problems(e)
    );
    assert_eq!(truncated(e)["finish_reasons[0]"]["bytes"], 2049);
}

/// Ordinary calls carry neither list: the bounds cost nothing when nothing is hostile.
#[test]
fn ordinary_entries_have_no_problems() {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(memory.clone())
        .with_hash_key(key())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u");
        span.record_input(b"hello");
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entries = memory.entries();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].metadata.is_none(), "{:?}", entries[0].metadata);
}
