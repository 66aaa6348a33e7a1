//! The API instrumented code uses to tell the audit layer what happened in a call.
//!
//! Usage, models, ids and finish reasons are recorded as span fields, so other layers (`fmt`,
//! `tracing-opentelemetry`) see them too. Content (system prompt, input, output) and error
//! messages never become span fields: they go straight to the audit layer, which hashes them, so
//! no other layer can print or export them.

use std::fmt;

use tracing::field::Value;
use uuid::Uuid;

use crate::entry::Status;
use crate::fields;
use crate::layer::span_data::{ContentKind, LlmSpanData};
use crate::layer::WithLlmSpan;

/// Token usage of one call, in the GenAI conventions' terms.
///
/// `input_tokens` includes cached tokens and `output_tokens` includes reasoning tokens, as the
/// conventions define them. Anthropic reports cache tokens *beside* `input_tokens`: add them in
/// before recording. A `None` stays absent in the entry; it is never taken for 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache, for any duration.
    pub cache_creation_input_tokens: Option<u64>,
    /// The part of `cache_creation_input_tokens` written for one hour (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`), billed at the 1-hour price.
    pub cache_write_1h_input_tokens: Option<u64>,
    /// Reasoning ("thinking") output tokens.
    pub reasoning_output_tokens: Option<u64>,
}

/// Records what happened in an LLM call on its span.
///
/// Implemented for [`tracing::Span`]. Inside a function instrumented with `#[llm_call]`, the
/// call's span is [`tracing::Span::current()`]. Every method does nothing when the span is
/// disabled or is not an LLM span, and never panics.
pub trait LlmSpanExt {
    /// Records token usage (`gen_ai.usage.*`); fields that are `None` are left as they are.
    fn record_usage(&self, usage: &Usage);
    /// Records the model that answered (`gen_ai.response.model`).
    fn record_response_model(&self, model: &str);
    /// Records the provider's id of the response (`gen_ai.response.id`).
    fn record_response_id(&self, id: &str);
    /// Records the service tier that served the call, as the provider reported it (`default`,
    /// `flex`, `priority`, `batch`...; `llm_audit.response.service_tier`): prices differ by
    /// tier.
    fn record_service_tier(&self, tier: &str);
    /// Records why the model stopped (`gen_ai.response.finish_reasons`).
    fn record_finish_reasons(&self, reasons: &[&str]);
    /// Marks the arrival of the first streamed chunk; the layer measures the time to it from the
    /// span's creation. Only the first call counts.
    fn record_first_chunk(&self);
    /// Records an error: `error_type` is a low-cardinality class (`rate_limit_error`, `timeout`),
    /// `message` the details. The status becomes `error`; after several errors, the latest class
    /// wins and the messages are joined in order, bounded in length.
    fn record_error(&self, error_type: &str, message: &dyn fmt::Display);
    /// Sets the status explicitly, for example [`Status::Blocked`] when a policy refused the call.
    fn record_status(&self, status: Status);
    /// Gives the system prompt to the audit layer (hashed, never a span field).
    fn record_system_prompt(&self, content: &[u8]);
    /// Gives the input (the messages as sent) to the audit layer (hashed, never a span field).
    /// A second call appends.
    fn record_input(&self, content: &[u8]);
    /// Gives the output to the audit layer (hashed, never a span field). A second call appends,
    /// so a stream can be recorded chunk by chunk.
    fn record_output(&self, content: &[u8]);
    /// Counts `count` redactions of the entity type `entity` (`email`, `credit_card`, ...).
    fn record_sanitization(&self, entity: &str, count: u64);
    /// The audit request id of this call's entry, `None` when the span is not audited.
    fn audit_request_id(&self) -> Option<Uuid>;
}

