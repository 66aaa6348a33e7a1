//! rig-core 0.44 itself, against the local wire-format server, from inside an ordinary request
//! span `handle_request{user.id = "alice", session.id = "s-1"}`: what the audit layer makes of
//! the spans rig makes (`chat`, target `rig::completions`).
//!
//! Prices are the built-in table's (`src/cost/builtin.rs`), USD per million tokens:
//! gpt-4o 2.50 in / 10 out / 1.25 cache read / cache write at the input price;
//! o4-mini 1.10 / 4.40 / 0.275; claude-haiku-4-5 1 / 5 / 0.10 read / 1.25 write.

#[path = "../../tests/support/llm_server.rs"]
mod llm_server;

mod common;

use common::*;
use futures::StreamExt;
use rig_core::completion::CompletionRequest;
use rig_core::providers::anthropic::AnthropicConfig;
use rig_core::providers::openai::OpenAIConfig;
use serde_json::json;
use tracing_llm_audit::Status;

/// rig's OpenAI client on the local server (Chat Completions), with a dummy key.
fn openai(base_url: &str) -> rig_core::providers::openai::OpenAI {
    OpenAIConfig::new("sk-dummy-not-a-key")
        .with_base_url(format!("{base_url}/v1"))
        .client()
}

/// rig's Anthropic client on the local server, with a dummy key.
fn anthropic(base_url: &str) -> rig_core::providers::anthropic::Anthropic {
    AnthropicConfig::new("sk-ant-dummy-not-a-key")
        .with_base_url(base_url)
        .client()
}

fn prompt() -> CompletionRequest {
    CompletionRequest::new("What is the capital of France?")
}

async fn unary_openai(base_url: String, model: &'static str) {
    openai(&base_url)
        .chat(model)
        .call(prompt())
        .await
        .expect("the call succeeds");
}

#[test]
fn unary() {
    let usage = json!({"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200});
    let run = audited(
        Setup::Plain,
        vec![openai_reply(
            "chatcmpl-u1",
            "gpt-4o-2024-08-06",
            "Paris.",
            usage,
        )],
        |url| unary_openai(url, "gpt-4o"),
    );
    let entry = only_entry(&run);
    assert_eq!(run.received.len(), 1);
    assert!(
        run.received[0].path.ends_with("/chat/completions"),
        "{:?}",
        run.received[0].path
    );
    assert_eq!(entry.action, "chat");
    assert_eq!(entry.provider.as_deref(), Some("openai"));
    assert_eq!(entry.model.as_deref(), Some("gpt-4o"));
    assert_eq!(entry.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(entry.response_id.as_deref(), Some("chatcmpl-u1"));
    assert_eq!(entry.streaming, Some(false));
    // gpt-4o-2024-08-06 priced as gpt-4o: 1,000 × 2.50/M + 200 × 10/M = 0.0025 + 0.002 = 0.0045
    assert_success(entry, (Some(1000), Some(200), None, None, None), "0.0045");
    // rig's transport request id (the `x-request-id` header) is no GenAI field: metadata.
    let metadata = entry.metadata.as_ref().unwrap();
    assert_eq!(metadata["rig.provider_request_id"], "req-openai-1");
    // Content is not on rig's spans unless the request opts in; nothing is hashed then.
    assert_eq!(entry.input_hash, None);
}

#[test]
fn streamed() {
    let usage = json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500});
    let run = audited(
        Setup::Plain,
        vec![openai_stream("chatcmpl-s1", "gpt-4o-2024-08-06", usage)],
        |url| async move {
            let mut stream = openai(&url).chat("gpt-4o").stream(prompt()).unwrap();
            let mut text = String::new();
            while let Some(item) = stream.next().await {
                if let rig_core::streaming::Item::Event(rig_core::streaming::StreamEvent::Text {
                    text: piece,
                    ..
                }) = item.unwrap()
                {
                    text.push_str(&piece);
                }
            }
            assert_eq!(text, "Paris.");
            // rig records usage on its span when the reply is folded: `finish()`.
            stream.finish().await.unwrap();
        },
    );
    let entry = only_entry(&run);
    assert_eq!(
        run.received[0].json()["stream_options"]["include_usage"],
        true,
        "rig asks for the usage chunk"
    );
    assert_eq!(entry.streaming, Some(true));
    assert_eq!(entry.response_id.as_deref(), Some("chatcmpl-s1"));
    // 1,200 × 2.50/M + 300 × 10/M = 0.003 + 0.003 = 0.006
    assert_success(entry, (Some(1200), Some(300), None, None, None), "0.006");
}

/// A stream read to its end but never `finish()`ed: rig records no usage on its span (it does
/// so only when the reply is folded), so the entry has none and says why.
#[test]
fn streamed_without_finish_has_no_usage() {
    let usage = json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500});
    let run = audited(
        Setup::Plain,
        vec![openai_stream("chatcmpl-s2", "gpt-4o", usage)],
        |url| async move {
            let mut stream = openai(&url).chat("gpt-4o").stream(prompt()).unwrap();
            while let Some(item) = stream.next().await {
                item.unwrap();
            }
        },
    );
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Success);
    assert_eq!(counts(entry), (None, None, None, None, None), "{entry:#?}");
    assert_eq!(entry.cost_usd, None);
    assert!(
        entry.cost_note.as_deref().unwrap().contains("input_tokens"),
        "{entry:#?}"
    );
}

