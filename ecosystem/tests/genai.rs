//! genai 0.7 itself (feature `otel`, which makes it emit its GenAI spans), against the local
//! wire-format server, from inside an ordinary request span
//! `handle_request{user.id = "alice", session.id = "s-1"}`: what the audit layer makes of the
//! spans genai makes (`genai.chat`).
//!
//! Prices are the built-in table's (`src/cost/builtin.rs`), USD per million tokens:
//! gpt-4o 2.50 in / 10 out / 1.25 cache read / cache write at the input price;
//! o4-mini 1.10 / 4.40 / 0.275; claude-haiku-4-5 1 / 5 / 0.10 read / 1.25 write.

#[path = "../../tests/support/llm_server.rs"]
mod llm_server;

mod common;

use common::*;
use futures::StreamExt;
use genai::adapter::AdapterKind;
use genai::chat::{ChatMessage, ChatOptions, ChatRequest, ChatStreamEvent};
use genai::resolver::{AuthData, Endpoint};
use genai::{Client, ModelIden, ServiceTarget};
use serde_json::json;
use tracing_llm_audit::Status;

/// A target on the local server, with a dummy key: genai's own resolution of endpoints and keys
/// is bypassed, so nothing can go elsewhere.
fn target(base_url: &str, kind: AdapterKind, model: &str) -> ServiceTarget {
    ServiceTarget {
        endpoint: Endpoint::from_owned(format!("{base_url}/v1/")),
        auth: AuthData::from_single("sk-dummy-not-a-key"),
        model: ModelIden::new(kind, model),
    }
}

fn client() -> Client {
    Client::new().expect("a genai client")
}

fn prompt() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user("What is the capital of France?")])
}

async fn unary(base_url: String, kind: AdapterKind, model: &'static str) {
    client()
        .exec_chat(target(&base_url, kind, model), prompt(), None)
        .await
        .expect("the call succeeds");
}

/// Reads a stream to its end; `capture_usage` is genai's option that asks for the usage (and
/// puts it on the span).
async fn streamed(base_url: String, kind: AdapterKind, model: &'static str, capture_usage: bool) {
    let options = ChatOptions::default().with_capture_usage(capture_usage);
    let mut response = client()
        .exec_chat_stream(target(&base_url, kind, model), prompt(), Some(&options))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(event) = response.stream.next().await {
        if let ChatStreamEvent::Chunk(chunk) = event.unwrap() {
            text.push_str(&chunk.content);
        }
    }
    assert_eq!(text, "Paris.");
}

