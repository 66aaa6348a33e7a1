//! The audit entry: one record per LLM call, the unit every sink stores.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::content::StoredContent;

/// Version of the [`AuditEntry`] layout. Bumped whenever a field changes meaning or is removed;
/// readers use it to tell old lines from new ones.
pub const SCHEMA_VERSION: u32 = 1;

/// The `action` of the event the pipeline writes when it had to drop entries.
pub const ACTION_ENTRIES_DROPPED: &str = "llm_audit.entries_dropped";

/// `time` cut to whole microseconds: the precision of PostgreSQL's `timestamptz` and of most
/// stores, so that an entry reads back from any sink equal to what was written.
pub(crate) fn to_micros(time: OffsetDateTime) -> OffsetDateTime {
    let nanos = time.nanosecond();
    time.replace_nanosecond(nanos - nanos % 1_000)
        .unwrap_or(time)
}

/// One audited LLM call.
///
/// Field names follow the reference design's table where it has one, and DESIGN.md's mapping from
/// the OpenTelemetry GenAI conventions otherwise. A value the instrumented code never recorded is
/// `None` (JSON `null`), never a made-up zero: usage that was not reported is not usage that was
/// free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Layout version, [`SCHEMA_VERSION`] for entries written by this crate.
    pub schema_version: u32,
    /// Unique id of this call, a UUID v7 (time-ordered, so database indexes stay local).
    pub request_id: Uuid,
    /// When the call started (span creation), RFC 3339 in UTC, to the microsecond.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Who initiated the call (`user.id` or `enduser.id`).
    pub user_id: Option<String>,
    /// Conversation or session (`session.id` or `gen_ai.conversation.id`).
    pub session_id: Option<String>,
    /// The provider (`gen_ai.provider.name`, or the older `gen_ai.system`).
    pub provider: Option<String>,
    /// The model that was asked for (`gen_ai.request.model`).
    pub model: Option<String>,
    /// The model that answered (`gen_ai.response.model`); it wins for pricing.
    pub response_model: Option<String>,
    /// The provider's id of the response (`gen_ai.response.id`).
    pub response_id: Option<String>,
    /// The operation (`gen_ai.operation.name`): `chat`, `text_completion`, `embeddings`, ...
    pub action: String,
    /// Why the model stopped (`gen_ai.response.finish_reasons`).
    pub finish_reasons: Option<Vec<String>>,
    /// Whether the response was streamed (`gen_ai.request.stream`).
    pub streaming: Option<bool>,
    /// Keyed hash of the system prompt, `hmac-sha256:<64 hex>`.
    pub system_prompt_hash: Option<String>,
    /// Keyed hash of the input, `hmac-sha256:<64 hex>`.
    pub input_hash: Option<String>,
    /// Keyed hash of the output, `hmac-sha256:<64 hex>`.
    pub output_hash: Option<String>,
    /// Id of the key that made the hashes, so a verifier knows which key to use.
    pub hash_key_id: Option<String>,
    /// The system prompt itself, encrypted or (for development) as it is, when its
    /// [`ContentPolicy`](crate::ContentPolicy) keeps it; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_content: Option<StoredContent>,
    /// The input itself, as [`system_prompt_content`](Self::system_prompt_content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_content: Option<StoredContent>,
    /// The output itself, as [`system_prompt_content`](Self::system_prompt_content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_content: Option<StoredContent>,
    /// Input tokens, cached ones included (`gen_ai.usage.input_tokens`).
    pub input_tokens: Option<u64>,
    /// Output tokens, reasoning ones included (`gen_ai.usage.output_tokens`).
    pub output_tokens: Option<u64>,
    /// Reasoning ("thinking") tokens, a part of `output_tokens`, never added to it again.
    pub thinking_tokens: Option<u64>,
    /// Input tokens read from the provider's prompt cache, a part of `input_tokens`.
    pub cache_read_tokens: Option<u64>,
    /// Input tokens written to the provider's prompt cache, a part of `input_tokens`.
    pub cache_write_tokens: Option<u64>,
    /// The part of `cache_write_tokens` written for one hour (Anthropic's
    /// `ephemeral_1h_input_tokens`), billed at the 1-hour price; the rest were written for the
    /// default 5 minutes. Absent when the provider did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_tokens: Option<u64>,
    /// The service tier that served the call, as the provider reported it (`batch`, `flex`,
    /// `priority`, `default`...), from `openai.response.service_tier` and its kin. Prices
    /// differ by tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// From span creation to span close, on a monotonic clock.
    pub latency_ms: u64,
    /// From span creation to the first streamed chunk.
    pub time_to_first_chunk_ms: Option<u64>,
    /// Cost in USD, exact decimal, at least 6 decimal places; `None` when it cannot be known.
    pub cost_usd: Option<Decimal>,
    /// Why `cost_usd` is `None` (unknown model, usage not recorded, inconsistent usage, a price
    /// rule the table does not apply).
    pub cost_note: Option<String>,
    /// The price table the cost was computed with: its source, its version or date and a short
    /// hash of its contents (`builtin 2026-11-20 sha256:3f2a91c04b1e`), so that a figure can be
    /// traced to the prices behind it ([`PriceTable::label`](crate::cost::PriceTable::label)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_table: Option<String>,
    /// `success`, `error` or `blocked`.
    pub status: Status,
    /// Low-cardinality error class (`error.type`), for example `rate_limit_error`.
    pub error_type: Option<String>,
    /// Error details, bounded in length.
    pub error_message: Option<String>,
    /// How many values were redacted before sending, over all entity types.
    pub sanitization_count: u64,
    /// Redactions per entity type (`email`, `credit_card`, ...): counts only, never values.
    pub sanitization: BTreeMap<String, u64>,
    /// W3C trace id (32 hex digits) of the call's trace.
    pub trace_id: Option<String>,
    /// W3C span id (16 hex digits) of the call's span.
    pub span_id: Option<String>,
    /// Span id of the enclosing LLM span (an agent span around its calls, for example).
    pub parent_span_id: Option<String>,
    /// Other fields the span carried, by their span field names.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// What a retention or erasure step removed or replaced (a user id by its pseudonym): the
    /// digests the tamper-evidence chain covers those members by, signed by whoever erased
    /// them (see [`chain::ERASED`](crate::chain::ERASED)). Absent on entries nothing was
    /// erased from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AuditEntry {
    /// An entry with a fresh request id and the current time, and nothing else recorded.
    ///
    /// Sinks and tests use it to build entries by hand:
    /// ```
    /// use tracing_llm_audit::{AuditEntry, Status};
    /// let mut entry = AuditEntry::new("chat");
    /// entry.model = Some("gpt-4o".into());
    /// assert_eq!(entry.status, Status::Success);
    /// assert!(entry.input_tokens.is_none());
    /// ```
    #[must_use]
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            request_id: Uuid::now_v7(),
            timestamp: to_micros(OffsetDateTime::now_utc()),
            user_id: None,
            session_id: None,
            provider: None,
            model: None,
            response_model: None,
            response_id: None,
            action: action.into(),
            finish_reasons: None,
            streaming: None,
            system_prompt_hash: None,
            input_hash: None,
            output_hash: None,
            hash_key_id: None,
            system_prompt_content: None,
            input_content: None,
            output_content: None,
            input_tokens: None,
            output_tokens: None,
            thinking_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            service_tier: None,
            latency_ms: 0,
            time_to_first_chunk_ms: None,
            cost_usd: None,
            cost_note: None,
            price_table: None,
            status: Status::Success,
            error_type: None,
            error_message: None,
            sanitization_count: 0,
            sanitization: BTreeMap::new(),
            trace_id: None,
            span_id: None,
            parent_span_id: None,
            metadata: None,
            erased: None,
        }
    }

    /// The model the call is billed for: the response model when the provider reported one.
    #[must_use]
    pub fn billed_model(&self) -> Option<&str> {
        self.response_model.as_deref().or(self.model.as_deref())
    }
}

