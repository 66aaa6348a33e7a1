//! An audit trail for LLM calls, as a [`tracing`] layer.
//!
//! [`AuditLayer`] recognizes the spans that describe LLM calls — any span whose metadata declares
//! `gen_ai.operation.name`, following the OpenTelemetry GenAI semantic conventions, whoever
//! created it — and when such a span closes it writes an [`AuditEntry`]: who asked, when, which
//! provider and model, keyed hashes of the system prompt, input and output, token usage, latency,
//! errors, status and exact cost. Entries leave the application's thread at once and reach the
//! [sinks](sink) through a bounded queue and a worker thread.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use tracing::Span;
//! use tracing_llm_audit::{llm_call, AuditLayer, HashKey, JsonlSink, LlmSpanExt, Usage};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let audit_dir = dir.path();
//! let (audit, guard) = AuditLayer::builder()
//!     .with_sink(JsonlSink::new(audit_dir)?)
//!     // In production: HashKey::from_env()? or a key from your secret store.
//!     .with_hash_key(HashKey::new("docs-key-1", [7u8; 32])?)
//!     .build()?;
//! // Add the layer to the subscriber you already have (`.init()` it in a real program).
//! let subscriber = tracing_subscriber::registry().with(audit);
//!
//! #[llm_call(provider = "anthropic", model = model, user = user_id)]
//! fn ask(user_id: &str, model: &str, prompt: &str) -> Result<String, std::io::Error> {
//!     let span = Span::current();
//!     span.record_input(prompt.as_bytes()); // hashed by the layer, never a span field
//!     let answer = String::from("Paris."); // ... call the model here ...
//!     span.record_usage(&Usage {
//!         input_tokens: Some(12),
//!         output_tokens: Some(3),
//!         ..Usage::default()
//!     });
//!     span.record_output(answer.as_bytes());
//!     Ok(answer)
//! }
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     ask("alice", "claude-haiku-4-5", "Capital of France?")
//! })?;
//!
//! let stats = guard.shutdown(Duration::from_secs(5))?; // everything accepted is on disk
//! assert_eq!(stats.sinks[0].written, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Spans from other crates need no change: a plain `tracing::info_span!` with
//! `gen_ai.operation.name` and the GenAI field names is audited as it is. For code that is not a
//! function, [`llm_span!`] makes the same span as `#[llm_call]`.
//!
//! # Special Fields
//!
//! The layer reads these span fields (constants in [`fields`]); every other field of an LLM span
//! goes to the entry's `metadata`, except `otel.*` and tool-call arguments and results.
//!
//! | span field | entry field |
//! |---|---|
//! | `gen_ai.operation.name` (marks an LLM span) | `action` |
//! | `gen_ai.provider.name`, or the older `gen_ai.system` | `provider` |
//! | `gen_ai.request.model` / `gen_ai.response.model` | `model` / `response_model` (wins for pricing) |
//! | `gen_ai.response.id`, `gen_ai.response.finish_reasons` | `response_id`, `finish_reasons` |
//! | `gen_ai.request.stream`, `gen_ai.response.time_to_first_chunk` (seconds) | `streaming`, `time_to_first_chunk_ms` |
//! | `gen_ai.usage.input_tokens` (cached included) | `input_tokens` |
//! | `gen_ai.usage.output_tokens` (reasoning included) | `output_tokens` |
//! | `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_creation.input_tokens` | `cache_read_tokens`, `cache_write_tokens` |
//! | `gen_ai.usage.reasoning.output_tokens` | `thinking_tokens` |
//! | `user.id` or `enduser.id`; `session.id` or `gen_ai.conversation.id` | `user_id`; `session_id` |
//! | `error.type`, and `ERROR` events inside the span | `error_type`, `error_message`, `status = error` |
//! | `llm_audit.status`, `llm_audit.sanitization.count` | `status`, `sanitization_count` |
//! | `gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages` | hashed into `system_prompt_hash`, `input_hash`, `output_hash` |
//!
//! Usage that was never recorded is `null` in the entry, never `0`, and the cost is then `null`
//! with a `cost_note` saying why.
//!
//! # Guarantees
//!
//! The layer's callbacks do no I/O and no hashing and never panic; with the default
//! [`Overflow::DropNewest`] they never wait. Every entry that does not reach a sink is counted in
//! [`Stats`], and drops are also written as an entry of their own. [`WorkerGuard::shutdown`]
//! returns once everything accepted is written and flushed.
//!
//! # Features
//!
//! - `jsonl` (default): [`JsonlSink`].
//! - `macros` (default): [`llm_call`].
//! - `testing`: `MemorySink`, a sink that keeps entries in memory for tests.
//! - `otel`: the layer works with `tracing-opentelemetry` (entries take its ids, spans get the
//!   audit values; see [`otel`] for the layer order) and [`otel::OtelMetricsSink`].
//! - `postgres`: [`PostgresSink`], batched binary COPY into a partitioned, append-only table,
//!   lossless through outages.
//! - `otlp`: [`otlp::OtlpLogSink`] (entries as OTLP log records) and [`otlp::OtlpSetup`]
//!   (OpenTelemetry in one call); includes `otel`.