/// A 400 from the server. rig 0.44 records no error on its span (no `error.type`, no
/// `otel.status_code`, no ERROR event inside it): the call's entry says `success`, with no
/// usage. This test pins that gap: if rig starts recording failures it fails, and
/// docs/genai-crates.md must change with it. The fix an application has is the next test.
#[test]
fn error_400_is_not_recorded_by_rig() {
    let run = audited(Setup::Plain, vec![openai_400()], |url| async move {
        let error = openai(&url)
            .chat("gpt-4o")
            .call(prompt())
            .await
            .expect_err("a 400 fails the call");
        assert!(error.to_string().contains(OPENAI_400_MESSAGE), "{error}");
    });
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Success, "{entry:#?}");
    assert_eq!(entry.error_type, None);
    assert_eq!(entry.error_message, None);
    assert_eq!(counts(entry), (None, None, None, None, None));
    assert_eq!(entry.cost_usd, None);
}

/// The fix for rig's silent failures: a span of the application's own, declared with
/// `rig_core::telemetry::completion_parent_span!`, which rig adopts and records into instead of
/// making a child. The application then records the error on it.
#[test]
fn error_400_recorded_on_an_adopted_completion_parent() {
    let run = audited(Setup::Plain, vec![openai_400()], |url| async move {
        use tracing::Instrument;
        let span = rig_core::completion_parent_span!(
            target: "app",
            name: "chat",
            operation: "chat",
            system_instructions: Option::<&str>::None,
            error.type = tracing::field::Empty,
        );
        let result = openai(&url)
            .chat("gpt-4o")
            .call(prompt())
            .instrument(span.clone())
            .await;
        let error = result.expect_err("a 400 fails the call");
        span.in_scope(|| {
            tracing::error!(error.type = "invalid_request_error", "{error}");
        });
    });
    let entry = only_entry(&run);
    assert_eq!(
        entry.provider.as_deref(),
        Some("openai"),
        "rig recorded into the parent"
    );
    assert_eq!(entry.model.as_deref(), Some("gpt-4o"));
    assert_eq!(entry.status, Status::Error, "{entry:#?}");
    assert_eq!(entry.error_type.as_deref(), Some("invalid_request_error"));
    let message = entry.error_message.as_deref().unwrap();
    assert!(message.contains(OPENAI_400_MESSAGE), "{message}");
}

/// With rig's opt-in content telemetry, its span carries the system instructions
/// (`gen_ai.system_instructions`): the entry keeps their keyed hash, never the text.
#[test]
fn content_is_hashed_never_kept() {
    const PREAMBLE: &str = "You are terse. Secret project: bluebird.";
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 2});
    let run = audited(
        Setup::Plain,
        vec![openai_reply("chatcmpl-h1", "gpt-4o", "Paris.", usage)],
        |url| async move {
            openai(&url)
                .chat("gpt-4o")
                .call(prompt().preamble(PREAMBLE).record_content_telemetry(true))
                .await
                .unwrap();
        },
    );
    let entry = only_entry(&run);
    let hash = entry.system_prompt_hash.as_deref().unwrap();
    assert!(hash.starts_with("hmac-sha256:"), "{hash}");
    let written = serde_json::to_string(entry).unwrap();
    assert!(!written.contains("bluebird"), "{written}");
}

