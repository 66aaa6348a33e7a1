//! What the tests of rig-core and genai share: the subscriber setups, a request span around every
//! call, the project's local wire-format server (`tests/support/llm_server.rs`, included by the
//! test files, not copied), the replies it speaks, and a child-process runner for the level-filter
//! tests.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tracing::subscriber::with_default;
use tracing::Instrument;
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, MemorySink, Overflow, Status};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;

use crate::llm_server::{LlmServer, Received, Reply};

/// The user and the session every entry must have: those of the request span that every call
/// is made from.
pub const USER: &str = "alice";
pub const SESSION: &str = "s-1";

/// How the subscriber around the audit layer is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The audit layer alone on a registry.
    Plain,
    /// `registry().with(audit).with(LevelFilter::WARN)`: a filter on the whole subscriber,
    /// which disables the crates' INFO spans before any layer sees them.
    GlobalWarn,
    /// The fix: the WARN filter on the `fmt` layer only.
    PerLayerWarn,
}

impl Setup {
    pub fn from_name(name: &str) -> Self {
        match name {
            "plain" => Self::Plain,
            "global" => Self::GlobalWarn,
            "per-layer" => Self::PerLayerWarn,
            other => panic!("unknown setup {other}"),
        }
    }
}

/// What one run left: the audit entries and the requests the server received.
#[derive(Debug)]
pub struct Run {
    pub entries: Vec<AuditEntry>,
    pub received: Vec<Received>,
}

/// Starts the local server with `replies` queued, runs `call(base_url)` inside the request span
/// `handle_request{user.id = "alice", session.id = "s-1"}` under `setup`, shuts the audit
/// pipeline down and returns what the sink and the server got.
pub fn audited<F, Fut>(setup: Setup, replies: Vec<Reply>, call: F) -> Run
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(LlmServer::start());
    for reply in replies {
        server.reply(reply);
    }
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(HashKey::new("eco", [5u8; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    let base_url = server.url();
    let body = async move {
        // Literals, not `USER` and `SESSION`: the assertions compare against those.
        let request =
            tracing::info_span!("handle_request", "user.id" = "alice", "session.id" = "s-1");
        call(base_url).instrument(request).await;
    };
    match setup {
        Setup::Plain => with_default(tracing_subscriber::registry().with(layer), || {
            runtime.block_on(body)
        }),
        Setup::GlobalWarn => with_default(
            tracing_subscriber::registry()
                .with(layer)
                .with(LevelFilter::WARN),
            || runtime.block_on(body),
        ),
        Setup::PerLayerWarn => with_default(
            tracing_subscriber::registry().with(layer).with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(LevelFilter::WARN),
            ),
            || runtime.block_on(body),
        ),
    }
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    Run {
        entries: sink.entries(),
        received: server.received(),
    }
}

/// The one entry of a run that made one call, with the attribution every call must have.
pub fn only_entry(run: &Run) -> &AuditEntry {
    assert_eq!(run.entries.len(), 1, "{:#?}", run.entries);
    let entry = &run.entries[0];
    assert_attributed(entry);
    entry
}

/// Every call is attributed to the request span's user and session.
pub fn assert_attributed(entry: &AuditEntry) {
    assert_eq!(entry.user_id.as_deref(), Some(USER), "{entry:#?}");
    assert_eq!(entry.session_id.as_deref(), Some(SESSION), "{entry:#?}");
}

/// The counts of an entry: input, output, cache read, cache write, reasoning.
pub type Counts = (
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
);

pub fn counts(entry: &AuditEntry) -> Counts {
    (
        entry.input_tokens,
        entry.output_tokens,
        entry.cache_read_tokens,
        entry.cache_write_tokens,
        entry.thinking_tokens,
    )
}

/// Asserts a successful call's status, counts and exact cost.
pub fn assert_success(entry: &AuditEntry, expected: Counts, cost: &str) {
    assert_eq!(entry.status, Status::Success, "{entry:#?}");
    assert_eq!(entry.error_type, None, "{entry:#?}");
    assert_eq!(entry.error_message, None, "{entry:#?}");
    assert_eq!(counts(entry), expected, "{entry:#?}");
    assert_eq!(entry.cost_usd, Some(cost.parse().unwrap()), "{entry:#?}");
    assert_eq!(entry.cost_note, None, "{entry:#?}");
}

// ---------------------------------------------------------------------------------------------
// Replies in the providers' wire formats.

/// An OpenAI Chat Completions reply with this usage object.
pub fn openai_reply(id: &str, model: &str, text: &str, usage: serde_json::Value) -> Reply {
    let body = serde_json::json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }],
        "usage": usage,
    });
    Reply::json(200, &body.to_string()).header("x-request-id", "req-openai-1")
}

