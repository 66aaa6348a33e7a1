//! [`AnthropicClient`]: the Messages API (`POST /v1/messages`), audited.
//!
//! Usage mapping: Anthropic's `input_tokens` counts only the input that was neither read from
//! nor written to the prompt cache, so the entry's input is `input_tokens +
//! cache_creation_input_tokens + cache_read_input_tokens`, with the two cache counts recorded as
//! the parts they are (cache reads and writes have their own prices). `output_tokens` includes
//! extended thinking, which is billed as output; the API does not count thinking apart, so no
//! reasoning count is recorded rather than a made-up one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    call_span, content_bytes, fail, sse, transport, ApiKey, Audited, ClientError, Common,
    ErrorKind, SseBody,
};
use crate::record::{LlmSpanExt, Usage};

/// The API's address.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent.
pub const API_VERSION: &str = "2023-06-01";

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// A string, or content blocks as JSON (text, images, tool use and results).
    pub content: Value,
}

impl Message {
    /// A user message of plain text.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: "user".to_owned(),
            content: Value::String(text.into()),
        }
    }

    /// An assistant message of plain text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: "assistant".to_owned(),
            content: Value::String(text.into()),
        }
    }
}

/// A Messages API request. Fields this type does not name go in `extra`, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model, for example `claude-sonnet-4-5`.
    pub model: String,
    /// Most output tokens.
    pub max_tokens: u32,
    /// The system prompt: a string or text blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<Value>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Tool definitions, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    /// Tool choice, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Extended thinking, for example `{"type": "enabled", "budget_tokens": 2048}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Anything else the API accepts.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessagesRequest {
    /// A request for `model` with at most `max_tokens` of output and no messages yet.
    pub fn new(model: impl Into<String>, max_tokens: u32) -> Self {
        Self {
            model: model.into(),
            max_tokens,
            system: None,
            messages: Vec::new(),
            temperature: None,
            tools: None,
            tool_choice: None,
            thinking: None,
            stop_sequences: None,
            extra: Map::new(),
        }
    }

    /// Sets the system prompt.
    #[must_use]
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(Value::String(system.into()));
        self
    }

    /// Appends a message.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }
}

/// One block of the answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlock {
    /// `text`, `thinking`, `tool_use`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The thinking of a `thinking` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Everything else (tool use ids, inputs, signatures).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts as Anthropic reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnthropicUsage {
    /// Input tokens that were neither read from nor written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens, thinking included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes by duration, when the API says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<AnthropicCacheCreation>,
    /// The tier that served the call: `standard`, `priority` or `batch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

/// Anthropic's cache writes by duration (`usage.cache_creation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnthropicCacheCreation {
    /// Tokens written for the default 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_5m_input_tokens: Option<u64>,
    /// Tokens written for one hour (billed at 2 × input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// The GenAI usage: all input, with the cache parts; all output.
    #[must_use]
    pub fn to_usage(&self) -> Usage {
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        let read = self.cache_read_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: Some(
                self.input_tokens
                    .saturating_add(written)
                    .saturating_add(read),
            ),
            output_tokens: Some(self.output_tokens),
            cache_read_input_tokens: self.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens,
            cache_write_1h_input_tokens: self
                .cache_creation
                .as_ref()
                .and_then(|c| c.ephemeral_1h_input_tokens),
            reasoning_output_tokens: None,
        }
    }

    /// Takes the counts a later event reports (a `message_delta` carries the final output count,
    /// and may repeat the input counts). Counts that are none are left to
    /// [`take_bad_counts`](super::take_bad_counts).
    fn update(&mut self, later: &Value) {
        let get = |name: &str| later.get(name).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.input_tokens = n;
        }
        if let Some(n) = get("output_tokens") {
            self.output_tokens = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.cache_creation_input_tokens = Some(n);
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.cache_read_input_tokens = Some(n);
        }
        if let Some(split) = later.get("cache_creation") {
            if let Ok(split) = serde_json::from_value(split.clone()) {
                self.cache_creation = Some(split);
            }
        }
        if let Some(tier) = later.get("service_tier").and_then(Value::as_str) {
            self.service_tier = Some(tier.to_owned());
        }
    }
}

