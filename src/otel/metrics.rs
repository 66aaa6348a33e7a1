//! The GenAI client metrics, recorded from audit entries on the sink's own thread.

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;
use rust_decimal::prelude::ToPrimitive;

use crate::entry::{AuditEntry, ACTION_ENTRIES_DROPPED};
use crate::names;
use crate::sink::{AuditSink, SinkError};

/// Bucket boundaries the GenAI conventions advise for token counts.
const TOKEN_BUCKETS: &[f64] = &[
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// Bucket boundaries the GenAI conventions advise for durations, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// An [`AuditSink`] that records the GenAI client metrics of every audited call on an
/// OpenTelemetry [`Meter`]: [`gen_ai.client.token.usage`](names::METRIC_TOKEN_USAGE) by
/// [`gen_ai.token.type`](names::TOKEN_TYPE), [`gen_ai.client.operation.duration`](
/// names::METRIC_OPERATION_DURATION), [`gen_ai.client.operation.time_to_first_chunk`](
/// names::METRIC_TIME_TO_FIRST_CHUNK), [`llm_audit.cost`](names::METRIC_COST) in USD and
/// [`llm_audit.calls`](names::METRIC_CALLS).
///
/// Labels are provider, request model, operation and status (plus `error.type` on failures):
/// never the user id or any content, which would make every user a time series of its own and
/// put personal data into the metrics backend. The cost counter is a float because metrics
/// backends (Prometheus) store floats; the exact figure is the entry's `cost_usd`.
#[derive(Debug)]
pub struct OtelMetricsSink {
    token_usage: Histogram<u64>,
    duration: Histogram<f64>,
    time_to_first_chunk: Histogram<f64>,
    cost: Counter<f64>,
    calls: Counter<u64>,
}

impl OtelMetricsSink {
    /// Creates the instruments on `meter`.
    #[must_use]
    pub fn new(meter: &Meter) -> Self {
        Self {
            token_usage: meter
                .u64_histogram(names::METRIC_TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            duration: meter
                .f64_histogram(names::METRIC_OPERATION_DURATION)
                .with_unit("s")
                .with_description("GenAI operation duration")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            time_to_first_chunk: meter
                .f64_histogram(names::METRIC_TIME_TO_FIRST_CHUNK)
                .with_unit("s")
                .with_description("Time to receive the first chunk of a streamed response")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            cost: meter
                .f64_counter(names::METRIC_COST)
                .with_unit("USD")
                .with_description("Cost of audited LLM calls in US dollars")
                .build(),
            calls: meter
                .u64_counter(names::METRIC_CALLS)
                .with_unit("{call}")
                .with_description("Audited LLM calls")
                .build(),
        }
    }

    fn record(&self, entry: &AuditEntry) {
        let mut labels = Vec::with_capacity(6);
        if let Some(provider) = &entry.provider {
            labels.push(KeyValue::new(names::PROVIDER_NAME, provider.clone()));
        }
        if let Some(model) = &entry.model {
            labels.push(KeyValue::new(names::REQUEST_MODEL, model.clone()));
        }
        labels.push(KeyValue::new(names::OPERATION_NAME, entry.action.clone()));
        labels.push(KeyValue::new(names::STATUS, entry.status.as_str()));
        if let Some(error_type) = &entry.error_type {
            labels.push(KeyValue::new(names::ERROR_TYPE, error_type.clone()));
        }
        self.calls.add(1, &labels);
        #[allow(clippy::cast_precision_loss)] // milliseconds of a call fit a double exactly
        self.duration
            .record(entry.latency_ms as f64 / 1000.0, &labels);
        if let Some(ttfc) = entry.time_to_first_chunk_ms {
            #[allow(clippy::cast_precision_loss)]
            self.time_to_first_chunk
                .record(ttfc as f64 / 1000.0, &labels);
        }
        if let Some(cost) = entry.cost_usd.and_then(|c| c.to_f64()) {
            self.cost.add(cost, &labels);
        }
        for (kind, tokens) in [
            ("input", entry.input_tokens),
            ("output", entry.output_tokens),
        ] {
            if let Some(tokens) = tokens {
                labels.push(KeyValue::new(names::TOKEN_TYPE, kind));
                self.token_usage.record(tokens, &labels);
                labels.pop();
            }
        }
    }
}

impl AuditSink for OtelMetricsSink {
    fn name(&self) -> &str {
        "otel-metrics"
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        for entry in entries {
            // Pipeline events are not calls.
            if entry.action != ACTION_ENTRIES_DROPPED {
                self.record(entry);
            }
        }
        Ok(())
    }

    /// The meter provider exports on its own schedule; flush it through the provider (the
    /// `OtlpGuard` of the one-call setup does).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
