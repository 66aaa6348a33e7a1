//! Audited clients for the Anthropic Messages API and OpenAI Chat Completions (feature
//! `clients`): every call is one LLM span, so the [`AuditLayer`](crate::AuditLayer) writes one
//! entry per call without the caller doing anything.
//!
//! - [`AnthropicClient`]: `POST /v1/messages`, with and without streaming.
//! - [`OpenAiClient`]: `POST /v1/chat/completions`, with and without streaming, with a base URL
//!   for OpenAI-compatible servers (vLLM, Ollama, LiteLLM proxy, OpenRouter).
//!
//! What each call records: provider, operation, request and response model, response id,
//! finish reasons, usage with the provider's breakdown mapped onto the GenAI fields (cached
//! input and reasoning output counted once, so cost is right), time to first chunk when
//! streaming, the provider's request id (`request-id` / `x-request-id`, in the entry's
//! `metadata` as `llm_audit.provider_request_id`), and, through the content API (hashed or
//! encrypted by policy, never span fields), the system prompt, the messages and the output.
//! Errors (HTTP, API error bodies, timeouts, broken connections, broken streams) make the entry
//! `status = error` with the API's error type and a bounded message; the caller gets a
//! [`ClientError`] that carries the same. The API key is sent in a header and never appears in
//! an entry, a span, a log line, an error or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::record::LlmSpanExt;

pub mod anthropic;
pub mod openai;
mod sse;

pub use anthropic::AnthropicClient;
pub use openai::OpenAiClient;

/// Span field of the provider's own request id; lands in the entry's `metadata`.
pub const PROVIDER_REQUEST_ID: &str = "llm_audit.provider_request_id";

/// Default time a call may take, streaming included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest timeout a client takes: one hour.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default bound of an answer's body (non-streamed) and of one streamed event: 32 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 32 << 20;
/// How much of an error body is read: 64 KiB (the rest is not read at all).
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// Longest error message kept from an API error body.
const MAX_MESSAGE: usize = 1024;
/// Longest server-given name (an error type, an event name, a request id) kept.
const MAX_NAME: usize = 100;