#[test]
fn unary_call() {
    let usage = json!({"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200});
    let run = audited(
        Setup::Plain,
        vec![openai_reply(
            "chatcmpl-u1",
            "gpt-4o-2024-08-06",
            "Paris.",
            usage,
        )],
        |url| unary(url, AdapterKind::OpenAI, "gpt-4o"),
    );
    let entry = only_entry(&run);
    assert!(
        run.received[0].path.ends_with("/v1/chat/completions"),
        "{:?}",
        run.received[0].path
    );
    assert_eq!(entry.action, "chat");
    assert_eq!(entry.provider.as_deref(), Some("openai"));
    assert_eq!(entry.model.as_deref(), Some("gpt-4o"));
    assert_eq!(entry.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    // genai 0.7.2 fills no response id for Chat Completions (nor for Anthropic Messages), so
    // its span has no `gen_ai.response.id`.
    assert_eq!(entry.response_id, None);
    assert_eq!(entry.finish_reasons, Some(vec!["stop".to_owned()]));
    assert_eq!(entry.streaming, Some(false));
    // gpt-4o-2024-08-06 priced as gpt-4o: 1,000 × 2.50/M + 200 × 10/M = 0.0025 + 0.002 = 0.0045
    assert_success(entry, (Some(1000), Some(200), None, None, None), "0.0045");
    let metadata = entry.metadata.as_ref().unwrap();
    assert_eq!(metadata["server.address"], "127.0.0.1");
    // Content is off by default in genai (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT).
    assert_eq!(entry.input_hash, None);
}

#[test]
fn streamed_call() {
    let usage = json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500});
    let run = audited(
        Setup::Plain,
        vec![openai_stream("chatcmpl-s1", "gpt-4o-2024-08-06", usage)],
        |url| streamed(url, AdapterKind::OpenAI, "gpt-4o", true),
    );
    let entry = only_entry(&run);
    assert_eq!(
        run.received[0].json()["stream_options"]["include_usage"],
        true
    );
    assert_eq!(entry.streaming, Some(true));
    assert!(entry.time_to_first_chunk_ms.is_some(), "{entry:#?}");
    // 1,200 × 2.50/M + 300 × 10/M = 0.003 + 0.003 = 0.006
    assert_success(entry, (Some(1200), Some(300), None, None, None), "0.006");
}

/// With genai's content capture on (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, read
/// once per process: a child), its span carries the system instructions and the input and
/// output messages: the entry keeps their keyed hashes, never the text.
#[test]
fn content_is_hashed_never_kept() {
    const NAME: &str = "content_is_hashed_never_kept";
    if std::env::var(CHILD_ENV).is_ok() {
        let usage = json!({"prompt_tokens": 10, "completion_tokens": 2});
        let run = audited(
            Setup::Plain,
            vec![openai_reply(
                "chatcmpl-h1",
                "gpt-4o",
                "Paris, bluebird.",
                usage,
            )],
            |url| async move {
                let request = prompt().with_system("You are terse. Secret project: bluebird.");
                client()
                    .exec_chat(target(&url, AdapterKind::OpenAI, "gpt-4o"), request, None)
                    .await
                    .unwrap();
            },
        );
        let entry = only_entry(&run);
        let written = serde_json::to_string(entry).unwrap();
        println!(
            "HASHES={} {} {} BLUEBIRD={}",
            entry.system_prompt_hash.is_some(),
            entry.input_hash.is_some(),
            entry.output_hash.is_some(),
            written.contains("bluebird"),
        );
        return;
    }
    let child = run_child_with(
        NAME,
        "plain",
        &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")],
    );
    assert!(
        child
            .stdout
            .contains("HASHES=true true true BLUEBIRD=false"),
        "{child:#?}"
    );
}

/// Without `with_capture_usage(true)`, genai asks for no usage on a stream and records none on
/// its span: the entry has no counts, and says why.
#[test]
fn streamed_without_capture_usage_has_no_usage() {
    let usage = json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500});
    let run = audited(
        Setup::Plain,
        vec![openai_stream("chatcmpl-s2", "gpt-4o", usage)],
        |url| streamed(url, AdapterKind::OpenAI, "gpt-4o", false),
    );
    let entry = only_entry(&run);
    assert_eq!(run.received[0].json().get("stream_options"), None);
    assert_eq!(entry.status, Status::Success);
    assert_eq!(counts(entry), (None, None, None, None, None), "{entry:#?}");
    assert_eq!(entry.cost_usd, None);
    assert!(
        entry.cost_note.as_deref().unwrap().contains("input_tokens"),
        "{entry:#?}"
    );
}

/// A 400: genai records `otel.status_code = "error"` and `error.type` = the HTTP status, and no
/// message at all (no `otel.status_description`, no `error.message`, no event): the entry is an
/// error of type `400` without a message. The provider's message is only in the `Err` the
/// application gets.
#[test]
fn error_400() {
    let run = audited(Setup::Plain, vec![openai_400()], |url| async move {
        let error = client()
            .exec_chat(target(&url, AdapterKind::OpenAI, "gpt-4o"), prompt(), None)
            .await
            .expect_err("a 400 fails the call");
        assert!(error.to_string().contains("400"), "{error}");
    });
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Error, "{entry:#?}");
    assert_eq!(entry.error_type.as_deref(), Some("400"));
    assert_eq!(
        entry.error_message, None,
        "genai records no message: {entry:#?}"
    );
    assert_eq!(counts(entry), (None, None, None, None, None));
    assert_eq!(entry.cost_usd, None);
}