/// Outcome of an audited call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The call completed.
    Success,
    /// The call failed: an API error, a transport error, or an error event inside the span.
    Error,
    /// The call was refused before it was sent (by a sanitizer or policy hook).
    Blocked,
}

impl Status {
    /// The status as written in entries: `success`, `error` or `blocked`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Blocked => "blocked",
        }
    }

    /// Parses `success`, `error` or `blocked`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "error" => Some(Self::Error),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<8}` aligns statuses in tables.
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_usage_serializes_as_null_and_round_trips() {
        let entry = AuditEntry::new("chat");
        let json = serde_json::to_value(&entry).unwrap();
        assert!(json["input_tokens"].is_null());
        assert!(json["cost_usd"].is_null());
        assert_eq!(json["status"], "success");
        assert_eq!(json["schema_version"], SCHEMA_VERSION);
        let back: AuditEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn cost_is_an_exact_decimal_string() {
        let mut entry = AuditEntry::new("chat");
        entry.cost_usd = Some("0.000123456789".parse().unwrap());
        let line = serde_json::to_string(&entry).unwrap();
        assert!(line.contains(r#""cost_usd":"0.000123456789""#), "{line}");
        let back: AuditEntry = serde_json::from_str(&line).unwrap();
        assert_eq!(back.cost_usd, entry.cost_usd);
    }

    #[test]
    fn request_ids_are_uuid_v7() {
        let a = AuditEntry::new("chat");
        let b = AuditEntry::new("chat");
        assert_eq!(a.request_id.get_version_num(), 7);
        assert!(a.request_id < b.request_id, "v7 ids are time ordered");
    }

    #[test]
    fn timestamp_is_rfc3339_utc() {
        let entry = AuditEntry::new("chat");
        let json = serde_json::to_value(&entry).unwrap();
        let ts = json["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z'), "{ts}");
        OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    }
}