/// An API key. Its `Debug` shows nothing of it; it is sent in a header and never logged.
#[derive(Clone)]
pub struct ApiKey(Arc<zeroize::Zeroizing<String>>);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Arc::new(zeroize::Zeroizing::new(key.into())))
    }

    /// The key from the environment variable `name`, if it is set and not empty.
    #[must_use]
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(Self::new)
    }

    pub(crate) fn header(&self) -> Result<reqwest::header::HeaderValue, ClientError> {
        let mut value = reqwest::header::HeaderValue::from_str(self.0.as_str()).map_err(|_| {
            ClientError::new(ErrorKind::Invalid(
                "the API key holds characters a header cannot carry".to_owned(),
            ))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    pub(crate) fn bearer(&self) -> Result<reqwest::header::HeaderValue, ClientError> {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0.as_str()))
                .map_err(|_| {
                    ClientError::new(ErrorKind::Invalid(
                        "the API key holds characters a header cannot carry".to_owned(),
                    ))
                })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl ApiKey {
    /// `text` from a server without the key in any spelling (a server may echo it, raw,
    /// JSON-escaped, percent-encoded or in base64), at most `max_chars` characters.
    pub(crate) fn scrub(&self, text: &str, max_chars: usize) -> String {
        crate::scrub::Scrubber::new([self.0.as_str()]).scrub(text, max_chars)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Redactions a [`BeforeSend`] hook made, by entity type (`email`, `credit_card`, ...): counts
/// only, never values. They land in the entry's `sanitization`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redactions(BTreeMap<String, u64>);

impl Redactions {
    /// Counts `count` redactions of `entity`.
    pub fn add(&mut self, entity: &str, count: u64) {
        if count > 0 {
            *self.0.entry(entity.to_owned()).or_default() += count;
        }
    }

    /// The counts by entity type.
    #[must_use]
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.0
    }
}

/// A request a [`BeforeSend`] hook refused to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Why; recorded in the entry and returned to the caller. Never put matched content here.
    pub reason: String,
}

/// Sees every request body before it is sent: it may rewrite it (redact), count what it
/// redacted, or block the call (`status = blocked`, nothing is sent, the caller gets
/// [`ErrorKind::Blocked`]).
pub trait BeforeSend: Send + Sync {
    /// Inspects and possibly rewrites `body` (the JSON the API receives).
    ///
    /// # Errors
    /// [`Blocked`] when the request must not be sent.
    fn before_send(
        &self,
        body: &mut serde_json::Value,
        redactions: &mut Redactions,
    ) -> Result<(), Blocked>;
}

impl<F> BeforeSend for F
where
    F: Fn(&mut serde_json::Value, &mut Redactions) -> Result<(), Blocked> + Send + Sync,
{
    fn before_send(
        &self,
        body: &mut serde_json::Value,
        redactions: &mut Redactions,
    ) -> Result<(), Blocked> {
        self(body, redactions)
    }
}

/// A response with the ids that tie it to its audit entry.
#[derive(Debug, Clone)]
pub struct Audited<T> {
    /// What the API answered.
    pub response: T,
    /// The audit entry's request id (`None` when no [`AuditLayer`](crate::AuditLayer) saw the
    /// call).
    pub audit_request_id: Option<Uuid>,
    /// The provider's request id (`request-id` or `x-request-id` header).
    pub provider_request_id: Option<String>,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The API answered with an error status; `error_type` and `message` come from its error
    /// body when it has one (`rate_limit_error`, `overloaded_error`, `invalid_request_error`).
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error type, or `http_<status>` when the body has none.
        error_type: String,
        /// The API's message, bounded.
        message: String,
        /// The response body as received, bounded.
        body: String,
    },
    /// No complete answer within the timeout.
    Timeout(Duration),
    /// The connection could not be made or broke.
    Connection(String),
    /// A stream ended before its end event, or carried an error event.
    Stream {
        /// The error type (`stream_incomplete`, or the API's error event type).
        error_type: String,
        /// What happened.
        message: String,
    },
    /// The answer is not in the API's format.
    Decode(String),
    /// A [`BeforeSend`] hook blocked the request; nothing was sent.
    Blocked(String),
    /// The request could not be built.
    Invalid(String),
    /// The answer (or one streamed event) is longer than the client's bound: it was not read
    /// further.
    TooLarge {
        /// What was too long: `answer` or `stream event`.
        what: &'static str,
        /// The bound in bytes.
        limit: usize,
    },
}

impl ErrorKind {
    /// The low-cardinality class recorded as `error.type`.
    #[must_use]
    pub fn error_type(&self) -> &str {
        match self {
            Self::Api { error_type, .. } | Self::Stream { error_type, .. } => error_type,
            Self::Timeout(_) => "timeout",
            Self::Connection(_) => "connection_error",
            Self::Decode(_) => "invalid_response",
            Self::Blocked(_) => "blocked",
            Self::Invalid(_) => "invalid_request",
            Self::TooLarge { .. } => "response_too_large",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api {
                status,
                error_type,
                message,
                ..
            } => write!(f, "API error {status} ({error_type}): {message}"),
            Self::Timeout(after) => write!(f, "no complete answer within {after:?}"),
            Self::Connection(why) => write!(f, "connection failed: {why}"),
            Self::Stream {
                error_type,
                message,
            } => write!(f, "the stream broke ({error_type}): {message}"),
            Self::Decode(why) => write!(f, "the answer is not in the API's format: {why}"),
            Self::Blocked(reason) => write!(f, "blocked before sending: {reason}"),
            Self::Invalid(why) => write!(f, "invalid request: {why}"),
            Self::TooLarge { what, limit } => write!(
                f,
                "the {what} is longer than {limit} bytes, the client's bound \
                 (with_max_response_bytes); it was not read further"
            ),
        }
    }
}

/// An audited call failed. The entry of the call says the same (`status = error` or `blocked`).
#[derive(Debug, Clone)]
pub struct ClientError(Box<ErrorInner>);

#[derive(Debug, Clone)]
struct ErrorInner {
    kind: ErrorKind,
    audit_request_id: Option<Uuid>,
    provider_request_id: Option<String>,
}

impl ClientError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self::with(kind, None, None)
    }

    pub(crate) fn with(
        kind: ErrorKind,
        audit_request_id: Option<Uuid>,
        provider_request_id: Option<String>,
    ) -> Self {
        Self(Box::new(ErrorInner {
            kind,
            audit_request_id,
            provider_request_id,
        }))
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The audit entry's request id.
    #[must_use]
    pub fn audit_request_id(&self) -> Option<Uuid> {
        self.0.audit_request_id
    }

    /// The provider's request id, when it answered.
    #[must_use]
    pub fn provider_request_id(&self) -> Option<&str> {
        self.0.provider_request_id.as_deref()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.kind, f)?;
        if let Some(id) = &self.0.provider_request_id {
            write!(f, " (provider request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

/// Text cut to `max` bytes at a character boundary.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The span of one call, declaring every field the audit layer reads.
pub(crate) fn call_span(
    provider: &str,
    model: &str,
    user: Option<&str>,
    stream: bool,
) -> tracing::Span {
    use crate::fields;
    use tracing::field::Empty;
    tracing::info_span!(
        target: "tracing_llm_audit::clients",
        "gen_ai.call",
        { fields::OPERATION_NAME } = "chat",
        { fields::PROVIDER_NAME } = provider,
        { fields::REQUEST_MODEL } = model,
        { fields::RESPONSE_MODEL } = Empty,
        { fields::RESPONSE_ID } = Empty,
        { fields::RESPONSE_FINISH_REASONS } = Empty,
        { fields::REQUEST_STREAM } = stream,
        { fields::RESPONSE_TIME_TO_FIRST_CHUNK } = Empty,
        { fields::USAGE_INPUT_TOKENS } = Empty,
        { fields::USAGE_OUTPUT_TOKENS } = Empty,
        { fields::USAGE_CACHE_READ_INPUT_TOKENS } = Empty,
        { fields::USAGE_CACHE_CREATION_INPUT_TOKENS } = Empty,
        { fields::USAGE_REASONING_OUTPUT_TOKENS } = Empty,
        { fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS } = Empty,
        { fields::RESPONSE_SERVICE_TIER } = Empty,
        { fields::USAGE_COST } = Empty,
        { fields::USER_ID } = user,
        { fields::SESSION_ID } = Empty,
        { fields::ERROR_TYPE } = Empty,
        { fields::STATUS } = Empty,
        { fields::SANITIZATION_COUNT } = Empty,
        { PROVIDER_REQUEST_ID } = Empty,
    )
}

/// The settings both clients share, as methods of each (they keep a `common: Common`).
macro_rules! common_settings {
    () => {
        /// The user every call is made for (`user.id`), unless a call says otherwise.
        #[must_use]
        pub fn with_user(mut self, user: impl Into<String>) -> Self {
            self.common.user = Some(user.into());
            self
        }

        /// The longest a call may take, a stream included. Default:
        /// [`DEFAULT_TIMEOUT`](super::DEFAULT_TIMEOUT).
        ///
        /// # Errors
        /// A timeout of zero or over [`MAX_TIMEOUT`](super::MAX_TIMEOUT), or the HTTP client
        /// cannot be built.
        pub fn with_timeout(
            mut self,
            timeout: std::time::Duration,
        ) -> Result<Self, super::ClientError> {
            self.common.timeout = timeout;
            self.common.build_http()?;
            Ok(self)
        }

        /// The most bytes read of an answer's body, or of one streamed event: a server that
        /// sends more fails the call with [`ErrorKind::TooLarge`](super::ErrorKind::TooLarge)
        /// and is not read further. Default:
        /// [`DEFAULT_MAX_RESPONSE_BYTES`](super::DEFAULT_MAX_RESPONSE_BYTES).
        #[must_use]
        pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
            self.common.max_response_bytes = bytes.max(1024);
            self
        }

        /// A hook that sees (and may rewrite or block) every request before it is sent.
        #[must_use]
        pub fn with_before_send(mut self, hook: impl super::BeforeSend + 'static) -> Self {
            self.common.hook = Some(std::sync::Arc::new(hook));
            self
        }
    };
}
pub(crate) use common_settings;

/// Shared by both clients: the HTTP client, the hook, the defaults.
#[derive(Clone)]
pub(crate) struct Common {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) key: ApiKey,
    pub(crate) user: Option<String>,
    pub(crate) hook: Option<Arc<dyn BeforeSend>>,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
}

impl fmt::Debug for Common {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("key", &self.key)
            .field("user", &self.user)
            .field("hook", &self.hook.is_some())
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl Common {
    pub(crate) fn new(base_url: &str, key: ApiKey) -> Self {
        Self {
            // Building the default client fails only when TLS cannot be set up at all, as
            // `reqwest::Client::new` (which panics then too).
            http: http_client(DEFAULT_TIMEOUT).expect("the HTTP client cannot be built"),
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
            user: None,
            hook: None,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    pub(crate) fn build_http(&mut self) -> Result<(), ClientError> {
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(ClientError::new(ErrorKind::Invalid(format!(
                "the timeout must be more than zero and at most {MAX_TIMEOUT:?}, not {:?}",
                self.timeout
            ))));
        }
        self.http = http_client(self.timeout).map_err(|e| {
            ClientError::new(ErrorKind::Invalid(format!(
                "cannot build the HTTP client: {e}"
            )))
        })?;
        Ok(())
    }

    /// Runs the hook on `body`; records redactions, or blocks the call.
    pub(crate) fn before_send(
        &self,
        span: &tracing::Span,
        body: &mut serde_json::Value,
    ) -> Result<(), ClientError> {
        let Some(hook) = &self.hook else {
            return Ok(());
        };
        let mut redactions = Redactions::default();
        let verdict = hook.before_send(body, &mut redactions);
        for (entity, count) in redactions.counts() {
            span.record_sanitization(entity, *count);
        }
        if let Err(blocked) = verdict {
            span.record_status(crate::Status::Blocked);
            span.record_error("blocked", &blocked.reason);
            return Err(ClientError::with(
                ErrorKind::Blocked(blocked.reason),
                span.audit_request_id(),
                None,
            ));
        }
        Ok(())
    }
}

/// The HTTP client of the audited clients, under the crate's one egress policy: no redirect is
/// followed. reqwest's default policy follows up to ten and strips only `Authorization` and
/// cookies when the host changes: Anthropic's `x-api-key` would go to whatever host a
/// redirect names. A 3xx answer is an error that names its status.
pub(crate) fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .build()
}

/// The provider's request id from the response headers: server text, so scrubbed and bounded.
pub(crate) fn provider_request_id(
    headers: &reqwest::header::HeaderMap,
    key: &ApiKey,
) -> Option<String> {
    ["request-id", "x-request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(|v| key.scrub(v, MAX_NAME * 2))
}

/// Usage counts a server sent that are no count: negative, fractional, beyond `u64`, text.
/// Each is replaced by 0 in `usage` (an object; nested objects such as
/// `prompt_tokens_details` included), so that the answer still decodes, and returned as (its
/// path, its JSON text);
/// [`record_bad_counts`] then leaves the count out and has the entry say so.
pub(crate) fn take_bad_counts(usage: &mut serde_json::Value) -> Vec<(String, String)> {
    /// Members of a usage object that are text, not counts (Anthropic's `service_tier`).
    const TEXT_MEMBERS: &[&str] = &["service_tier", "inference_geo"];
    fn walk(value: &mut serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
        let Some(object) = value.as_object_mut() else {
            return;
        };
        let bad: Vec<String> = object
            .iter()
            .filter(|(k, _)| !TEXT_MEMBERS.contains(&k.as_str()))
            .filter(|(_, v)| !(v.is_null() || v.is_object() || v.as_u64().is_some()))
            .map(|(k, _)| k.clone())
            .collect();
        for key in bad {
            if let Some(v) = object.insert(key.clone(), 0.into()) {
                out.push((format!("{path}{key}"), v.to_string()));
            }
        }
        for (key, v) in object.iter_mut() {
            walk(v, &format!("{path}{key}."), out);
        }
    }
    let mut out = Vec::new();
    walk(usage, "", &mut out);
    out
}

/// Leaves out of `usage` the counts that `bad` (from [`take_bad_counts`]) and `field_of` (the
/// API's count name to the span field it feeds) say came wrong, and records each bad value as
/// text on its field: the audit layer notes it in `llm_audit.problems` and computes no cost
/// from a count it does not have. Then records the usage.
pub(crate) fn record_usage_checked(
    span: &tracing::Span,
    mut usage: crate::record::Usage,
    bad: &[(String, String)],
    field_of: fn(&str) -> Option<&'static str>,
) {
    use crate::fields;
    let mut notes = Vec::new();
    for (path, shown) in bad {
        let Some(field) = field_of(path) else {
            continue;
        };
        match field {
            fields::USAGE_INPUT_TOKENS => usage.input_tokens = None,
            fields::USAGE_OUTPUT_TOKENS => usage.output_tokens = None,
            fields::USAGE_CACHE_READ_INPUT_TOKENS => usage.cache_read_input_tokens = None,
            fields::USAGE_CACHE_CREATION_INPUT_TOKENS => usage.cache_creation_input_tokens = None,
            fields::USAGE_REASONING_OUTPUT_TOKENS => usage.reasoning_output_tokens = None,
            fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS => usage.cache_write_1h_input_tokens = None,
            _ => {}
        }
        notes.push((field, bounded(shown, 40)));
    }
    span.record_usage(&usage);
    for (field, shown) in notes {
        span.record(field, shown.as_str());
    }
}

/// Reads at most `limit` bytes of `response`'s body, chunk by chunk: `Ok(None)` when it is
/// longer (the rest is not read).
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Records `cancelled` on a call's span when the call's future is dropped before it finished
/// (a `tokio::time::timeout` around it, a `select!` that took another branch).
pub(crate) struct CancelGuard<'a>(Option<&'a tracing::Span>);

impl<'a> CancelGuard<'a> {
    pub(crate) fn new(span: &'a tracing::Span) -> Self {
        Self(Some(span))
    }

    /// The call finished (well or not): nothing to record.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if let Some(span) = self.0 {
            span.record_error(
                "cancelled",
                &"the caller dropped the call before it finished",
            );
        }
    }
}

