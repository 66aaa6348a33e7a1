//! The audit layer next to `tracing-opentelemetry`: entries carry the OpenTelemetry ids, the
//! exported spans carry the audit values, and the metrics carry no user ids.
#![cfg(feature = "otel")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Status as SpanStatus, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_llm_audit::names::{self, openinference};
use tracing_llm_audit::otel::{OtelMetricsSink, OtelSpans};
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, LlmSpanExt, MemorySink, Status, Usage};
use tracing_subscriber::layer::SubscriberExt;

const SECRET_PROMPT: &str = "my card is 4111 1111 1111 1111, what is the weather?";

fn key() -> HashKey {
    HashKey::new("otel-test", [9u8; 32]).unwrap()
}

struct Setup {
    spans: InMemorySpanExporter,
    provider: SdkTracerProvider,
    memory: MemorySink,
}

impl Setup {
    fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        Self {
            spans,
            provider,
            memory: MemorySink::new(),
        }
    }

    /// The audit layer writing to this setup's memory sink.
    fn audit(&self, spans: OtelSpans) -> (AuditLayer, tracing_llm_audit::WorkerGuard) {
        AuditLayer::builder()
            .with_sink(self.memory.clone())
            .with_hash_key(key())
            .with_otel_spans(spans)
            .build()
            .unwrap()
    }

    /// The OpenTelemetry layer exporting to this setup's in-memory exporter.
    fn otel<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("test"))
    }

    fn finished(&self) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.spans.get_finished_spans().unwrap()
    }
}

fn attributes(span: &SpanData) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|KeyValue { key, value, .. }| (key.to_string(), value.clone()))
        .collect()
}

fn call(model: &str, user: &str, fail: bool) {
    let span = tracing_llm_audit::llm_span!(provider = "anthropic", model = model, user = user);
    let _enter = span.enter();
    span.record_system_prompt(b"You are a weather bot.");
    span.record_input(SECRET_PROMPT.as_bytes());
    span.record_usage(&Usage {
        input_tokens: Some(1_000),
        output_tokens: Some(200),
        ..Usage::default()
    });
    if fail {
        tracing::error!(error.type = "overloaded_error", "the model is overloaded");
    } else {
        span.record_output(b"Sunny.");
    }
}

fn by_request_id(entries: &[AuditEntry]) -> HashMap<String, AuditEntry> {
    entries
        .iter()
        .map(|e| (e.request_id.to_string(), e.clone()))
        .collect()
}

#[test]
fn spans_carry_the_audit_values_and_entries_the_otel_ids() {
    let setup = Setup::new();
    let (audit, guard) = setup.audit(OtelSpans::new());
    let otel = setup.otel();
    // The documented order: the audit layer first, the OpenTelemetry layer after it.
    let subscriber = tracing_subscriber::registry().with(audit).with(otel);
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("http_request");
        let _enter = request.enter();
        call("claude-sonnet-4-5", "alice", false);
        call("claude-haiku-4-5", "bob", true);
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entries = by_request_id(&setup.memory.entries());
    let spans = setup.finished();
    let root = spans.iter().find(|s| s.name == "http_request").unwrap();
    let llm_spans: Vec<&SpanData> = spans.iter().filter(|s| s.name != "http_request").collect();
    assert_eq!(llm_spans.len(), 2);
    assert_eq!(entries.len(), 2);

    for span in llm_spans {
        let attrs = attributes(span);
        let request_id = attrs[names::REQUEST_ID].as_str().to_string();
        let entry = &entries[&request_id];
        // The entry joins its trace: same trace as the request around it, same span id.
        assert_eq!(
            entry.trace_id.as_deref(),
            Some(span.span_context.trace_id().to_string().as_str())
        );
        assert_eq!(
            entry.trace_id.as_deref(),
            Some(root.span_context.trace_id().to_string().as_str())
        );
        assert_eq!(
            entry.span_id.as_deref(),
            Some(span.span_context.span_id().to_string().as_str())
        );
        // The values only the audit layer knows are on the span.
        assert_eq!(
            attrs[names::USAGE_COST].as_str(),
            entry.cost_usd.unwrap().to_string()
        );
        assert_eq!(attrs[names::STATUS].as_str(), entry.status.as_str());
        assert_eq!(
            attrs[names::INPUT_HASH].as_str(),
            entry.input_hash.clone().unwrap()
        );
        assert_eq!(
            attrs[names::SYSTEM_PROMPT_HASH].as_str(),
            entry.system_prompt_hash.clone().unwrap()
        );
        assert_eq!(attrs[names::HASH_KEY_ID].as_str(), "otel-test");
        assert_eq!(attrs[names::SANITIZATION_COUNT], Value::I64(0));
        // The span's own GenAI fields are exported by tracing-opentelemetry as they were.
        assert_eq!(
            attrs[names::REQUEST_MODEL].as_str(),
            entry.model.clone().unwrap()
        );
        assert_eq!(
            attrs[names::USER_ID].as_str(),
            entry.user_id.clone().unwrap()
        );
        // OpenInference names are off by default.
        assert!(!attrs.contains_key(openinference::TOKEN_COUNT_PROMPT));
        // No content anywhere on the span.
        let everything = format!("{span:?}");
        assert!(
            !everything.contains("4111"),
            "raw prompt leaked: {everything}"
        );
        assert!(!everything.contains("weather bot"));
        match entry.status {
            Status::Error => assert_eq!(
                span.status,
                SpanStatus::error("overloaded_error"),
                "an error entry makes an error span"
            ),
            _ => assert_ne!(span.status, SpanStatus::error("overloaded_error")),
        }
    }
}