/// A Messages API answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// The message id (`msg_...`).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// `assistant`.
    #[serde(default)]
    pub role: String,
    /// The answer's blocks.
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, ...
    pub stop_reason: Option<String>,
    /// The stop sequence that ended it, if one did.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: AnthropicUsage,
}

impl MessagesResponse {
    /// The text blocks, joined.
    #[must_use]
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| b.text.as_deref())
            .collect()
    }
}

/// A client of the Messages API whose every call is audited.
///
/// ```no_run
/// # async fn run() -> Result<(), tracing_llm_audit::clients::ClientError> {
/// use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
/// use tracing_llm_audit::clients::ApiKey;
///
/// let key = ApiKey::from_env("ANTHROPIC_API_KEY").expect("ANTHROPIC_API_KEY must be set to an API key");
/// let client = AnthropicClient::new(key).with_user("alice");
/// let request = MessagesRequest::new("claude-sonnet-4-5", 1024)
///     .system("Answer briefly.")
///     .message(Message::user("What is an audit trail?"));
/// let answer = client.messages(&request).await?;
/// println!("{} (audit id {:?})", answer.response.text(), answer.audit_request_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    common: Common,
}

impl AnthropicClient {
    /// A client of `https://api.anthropic.com` with `key`.
    #[must_use]
    pub fn new(key: ApiKey) -> Self {
        Self {
            common: Common::new(DEFAULT_BASE_URL, key),
        }
    }

    /// Another address (a proxy, a gateway, a test server).
    #[must_use]
    pub fn with_base_url(mut self, url: &str) -> Self {
        self.common.base_url = url.trim_end_matches('/').to_owned();
        self
    }

    super::common_settings!();

    /// Sends `request` and waits for the whole answer.
    ///
    /// # Errors
    /// [`ClientError`]: the API's error, a timeout, a broken connection, an answer not in the
    /// API's format, or a request the hook blocked. The entry records the same.
    pub async fn messages(
        &self,
        request: &MessagesRequest,
    ) -> Result<Audited<MessagesResponse>, ClientError> {
        self.messages_for(request, None).await
    }

    /// [`messages`](Self::messages) for `user` instead of the client's user.
    ///
    /// # Errors
    /// As [`messages`](Self::messages).
    pub async fn messages_for(
        &self,
        request: &MessagesRequest,
        user: Option<&str>,
    ) -> Result<Audited<MessagesResponse>, ClientError> {
        let span = call_span(
            "anthropic",
            &request.model,
            user.or(self.common.user.as_deref()),
            false,
        );
        let guard = super::CancelGuard::new(&span);
        let result = self.complete(&span, request).await;
        guard.disarm();
        result
    }

    async fn complete(
        &self,
        span: &tracing::Span,
        request: &MessagesRequest,
    ) -> Result<Audited<MessagesResponse>, ClientError> {
        let body = self.prepare(span, request, false)?;
        let (mut response, request_id) = self.send(span, &body).await?;
        let limit = self.common.max_response_bytes;
        let bytes = super::read_bounded(&mut response, limit)
            .await
            .map_err(|e| fail(span, transport(&e, self.common.timeout), request_id.clone()))?
            .ok_or_else(|| {
                let kind = ErrorKind::TooLarge {
                    what: "answer",
                    limit,
                };
                fail(span, kind, request_id.clone())
            })?;
        let decode = |e: serde_json::Error| {
            let kind = ErrorKind::Decode(self.common.key.scrub(&e.to_string(), 300));
            fail(span, kind, request_id.clone())
        };
        let mut value: Value = serde_json::from_slice(&bytes).map_err(decode)?;
        // A count that is none (negative, fractional) is left out, not a failed answer.
        let bad = value
            .get_mut("usage")
            .map(super::take_bad_counts)
            .unwrap_or_default();
        let answer: MessagesResponse = serde_json::from_value(value).map_err(decode)?;
        record_answer(span, &answer, &bad);
        Ok(Audited {
            response: answer,
            audit_request_id: span.audit_request_id(),
            provider_request_id: request_id,
        })
    }