impl LlmSpanExt for tracing::Span {
    fn record_usage(&self, usage: &Usage) {
        // One `record_all` rather than a `record` per count: one trip through every layer.
        let Some(metadata) = self.metadata() else {
            return;
        };
        let declared = metadata.fields();
        let Some(placeholder) = declared.iter().next() else {
            return;
        };
        let counts = [
            (fields::USAGE_INPUT_TOKENS, usage.input_tokens),
            (fields::USAGE_OUTPUT_TOKENS, usage.output_tokens),
            (
                fields::USAGE_CACHE_READ_INPUT_TOKENS,
                usage.cache_read_input_tokens,
            ),
            (
                fields::USAGE_CACHE_CREATION_INPUT_TOKENS,
                usage.cache_creation_input_tokens,
            ),
            (
                fields::USAGE_REASONING_OUTPUT_TOKENS,
                usage.reasoning_output_tokens,
            ),
            (
                fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS,
                usage.cache_write_1h_input_tokens,
            ),
        ];
        // A count the span does not declare is left out (paired with no value). Counts go out
        // as i64: other layers (tracing-opentelemetry) export u64 values as strings, and a
        // token count belongs in a number. One beyond i64 goes out as it is, never clipped to
        // a smaller number that would then be priced.
        enum Count {
            Small(i64),
            Large(u64),
        }
        let resolved = counts.map(|(name, count)| match declared.field(name) {
            Some(field) => (
                field,
                count.map(|c| i64::try_from(c).map_or(Count::Large(c), Count::Small)),
            ),
            None => (placeholder.clone(), None),
        });
        let values = resolved.each_ref().map(|(field, count)| {
            (
                field,
                count.as_ref().map(|c| match c {
                    Count::Small(n) => n as &dyn Value,
                    Count::Large(n) => n as &dyn Value,
                }),
            )
        });
        self.record_all(&declared.value_set(&values));
    }

    fn record_response_model(&self, model: &str) {
        self.record(fields::RESPONSE_MODEL, model);
    }

    fn record_response_id(&self, id: &str) {
        self.record(fields::RESPONSE_ID, id);
    }

    fn record_service_tier(&self, tier: &str) {
        self.record(fields::RESPONSE_SERVICE_TIER, tier);
    }

    fn record_finish_reasons(&self, reasons: &[&str]) {
        // A JSON array keeps a reason that contains a comma intact.
        if let Ok(json) = serde_json::to_string(reasons) {
            self.record(fields::RESPONSE_FINISH_REASONS, json.as_str());
        }
    }

    fn record_first_chunk(&self) {
        with_call(self, |call| {
            if call.first_chunk.is_none() {
                call.first_chunk = Some(call.started.elapsed());
            }
        });
    }

    fn record_error(&self, error_type: &str, message: &dyn fmt::Display) {
        self.record(fields::ERROR_TYPE, error_type);
        let message = message.to_string();
        with_call(self, |call| {
            // For spans that do not declare `error.type` the field above went nowhere.
            call.fields.error_type = Some(error_type.into());
            let max = call.max_error_message_len;
            call.push_error_message(&message, max);
        });
    }

    fn record_status(&self, status: Status) {
        self.record(fields::STATUS, status.as_str());
        with_call(self, |call| call.fields.status = Some(status));
    }

    fn record_system_prompt(&self, content: &[u8]) {
        with_call(self, |call| {
            call.content.append(ContentKind::SystemPrompt, content)
        });
    }

    fn record_input(&self, content: &[u8]) {
        with_call(self, |call| {
            call.content.append(ContentKind::Input, content)
        });
    }

    fn record_output(&self, content: &[u8]) {
        with_call(self, |call| {
            call.content.append(ContentKind::Output, content)
        });
    }

    fn record_sanitization(&self, entity: &str, count: u64) {
        with_call(self, |call| call.add_sanitization(entity, count));
    }

    fn audit_request_id(&self) -> Option<Uuid> {
        let mut id = None;
        with_call(self, |call| id = Some(call.request_id));
        id
    }
}

/// Runs `f` on the audit data of `span`, if the span is an LLM span seen by an [`AuditLayer`].
///
/// [`AuditLayer`]: crate::AuditLayer
fn with_call(span: &tracing::Span, f: impl FnOnce(&mut LlmSpanData)) {
    let mut f = Some(f);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(with) = dispatch.downcast_ref::<WithLlmSpan>() {
            with.with(dispatch, id, &mut |call| {
                if let Some(f) = f.take() {
                    f(call);
                }
            });
        }
    });
}
