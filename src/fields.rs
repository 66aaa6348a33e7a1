//! Span field names the audit layer reads (OpenTelemetry GenAI semantic conventions v1.41, plus
//! the `llm_audit.*` names of this crate).
//!
//! A span is an LLM call when its metadata declares [`OPERATION_NAME`]. The crate docs list these
//! under "Special Fields".

/// `gen_ai.operation.name`: `chat`, `text_completion`, `embeddings`, ... Its presence marks a span
/// as an LLM call.
pub const OPERATION_NAME: &str = "gen_ai.operation.name";
/// `gen_ai.provider.name`: `anthropic`, `openai`, `gcp.gemini`, ...
pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
/// `gen_ai.system`: the older name of [`PROVIDER_NAME`], still accepted.
pub const SYSTEM: &str = "gen_ai.system";
/// `gen_ai.request.model`.
pub const REQUEST_MODEL: &str = "gen_ai.request.model";
/// `gen_ai.response.model`: wins over the request model for pricing.
pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
/// `gen_ai.response.id`.
pub const RESPONSE_ID: &str = "gen_ai.response.id";
/// `gen_ai.response.finish_reasons`: a JSON array of strings, or a comma-separated list.
pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// `gen_ai.request.stream`.
pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
/// `gen_ai.response.time_to_first_chunk`, in seconds.
pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
/// `gen_ai.usage.input_tokens`: cached tokens included.
pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// `gen_ai.usage.output_tokens`: reasoning tokens included.
pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// `gen_ai.usage.cache_read.input_tokens`.
pub const USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// `gen_ai.usage.cache_creation.input_tokens`.
pub const USAGE_CACHE_CREATION_INPUT_TOKENS: &str = "gen_ai.usage.cache_creation.input_tokens";
/// `gen_ai.usage.reasoning.output_tokens`: a part of the output tokens.
pub const USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// `llm_audit.usage.cache_write_1h.input_tokens`: the part of the cache writes written for one
/// hour (Anthropic's `cache_creation.ephemeral_1h_input_tokens`), billed at the 1-hour price.
/// The GenAI conventions have no name for it yet.
pub const USAGE_CACHE_WRITE_1H_INPUT_TOKENS: &str = "llm_audit.usage.cache_write_1h.input_tokens";
/// `llm_audit.response.service_tier`: the service tier that served the call, as the provider
/// reported it (`default`, `flex`, `priority`, `batch`...). Also read from the OpenAI
/// conventions' `openai.response.service_tier` and its older `gen_ai.openai.response.service_tier`.
pub const RESPONSE_SERVICE_TIER: &str = "llm_audit.response.service_tier";
/// Other names of the service tier that served the call.
pub const SERVICE_TIER_ALIASES: &[&str] = &[
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
];
/// Other spellings of the usage counts that the layer reads, as (spelling, who uses it, the
/// count it feeds). The GenAI conventions renamed the cache-write count to
/// `gen_ai.usage.cache_write.input_tokens` (semantic-conventions-genai #440); the older names
/// stay read.
pub const USAGE_ALIASES: &[(&str, &str, &str)] = &[
    (
        "gen_ai.usage.prompt_tokens",
        "GenAI conventions before 1.27",
        USAGE_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.completion_tokens",
        "GenAI conventions before 1.27",
        USAGE_OUTPUT_TOKENS,
    ),
    (
        "llm.token_count.prompt",
        "OpenInference",
        USAGE_INPUT_TOKENS,
    ),
    (
        "llm.token_count.completion",
        "OpenInference",
        USAGE_OUTPUT_TOKENS,
    ),
    (
        "gen_ai.usage.cache_read_input_tokens",
        "OpenLLMetry",
        USAGE_CACHE_READ_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.input_tokens.cached",
        "Sentry",
        USAGE_CACHE_READ_INPUT_TOKENS,
    ),
    (
        "llm.token_count.prompt_details.cache_read",
        "OpenInference",
        USAGE_CACHE_READ_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.cache_write.input_tokens",
        "GenAI conventions (#440)",
        USAGE_CACHE_CREATION_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.cache_creation_input_tokens",
        "OpenLLMetry",
        USAGE_CACHE_CREATION_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.input_tokens.cache_write",
        "Sentry",
        USAGE_CACHE_CREATION_INPUT_TOKENS,
    ),
    (
        "llm.token_count.prompt_details.cache_write",
        "OpenInference",
        USAGE_CACHE_CREATION_INPUT_TOKENS,
    ),
    (
        "gen_ai.usage.reasoning_tokens",
        "rig-core",
        USAGE_REASONING_OUTPUT_TOKENS,
    ),
    (
        "gen_ai.usage.output_tokens.reasoning",
        "Sentry",
        USAGE_REASONING_OUTPUT_TOKENS,
    ),
    (
        "llm.token_count.completion_details.reasoning",
        "OpenInference",
        USAGE_REASONING_OUTPUT_TOKENS,
    ),
];