    /// Sends `request` with `stream: true`; events arrive through the returned stream, which
    /// records the call when it ends (or breaks, or is dropped).
    ///
    /// # Errors
    /// As [`messages`](Self::messages), for what happens before the first event.
    pub async fn messages_stream(
        &self,
        request: &MessagesRequest,
    ) -> Result<MessageStream, ClientError> {
        self.messages_stream_for(request, None).await
    }

    /// [`messages_stream`](Self::messages_stream) for `user` instead of the client's user.
    ///
    /// # Errors
    /// As [`messages`](Self::messages).
    pub async fn messages_stream_for(
        &self,
        request: &MessagesRequest,
        user: Option<&str>,
    ) -> Result<MessageStream, ClientError> {
        let span = call_span(
            "anthropic",
            &request.model,
            user.or(self.common.user.as_deref()),
            true,
        );
        let guard = super::CancelGuard::new(&span);
        let sent = async {
            let body = self.prepare(&span, request, true)?;
            self.send(&span, &body).await
        }
        .await;
        guard.disarm();
        let (response, request_id) = sent?;
        let audit_id = span.audit_request_id();
        Ok(MessageStream {
            span,
            audit_id,
            key: self.common.key.clone(),
            body: SseBody::new(
                response,
                self.common.timeout,
                self.common.max_response_bytes,
            ),
            message: MessagesResponse::default(),
            bad_counts: Vec::new(),
            finished: false,
            request_id,
        })
    }

    /// The request as JSON, after the hook, with its content recorded.
    fn prepare(
        &self,
        span: &tracing::Span,
        request: &MessagesRequest,
        stream: bool,
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::to_value(request)
            .map_err(|e| fail(span, ErrorKind::Invalid(e.to_string()), None))?;
        if stream {
            body["stream"] = Value::Bool(true);
        }
        self.common.before_send(span, &mut body)?;
        if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
            span.record_system_prompt(&content_bytes(system));
        }
        if let Some(messages) = body.get("messages") {
            span.record_input(&content_bytes(messages));
        }
        Ok(body)
    }

    async fn send(
        &self,
        span: &tracing::Span,
        body: &Value,
    ) -> Result<(reqwest::Response, Option<String>), ClientError> {
        let url = format!("{}/v1/messages", self.common.base_url);
        self.common
            .post(
                span,
                &url,
                (
                    "x-api-key",
                    self.common
                        .key
                        .header()
                        .map_err(|e| fail(span, e.kind().clone(), None))?,
                ),
                &[("anthropic-version", API_VERSION)],
                body,
                false,
            )
            .await
    }
}

/// The span field each usage count of the Messages API feeds.
fn count_field(name: &str) -> Option<&'static str> {
    use crate::fields;
    Some(match name {
        // The entry's input is the sum of the three: one wrong part, and it is unknown.
        "input_tokens" => fields::USAGE_INPUT_TOKENS,
        "cache_creation_input_tokens" => fields::USAGE_CACHE_CREATION_INPUT_TOKENS,
        "cache_read_input_tokens" => fields::USAGE_CACHE_READ_INPUT_TOKENS,
        "output_tokens" => fields::USAGE_OUTPUT_TOKENS,
        "cache_creation.ephemeral_1h_input_tokens" => fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS,
        _ => return None,
    })
}