/// OpenAI-compatible usage with cached input and cache writes
/// (`prompt_tokens_details.cached_tokens`, `cache_write_tokens`).
#[test]
fn cached_input_openai() {
    let usage = json!({
        "prompt_tokens": 2000,
        "completion_tokens": 100,
        "total_tokens": 2100,
        "prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 200},
    });
    let run = audited(
        Setup::Plain,
        vec![openai_reply("chatcmpl-c1", "gpt-4o", "Paris.", usage)],
        |url| unary_openai(url, "gpt-4o"),
    );
    let entry = only_entry(&run);
    // uncached 2,000 − 1,500 − 200 = 300 × 2.50/M = 0.00075
    // cache read 1,500 × 1.25/M = 0.001875; cache write 200 × 2.50/M = 0.0005
    // output 100 × 10/M = 0.001; total 0.004125
    assert_success(
        entry,
        (Some(2000), Some(100), Some(1500), Some(200), None),
        "0.004125",
    );
}

/// OpenAI-compatible usage with reasoning tokens (`completion_tokens_details.reasoning_tokens`),
/// which rig records as `gen_ai.usage.reasoning_tokens`.
#[test]
fn reasoning_openai() {
    let usage = json!({
        "prompt_tokens": 500,
        "completion_tokens": 700,
        "total_tokens": 1200,
        "completion_tokens_details": {"reasoning_tokens": 600},
    });
    let run = audited(
        Setup::Plain,
        vec![openai_reply("chatcmpl-r1", "o4-mini", "Paris.", usage)],
        |url| unary_openai(url, "o4-mini"),
    );
    let entry = only_entry(&run);
    // 500 × 1.10/M = 0.00055; 700 output (600 of them reasoning, billed as output) × 4.40/M =
    // 0.00308; total 0.00363
    assert_success(
        entry,
        (Some(500), Some(700), None, None, Some(600)),
        "0.00363",
    );
    let metadata = entry.metadata.as_ref().unwrap();
    assert!(
        !metadata.contains_key("gen_ai.usage.reasoning_tokens"),
        "a count, not metadata: {metadata:?}"
    );
}

/// Anthropic usage: `cache_read_input_tokens`, `cache_creation_input_tokens` beside
/// `input_tokens`, and thinking tokens (`output_tokens_details.thinking_tokens`). rig adds the
/// cache counts into its input count, as the GenAI conventions have it.
#[test]
fn cached_input_and_thinking_anthropic() {
    let usage = json!({
        "input_tokens": 100,
        "cache_read_input_tokens": 3000,
        "cache_creation_input_tokens": 400,
        "output_tokens": 50,
        "output_tokens_details": {"thinking_tokens": 20},
    });
    let run = audited(
        Setup::Plain,
        vec![anthropic_reply(
            "msg_01",
            "claude-haiku-4-5",
            "Paris.",
            usage,
        )],
        |url| async move {
            anthropic(&url)
                .completion("claude-haiku-4-5")
                .call(prompt())
                .await
                .unwrap();
        },
    );
    let entry = only_entry(&run);
    assert!(
        run.received[0].path.ends_with("/v1/messages"),
        "{:?}",
        run.received[0].path
    );
    assert_eq!(entry.provider.as_deref(), Some("anthropic"));
    assert_eq!(entry.response_id.as_deref(), Some("msg_01"));
    // input 100 + 3,000 + 400 = 3,500. uncached 100 × 1/M = 0.0001; read 3,000 × 0.10/M =
    // 0.0003; write 400 × 1.25/M = 0.0005; output 50 × 5/M = 0.00025; total 0.00115
    assert_success(
        entry,
        (Some(3500), Some(50), Some(3000), Some(400), Some(20)),
        "0.00115",
    );
}