/// `gen_ai.usage.cost`: written by the audit layer (USD); a value recorded by the caller is
/// ignored in favour of the price table.
pub const USAGE_COST: &str = "gen_ai.usage.cost";
/// `gen_ai.conversation.id`.
pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// `user.id`.
pub const USER_ID: &str = "user.id";
/// `enduser.id`: the older name of [`USER_ID`], still accepted.
pub const ENDUSER_ID: &str = "enduser.id";
/// `session.id`.
pub const SESSION_ID: &str = "session.id";
/// `tenant.id`: the customer or organisation a call is made for, in a multi-tenant service.
/// Kept in the entry's `metadata` under this name; like the user and the session, taken from
/// the nearest enclosing span that has it when the LLM span has none.
pub const TENANT_ID: &str = "tenant.id";
/// `error.type`: a low-cardinality error class; its presence makes the status `error`.
pub const ERROR_TYPE: &str = "error.type";
/// `llm_audit.status`: `success`, `error` or `blocked`.
pub const STATUS: &str = "llm_audit.status";
/// `llm_audit.sanitization.count`: how many values were redacted before sending.
pub const SANITIZATION_COUNT: &str = "llm_audit.sanitization.count";

/// Content attributes of the GenAI conventions (opt-in there). A third-party span that carries
/// them gives raw content; the layer hashes it like content recorded through
/// [`LlmSpanExt`](crate::LlmSpanExt) and never copies it into `metadata`.
pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// See [`SYSTEM_INSTRUCTIONS`].
pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// See [`SYSTEM_INSTRUCTIONS`].
pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// The deprecated content attribute `gen_ai.prompt`; treated as input.
pub const LEGACY_PROMPT: &str = "gen_ai.prompt";
/// The deprecated content attribute `gen_ai.completion`; treated as output.
pub const LEGACY_COMPLETION: &str = "gen_ai.completion";

/// Every field the [`llm_span!`](crate::llm_span) macro and `#[llm_call]` declare, so that the
/// instrumented code can record each of them later.
pub const DECLARED: &[&str] = &[
    OPERATION_NAME,
    PROVIDER_NAME,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    RESPONSE_ID,
    RESPONSE_FINISH_REASONS,
    REQUEST_STREAM,
    RESPONSE_TIME_TO_FIRST_CHUNK,
    USAGE_INPUT_TOKENS,
    USAGE_OUTPUT_TOKENS,
    USAGE_CACHE_READ_INPUT_TOKENS,
    USAGE_CACHE_CREATION_INPUT_TOKENS,
    USAGE_REASONING_OUTPUT_TOKENS,
    USAGE_CACHE_WRITE_1H_INPUT_TOKENS,
    RESPONSE_SERVICE_TIER,
    USAGE_COST,
    USER_ID,
    SESSION_ID,
    ERROR_TYPE,
    STATUS,
    SANITIZATION_COUNT,
];