/// An OpenAI Chat Completions event stream: two content deltas, the finish, then the usage
/// chunk (`stream_options.include_usage`), split into 7-byte pieces.
pub fn openai_stream(id: &str, model: &str, usage: serde_json::Value) -> Reply {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut body = String::new();
    for event in [
        chunk(
            serde_json::json!({"role": "assistant", "content": "Par"}),
            serde_json::Value::Null,
        ),
        chunk(
            serde_json::json!({"content": "is."}),
            serde_json::Value::Null,
        ),
        chunk(serde_json::json!({}), "stop".into()),
        serde_json::json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": model,
            "choices": [],
            "usage": usage,
        }),
    ] {
        body.push_str(&format!("data: {event}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    Reply::sse(&body, 7)
}

/// OpenAI's answer to a bad request.
pub const OPENAI_400_MESSAGE: &str = "Invalid 'messages[0].content': string too long.";

pub fn openai_400() -> Reply {
    let body = serde_json::json!({
        "error": {
            "message": OPENAI_400_MESSAGE,
            "type": "invalid_request_error",
            "param": "messages[0].content",
            "code": "string_above_max_length",
        }
    });
    Reply::json(400, &body.to_string())
}

/// An Anthropic Messages reply with this usage object.
pub fn anthropic_reply(id: &str, model: &str, text: &str, usage: serde_json::Value) -> Reply {
    let body = serde_json::json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": usage,
    });
    Reply::json(200, &body.to_string()).header("request-id", "req-anthropic-1")
}

/// An Anthropic Messages event stream: usage at `message_start`, the final output count at
/// `message_delta`, split into 11-byte pieces.
pub fn anthropic_stream(
    id: &str,
    model: &str,
    start_usage: serde_json::Value,
    output_tokens: u64,
) -> Reply {
    let events = [
        (
            "message_start",
            serde_json::json!({
                "type": "message_start",
                "message": {
                    "id": id, "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": start_usage,
                }
            }),
        ),
        (
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "Paris."}}),
        ),
        (
            "content_block_stop",
            serde_json::json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            serde_json::json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
        ),
        ("message_stop", serde_json::json!({"type": "message_stop"})),
    ];
    let mut body = String::new();
    for (name, data) in events {
        body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    Reply::sse(&body, 11)
}

/// Anthropic's answer to a bad request.
pub const ANTHROPIC_400_MESSAGE: &str = "max_tokens: must be greater than or equal to 1";

pub fn anthropic_400() -> Reply {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": "invalid_request_error", "message": ANTHROPIC_400_MESSAGE},
    });
    Reply::json(400, &body.to_string())
}

// ---------------------------------------------------------------------------------------------
// The level-filter tests: each setup in a child process of the test binary, to read its stderr
// (the layer's warning is printed once per process).

/// The environment variable that makes a test binary's child run one setup.
pub const CHILD_ENV: &str = "LLM_AUDIT_ECOSYSTEM_CHILD";

/// What a child printed: its stdout and stderr.
#[derive(Debug)]
pub struct ChildOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs test `name` of this binary again in a child with `CHILD_ENV=setup`.
pub fn run_child(name: &str, setup: &str) -> ChildOutput {
    run_child_with(name, setup, &[])
}

/// [`run_child`], with more environment variables for the child.
pub fn run_child_with(name: &str, setup: &str, env: &[(&str, &str)]) -> ChildOutput {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, setup)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let output = ChildOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(out.status.success(), "{setup}: {output:#?}");
    output
}

/// The layer's one-time warning that the subscriber disables every LLM span.
pub const FILTER_WARNING: &str = "NOTHING IS AUDITED";

/// In the child: prints how many entries a run left and whether each is attributed, for the
/// parent to read.
pub fn report(run: &Run) {
    let attributed = run
        .entries
        .iter()
        .filter(|e| e.user_id.as_deref() == Some(USER) && e.session_id.as_deref() == Some(SESSION))
        .count();
    let statuses: Vec<String> = run
        .entries
        .iter()
        .map(|e| format!("{:?}", e.status))
        .collect();
    println!(
        "ENTRIES={} ATTRIBUTED={} REQUESTS={} STATUSES={}",
        run.entries.len(),
        attributed,
        run.received.len(),
        statuses.join(",")
    );
}
