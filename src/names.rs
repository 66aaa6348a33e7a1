//! Names the crate exports under: OTLP log record attributes, span attributes, metric names and
//! labels, and the optional OpenInference names.
//!
//! Dashboards, collector pipelines and tests take their names from here, never from a copy. The
//! GenAI names follow the OpenTelemetry GenAI semantic conventions (v1.41); names of this crate
//! start with `llm_audit.`.

pub use crate::fields::{
    ERROR_TYPE, OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, REQUEST_STREAM,
    RESPONSE_FINISH_REASONS, RESPONSE_ID, RESPONSE_MODEL, SANITIZATION_COUNT, SESSION_ID, STATUS,
    USAGE_CACHE_CREATION_INPUT_TOKENS, USAGE_CACHE_READ_INPUT_TOKENS, USAGE_COST,
    USAGE_INPUT_TOKENS, USAGE_OUTPUT_TOKENS, USAGE_REASONING_OUTPUT_TOKENS, USER_ID,
};

/// The event name of every audit log record (`LogRecord.event_name`).
pub const EVENT_NAME: &str = "llm_audit.entry";
/// The instrumentation scope of everything this crate exports.
pub const SCOPE_NAME: &str = "tracing-llm-audit";

/// The entry's request id (a UUID v7).
pub const REQUEST_ID: &str = "llm_audit.request_id";
/// The entry's layout version.
pub const SCHEMA_VERSION: &str = "llm_audit.schema_version";
/// Latency in milliseconds, from span creation to close.
pub const LATENCY_MS: &str = "llm_audit.latency_ms";
/// Time to the first streamed chunk, in seconds (GenAI conventions).
pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = crate::fields::RESPONSE_TIME_TO_FIRST_CHUNK;
/// Why the cost is unknown, when it is.
pub const COST_NOTE: &str = "llm_audit.cost.note";
/// Keyed hash of the system prompt.
pub const SYSTEM_PROMPT_HASH: &str = "llm_audit.system_prompt.hash";
/// Keyed hash of the input.
pub const INPUT_HASH: &str = "llm_audit.input.hash";
/// Keyed hash of the output.
pub const OUTPUT_HASH: &str = "llm_audit.output.hash";
/// Id of the key that made the hashes.
pub const HASH_KEY_ID: &str = "llm_audit.hash_key.id";
/// The bounded error message.
pub const ERROR_MESSAGE: &str = "error.message";
/// Prefix of the per-entity redaction counts: `llm_audit.sanitization.email`, ...
pub const SANITIZATION_PREFIX: &str = "llm_audit.sanitization.";
/// The span id of the enclosing LLM span.
pub const PARENT_SPAN_ID: &str = "llm_audit.parent_span_id";
/// The entry's other span fields, as one JSON object.
pub const METADATA: &str = "llm_audit.metadata";

/// Every attribute name an audit log record can carry, except the per-entity
/// [`SANITIZATION_PREFIX`] counts.
pub const LOG_ATTRIBUTES: &[&str] = &[
    REQUEST_ID,
    SCHEMA_VERSION,
    USER_ID,
    SESSION_ID,
    PROVIDER_NAME,
    OPERATION_NAME,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    RESPONSE_ID,
    RESPONSE_FINISH_REASONS,
    REQUEST_STREAM,
    SYSTEM_PROMPT_HASH,
    INPUT_HASH,
    OUTPUT_HASH,
    HASH_KEY_ID,
    USAGE_INPUT_TOKENS,
    USAGE_OUTPUT_TOKENS,
    USAGE_REASONING_OUTPUT_TOKENS,
    USAGE_CACHE_READ_INPUT_TOKENS,
    USAGE_CACHE_CREATION_INPUT_TOKENS,
    LATENCY_MS,
    RESPONSE_TIME_TO_FIRST_CHUNK,
    USAGE_COST,
    COST_NOTE,
    STATUS,
    ERROR_TYPE,
    ERROR_MESSAGE,
    SANITIZATION_COUNT,
    PARENT_SPAN_ID,
    METADATA,
];

/// Histogram of tokens per call, by [`TOKEN_TYPE`] (GenAI conventions). Unit `{token}`.
pub const METRIC_TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// Histogram of call durations (GenAI conventions). Unit `s`.
pub const METRIC_OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// Histogram of the time to the first streamed chunk (GenAI conventions). Unit `s`.
pub const METRIC_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
/// Counter of cost in USD. Unit `USD`.
pub const METRIC_COST: &str = "llm_audit.cost";
/// Counter of audited calls. Unit `{call}`.
pub const METRIC_CALLS: &str = "llm_audit.calls";
/// Every metric this crate records.
pub const METRICS: &[&str] = &[
    METRIC_TOKEN_USAGE,
    METRIC_OPERATION_DURATION,
    METRIC_TIME_TO_FIRST_CHUNK,
    METRIC_COST,
    METRIC_CALLS,
];

/// Label of [`METRIC_TOKEN_USAGE`]: `input` or `output`.
pub const TOKEN_TYPE: &str = "gen_ai.token.type";
/// Labels every metric carries (never the user id or content: cardinality and privacy).
/// [`ERROR_TYPE`] is added to calls that failed, and [`TOKEN_TYPE`] to token usage.
pub const METRIC_LABELS: &[&str] = &[PROVIDER_NAME, REQUEST_MODEL, OPERATION_NAME, STATUS];

/// OpenInference attribute names, for LLM viewers such as Arize Phoenix (opt-in).
pub mod openinference {
    /// The span kind; the layer sets `LLM` (or `EMBEDDING` for embeddings).
    pub const SPAN_KIND: &str = "openinference.span.kind";
    /// The model that answered.
    pub const MODEL_NAME: &str = "llm.model_name";
    /// The provider.
    pub const PROVIDER: &str = "llm.provider";
    /// Prompt tokens.
    pub const TOKEN_COUNT_PROMPT: &str = "llm.token_count.prompt";
    /// Completion tokens.
    pub const TOKEN_COUNT_COMPLETION: &str = "llm.token_count.completion";
    /// Prompt plus completion tokens.
    pub const TOKEN_COUNT_TOTAL: &str = "llm.token_count.total";
    /// Total cost in USD (a double, as OpenInference defines it).
    pub const COST_TOTAL: &str = "llm.cost.total";
    /// The user id.
    pub const USER_ID: &str = "user.id";
    /// The session id.
    pub const SESSION_ID: &str = "session.id";
}

/// How a metric or label name appears in Prometheus when the collector's `prometheus` exporter
/// runs with `add_metric_suffixes: false` (as in `collector-config/`): every character that is
/// not a letter, digit or `_` becomes `_`.
#[must_use]
pub fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_replace_dots() {
        assert_eq!(
            prometheus_name(METRIC_TOKEN_USAGE),
            "gen_ai_client_token_usage"
        );
        assert_eq!(prometheus_name(PROVIDER_NAME), "gen_ai_provider_name");
    }

    #[test]
    fn attribute_names_are_unique() {
        let mut names = LOG_ATTRIBUTES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LOG_ATTRIBUTES.len());
    }
}
