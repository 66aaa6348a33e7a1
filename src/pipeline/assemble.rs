//! Turns what a span recorded into an [`AuditEntry`]: hashes, cost, status. Runs on the worker,
//! so that the application's threads never hash content or look up prices, except when the
//! entry's values must go onto an OpenTelemetry span before it is exported (feature `otel`).

use std::collections::HashSet;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::content::{ContentField, ContentPolicies, ContentPolicy, Keyring, StoredContent};
use crate::cost::{CostError, PriceTable};
use crate::entry::{AuditEntry, Status, SCHEMA_VERSION};
use crate::hash::{to_hex, HashKey};
use crate::layer::span_data::{LlmSpanData, MetaValue};

/// The longest id or name an entry keeps (user, session, provider, model, response id, error
/// type, action, a finish reason), in bytes; longer values are cut and their keyed hash kept.
pub(crate) const MAX_NAME_LEN: usize = 1024;

/// The longest text value of `metadata` an entry keeps, in bytes.
pub(crate) const MAX_METADATA_VALUE_LEN: usize = 8 * 1024;

/// The most finish reasons an entry keeps (one per choice; providers send a handful).
const MAX_FINISH_REASONS: usize = 16;

/// The longest finish reason an entry keeps (`stop`, `end_turn`, `tool_use`, ...).
const MAX_FINISH_REASON_LEN: usize = 128;

#[derive(Debug)]
pub(crate) struct Assembler {
    hash_key: HashKey,
    prices: PriceTable,
    policies: ContentPolicies,
    keyring: Option<Keyring>,
    /// Models already warned about, so that an unknown model warns once, not once per call.
    warned_models: Mutex<HashSet<String>>,
    /// `prices.label()`, written into every priced entry.
    price_table: String,
}

impl Assembler {
    pub(crate) fn new(
        hash_key: HashKey,
        prices: PriceTable,
        policies: ContentPolicies,
        keyring: Option<Keyring>,
    ) -> Self {
        Self {
            hash_key,
            price_table: prices.label(),
            prices,
            policies,
            keyring,
            warned_models: Mutex::new(HashSet::new()),
        }
    }

    /// Builds the entry for a finished call. Takes what it needs out of `data`, which the
    /// worker then recycles.
    pub(crate) fn assemble(&self, data: &mut LlmSpanData) -> AuditEntry {
        let span_id = data.span_id();
        let mut fields = std::mem::take(&mut data.fields);
        // A failure said the OpenTelemetry way (genai's spans, for one) is a failure too.
        let failed = fields.otel_error || fields.error_type.is_some();
        let error_message = data
            .error_message
            .take()
            .or_else(|| fields.status_description.take().filter(|_| failed));
        if fields.otel_error && fields.error_type.is_none() {
            fields.error_type = Some("error".into());
        }
        let content = &data.content;

        let status =
            fields
                .status
                .unwrap_or(if fields.error_type.is_some() || error_message.is_some() {
                    Status::Error
                } else {
                    Status::Success
                });
        let slot = |field: ContentField| match field {
            ContentField::SystemPrompt => content.system_prompt.as_deref(),
            ContentField::Input => content.input.as_deref(),
            ContentField::Output => content.output.as_deref(),
        };
        let mut hashes: [Option<String>; 3] = Default::default();
        let mut stored: [Option<StoredContent>; 3] = Default::default();
        let mut content_errors = Vec::new();
        for (i, (field, policy)) in self.policies.by_field().into_iter().enumerate() {
            let Some(bytes) = slot(field) else { continue };
            if policy != ContentPolicy::Drop {
                hashes[i] = Some(self.hash_key.hash(bytes));
            }
            stored[i] = match (policy, &self.keyring) {
                (ContentPolicy::Encrypted, Some(keyring)) => {
                    match keyring.encrypt(&data.request_id, field, bytes) {
                        Ok(sealed) => Some(sealed),
                        Err(e) => {
                            content_errors.push(format!("{}: {e}", field.name()));
                            None
                        }
                    }
                }
                (ContentPolicy::PlaintextUnprotected, _) => Some(StoredContent::plaintext(bytes)),
                _ => None,
            };
        }
        let [system_prompt_content, input_content, output_content] = stored;
        let [system_prompt_hash, input_hash, output_hash] = hashes;
        let any_hash =
            system_prompt_hash.is_some() || input_hash.is_some() || output_hash.is_some();
        let sanitization_by_type: std::collections::BTreeMap<String, u64> = data
            .sanitization
            .iter()
            .map(|(entity, count)| (entity.to_string(), *count))
            .collect();
        let sanitization_count = fields
            .sanitization_count
            .unwrap_or_else(|| sanitization_by_type.values().sum());

        let mut entry = AuditEntry {
            schema_version: SCHEMA_VERSION,
            request_id: data.request_id,
            timestamp: crate::entry::to_micros(OffsetDateTime::from(data.started_wall)),
            user_id: fields.user_id.map(String::from),
            session_id: fields.session_id.map(String::from),
            provider: fields.provider.map(String::from),
            model: fields.request_model.map(String::from),
            response_model: fields.response_model.map(String::from),
            response_id: fields.response_id.map(String::from),
            action: fields
                .operation
                .map_or_else(|| "unknown".to_owned(), String::from),
            finish_reasons: fields
                .finish_reasons
                .map(|r| r.into_iter().map(String::from).collect()),
            streaming: fields.stream,
            system_prompt_hash,
            input_hash,
            output_hash,
            hash_key_id: any_hash.then(|| self.hash_key.id().to_owned()),
            system_prompt_content,
            input_content,
            output_content,
            input_tokens: fields.input_tokens,
            output_tokens: fields.output_tokens,
            thinking_tokens: fields.reasoning_tokens,
            cache_read_tokens: fields.cache_read_tokens,
            cache_write_tokens: fields.cache_write_tokens,
            cache_write_1h_tokens: fields.cache_write_1h_tokens,
            service_tier: fields.service_tier.map(String::from),
            latency_ms: duration_ms(data.latency),
            time_to_first_chunk_ms: data
                .first_chunk
                .or(fields.time_to_first_chunk)
                .map(duration_ms),
            cost_usd: None,
            cost_note: None,
            price_table: None,
            status,
            error_type: fields.error_type.map(String::from),
            error_message,
            sanitization_count,
            sanitization: sanitization_by_type,
            trace_id: Some(to_hex(&data.trace_id)),
            span_id: Some(to_hex(&span_id)),
            parent_span_id: data.parent_span_id.map(|id| to_hex(&id)),
            metadata: metadata_map(fields.metadata),
            erased: None,
        };
        self.bound(&mut entry, fields.problems);
        if !content_errors.is_empty() {
            // Not silently lost: the entry says what it could not keep.
            entry.metadata.get_or_insert_with(Default::default).insert(
                "llm_audit.content_error".to_owned(),
                content_errors.join("; ").into(),
            );
        }
        if entry.billed_model().is_some() {
            entry.price_table = Some(self.price_table.clone());
        }
        match self.cost(&entry) {
            Ok(cost) => entry.cost_usd = Some(cost),
            Err(reason) => entry.cost_note = Some(reason.to_string()),
        }
        entry
    }

