//! [`OpenAiClient`]: Chat Completions (`POST /v1/chat/completions`), audited, for OpenAI and
//! the servers that speak its API (vLLM, Ollama, LiteLLM proxy, OpenRouter) through
//! [`with_base_url`](OpenAiClient::with_base_url).
//!
//! Usage mapping: OpenAI's `prompt_tokens` already include `prompt_tokens_details.cached_tokens`
//! and `completion_tokens` already include `completion_tokens_details.reasoning_tokens`, so they
//! map one to one onto the GenAI fields, with the cached and reasoning counts recorded as the
//! parts they are; nothing is added twice.
//!
//! The caller's user id is recorded in the audit entry only; it is not sent to the provider.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    call_span, content_bytes, fail, sse, transport, ApiKey, Audited, ClientError, Common,
    ErrorKind, SseBody,
};
use crate::record::{LlmSpanExt, Usage};

/// OpenAI's address (the client appends `/chat/completions`).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// One message of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// A string, content parts as JSON, or null (an assistant message with tool calls).
    #[serde(default)]
    pub content: Value,
    /// Everything else (`name`, `tool_calls`, `tool_call_id`, `refusal`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    fn text(role: &str, text: String) -> Self {
        Self {
            role: role.to_owned(),
            content: Value::String(text),
            extra: Map::new(),
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::text("system", text.into())
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::text("user", text.into())
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::text("assistant", text.into())
    }

    /// The content if it is text.
    #[must_use]
    pub fn content_text(&self) -> Option<&str> {
        self.content.as_str()
    }
}

/// A Chat Completions request. Fields this type does not name go in `extra`, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model, for example `gpt-4o`.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Most output tokens (reasoning models: `max_completion_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Tool definitions, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    /// Tool choice, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// `low`, `medium` or `high` for reasoning models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Anything else the API accepts.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request for `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    /// Appends a message.
    #[must_use]
    pub fn message(mut self, message: ChatMessage) -> Self {
        self.messages.push(message);
        self
    }
}

/// Details of the prompt tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens read from the cache (a part of `prompt_tokens`).
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the cache (a part of `prompt_tokens`; GPT-5.6 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

/// Details of the completion tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Reasoning tokens (a part of `completion_tokens`).
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// Token counts as OpenAI reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiUsage {
    /// All prompt tokens, cached ones included.
    pub prompt_tokens: u64,
    /// All completion tokens, reasoning ones included.
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// The cached part of the prompt.
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// The reasoning part of the completion.
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl OpenAiUsage {
    /// The GenAI usage.
    #[must_use]
    pub fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: Some(self.prompt_tokens),
            output_tokens: Some(self.completion_tokens),
            cache_read_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            cache_creation_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_write_tokens),
            cache_write_1h_input_tokens: None,
            reasoning_output_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        }
    }
}

/// One choice of an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Its index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`.
    pub finish_reason: Option<String>,
}

/// A Chat Completions answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The completion id (`chatcmpl-...`).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The choices.
    pub choices: Vec<Choice>,
    /// Token counts (compatible servers may omit them).
    #[serde(default)]
    pub usage: Option<OpenAiUsage>,
    /// The tier that served the call (`default`, `flex`, `priority`, `scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

impl ChatResponse {
    /// The text of the first choice.
    #[must_use]
    pub fn text(&self) -> &str {
        self.choices
            .first()
            .and_then(|c| c.message.content_text())
            .unwrap_or_default()
    }
}

/// A Chat Completions client whose every call is audited.
///
/// ```no_run
/// # async fn run() -> Result<(), tracing_llm_audit::clients::ClientError> {
/// use tracing_llm_audit::clients::openai::{ChatMessage, ChatRequest, OpenAiClient};
/// use tracing_llm_audit::clients::ApiKey;
///
/// // A local vLLM or Ollama server works the same, with its own base URL.
/// let key = ApiKey::from_env("OPENAI_API_KEY").expect("OPENAI_API_KEY must be set to an API key");
/// let client = OpenAiClient::new(key).with_user("alice");
/// let request = ChatRequest::new("gpt-4o-mini").message(ChatMessage::user("Hello"));
/// let answer = client.chat(&request).await?;
/// println!("{}", answer.response.text());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    common: Common,
    provider: String,
}

impl OpenAiClient {
    /// A client of `https://api.openai.com/v1` with `key`.
    #[must_use]
    pub fn new(key: ApiKey) -> Self {
        Self {
            common: Common::new(DEFAULT_BASE_URL, key),
            provider: "openai".to_owned(),
        }
    }

    /// Another server that speaks the API, up to its `/v1` (`http://localhost:8000/v1` for
    /// vLLM, `http://localhost:11434/v1` for Ollama).
    #[must_use]
    pub fn with_base_url(mut self, url: &str) -> Self {
        self.common.base_url = url.trim_end_matches('/').to_owned();
        self
    }

    /// The provider recorded in entries (`gen_ai.provider.name`); default `openai`. Set it for
    /// other servers (`vllm`, `ollama`, `openrouter`) so that pricing and reports tell them apart.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }

    super::common_settings!();