#[test]
fn nested_llm_spans_point_at_their_parents_otel_span() {
    let setup = Setup::new();
    let (audit, guard) = setup.audit(OtelSpans::new());
    let otel = setup.otel();
    let subscriber = tracing_subscriber::registry().with(audit).with(otel);
    tracing::subscriber::with_default(subscriber, || {
        let agent = tracing::info_span!(
            "agent",
            gen_ai.operation.name = "invoke_agent",
            gen_ai.provider.name = "anthropic"
        );
        let _enter = agent.enter();
        call("claude-sonnet-4-5", "alice", false);
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entries = setup.memory.entries();
    let spans = setup.finished();
    let agent_span = spans.iter().find(|s| s.name == "agent").unwrap();
    let agent = entries.iter().find(|e| e.action == "invoke_agent").unwrap();
    let child = entries.iter().find(|e| e.action == "chat").unwrap();
    assert_eq!(
        agent.span_id.as_deref(),
        Some(agent_span.span_context.span_id().to_string().as_str())
    );
    assert_eq!(child.parent_span_id, agent.span_id);
    assert_eq!(child.trace_id, agent.trace_id);
}

#[test]
fn openinference_names_on_request() {
    let setup = Setup::new();
    let (audit, guard) = setup.audit(OtelSpans::new().with_openinference(true));
    let otel = setup.otel();
    let subscriber = tracing_subscriber::registry().with(audit).with(otel);
    tracing::subscriber::with_default(subscriber, || call("claude-sonnet-4-5", "alice", false));
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entry = &setup.memory.entries()[0];
    let spans = setup.finished();
    let attrs = attributes(&spans[0]);
    // llm_span!'s default name becomes the GenAI conventions' `{operation} {model}`.
    assert_eq!(spans[0].name, "chat claude-sonnet-4-5");
    // Token counts are numbers on the span, not strings.
    assert_eq!(attrs[names::USAGE_INPUT_TOKENS], Value::I64(1_000));
    assert_eq!(attrs[openinference::SPAN_KIND].as_str(), "LLM");
    assert_eq!(
        attrs[openinference::MODEL_NAME].as_str(),
        "claude-sonnet-4-5"
    );
    assert_eq!(attrs[openinference::TOKEN_COUNT_PROMPT], Value::I64(1_000));
    assert_eq!(
        attrs[openinference::TOKEN_COUNT_COMPLETION],
        Value::I64(200)
    );
    assert_eq!(attrs[openinference::TOKEN_COUNT_TOTAL], Value::I64(1_200));
    // 1,000 × $3/M + 200 × $15/M = $0.006
    assert_eq!(entry.cost_usd.unwrap().to_string(), "0.006000");
    assert_eq!(attrs[openinference::COST_TOTAL], Value::F64(0.006));
    assert_eq!(attrs[openinference::USER_ID].as_str(), "alice");
}

#[test]
fn the_wrong_layer_order_warns_and_loses_no_entry() {
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
    let setup = Setup::new();
    let warnings = Arc::new(AtomicUsize::new(0));
    let (audit, guard) = setup.audit(OtelSpans::new());
    let otel = setup.otel();
    let subscriber = tracing_subscriber::registry()
        .with(otel)
        .with(audit)
        .with(CountWarnings(warnings.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("http_request");
        let _enter = request.enter();
        for _ in 0..3 {
            call("claude-sonnet-4-5", "alice", false);
        }
    });
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.sinks[0].written, 3, "every entry is still written");
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        1,
        "one warning, not one per call"
    );
    let spans = setup.finished();
    let llm = spans.iter().find(|s| s.name != "http_request").unwrap();
    assert!(!attributes(llm).contains_key(names::USAGE_COST));
}