/// The usage to record: the entry's input is the sum of three counts, unknown if a cache part
/// came wrong.
fn usage_of(usage: &AnthropicUsage, bad: &[(String, String)]) -> Usage {
    let mut usage = usage.to_usage();
    let cache_part_bad = bad.iter().any(|(name, _)| {
        matches!(
            name.as_str(),
            "cache_creation_input_tokens" | "cache_read_input_tokens"
        )
    });
    if cache_part_bad {
        usage.input_tokens = None;
    }
    usage
}

fn record_answer(span: &tracing::Span, answer: &MessagesResponse, bad: &[(String, String)]) {
    span.record_response_id(&answer.id);
    if let Some(tier) = &answer.usage.service_tier {
        span.record_service_tier(tier);
    }
    span.record_response_model(&answer.model);
    if let Some(reason) = &answer.stop_reason {
        span.record_finish_reasons(&[reason]);
    }
    super::record_usage_checked(span, usage_of(&answer.usage, bad), bad, count_field);
    span.record_output(answer.text().as_bytes());
}

/// One server-sent event of a stream: its type and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// `message_start`, `content_block_delta`, `message_delta`, `message_stop`, `ping`, ...
    pub event: String,
    /// The event's JSON.
    pub data: Value,
}

impl StreamEvent {
    /// The text of a `text_delta`.
    #[must_use]
    pub fn text_delta(&self) -> Option<&str> {
        let delta = self.data.get("delta")?;
        (delta.get("type")?.as_str()? == "text_delta")
            .then(|| delta.get("text")?.as_str())
            .flatten()
    }
}

/// The events of a streamed answer. The call's entry is written when the stream ends: at
/// `message_stop` with everything, at a break or an `error` event with what arrived and
/// `status = error`, and when dropped early with what arrived and `error.type = cancelled`.
#[derive(Debug)]
pub struct MessageStream {
    /// The call's span while the stream runs; `Span::none()` once it has ended, so that the
    /// entry is written at the end of the stream, not when this value is dropped.
    span: tracing::Span,
    audit_id: Option<uuid::Uuid>,
    key: ApiKey,
    body: SseBody,
    /// The answer, assembled from the events.
    message: MessagesResponse,
    /// Usage counts the events gave that are no count.
    bad_counts: Vec<(String, String)>,
    finished: bool,
    request_id: Option<String>,
}

impl MessageStream {
    /// The audit entry's request id.
    #[must_use]
    pub fn audit_request_id(&self) -> Option<uuid::Uuid> {
        self.audit_id
    }

    /// The provider's request id.
    #[must_use]
    pub fn provider_request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The answer assembled so far.
    #[must_use]
    pub fn message(&self) -> &MessagesResponse {
        &self.message
    }

    /// The next event; `None` after `message_stop`.
    ///
    /// # Errors
    /// The stream broke (transport error, cut off before `message_stop`), timed out, or
    /// carried an `error` event; the entry is written with what arrived.
    pub async fn next_event(&mut self) -> Option<Result<StreamEvent, ClientError>> {
        if self.finished {
            return None;
        }
        match self.body.next(&self.span, "message_stop").await {
            Ok(event) => Some(self.handle(event)),
            Err(kind) => Some(Err(self.break_off(kind))),
        }
    }

    /// Reads the stream to its end and returns the assembled answer.
    ///
    /// # Errors
    /// As [`next_event`](Self::next_event).
    pub async fn collect(mut self) -> Result<Audited<MessagesResponse>, ClientError> {
        while let Some(event) = self.next_event().await {
            event?;
        }
        Ok(Audited {
            response: self.message.clone(),
            audit_request_id: self.audit_id,
            provider_request_id: self.request_id.clone(),
        })
    }