    /// Sends `request` and waits for the whole answer.
    ///
    /// # Errors
    /// [`ClientError`]: the API's error, a timeout, a broken connection, an answer not in the
    /// API's format, or a request the hook blocked. The entry records the same.
    pub async fn chat(&self, request: &ChatRequest) -> Result<Audited<ChatResponse>, ClientError> {
        self.chat_for(request, None).await
    }

    /// [`chat`](Self::chat) for `user` instead of the client's user.
    ///
    /// # Errors
    /// As [`chat`](Self::chat).
    pub async fn chat_for(
        &self,
        request: &ChatRequest,
        user: Option<&str>,
    ) -> Result<Audited<ChatResponse>, ClientError> {
        let span = call_span(
            &self.provider,
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
        request: &ChatRequest,
    ) -> Result<Audited<ChatResponse>, ClientError> {
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
        let answer: ChatResponse = serde_json::from_value(value).map_err(decode)?;
        record_answer(span, &answer, &bad);
        Ok(Audited {
            response: answer,
            audit_request_id: span.audit_request_id(),
            provider_request_id: request_id,
        })
    }

    /// Sends `request` with `stream: true` and `stream_options.include_usage` (so that the final
    /// chunk carries the usage); chunks arrive through the returned stream.
    ///
    /// # Errors
    /// As [`chat`](Self::chat), for what happens before the first chunk.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ClientError> {
        self.chat_stream_for(request, None).await
    }

    /// [`chat_stream`](Self::chat_stream) for `user` instead of the client's user.
    ///
    /// # Errors
    /// As [`chat`](Self::chat).
    pub async fn chat_stream_for(
        &self,
        request: &ChatRequest,
        user: Option<&str>,
    ) -> Result<ChatStream, ClientError> {
        let span = call_span(
            &self.provider,
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
        Ok(ChatStream {
            span,
            audit_id,
            key: self.common.key.clone(),
            body: SseBody::new(
                response,
                self.common.timeout,
                self.common.max_response_bytes,
            ),
            answer: ChatResponse::default(),
            bad_counts: Vec::new(),
            finished: false,
            request_id,
        })
    }

    fn prepare(
        &self,
        span: &tracing::Span,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::to_value(request)
            .map_err(|e| fail(span, ErrorKind::Invalid(e.to_string()), None))?;
        if stream {
            body["stream"] = Value::Bool(true);
            let options = body.as_object_mut().map(|o| {
                o.entry("stream_options")
                    .or_insert_with(|| Value::Object(Map::new()))
            });
            if let Some(Value::Object(options)) = options {
                options.insert("include_usage".to_owned(), Value::Bool(true));
            }
        }
        self.common.before_send(span, &mut body)?;
        // System and developer messages are the system prompt; the rest is the input.
        let (system, input): (Vec<&Value>, Vec<&Value>) = body
            .get("messages")
            .and_then(Value::as_array)
            .map(|m| {
                m.iter().partition(|m| {
                    matches!(
                        m.get("role").and_then(Value::as_str),
                        Some("system" | "developer")
                    )
                })
            })
            .unwrap_or_default();
        if !system.is_empty() {
            let text: Vec<u8> = system
                .iter()
                .filter_map(|m| m.get("content"))
                .map(content_bytes)
                .collect::<Vec<_>>()
                .join(&b'\n');
            span.record_system_prompt(&text);
        }
        span.record_input(&serde_json::to_vec(&input).unwrap_or_default());
        Ok(body)
    }

    async fn send(
        &self,
        span: &tracing::Span,
        body: &Value,
    ) -> Result<(reqwest::Response, Option<String>), ClientError> {
        let url = format!("{}/chat/completions", self.common.base_url);
        self.common
            .post(
                span,
                &url,
                (
                    "authorization",
                    self.common
                        .key
                        .bearer()
                        .map_err(|e| fail(span, e.kind().clone(), None))?,
                ),
                &[],
                body,
                true,
            )
            .await
    }
}

/// The span field each usage count of Chat Completions feeds.
fn count_field(name: &str) -> Option<&'static str> {
    use crate::fields;
    Some(match name {
        "prompt_tokens" => fields::USAGE_INPUT_TOKENS,
        "completion_tokens" => fields::USAGE_OUTPUT_TOKENS,
        "prompt_tokens_details.cached_tokens" => fields::USAGE_CACHE_READ_INPUT_TOKENS,
        "prompt_tokens_details.cache_write_tokens" => fields::USAGE_CACHE_CREATION_INPUT_TOKENS,
        "completion_tokens_details.reasoning_tokens" => fields::USAGE_REASONING_OUTPUT_TOKENS,
        _ => return None,
    })
}