/// A 400 on a stream: the request is sent when the stream is first polled, and the failure
/// arrives as an item of the stream (after genai's own `Start`).
#[test]
fn error_400_streamed() {
    let run = audited(Setup::Plain, vec![openai_400()], |url| async move {
        let options = ChatOptions::default().with_capture_usage(true);
        let mut response = client()
            .exec_chat_stream(
                target(&url, AdapterKind::OpenAI, "gpt-4o"),
                prompt(),
                Some(&options),
            )
            .await
            .unwrap();
        let mut failed = false;
        while let Some(event) = response.stream.next().await {
            if event.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the stream ends in the failure");
    });
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Error, "{entry:#?}");
    // On a stream genai classifies the failure as `web_stream`: the HTTP status is not kept.
    assert_eq!(entry.error_type.as_deref(), Some("web_stream"));
    assert_eq!(entry.error_message, None);
    assert_eq!(entry.streaming, Some(true));
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
        |url| unary(url, AdapterKind::OpenAI, "gpt-4o"),
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

/// OpenAI-compatible usage with reasoning tokens (`completion_tokens_details.reasoning_tokens`).
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
        |url| unary(url, AdapterKind::OpenAI, "o4-mini"),
    );
    let entry = only_entry(&run);
    // 500 × 1.10/M = 0.00055; 700 output (600 of them reasoning, billed as output) × 4.40/M =
    // 0.00308; total 0.00363
    assert_success(
        entry,
        (Some(500), Some(700), None, None, Some(600)),
        "0.00363",
    );
}

/// Anthropic usage: `cache_read_input_tokens`, `cache_creation_input_tokens` beside
/// `input_tokens`, and thinking tokens (`output_tokens_details.thinking_tokens`). genai adds the
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
        |url| unary(url, AdapterKind::Anthropic, "claude-haiku-4-5"),
    );
    let entry = only_entry(&run);
    assert!(
        run.received[0].path.ends_with("/v1/messages"),
        "{:?}",
        run.received[0].path
    );
    assert_eq!(entry.provider.as_deref(), Some("anthropic"));
    assert_eq!(entry.response_id, None, "genai fills no response id");
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
        |url| streamed(url, AdapterKind::Anthropic, "claude-haiku-4-5", true),
    );
    let entry = only_entry(&run);
    assert_eq!(entry.streaming, Some(true));
    // input 10 + 2,000 = 2,010: 10 × 1/M = 0.00001; 2,000 × 0.10/M = 0.0002;
    // output 40 × 5/M = 0.0002; total 0.00041
    assert_success(
        entry,
        (Some(2010), Some(40), Some(2000), Some(0), None),
        "0.00041",
    );
}

#[test]
fn error_400_anthropic() {
    let run = audited(Setup::Plain, vec![anthropic_400()], |url| async move {
        client()
            .exec_chat(
                target(&url, AdapterKind::Anthropic, "claude-haiku-4-5"),
                prompt(),
                None,
            )
            .await
            .expect_err("a 400 fails the call");
    });
    let entry = only_entry(&run);
    assert_eq!(entry.status, Status::Error, "{entry:#?}");
    assert_eq!(entry.error_type.as_deref(), Some("400"));
    assert_eq!(entry.error_message, None);
}

/// Every call above, in one request.
async fn all_calls(url: String) {
    unary(url.clone(), AdapterKind::OpenAI, "gpt-4o").await;
    streamed(url.clone(), AdapterKind::OpenAI, "gpt-4o", true).await;
    client()
        .exec_chat(target(&url, AdapterKind::OpenAI, "gpt-4o"), prompt(), None)
        .await
        .unwrap_err();
    unary(url.clone(), AdapterKind::OpenAI, "gpt-4o").await;
    unary(url.clone(), AdapterKind::OpenAI, "o4-mini").await;
    unary(url, AdapterKind::Anthropic, "claude-haiku-4-5").await;
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

/// Under a global `LevelFilter::WARN`, genai's INFO spans are never made: no call is audited,
/// and the layer says so once on stderr. With the filter on the `fmt` layer instead, every call
/// is audited and attributed, and nothing is said. Each setup runs in a child process.
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
            .contains("ENTRIES=6 ATTRIBUTED=6 REQUESTS=6 STATUSES=Success,Success,Error,Success,Success,Success"),
        "{per_layer:#?}"
    );
    assert_eq!(
        per_layer.stderr.matches(FILTER_WARNING).count(),
        0,
        "{per_layer:#?}"
    );
}