/// Records `kind` on the span as the call's error and turns it into the caller's error.
pub(crate) fn fail(
    span: &tracing::Span,
    kind: ErrorKind,
    provider_request_id: Option<String>,
) -> ClientError {
    if !matches!(kind, ErrorKind::Blocked(_)) {
        span.record_error(kind.error_type(), &kind);
    }
    ClientError::with(kind, span.audit_request_id(), provider_request_id)
}

/// A transport error as an [`ErrorKind`]. reqwest's messages name the URL, never the headers.
pub(crate) fn transport(e: &reqwest::Error, timeout: Duration) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout(timeout);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    if e.is_decode() || e.is_body() {
        return ErrorKind::Stream {
            error_type: "stream_broken".to_owned(),
            message: bounded(&text, MAX_MESSAGE),
        };
    }
    ErrorKind::Connection(bounded(&text, MAX_MESSAGE))
}

/// An error status with its body: the API's error type and message when the body has them
/// (`{"error": {"type": ..., "message": ...}}`, which both APIs use), else `http_<status>`.
pub(crate) fn api_error(status: u16, body: &str, code_first: bool, key: &ApiKey) -> ErrorKind {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    // OpenAI's `type` is a broad class (`requests`, `invalid_request_error`) and its `code` the
    // precise one (`rate_limit_exceeded`); Anthropic has `type` only.
    let (first, second) = if code_first {
        ("code", "type")
    } else {
        ("type", "code")
    };
    let error_type = field(first)
        .or_else(|| field(second))
        .unwrap_or_else(|| format!("http_{status}"));
    let message = field("message").unwrap_or_else(|| body.trim().to_owned());
    // Scrubbed once decoded: an echoed key spelled `\u0053...` in the JSON is the key.
    ErrorKind::Api {
        status,
        error_type: key.scrub(&error_type, MAX_NAME),
        message: key.scrub(&message, MAX_MESSAGE),
        body: key.scrub(body, 4 * MAX_MESSAGE),
    }
}