#[test]
fn metrics_are_labelled_by_model_never_by_user() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "test");
    let (audit, guard) = AuditLayer::builder()
        .with_sink(OtelMetricsSink::new(&meter))
        .with_hash_key(key())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(audit), || {
        call("claude-sonnet-4-5", "alice", false);
        call("claude-sonnet-4-5", "bob", false);
        call("claude-haiku-4-5", "carol", true);
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    provider.force_flush().unwrap();
    let metrics = exporter.get_finished_metrics().unwrap();
    let mut seen = HashMap::new();
    for resource in &metrics {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                seen.insert(metric.name().to_owned(), metric.unit().to_owned());
                let labels: Vec<Vec<String>> = match metric.data() {
                    AggregatedMetrics::F64(MetricData::Sum(sum)) => sum
                        .data_points()
                        .map(|p| p.attributes().map(|kv| kv.key.to_string()).collect())
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                        .data_points()
                        .map(|p| p.attributes().map(|kv| kv.key.to_string()).collect())
                        .collect(),
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| p.attributes().map(|kv| kv.key.to_string()).collect())
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => h
                        .data_points()
                        .map(|p| p.attributes().map(|kv| kv.key.to_string()).collect())
                        .collect(),
                    other => panic!("unexpected data {other:?}"),
                };
                for point in labels {
                    for label in point {
                        assert!(
                            names::METRIC_LABELS.contains(&label.as_str())
                                || label == names::TOKEN_TYPE
                                || label == names::ERROR_TYPE,
                            "{} has label {label}",
                            metric.name()
                        );
                    }
                }
                if metric.name() == names::METRIC_COST {
                    let AggregatedMetrics::F64(MetricData::Sum(sum)) = metric.data() else {
                        panic!("cost is a float sum");
                    };
                    let total: f64 = sum.data_points().map(|p| p.value()).sum();
                    // 2 × $0.006 (sonnet) + 1,000 × $1/M + 200 × $5/M (haiku) = $0.014
                    assert!((total - 0.014).abs() < 1e-12, "{total}");
                }
                if metric.name() == names::METRIC_TOKEN_USAGE {
                    let AggregatedMetrics::U64(MetricData::Histogram(h)) = metric.data() else {
                        panic!("token usage is a u64 histogram");
                    };
                    let input: u64 = h
                        .data_points()
                        .filter(|p| {
                            p.attributes().any(|kv| {
                                kv.key.as_str() == names::TOKEN_TYPE && kv.value.as_str() == "input"
                            })
                        })
                        .map(|p| p.sum())
                        .sum();
                    assert_eq!(input, 3_000);
                }
            }
        }
    }
    for name in [
        names::METRIC_TOKEN_USAGE,
        names::METRIC_OPERATION_DURATION,
        names::METRIC_COST,
        names::METRIC_CALLS,
    ] {
        assert!(seen.contains_key(name), "{name} missing from {seen:?}");
    }
    assert_eq!(seen[names::METRIC_OPERATION_DURATION], "s");
    assert_eq!(seen[names::METRIC_COST], "USD");
}

/// A span that closes where another dispatcher (or none) is the thread's default still finds
/// the OpenTelemetry span of its own subscriber.
#[test]
fn a_span_closed_outside_its_subscriber_keeps_its_otel_ids() {
    let setup = Setup::new();
    let (audit, guard) = setup.audit(OtelSpans::new());
    let otel = setup.otel();
    let subscriber = tracing_subscriber::registry().with(audit).with(otel);
    let span = tracing::subscriber::with_default(subscriber, || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u1");
        span.record_input(b"hello");
        span
    });
    // No default dispatcher here: the span closes on its own subscriber.
    drop(span);
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entry = &setup.memory.entries()[0];
    let spans = setup.finished();
    assert_eq!(
        entry.span_id.as_deref(),
        Some(spans[0].span_context.span_id().to_string().as_str())
    );
    assert!(attributes(&spans[0]).contains_key(names::INPUT_HASH));
}

/// `tracing-subscriber` 0.3.23 does not tell a layer wrapped in `Option` (a layer switched on by
/// configuration) which dispatcher it is in. The audit values still reach the OpenTelemetry span
/// and the entry still takes its ids.
#[test]
fn a_layer_in_an_option_still_annotates_the_otel_span() {
    let setup = Setup::new();
    let (audit, guard) = setup.audit(OtelSpans::new());
    let otel = setup.otel();
    let subscriber = tracing_subscriber::registry().with(Some(audit)).with(otel);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o", user = "u1");
        span.record_input(b"hello");
    });
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let entry = &setup.memory.entries()[0];
    let spans = setup.finished();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        entry.span_id.as_deref(),
        Some(spans[0].span_context.span_id().to_string().as_str())
    );
    assert_eq!(
        attributes(&spans[0])[names::INPUT_HASH].as_str(),
        entry.input_hash.clone().unwrap()
    );
}
