//! Quick start: audit a handful of LLM calls to a simulated model into a tamper-evident log in
//! `./audit_logs`, then check it.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Works offline: the "model" is a function that answers after a short pause. On its first run
//! it makes the demo's keys in `./audit_keys` (mode 0600): the Ed25519 key that signs the log's
//! checkpoints, and the key content is hashed with (`LLM_AUDIT_HASH_KEY` wins when set). It ends
//! by printing the two commands to run next: `llm-audit verify` and `llm-audit report html`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;
use tracing::Span;
use tracing_llm_audit::cost::Decimal;
use tracing_llm_audit::{
    llm_call, AuditEntry, AuditLayer, HashKey, JsonlSink, LlmSpanExt, SigningKey, Usage,
};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const AUDIT_DIR: &str = "./audit_logs";
const KEY_DIR: &str = "./audit_keys";
const SYSTEM_PROMPT: &str = "You are a helpful support assistant for Example Corp.";

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
#[llm_call(provider = "anthropic", model = model, user = user_id)]
fn ask(user_id: &str, model: &str, prompt: &str) -> Result<String, ModelError> {
    let span = Span::current();
    span.record_system_prompt(SYSTEM_PROMPT.as_bytes());
    span.record_input(prompt.as_bytes());

    std::thread::sleep(Duration::from_millis(30));
    if prompt.contains("overload") {
        return Err(ModelError::Overloaded);
    }
    let reply = format!("Here is what I found about {prompt:?}.");

    // Anthropic reports cache tokens beside input_tokens; the GenAI conventions count them in.
    let (fresh, cache_read) = (prompt.len() as u64 * 40, 2_000);
    span.record_usage(&Usage {
        input_tokens: Some(fresh + cache_read),
        output_tokens: Some(350),
        cache_read_input_tokens: Some(cache_read),
        ..Usage::default()
    });
    span.record_response_model(&format!("{model}-20251001"));
    span.record_response_id("msg_01SimulatedResponse");
    span.record_finish_reasons(&["end_turn"]);
    span.record_output(reply.as_bytes());
    Ok(reply)
}

/// A streamed call to the (simulated) OpenAI Chat Completions API.
#[llm_call(provider = "openai", model = model, user = user_id, stream = true)]
fn ask_streaming(user_id: &str, model: &str, prompt: &str) -> Result<String, ModelError> {
    let span = Span::current();
    span.record_input(prompt.as_bytes());
    let mut reply = String::new();
    for chunk in ["Sure", ", here", " is a", " summary."] {
        std::thread::sleep(Duration::from_millis(15));
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = OffsetDateTime::now_utc();
    let keys = DemoKeys::load_or_create(Path::new(KEY_DIR))?;
    let (audit, guard) = AuditLayer::builder()
        // Chained and signed: `llm-audit verify` proves the log was not altered.
        .with_sink(JsonlSink::builder(AUDIT_DIR).chain(keys.signing).build()?)
        .with_hash_key(keys.hash)
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
        match ask(user, model, prompt) {
            Ok(reply) => tracing::info!(user, "reply: {reply}"),
            Err(error) => tracing::warn!(user, "call failed: {error}"),
        }
    }
    let reply = ask_streaming("bob", "gpt-5-mini", "summarize my tickets")?;
    tracing::info!(user = "bob", "streamed reply: {reply}");

    let stats = guard.shutdown(Duration::from_secs(5))?;
    let entries = entries_since(Path::new(AUDIT_DIR), started)?;
    let total: Decimal = entries.iter().filter_map(|e| e.cost_usd).sum();
    println!();
    println!(
        "{} audit entries written to {AUDIT_DIR}/audit_{}.jsonl ({} dropped)",
        stats.sinks[0].written,
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
    println!();
    println!("Next, with the CLI (cargo install --path cli, or `cargo run -q -p llm-audit --` for `llm-audit`):");
    println!(
        "  llm-audit verify --dir {AUDIT_DIR} --public-key {}",
        keys.public.display()
    );
    println!("  llm-audit report html --dir {AUDIT_DIR} > report.html");
    Ok(())
}

/// The demo's keys, kept in a folder of their own (never beside the logs in production: whoever
/// can write the logs must not read the signing key).
struct DemoKeys {
    signing: SigningKey,
    public: PathBuf,
    hash: HashKey,
}

impl DemoKeys {
    fn load_or_create(dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let secret = dir.join("signing.key");
        let public = dir.join("signing.pub");
        let hash_file = dir.join("hash.key");
        std::fs::create_dir_all(dir)?;
        if !secret.exists() {
            let key = SigningKey::generate()?;
            write_private(&secret, &key.to_secret_text())?;
            std::fs::write(&public, key.verifying_key().to_public_text())?;
            println!("made the demo's keys in {}", dir.display());
        }
        if !hash_file.exists() {
            let mut secret_bytes = [0u8; 32];
            getrandom::getrandom(&mut secret_bytes)?;
            let hex: String = secret_bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&hash_file, &format!("quickstart:{hex}\n"))?;
        }
        let hash = match HashKey::from_env()? {
            Some(key) => key,
            None => HashKey::parse(&std::fs::read_to_string(&hash_file)?)?,
        };
        Ok(Self {
            signing: SigningKey::from_file(&secret)?,
            public,
            hash,
        })
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
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