fn record_answer(span: &tracing::Span, answer: &ChatResponse, bad: &[(String, String)]) {
    if !answer.id.is_empty() {
        span.record_response_id(&answer.id);
    }
    if !answer.model.is_empty() {
        span.record_response_model(&answer.model);
    }
    if let Some(tier) = &answer.service_tier {
        span.record_service_tier(tier);
    }
    let reasons: Vec<&str> = answer
        .choices
        .iter()
        .filter_map(|c| c.finish_reason.as_deref())
        .collect();
    if !reasons.is_empty() {
        span.record_finish_reasons(&reasons);
    }
    if answer.usage.is_some() || !bad.is_empty() {
        let usage = answer.usage.clone().unwrap_or_default().to_usage();
        super::record_usage_checked(span, usage, bad, count_field);
    }
    let output: Vec<u8> = answer
        .choices
        .iter()
        .map(|c| content_bytes(&c.message.content))
        .collect::<Vec<_>>()
        .join(&b'\n');
    if !output.is_empty() {
        span.record_output(&output);
    }
}

/// The chunks of a streamed answer. The call's entry is written when the stream ends: at
/// `[DONE]` with everything, at a break or an error chunk with what arrived and
/// `status = error`, and when dropped early with what arrived and `error.type = cancelled`.
#[derive(Debug)]
pub struct ChatStream {
    /// The call's span while the stream runs; `Span::none()` once it has ended, so that the
    /// entry is written at the end of the stream, not when this value is dropped.
    span: tracing::Span,
    audit_id: Option<uuid::Uuid>,
    key: ApiKey,
    body: SseBody,
    answer: ChatResponse,
    /// Usage counts the final chunk gave that are no count.
    bad_counts: Vec<(String, String)>,
    finished: bool,
    request_id: Option<String>,
}

impl ChatStream {
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
    pub fn answer(&self) -> &ChatResponse {
        &self.answer
    }

    /// The next chunk (its JSON); `None` after `[DONE]`.
    ///
    /// # Errors
    /// The stream broke, timed out, ended without `[DONE]`, or carried an error; the entry is
    /// written with what arrived.
    pub async fn next_chunk(&mut self) -> Option<Result<Value, ClientError>> {
        loop {
            if self.finished {
                return None;
            }
            match self.body.next(&self.span, "[DONE]").await {
                Ok(event) => match self.handle(event) {
                    Ok(Some(chunk)) => return Some(Ok(chunk)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
                Err(kind) => return Some(Err(self.break_off(kind))),
            }
        }
    }

    /// Reads the stream to its end and returns the assembled answer.
    ///
    /// # Errors
    /// As [`next_chunk`](Self::next_chunk).
    pub async fn collect(mut self) -> Result<Audited<ChatResponse>, ClientError> {
        while let Some(chunk) = self.next_chunk().await {
            chunk?;
        }
        Ok(Audited {
            response: self.answer.clone(),
            audit_request_id: self.audit_id,
            provider_request_id: self.request_id.clone(),
        })
    }

    fn handle(&mut self, event: sse::Event) -> Result<Option<Value>, ClientError> {
        if event.data.trim() == "[DONE]" {
            self.finished = true;
            self.body.close();
            record_answer(&self.span, &self.answer, &self.bad_counts);
            // The call is over: its entry is written now.
            self.span = tracing::Span::none();
            return Ok(None);
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
            let kind = ErrorKind::Decode(format!("a chunk is not JSON: {e}"));
            self.break_off(kind)
        })?;
        if let Some(error) = chunk.get("error") {
            let field = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_owned);
            let kind = ErrorKind::Stream {
                error_type: field("type")
                    .or_else(|| field("code"))
                    .map_or_else(|| "stream_error".to_owned(), |t| self.key.scrub(&t, 100)),
                message: self.key.scrub(&field("message").unwrap_or_default(), 1024),
            };
            return Err(self.break_off(kind));
        }
        if let Some(id) = chunk.get("id").and_then(Value::as_str) {
            self.answer.id = id.to_owned();
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            self.answer.model = model.to_owned();
        }
        if let Some(tier) = chunk.get("service_tier").and_then(Value::as_str) {
            self.answer.service_tier = Some(tier.to_owned());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as u32;
            let slot = match self.answer.choices.iter().position(|c| c.index == index) {
                Some(i) => i,
                None => {
                    self.answer.choices.push(Choice {
                        index,
                        message: ChatMessage {
                            role: "assistant".to_owned(),
                            content: Value::Null,
                            extra: Map::new(),
                        },
                        finish_reason: None,
                    });
                    self.answer.choices.len() - 1
                }
            };
            let target = &mut self.answer.choices[slot];
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str) {
                match &mut target.message.content {
                    Value::String(s) => s.push_str(text),
                    other => *other = Value::String(text.to_owned()),
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                target.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            let mut usage = usage.clone();
            self.bad_counts = super::take_bad_counts(&mut usage);
            if let Ok(usage) = serde_json::from_value::<OpenAiUsage>(usage) {
                self.answer.usage = Some(usage);
            }
        }
        Ok(Some(chunk))
    }

    fn break_off(&mut self, kind: ErrorKind) -> ClientError {
        self.finished = true;
        self.body.close();
        record_answer(&self.span, &self.answer, &self.bad_counts);
        let error = fail(&self.span, kind, self.request_id.clone());
        self.span = tracing::Span::none();
        error
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        if !self.finished {
            record_answer(&self.span, &self.answer, &self.bad_counts);
            self.span
                .record_error("cancelled", &"the caller dropped the stream before its end");
        }
    }
}
