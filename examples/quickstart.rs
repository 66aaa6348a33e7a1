//! Quick start: audit a handful of LLM calls to a simulated model into `./audit_logs`.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Works offline: the "model" is a function that answers after a short pause. Set
//! `LLM_AUDIT_HASH_KEY=<key id>:<64 hex digits>` to hash content with your own key; without it
//! the example opts in to an ephemeral key, whose hashes mean nothing after the process exits.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::Span;
use tracing_llm_audit::{llm_call, AuditEntry, AuditLayer, JsonlSink, LlmSpanExt, Usage};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const AUDIT_DIR: &str = "./audit_logs";
const SYSTEM_PROMPT: &str = "You are a helpful support assistant for Example Corp.";

struct Request {
    model: &'static str,
    prompt: String,
}

#[derive(Debug)]
enum ModelError {
    Overloaded,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overloaded => f.write_str("529 overloaded_error: the model is overloaded"),
        }
    }
}

impl std::error::Error for ModelError {}

/// One call to the (simulated) Anthropic Messages API, audited by the attribute.
#[llm_call(provider = "anthropic", model = req.model, user = user_id)]
async fn ask(user_id: &str, req: &Request) -> Result<String, ModelError> {
    let span = Span::current();
    span.record_system_prompt(SYSTEM_PROMPT.as_bytes());
    span.record_input(req.prompt.as_bytes());

    tokio::time::sleep(Duration::from_millis(30)).await;
    if req.prompt.contains("overload") {
        return Err(ModelError::Overloaded);
    }
    let reply = format!("Here is what I found about {:?}.", req.prompt);

    // Anthropic reports cache tokens beside input_tokens; the GenAI conventions count them in.
    let (fresh, cache_read) = (req.prompt.len() as u64 * 40, 2_000);
    span.record_usage(&Usage {
        input_tokens: Some(fresh + cache_read),
        output_tokens: Some(350),
        cache_read_input_tokens: Some(cache_read),
        ..Usage::default()
    });
    span.record_response_model(&format!("{}-20251001", req.model));
    span.record_response_id("msg_01SimulatedResponse");
    span.record_finish_reasons(&["end_turn"]);
    span.record_output(reply.as_bytes());
    Ok(reply)
}

/// A streamed call to the (simulated) OpenAI Chat Completions API.
#[llm_call(provider = "openai", model = model, user = user_id, stream = true)]
async fn ask_streaming(user_id: &str, model: &str, prompt: &str) -> Result<String, ModelError> {
    let span = Span::current();
    span.record_input(prompt.as_bytes());
    let mut reply = String::new();
    for chunk in ["Sure", ", here", " is a", " summary."] {
        tokio::time::sleep(Duration::from_millis(15)).await;
        span.record_first_chunk();
        span.record_output(chunk.as_bytes());
        reply.push_str(chunk);
    }
    span.record_usage(&Usage {
        input_tokens: Some(1_200),
        output_tokens: Some(900),
        reasoning_output_tokens: Some(640),
        ..Usage::default()
    });
    span.record_finish_reasons(&["stop"]);
    Ok(reply)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = OffsetDateTime::now_utc();
    let (audit, guard) = AuditLayer::builder()
        .with_sink(JsonlSink::new(AUDIT_DIR)?)
        // LLM_AUDIT_HASH_KEY when set; a throwaway key otherwise (fine for a demo only).
        .with_ephemeral_hash_key()
        .build()?;
    // The application's existing subscriber, with the audit layer added to it.
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .with(audit)
        .init();

    let calls = [
        ("alice", "claude-sonnet-4-5", "reset my password"),
        ("bob", "claude-haiku-4-5", "where is my order 1234?"),
        ("alice", "claude-sonnet-4-5", "cancel my subscription"),
        ("carol", "claude-haiku-4-5", "please overload the model"),
    ];
    for (user, model, prompt) in calls {
        let request = Request {
            model,
            prompt: prompt.to_owned(),
        };
        match ask(user, &request).await {
            Ok(reply) => tracing::info!(user, "reply: {reply}"),
            Err(error) => tracing::warn!(user, "call failed: {error}"),
        }
    }
    let reply = ask_streaming("bob", "gpt-5-mini", "summarize my tickets").await?;
    tracing::info!(user = "bob", "streamed reply: {reply}");

    let stats = guard.shutdown(Duration::from_secs(5))?;
    let entries = entries_since(Path::new(AUDIT_DIR), started)?;
    let total: rust_decimal::Decimal = entries.iter().filter_map(|e| e.cost_usd).sum();
    println!();
    println!(
        "{} audit entries written to {}/audit_{}.jsonl ({} dropped)",
        stats.sinks[0].written,
        AUDIT_DIR,
        started.date(),
        stats.dropped
    );
    for entry in &entries {
        println!(
            "  {} {:<6} {:<8} {:<20} {:>7} ms  {}",
            entry.request_id,
            entry.user_id.as_deref().unwrap_or("-"),
            entry.status,
            entry.billed_model().unwrap_or("-"),
            entry.latency_ms,
            entry
                .cost_usd
                .map_or_else(|| "cost unknown".to_owned(), |c| format!("${c}")),
        );
    }
    println!("total cost of this run: ${total}");
    Ok(())
}

/// The entries this run wrote (the directory may hold earlier runs too).
fn entries_since(dir: &Path, since: OffsetDateTime) -> std::io::Result<Vec<AuditEntry>> {
    let mut entries = Vec::new();
    for file in std::fs::read_dir(dir)? {
        let path = file?.path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Ok(entry) = serde_json::from_str::<AuditEntry>(line) {
                    if entry.timestamp >= since {
                        entries.push(entry);
                    }
                }
            }
        }
    }
    entries.sort_by_key(|e| e.request_id);
    Ok(entries)
}