/// Implements `Debug` for error types as their sentence with its causes, as `Display` writes
/// it: a `main` that returns the error with `?` prints `Debug`, and a user should read
/// "LLM_AUDIT_HASH_KEY is invalid: ...", not `Env { variable: .. }`.
macro_rules! debug_as_sentence {
    ($($error:ty),* $(,)?) => {$(
        impl ::std::fmt::Debug for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&crate::sink::sentence(self))
            }
        }
    )*};
}

pub mod fields;
pub mod names;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod macros;
#[cfg(feature = "macros")]
pub use tracing_llm_audit_macros::llm_call;

pub mod chain;
#[cfg(feature = "clients")]
pub mod clients;
pub mod content;
pub mod cost;
mod entry;
mod hash;
mod layer;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "otlp")]
pub mod otlp;
mod pipeline;
mod record;
pub mod retention;
#[cfg(any(feature = "otlp", feature = "postgres"))]
mod runtime;
pub mod sanitize;
#[cfg(any(feature = "clients", feature = "otlp"))]
mod scrub;
pub mod sink;

pub use chain::{SigningKey, VerifyingKey};
pub use content::{ContentPolicies, ContentPolicy, Keyring};
pub use cost::{CostError, ModelPrice, PriceFileError, PriceTable, TokenUsage};
pub use entry::{AuditEntry, Status, ACTION_ENTRIES_DROPPED, SCHEMA_VERSION};
pub use hash::{HashKey, HashKeyError, HASH_KEY_ENV, HASH_PREFIX, MIN_SECRET_LEN};
pub use layer::{
    AuditLayer, AuditLayerBuilder, BuildError, BuildWarning, DEFAULT_LINGER, DEFAULT_MAX_BATCH,
    DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_MAX_BYTES, DEFAULT_SINK_BACKLOG,
};
pub use pipeline::{
    FlushError, Overflow, ShutdownError, SinkStats, Stats, StatsHandle, WorkerGuard,
    DROP_FLUSH_TIMEOUT,
};
pub use record::{LlmSpanExt, Usage};
pub use retention::RetentionPolicy;
pub use sanitize::{RedactionMode, Sanitized, Sanitizer, SanitizerBuilder, SanitizerError};
#[cfg(feature = "testing")]
pub use sink::MemorySink;
pub use sink::StdoutSink;
pub use sink::{AuditSink, SinkError};
#[cfg(feature = "jsonl")]
pub use sink::{FsyncPolicy, JsonlError, JsonlSink, JsonlSinkBuilder};
#[cfg(feature = "postgres")]
pub use sink::{PostgresError, PostgresSink, PostgresSinkBuilder};

/// The README's and the guides' code blocks, compiled (and run, unless `no_run`) as doctests, so
/// that every snippet a user copies works as it stands.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/instrumenting.md")]
    #[cfg(feature = "clients")]
    struct Instrumenting;
    #[doc = include_str!("../docs/keys-and-content.md")]
    #[cfg(feature = "clients")]
    struct KeysAndContent;
    #[doc = include_str!("../docs/pricing.md")]
    struct Pricing;
    // Its shell steps are run as written by cli/tests/postgres_guide.rs.
    #[doc = include_str!("../docs/postgres.md")]
    #[cfg(feature = "postgres")]
    struct Postgres;
    #[doc = include_str!("../docs/opentelemetry.md")]
    #[cfg(feature = "otlp")]
    struct OpenTelemetry;
    #[doc = include_str!("../docs/cli.md")]
    struct Cli;
    #[doc = include_str!("../docs/tamper-evidence.md")]
    struct TamperEvidence;
    #[doc = include_str!("../docs/retention-and-erasure.md")]
    struct RetentionAndErasure;
    #[doc = include_str!("../docs/guarantees.md")]
    struct Guarantees;
    #[doc = include_str!("../docs/benchmarks.md")]
    struct Benchmarks;
    #[doc = include_str!("../docs/development.md")]
    struct Development;
}