#[test]
fn streamed_anthropic() {
    let start = json!({"input_tokens": 10, "cache_read_input_tokens": 2000, "output_tokens": 1});
    let run = audited(
        Setup::Plain,
        vec![anthropic_stream("msg_s1", "claude-haiku-4-5", start, 40)],
        |url| async move {
            let mut stream = anthropic(&url)
                .completion("claude-haiku-4-5")
                .stream(prompt())
                .unwrap();
            while let Some(item) = stream.next().await {
                item.unwrap();
            }
            stream.finish().await.unwrap();
        },
    );
    let entry = only_entry(&run);
    assert_eq!(entry.streaming, Some(true));
    // input 10 + 2,000 = 2,010: 10 × 1/M = 0.00001; 2,000 × 0.10/M = 0.0002;
    // output 40 × 5/M = 0.0002; total 0.00041
    assert_success(
        entry,
        (Some(2010), Some(40), Some(2000), None, None),
        "0.00041",
    );
}

#[test]
fn error_400_anthropic_is_not_recorded_by_rig() {
    let run = audited(Setup::Plain, vec![anthropic_400()], |url| async move {
        let error = anthropic(&url)
            .completion("claude-haiku-4-5")
            .call(prompt())
            .await
            .expect_err("a 400 fails the call");
        assert!(error.to_string().contains(ANTHROPIC_400_MESSAGE), "{error}");
    });
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Success, "{entry:#?}");
    assert_eq!(entry.error_message, None);
}

/// Every call above, in one request.
async fn all_calls(url: String) {
    unary_openai(url.clone(), "gpt-4o").await;
    let mut stream = openai(&url).chat("gpt-4o").stream(prompt()).unwrap();
    while let Some(item) = stream.next().await {
        item.unwrap();
    }
    stream.finish().await.unwrap();
    openai(&url)
        .chat("gpt-4o")
        .call(prompt())
        .await
        .unwrap_err();
    unary_openai(url.clone(), "gpt-4o").await;
    unary_openai(url.clone(), "o4-mini").await;
    anthropic(&url)
        .completion("claude-haiku-4-5")
        .call(prompt())
        .await
        .unwrap();
}

fn all_replies() -> Vec<llm_server::Reply> {
    let plain = json!({"prompt_tokens": 1000, "completion_tokens": 200});
    vec![
        openai_reply("chatcmpl-1", "gpt-4o", "Paris.", plain.clone()),
        openai_stream("chatcmpl-2", "gpt-4o", plain),
        openai_400(),
        openai_reply(
            "chatcmpl-3",
            "gpt-4o",
            "Paris.",
            json!({"prompt_tokens": 2000, "completion_tokens": 100,
                   "prompt_tokens_details": {"cached_tokens": 1500}}),
        ),
        openai_reply(
            "chatcmpl-4",
            "o4-mini",
            "Paris.",
            json!({"prompt_tokens": 500, "completion_tokens": 700,
                   "completion_tokens_details": {"reasoning_tokens": 600}}),
        ),
        anthropic_reply(
            "msg_1",
            "claude-haiku-4-5",
            "Paris.",
            json!({"input_tokens": 100, "cache_read_input_tokens": 3000, "output_tokens": 50}),
        ),
    ]
}

/// Under a global `LevelFilter::WARN`, rig's INFO spans are never made: no call is audited, and
/// the layer says so once on stderr. With the filter on the `fmt` layer instead, every call is
/// audited and attributed, and nothing is said. Each setup runs in a child process.
#[test]
fn level_filters() {
    const NAME: &str = "level_filters";
    if let Ok(setup) = std::env::var(CHILD_ENV) {
        report(&audited(Setup::from_name(&setup), all_replies(), all_calls));
        return;
    }
    let global = run_child(NAME, "global");
    assert!(
        global.stdout.contains("ENTRIES=0 ATTRIBUTED=0 REQUESTS=6 "),
        "{global:#?}"
    );
    assert_eq!(
        global.stderr.matches(FILTER_WARNING).count(),
        1,
        "{global:#?}"
    );
    let per_layer = run_child(NAME, "per-layer");
    assert!(
        per_layer
            .stdout
            .contains("ENTRIES=6 ATTRIBUTED=6 REQUESTS=6 STATUSES=Success,Success,Success,Success,Success,Success"),
        "{per_layer:#?}"
    );
    assert_eq!(
        per_layer.stderr.matches(FILTER_WARNING).count(),
        0,
        "{per_layer:#?}"
    );
}