    fn handle(&mut self, event: sse::Event) -> Result<StreamEvent, ClientError> {
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => {
                let name = self.key.scrub(&event.event, 64);
                let kind = ErrorKind::Decode(format!("a `{name}` event is not JSON: {e}"));
                return Err(self.break_off(kind));
            }
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event)
            .to_owned();
        match kind.as_str() {
            "message_start" => {
                if let Some(m) = data.get("message") {
                    let mut m = m.clone();
                    if let Some(usage) = m.get_mut("usage") {
                        self.bad_counts.extend(super::take_bad_counts(usage));
                    }
                    if let Ok(start) = serde_json::from_value::<MessagesResponse>(m.clone()) {
                        self.message = start;
                    } else {
                        let get = |k: &str| {
                            m.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        self.message.id = get("id");
                        self.message.model = get("model");
                        if let Some(u) = m.get("usage") {
                            self.message.usage.update(u);
                        }
                    }
                }
            }
            "content_block_start" => {
                if let Some(block) = data.get("content_block") {
                    let block: ContentBlock =
                        serde_json::from_value(block.clone()).unwrap_or_default();
                    self.message.content.push(block);
                }
            }
            "content_block_delta" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if let (Some(delta), Some(block)) =
                    (data.get("delta"), self.message.content.get_mut(index))
                {
                    if let Some(text) = delta.get("text").and_then(Value::as_str) {
                        block.text.get_or_insert_with(String::new).push_str(text);
                    }
                    if let Some(thinking) = delta.get("thinking").and_then(Value::as_str) {
                        block
                            .thinking
                            .get_or_insert_with(String::new)
                            .push_str(thinking);
                    }
                }
            }
            "message_delta" => {
                if let Some(delta) = data.get("delta") {
                    if let Some(reason) = delta.get("stop_reason").and_then(Value::as_str) {
                        self.message.stop_reason = Some(reason.to_owned());
                    }
                    if let Some(seq) = delta.get("stop_sequence").and_then(Value::as_str) {
                        self.message.stop_sequence = Some(seq.to_owned());
                    }
                }
                if let Some(u) = data.get("usage") {
                    let mut u = u.clone();
                    self.bad_counts.extend(super::take_bad_counts(&mut u));
                    self.message.usage.update(&u);
                }
            }
            "message_stop" => {
                self.finished = true;
                record_answer(&self.span, &self.message, &self.bad_counts);
                self.body.close();
                // The call is over: its entry is written now.
                self.span = tracing::Span::none();
            }
            "error" => {
                let error = data.get("error");
                let field = |k: &str| {
                    error
                        .and_then(|e| e.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let kind = ErrorKind::Stream {
                    error_type: field("type")
                        .map_or_else(|| "stream_error".to_owned(), |t| self.key.scrub(&t, 100)),
                    message: self.key.scrub(&field("message").unwrap_or_default(), 1024),
                };
                return Err(self.break_off(kind));
            }
            _ => {}
        }
        Ok(StreamEvent { event: kind, data })
    }

    /// Records what arrived and the error; the stream is over.
    fn break_off(&mut self, kind: ErrorKind) -> ClientError {
        self.finished = true;
        self.body.close();
        record_partial(&self.span, &self.message, &self.bad_counts);
        let error = fail(&self.span, kind, self.request_id.clone());
        self.span = tracing::Span::none();
        error
    }
}

fn record_partial(span: &tracing::Span, message: &MessagesResponse, bad: &[(String, String)]) {
    if !message.id.is_empty() {
        span.record_response_id(&message.id);
    }
    if !message.model.is_empty() {
        span.record_response_model(&message.model);
    }
    if let Some(tier) = &message.usage.service_tier {
        span.record_service_tier(tier);
    }
    if message.usage != AnthropicUsage::default() || !bad.is_empty() {
        super::record_usage_checked(span, usage_of(&message.usage, bad), bad, count_field);
    }
    let text = message.text();
    if !text.is_empty() {
        span.record_output(text.as_bytes());
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        if !self.finished {
            record_partial(&self.span, &self.message, &self.bad_counts);
            self.span
                .record_error("cancelled", &"the caller dropped the stream before its end");
        }
    }
}
