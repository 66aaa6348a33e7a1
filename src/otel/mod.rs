//! OpenTelemetry integration (feature `otel`): the audit values on the spans that
//! `tracing-opentelemetry` exports, entries that carry the OpenTelemetry trace and span ids, and
//! the GenAI metrics.
//!
//! # Layer order
//!
//! Add the audit layer **before** the OpenTelemetry layer:
//!
//! ```text
//! tracing_subscriber::registry()
//!     .with(audit_layer)                                   // first
//!     .with(tracing_opentelemetry::layer().with_tracer(t)) // after it
//! ```
//!
//! Layers added earlier see a span close earlier. The audit layer then finds the OpenTelemetry
//! span still open: it copies its trace and span ids into the entry (so a log line in Grafana
//! jumps to its trace) and puts on it what only the audit layer knows (cost, hashes, status,
//! sanitization count, request id). In the other order the OpenTelemetry span is already
//! exported when the audit layer sees the close; the layer then keeps its own ids and warns once.

use opentelemetry::trace::{SpanRef, Status as SpanStatus, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use rust_decimal::prelude::ToPrimitive;
use tracing::span::Id;

use crate::entry::{AuditEntry, Status};
use crate::names::{self, openinference};

mod metrics;
pub use metrics::OtelMetricsSink;

/// How the audit layer treats the spans of `tracing-opentelemetry`; set with
/// [`AuditLayerBuilder::with_otel_spans`](crate::AuditLayerBuilder::with_otel_spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtelSpans {
    /// Take trace and span ids from the OpenTelemetry span and put the audit values on it.
    /// Default: on.
    pub enabled: bool,
    /// Also set the OpenInference names (`llm.model_name`, `llm.token_count.*`,
    /// `llm.cost.total`, `openinference.span.kind`, ...), for LLM viewers such as Arize Phoenix.
    /// Default: off.
    pub openinference: bool,
}

impl Default for OtelSpans {
    fn default() -> Self {
        Self {
            enabled: true,
            openinference: false,
        }
    }
}

impl OtelSpans {
    /// Ids and audit values on, OpenInference names off.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves OpenTelemetry spans alone: entries keep ids of their own.
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            openinference: false,
        }
    }

    /// Sets the OpenInference names as well.
    #[must_use]
    pub fn with_openinference(mut self, on: bool) -> Self {
        self.openinference = on;
        self
    }
}

/// The OpenTelemetry context of the span `id` in `dispatch` (the subscriber the audit layer is
/// part of), when `tracing-opentelemetry` tracks it and its span is valid. Must not be called
/// while holding the span's extensions.
pub(crate) fn span_context(dispatch: &tracing::Dispatch, id: &Id) -> Option<Context> {
    tracing_opentelemetry::get_otel_context(id, dispatch)
        .filter(|cx| cx.span().span_context().is_valid())
}

/// Trace id and span id of an OpenTelemetry context.
pub(crate) fn ids(cx: &Context) -> ([u8; 16], [u8; 8]) {
    let span = cx.span();
    let context = span.span_context();
    (context.trace_id().to_bytes(), context.span_id().to_bytes())
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The name `llm_span!` gives its spans when none is given.
pub(crate) const DEFAULT_SPAN_NAME: &str = "gen_ai.call";

/// Puts the values only the audit layer knows on the OpenTelemetry span, and its status. A span
/// with the macro's default name is renamed `{operation} {model}`, as the GenAI conventions name
/// spans (tracing fixes names at compile time; OpenTelemetry can rename).
pub(crate) fn annotate(
    span: &SpanRef<'_>,
    entry: &AuditEntry,
    openinference: bool,
    default_name: bool,
) {
    if default_name {
        let name = match &entry.model {
            Some(model) => format!("{} {model}", entry.action),
            None => entry.action.clone(),
        };
        span.update_name(name);
    }
    let mut attributes = Vec::with_capacity(16);
    attributes.push(KeyValue::new(
        names::REQUEST_ID,
        entry.request_id.to_string(),
    ));
    attributes.push(KeyValue::new(names::STATUS, entry.status.as_str()));
    if let Some(cost) = entry.cost_usd {
        // A string keeps the exact decimal; OpenInference's double is set below when asked.
        attributes.push(KeyValue::new(names::USAGE_COST, cost.to_string()));
    }
    if let Some(note) = &entry.cost_note {
        attributes.push(KeyValue::new(names::COST_NOTE, note.clone()));
    }
    for (name, hash) in [
        (names::SYSTEM_PROMPT_HASH, &entry.system_prompt_hash),
        (names::INPUT_HASH, &entry.input_hash),
        (names::OUTPUT_HASH, &entry.output_hash),
        (names::HASH_KEY_ID, &entry.hash_key_id),
    ] {
        if let Some(hash) = hash {
            attributes.push(KeyValue::new(name, hash.clone()));
        }
    }
    attributes.push(KeyValue::new(
        names::SANITIZATION_COUNT,
        int(entry.sanitization_count),
    ));
    for (entity, count) in &entry.sanitization {
        attributes.push(KeyValue::new(
            format!("{}{entity}", names::SANITIZATION_PREFIX),
            int(*count),
        ));
    }
    if openinference {
        push_openinference(&mut attributes, entry);
    }
    span.set_attributes(attributes);
    match entry.status {
        Status::Success => {}
        Status::Error | Status::Blocked => {
            let description = entry
                .error_type
                .clone()
                .unwrap_or_else(|| entry.status.as_str().to_owned());
            span.set_status(SpanStatus::error(description));
        }
    }
}

fn push_openinference(attributes: &mut Vec<KeyValue>, entry: &AuditEntry) {
    let kind = if entry.action == "embeddings" {
        "EMBEDDING"
    } else {
        "LLM"
    };
    attributes.push(KeyValue::new(openinference::SPAN_KIND, kind));
    if let Some(model) = entry.billed_model() {
        attributes.push(KeyValue::new(openinference::MODEL_NAME, model.to_owned()));
    }
    if let Some(provider) = &entry.provider {
        attributes.push(KeyValue::new(openinference::PROVIDER, provider.clone()));
    }
    if let Some(input) = entry.input_tokens {
        attributes.push(KeyValue::new(openinference::TOKEN_COUNT_PROMPT, int(input)));
    }
    if let Some(output) = entry.output_tokens {
        attributes.push(KeyValue::new(
            openinference::TOKEN_COUNT_COMPLETION,
            int(output),
        ));
    }
    if let (Some(input), Some(output)) = (entry.input_tokens, entry.output_tokens) {
        attributes.push(KeyValue::new(
            openinference::TOKEN_COUNT_TOTAL,
            int(input.saturating_add(output)),
        ));
    }
    // OpenInference defines the cost as a double; the exact figure stays in
    // `gen_ai.usage.cost` and in the entry.
    if let Some(cost) = entry.cost_usd.and_then(|c| c.to_f64()) {
        attributes.push(KeyValue::new(openinference::COST_TOTAL, cost));
    }
    if let Some(user) = &entry.user_id {
        attributes.push(KeyValue::new(openinference::USER_ID, user.clone()));
    }
    if let Some(session) = &entry.session_id {
        attributes.push(KeyValue::new(openinference::SESSION_ID, session.clone()));
    }
}