    fn cost(&self, entry: &AuditEntry) -> Result<rust_decimal::Decimal, CostError> {
        let result = self.prices.cost_of_entry(entry);
        if let (Err(CostError::UnknownModel(_)), Some(model)) = (&result, entry.billed_model()) {
            let first = self
                .warned_models
                .lock()
                .is_ok_and(|mut warned| warned.insert(model.to_owned()));
            if first {
                tracing::warn!(
                    model,
                    "no price for this model in the price table: its audit entries get \
                     cost_usd = null; add it with PriceTable::with_price or a price file"
                );
            }
        }
        result
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Assembler {
    /// Bounds what the application recorded, so that no value can make an entry unwieldy: text
    /// longer than its bound is cut (ending in `…`) and listed in `llm_audit.truncated` with
    /// its original length and keyed hash, so a suspected value can still be checked; other
    /// problems (control characters in ids, values left out) go to `llm_audit.problems`.
    fn bound(&self, entry: &mut AuditEntry, mut problems: Vec<String>) {
        use crate::layer::span_data::truncate_with_ellipsis;
        let mut truncated = serde_json::Map::new();
        let mut cut = |name: String, text: &mut String, max: usize| {
            if text.len() > max {
                truncated.insert(
                    name,
                    serde_json::json!({
                        "bytes": text.len(),
                        "hash": self.hash_key.hash(text.as_bytes()),
                    }),
                );
                truncate_with_ellipsis(text, max);
            }
        };
        for (name, slot) in [
            ("user_id", &mut entry.user_id),
            ("session_id", &mut entry.session_id),
            ("provider", &mut entry.provider),
            ("model", &mut entry.model),
            ("response_model", &mut entry.response_model),
            ("response_id", &mut entry.response_id),
            ("error_type", &mut entry.error_type),
            ("service_tier", &mut entry.service_tier),
        ] {
            if let Some(text) = slot {
                if text.chars().any(char::is_control) {
                    problems.push(format!("{name} contains control characters"));
                }
                cut(name.to_owned(), text, MAX_NAME_LEN);
            }
        }
        cut("action".to_owned(), &mut entry.action, MAX_NAME_LEN);
        if let Some(reasons) = &mut entry.finish_reasons {
            if reasons.len() > MAX_FINISH_REASONS {
                problems.push(format!(
                    "{} finish reasons; the first {MAX_FINISH_REASONS} kept",
                    reasons.len()
                ));
                reasons.truncate(MAX_FINISH_REASONS);
            }
            for (i, reason) in reasons.iter_mut().enumerate() {
                cut(
                    format!("finish_reasons[{i}]"),
                    reason,
                    MAX_FINISH_REASON_LEN,
                );
            }
        }
        if entry.sanitization.keys().any(|k| k.len() > MAX_NAME_LEN) {
            let mut bounded = std::collections::BTreeMap::new();
            for (mut k, n) in std::mem::take(&mut entry.sanitization) {
                cut(format!("sanitization[{k:.32}]"), &mut k, MAX_NAME_LEN);
                // Two long names may be cut to the same: their counts add up, none is lost.
                let total: &mut u64 = bounded.entry(k).or_default();
                *total = total.saturating_add(n);
            }
            entry.sanitization = bounded;
        }
        if let Some(metadata) = &mut entry.metadata {
            for (key, value) in metadata.iter_mut() {
                if let serde_json::Value::String(text) = value {
                    cut(format!("metadata.{key}"), text, MAX_METADATA_VALUE_LEN);
                }
            }
        }
        if truncated.is_empty() && problems.is_empty() {
            return;
        }
        let metadata = entry.metadata.get_or_insert_with(Default::default);
        if !truncated.is_empty() {
            metadata.insert("llm_audit.truncated".to_owned(), truncated.into());
        }
        if !problems.is_empty() {
            metadata.insert("llm_audit.problems".to_owned(), problems.into());
        }
    }
}

fn metadata_map(
    fields: Vec<(&'static str, MetaValue)>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    if fields.is_empty() {
        return None;
    }
    Some(
        fields
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    MetaValue::Str(s) => serde_json::Value::String(s),
                    MetaValue::I64(n) => n.into(),
                    MetaValue::U64(n) => n.into(),
                    MetaValue::F64(n) => serde_json::Number::from_f64(n)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    MetaValue::Bool(b) => b.into(),
                };
                (name.to_owned(), value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn call(model: &str, input: u64, output: u64) -> Box<LlmSpanData> {
        let mut data = Box::new(LlmSpanData::new());
        data.fields.operation = Some("chat".into());
        data.fields.request_model = Some(model.into());
        data.fields.input_tokens = Some(input);
        data.fields.output_tokens = Some(output);
        data
    }

    fn assembler() -> Assembler {
        Assembler::new(
            HashKey::new("k", [0u8; 32]).unwrap(),
            PriceTable::builtin(),
            crate::content::ContentPolicies::default(),
            None,
        )
    }

    #[test]
    fn cost_keeps_six_places_and_no_trailing_zeros_beyond() {
        let assembler = assembler();
        // claude-haiku-4-5: 1,000 × $1/M + 200 × $5/M = $0.002
        let entry = assembler.assemble(&mut call("claude-haiku-4-5", 1_000, 200));
        assert_eq!(entry.cost_usd.unwrap().to_string(), "0.002000");
        // claude-sonnet-4-5: 1 × $3/M + 1 × $15/M = $0.000018
        let entry = assembler.assemble(&mut call("claude-sonnet-4-5", 1, 1));
        assert_eq!(entry.cost_usd.unwrap().to_string(), "0.000018");
        // gpt-4o-mini: 1 × $0.15/M = $0.00000015, more places than six are kept
        let entry = assembler.assemble(&mut call("gpt-4o-mini", 1, 0));
        assert_eq!(entry.cost_usd.unwrap().to_string(), "0.00000015");
    }

    #[test]
    fn an_unknown_model_warns_once_and_gets_no_cost() {
        struct CountWarnings(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                if *event.metadata().level() == tracing::Level::WARN {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        use tracing_subscriber::layer::SubscriberExt;
        let warnings = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
        let assembler = assembler();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                let entry = assembler.assemble(&mut call("mystery-model", 10, 10));
                assert_eq!(entry.cost_usd, None);
                assert!(entry.cost_note.unwrap().contains("mystery-model"));
            }
            assembler.assemble(&mut call("other-mystery", 10, 10));
        });
        assert_eq!(
            warnings.load(Ordering::SeqCst),
            2,
            "one warning per unknown model"
        );
    }

    #[test]
    fn status_follows_errors_unless_set() {
        let assembler = assembler();
        let mut data = call("gpt-4o", 1, 1);
        data.fields.error_type = Some("timeout".into());
        assert_eq!(assembler.assemble(&mut data).status, Status::Error);
        let mut data = call("gpt-4o", 1, 1);
        data.fields.error_type = Some("policy".into());
        data.fields.status = Some(Status::Blocked);
        assert_eq!(assembler.assemble(&mut data).status, Status::Blocked);
        assert_eq!(
            assembler.assemble(&mut call("gpt-4o", 1, 1)).status,
            Status::Success
        );
    }
}