impl Common {
    /// Sends `body` to `url`: the hook first, then the request. An error status is read into an
    /// [`ErrorKind::Api`] and recorded on the span.
    pub(crate) async fn post(
        &self,
        span: &tracing::Span,
        url: &str,
        auth: (&'static str, reqwest::header::HeaderValue),
        headers: &[(&'static str, &'static str)],
        body: &serde_json::Value,
        code_first: bool,
    ) -> Result<(reqwest::Response, Option<String>), ClientError> {
        let mut request = self
            .http
            .post(url)
            .timeout(self.timeout)
            .header(auth.0, auth.1)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = serde_json::to_vec(body)
            .map_err(|e| fail(span, ErrorKind::Invalid(e.to_string()), None))?;
        let response = request
            .body(bytes)
            .send()
            .await
            .map_err(|e| fail(span, transport(&e, self.timeout), None))?;
        let request_id = provider_request_id(response.headers(), &self.key);
        if let Some(id) = &request_id {
            span.record(PROVIDER_REQUEST_ID, id.as_str());
        }
        let status = response.status();
        if !status.is_success() {
            // Only the start of an error body is read: a server may send a gigabyte.
            let mut response = response;
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = MAX_ERROR_BODY_BYTES - body.len();
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if body.len() == MAX_ERROR_BODY_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(fail(span, transport(&e, self.timeout), request_id)),
                }
            }
            drop(response);
            let text = String::from_utf8_lossy(&body);
            return Err(fail(
                span,
                api_error(status.as_u16(), &text, code_first, &self.key),
                request_id,
            ));
        }
        Ok((response, request_id))
    }
}

/// The body of a streamed answer as server-sent events: bytes read as they come, split into
/// events wherever the network split them. Shared by both clients' streams.
#[derive(Debug)]
pub(crate) struct SseBody {
    response: Option<reqwest::Response>,
    parser: sse::Parser,
    pending: std::collections::VecDeque<sse::Event>,
    timeout: Duration,
}

impl SseBody {
    /// A stream whose events may each be at most `max_event` bytes.
    pub(crate) fn new(response: reqwest::Response, timeout: Duration, max_event: usize) -> Self {
        Self {
            response: Some(response),
            parser: sse::Parser::with_limit(max_event),
            pending: std::collections::VecDeque::new(),
            timeout,
        }
    }

    /// The next event. The first bytes mark the span's first chunk. An error is the stream
    /// breaking or ending before its end event (`end`, named in the message).
    pub(crate) async fn next(
        &mut self,
        span: &tracing::Span,
        end: &str,
    ) -> Result<sse::Event, ErrorKind> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let ended = |why: &str| ErrorKind::Stream {
                error_type: "stream_incomplete".to_owned(),
                message: format!("the stream ended{why} before {end}"),
            };
            let Some(response) = self.response.as_mut() else {
                return Err(ended(""));
            };
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    span.record_first_chunk();
                    match self.parser.push(&bytes) {
                        Ok(events) => self.pending.extend(events),
                        Err(limit) => {
                            self.response = None;
                            return Err(ErrorKind::TooLarge {
                                what: "stream event",
                                limit,
                            });
                        }
                    }
                }
                Ok(None) if self.parser.has_partial() => {
                    return Err(ended(" in the middle of an event,"))
                }
                Ok(None) => return Err(ended("")),
                Err(e) => return Err(transport(&e, self.timeout)),
            }
        }
    }

    /// Stops reading (the connection is released).
    pub(crate) fn close(&mut self) {
        self.response = None;
    }
}

/// Content of a JSON value for the content API: a string's text, anything else as JSON.
pub(crate) fn content_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap_or_default(),
    }
}
