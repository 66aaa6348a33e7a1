//! [`OtlpLogSink`]: every audit entry as an OTLP log record.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::resource::v1::Resource;
use tonic::codegen::Bytes;

use super::config::{Compression, EndpointUrl, ExportConfig, Overrides, Protocol, Secret};
use super::transport::{Outcome, Transport};
use super::wire::{string_key_value, RequestEncoder};
use super::{resource_attributes, OtlpError, OwnRuntime, MAX_DURATION};
use crate::entry::AuditEntry;
use crate::sink::{AuditSink, SinkError, MAX_RETRY_AFTER};

/// An [`AuditSink`] that sends every entry as an OTLP log record, over gRPC or HTTP/protobuf.
///
/// Each record carries every entry field as an attribute under the names of
/// [`names`](crate::names) (cost as an exact decimal string), the entry's trace and span ids (so
/// Grafana jumps from the log line to the trace), the event name
/// [`llm_audit.entry`](crate::names::EVENT_NAME), severity `INFO` for success, `WARN` for
/// blocked and `ERROR` for errors, and the entry's JSON line as its body.
///
/// Settings come from the builder, else from the standard environment variables
/// (`OTEL_EXPORTER_OTLP_LOGS_*`, then `OTEL_EXPORTER_OTLP_*`: `ENDPOINT`, `PROTOCOL`,
/// `HEADERS`, `TIMEOUT`, `COMPRESSION`, `CERTIFICATE`, `CLIENT_CERTIFICATE`, `CLIENT_KEY`), else
/// the specification's defaults (gRPC to `http://localhost:4317`, 10 s). Header values (API
/// keys) never appear in `Debug` output or errors.
///
/// The sink runs on its own lane of the pipeline: a collector that is down or hangs delays only
/// this sink. A failed export is retried with backoff by the pipeline and counted in
/// [`SinkStats`](crate::SinkStats); records the receiver rejects (partial success) are counted as
/// failed without a retry. A receiver that throttles (HTTP 429 or 503 with `Retry-After`, gRPC
/// `RetryInfo`) gets the wait it asks for, at most 5 minutes
/// ([`with_max_retry_delay`](OtlpLogSinkBuilder::with_max_retry_delay)).
///
/// Redirects are not followed (the headers would go to another host): a 3xx answer is refused
/// for good, naming the status. Replies are read up to
/// [`with_max_response_bytes`](OtlpLogSinkBuilder::with_max_response_bytes), and what the
/// receiver says (a gRPC status message, a partial success's message, an error body) goes into
/// errors scrubbed of every header value, in any spelling, and at most 1,024 characters long.
///
/// ```no_run
/// use tracing_llm_audit::otlp::{OtlpLogSink, Protocol};
/// let sink = OtlpLogSink::builder()
///     .with_endpoint("http://127.0.0.1:4317")
///     .with_protocol(Protocol::Grpc)
///     .with_header("authorization", "Bearer my-token")
///     .with_service_name("checkout")
///     .build()?;
/// # Ok::<(), tracing_llm_audit::otlp::OtlpError>(())
/// ```
#[derive(Debug)]
pub struct OtlpLogSink {
    runtime: OwnRuntime,
    transport: Transport,
    endpoint: EndpointUrl,
    timeout: Duration,
    /// The longest wait a receiver's `Retry-After` gets.
    max_retry_delay: Duration,
    /// Encodes each request straight from the entries, reusing its buffers.
    encoder: RequestEncoder,
    /// A batch is sent as requests whose records take at most this many bytes (a larger
    /// record goes alone).
    max_request_bytes: usize,
    /// The size of the largest request so far: each request's buffer starts at that capacity.
    largest_request: usize,
}

/// The default of [`OtlpLogSinkBuilder::with_max_request_bytes`].
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 512 * 1024;

/// How many requests of one batch are in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// Configures an [`OtlpLogSink`].
#[derive(Debug, Default, Clone)]
pub struct OtlpLogSinkBuilder {
    pub(crate) overrides: Overrides,
    service_name: Option<String>,
    resource: Vec<(String, String)>,
    max_request_bytes: Option<usize>,
    max_retry_delay: Option<Duration>,
}

impl OtlpLogSinkBuilder {
    export_settings!();

    /// Splits each batch into export requests of at most `bytes` of log records (default
    /// [`DEFAULT_MAX_REQUEST_BYTES`], 512 KiB; the request's envelope adds the resource and
    /// scope, a few hundred bytes), sent several at once on the same connection: the sink
    /// encodes the next request while the receiver reads the last one, and no request comes
    /// near a receiver's message limit (the OpenTelemetry Collector's gRPC receiver refuses
    /// messages over 4 MiB by default). A record larger than `bytes` goes alone. `0` is taken
    /// as 1.
    ///
    /// When a request fails (a timeout, a receiver that is down), the sink sends no more of the
    /// batch, and the pipeline retries it from that request on; the receiver may then get a
    /// record twice, as from any OTLP exporter that retries (delivery is at least once). A
    /// single record the receiver refuses as too large is counted as failed, not retried.
    #[must_use]
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes.max(1));
        self
    }

    /// The receiver's URL: for gRPC `http(s)://host:4317`, for HTTP the full URL of the logs
    /// endpoint, `http(s)://host:4318/v1/logs`. The values of its query (where a key may sit)
    /// never show in `Debug` output or errors.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.overrides.endpoint = Some(EndpointUrl(endpoint.into()));
        self
    }

    /// The longest wait a throttling receiver gets before the next attempt (HTTP `Retry-After`
    /// in seconds or as a date, gRPC `RetryInfo`); a longer request is cut to it. Default and
    /// most: [`MAX_RETRY_AFTER`], 5 minutes; zero or more fails `build`. The pipeline waits
    /// instead of its backoff, and counts the wait as a delay, not a failure, while the sink's
    /// backlog has room (see [`SinkError::with_retry_after`]).
    #[must_use]
    pub fn with_max_retry_delay(mut self, delay: Duration) -> Self {
        self.max_retry_delay = Some(delay);
        self
    }

    /// Builds the sink. It connects lazily: a receiver that is down now is no error.
    ///
    /// # Errors
    /// A setting or environment variable that is not valid (named in the error), a certificate
    /// file that cannot be read, or no runtime.
    pub fn build(self) -> Result<OtlpLogSink, OtlpError> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    pub(crate) fn build_with_env(
        self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OtlpLogSink, OtlpError> {
        let config = ExportConfig::resolve(&self.overrides, "LOGS", "/v1/logs", lookup)?;
        let max_retry_delay = self.max_retry_delay.unwrap_or(MAX_RETRY_AFTER);
        if max_retry_delay.is_zero() || max_retry_delay > MAX_RETRY_AFTER {
            return Err(OtlpError::InvalidSetting {
                setting: "with_max_retry_delay",
                reason: format!(
                    "{max_retry_delay:?} is out of range: it must be longer than zero and at \
                     most {MAX_RETRY_AFTER:?}"
                ),
            });
        }
        let runtime = OwnRuntime::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("llm-audit-otlp")
                .build()
                .map_err(OtlpError::Runtime)?,
        );
        let transport = {
            let _entered = runtime.get().enter();
            Transport::new(&config)?
        };
        let attributes = resource_attributes(self.service_name, self.resource, lookup)
            .into_iter()
            .map(|(k, v)| string_key_value(k, v))
            .collect();
        let resource = Resource {
            attributes,
            ..Resource::default()
        };
        Ok(OtlpLogSink {
            runtime,
            transport,
            endpoint: config.endpoint,
            timeout: config.timeout,
            max_retry_delay,
            encoder: RequestEncoder::new(&resource),
            max_request_bytes: self.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            largest_request: 0,
        })
    }
}

impl OtlpLogSink {
    /// Starts configuring a sink.
    #[must_use]
    pub fn builder() -> OtlpLogSinkBuilder {
        OtlpLogSinkBuilder::default()
    }

    /// The endpoint the sink sends to.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint.0
    }
}

impl AuditSink for OtlpLogSink {
    fn name(&self) -> &str {
        "otlp-logs"
    }

    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        if entries.is_empty() {
            return Ok(());
        }
        let observed = unix_nanos(SystemTime::now());
        // The timeout bounds the whole batch, as `OTEL_EXPORTER_OTLP_TIMEOUT` bounds an export.
        // It is at most an hour, which any clock can add; were it not, the batch would have
        // the longest deadline there is.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(self.timeout)
            .or_else(|| now.checked_add(MAX_DURATION))
            .unwrap_or(now);
        let Self {
            runtime,
            transport,
            timeout,
            max_retry_delay,
            encoder,
            max_request_bytes,
            largest_request,
            ..
        } = self;
        let timeout = *timeout;
        let endpoint: Arc<str> = transport.shown().into();
        let timed_out = move |endpoint: &str| {
            Outcome::retry(format!(
                "OTLP export to {endpoint} failed: timeout after {timeout:?}"
            ))
        };
        let outcomes = runtime.get().block_on(async {
            let mut in_flight = VecDeque::with_capacity(MAX_IN_FLIGHT);
            let mut outcomes = Vec::new();
            let mut rest = entries;
            while !rest.is_empty() {
                if in_flight.len() == MAX_IN_FLIGHT {
                    if let Some((taken, export)) = in_flight.pop_front() {
                        let outcome = joined(export).await;
                        let failed = matches!(outcome, Outcome::Retry { .. });
                        outcomes.push((taken, outcome));
                        // The batch is retried from that request on: what follows it would be
                        // sent again anyway, to a receiver that may be struggling.
                        if failed {
                            break;
                        }
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let mut buffer = Vec::with_capacity(*largest_request);
                let (start, taken) =
                    encoder.encode_front(rest, observed, &mut buffer, *max_request_bytes);
                *largest_request = (*largest_request).max(buffer.len());
                rest = &rest[taken..];
                let export = transport.export(Bytes::from(buffer).slice(start..));
                let endpoint = endpoint.clone();
                // The transport has timeouts of its own; this one also bounds a receiver that
                // accepts the connection and never answers at the HTTP/2 level.
                in_flight.push_back((
                    taken,
                    tokio::spawn(async move {
                        let outcome = tokio::time::timeout_at(deadline, export)
                            .await
                            .unwrap_or_else(|_| timed_out(&endpoint));
                        classify(taken, outcome)
                    }),
                ));
                // Lets the connection write what is sent before the next request is encoded,
                // so that the receiver reads one while the sink encodes the next.
                tokio::task::yield_now().await;
            }
            for (taken, export) in in_flight {
                outcomes.push((taken, joined(export).await));
            }
            // Entries never sent: after a failed request (whose outcome comes first) or once
            // the time was up.
            if !rest.is_empty() {
                outcomes.push((rest.len(), timed_out(&endpoint)));
            }
            outcomes
        });
        settle(entries.len(), outcomes, *max_retry_delay)
    }

    /// Every batch is acknowledged by the receiver before `write_batch` returns: nothing is
    /// buffered here.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

async fn joined(export: tokio::task::JoinHandle<Outcome>) -> Outcome {
    export.await.unwrap_or_else(|e| Outcome::Retry {
        message: "the OTLP export task failed".to_owned(),
        source: Some(Box::new(e)),
        after: None,
    })
}

/// A request refused as too large: a record alone is refused for good (it would be on every
/// retry, and would hold up the entries after it); a request of several is retried, and the
/// message says what to lower.
fn classify(taken: usize, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::TooLarge(message) if taken == 1 => {
            Outcome::Refused(format!("{message} (a single log record too large for it)"))
        }
        Outcome::TooLarge(message) => Outcome::retry(format!(
            "{message} (a request of {taken} log records; lower `with_max_request_bytes`)"
        )),
        other => other,
    }
}

/// The batch's result from its requests' outcomes, in the order of their entries: what is
/// accepted up to the first request to retry, which of those records the receiver refused for
/// good, and the longest wait any request was asked for (at most `max_wait`).
fn settle(
    len: usize,
    outcomes: Vec<(usize, Outcome)>,
    max_wait: Duration,
) -> Result<(), SinkError> {
    let (mut accepted, mut rejected) = (0, 0);
    let mut refusal = None;
    let wait = outcomes
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Outcome::Retry { after, .. } => *after,
            _ => None,
        })
        .max()
        .map(|wait| wait.min(max_wait));
    for (taken, outcome) in outcomes {
        let (mut message, source) = match outcome {
            Outcome::Accepted { rejected: 0, .. } => {
                accepted += taken;
                continue;
            }
            Outcome::Accepted {
                rejected: some,
                message,
            } => {
                rejected += usize::try_from(some).unwrap_or(usize::MAX).min(taken);
                refusal.get_or_insert(message);
                accepted += taken;
                continue;
            }
            Outcome::Refused(message) => {
                rejected += taken;
                refusal.get_or_insert(message);
                accepted += taken;
                continue;
            }
            Outcome::Retry {
                message, source, ..
            } => (message, source),
            // The export tasks classify theirs: a retry, were one left.
            Outcome::TooLarge(message) => (message, None),
        };
        if let Some(refused) = refusal {
            message = format!(
                "{message}; before it, the receiver rejected {rejected} of {accepted} log \
                 records: {refused}"
            );
        }
        let mut error = match source {
            Some(source) => SinkError::with_source(message, source),
            None => SinkError::new(message),
        };
        if let Some(wait) = wait {
            error = error.with_retry_after(wait);
        }
        return Err(error
            .accepted_before_failure(accepted)
            .with_rejected(rejected));
    }
    match refusal {
        None => Ok(()),
        Some(message) => Err(SinkError::new(format!(
            "the OTLP receiver rejected {rejected} of {len} log records: {message}"
        ))
        .accepted_before_failure(len)
        .with_rejected(rejected)),
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
pub(crate) mod tests {
    //! The request as `opentelemetry-proto` structs, as the sink built it before it encoded
    //! entries itself: the reference its encoder's bytes must equal.

    use std::time::SystemTime;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
    };
    use opentelemetry_proto::tonic::logs::v1::{
        LogRecord, ResourceLogs, ScopeLogs, SeverityNumber,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::unix_nanos;
    use crate::entry::{AuditEntry, Status};
    use crate::names;

    pub(crate) fn reference_request(
        resource: &Resource,
        entries: &[AuditEntry],
        observed: u64,
    ) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: names::SCOPE_NAME.to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    log_records: entries.iter().map(|e| log_record(e, observed)).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn value(value: any_value::Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    fn string(key: &str, v: String) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: value(any_value::Value::StringValue(v)),
            ..KeyValue::default()
        }
    }

    fn int(key: &str, n: u64) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: value(any_value::Value::IntValue(
                i64::try_from(n).unwrap_or(i64::MAX),
            )),
            ..KeyValue::default()
        }
    }

    /// Converts one entry; `observed` is when the sink saw it, in Unix nanoseconds.
    fn log_record(entry: &AuditEntry, observed: u64) -> LogRecord {
        let mut attributes = Vec::with_capacity(32);
        let mut push_str = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                attributes.push(string(key, v.clone()));
            }
        };
        push_str(names::USER_ID, &entry.user_id);
        push_str(names::SESSION_ID, &entry.session_id);
        push_str(names::PROVIDER_NAME, &entry.provider);
        push_str(names::REQUEST_MODEL, &entry.model);
        push_str(names::RESPONSE_MODEL, &entry.response_model);
        push_str(names::RESPONSE_ID, &entry.response_id);
        push_str(names::SYSTEM_PROMPT_HASH, &entry.system_prompt_hash);
        push_str(names::INPUT_HASH, &entry.input_hash);
        push_str(names::OUTPUT_HASH, &entry.output_hash);
        push_str(names::HASH_KEY_ID, &entry.hash_key_id);
        push_str(names::COST_NOTE, &entry.cost_note);
        push_str(names::ERROR_TYPE, &entry.error_type);
        push_str(names::ERROR_MESSAGE, &entry.error_message);
        push_str(names::PARENT_SPAN_ID, &entry.parent_span_id);
        attributes.push(string(names::REQUEST_ID, entry.request_id.to_string()));
        attributes.push(int(names::SCHEMA_VERSION, u64::from(entry.schema_version)));
        attributes.push(string(names::OPERATION_NAME, entry.action.clone()));
        attributes.push(string(names::STATUS, entry.status.as_str().to_owned()));
        if let Some(reasons) = &entry.finish_reasons {
            attributes.push(KeyValue {
                key: names::RESPONSE_FINISH_REASONS.to_owned(),
                value: value(any_value::Value::ArrayValue(ArrayValue {
                    values: reasons
                        .iter()
                        .filter_map(|r| value(any_value::Value::StringValue(r.clone())))
                        .collect(),
                })),
                ..KeyValue::default()
            });
        }
        if let Some(stream) = entry.streaming {
            attributes.push(KeyValue {
                key: names::REQUEST_STREAM.to_owned(),
                value: value(any_value::Value::BoolValue(stream)),
                ..KeyValue::default()
            });
        }
        for (key, tokens) in [
            (names::USAGE_INPUT_TOKENS, entry.input_tokens),
            (names::USAGE_OUTPUT_TOKENS, entry.output_tokens),
            (names::USAGE_REASONING_OUTPUT_TOKENS, entry.thinking_tokens),
            (
                names::USAGE_CACHE_READ_INPUT_TOKENS,
                entry.cache_read_tokens,
            ),
            (
                names::USAGE_CACHE_CREATION_INPUT_TOKENS,
                entry.cache_write_tokens,
            ),
        ] {
            if let Some(tokens) = tokens {
                attributes.push(int(key, tokens));
            }
        }
        attributes.push(int(names::LATENCY_MS, entry.latency_ms));
        if let Some(ttfc) = entry.time_to_first_chunk_ms {
            #[allow(clippy::cast_precision_loss)] // milliseconds fit a double exactly
            attributes.push(KeyValue {
                key: names::RESPONSE_TIME_TO_FIRST_CHUNK.to_owned(),
                value: value(any_value::Value::DoubleValue(ttfc as f64 / 1000.0)),
                ..KeyValue::default()
            });
        }
        if let Some(cost) = entry.cost_usd {
            // A string: the exact decimal, as in the entry.
            attributes.push(string(names::USAGE_COST, cost.to_string()));
        }
        attributes.push(int(names::SANITIZATION_COUNT, entry.sanitization_count));
        for (entity, count) in &entry.sanitization {
            attributes.push(int(
                &format!("{}{entity}", names::SANITIZATION_PREFIX),
                *count,
            ));
        }
        if let Some(metadata) = &entry.metadata {
            attributes.push(string(
                names::METADATA,
                serde_json::Value::Object(metadata.clone()).to_string(),
            ));
        }
        let (severity, severity_text) = match entry.status {
            Status::Success => (SeverityNumber::Info, "INFO"),
            Status::Blocked => (SeverityNumber::Warn, "WARN"),
            Status::Error => (SeverityNumber::Error, "ERROR"),
        };
        let decode = |id: &Option<String>, len: usize| {
            id.as_deref()
                .and_then(|hex| hex::decode(hex).ok())
                .filter(|bytes| bytes.len() == len)
                .unwrap_or_default()
        };
        let mut line = Vec::new();
        let body = match crate::sink::line::write_entry_line(&mut line, entry) {
            Ok(()) => {
                String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned()
            }
            Err(_) => String::new(),
        };
        LogRecord {
            time_unix_nano: unix_nanos(SystemTime::from(entry.timestamp)),
            observed_time_unix_nano: observed,
            severity_number: severity as i32,
            severity_text: severity_text.to_owned(),
            body: value(any_value::Value::StringValue(body)),
            attributes,
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: decode(&entry.trace_id, 16),
            span_id: decode(&entry.span_id, 8),
            event_name: names::EVENT_NAME.to_owned(),
        }
    }
}

#[cfg(test)]
mod settle_tests {
    //! How a batch's requests' outcomes become the sink's answer to the pipeline: the first
    //! `accepted` entries are done, `rejected` of them refused for good, the rest retried.

    use std::time::Duration;

    use super::{classify, settle, Outcome};
    use crate::sink::MAX_RETRY_AFTER;

    fn ok() -> Outcome {
        Outcome::Accepted {
            rejected: 0,
            message: String::new(),
        }
    }

    fn partial(rejected: u64, why: &str) -> Outcome {
        Outcome::Accepted {
            rejected,
            message: why.to_owned(),
        }
    }

    fn retry(why: &str) -> Outcome {
        Outcome::retry(why.to_owned())
    }

    /// `(accepted, rejected, message)` of the error, or `None` for `Ok`, for outcomes as the
    /// export tasks hand them over (classified).
    fn run(outcomes: Vec<(usize, Outcome)>) -> Option<(usize, usize, String)> {
        let len = outcomes.iter().map(|(taken, _)| taken).sum();
        let outcomes = outcomes
            .into_iter()
            .map(|(taken, outcome)| (taken, classify(taken, outcome)))
            .collect();
        settle(len, outcomes, MAX_RETRY_AFTER)
            .err()
            .map(|e| (e.accepted(), e.rejected(), e.to_string()))
    }

    #[test]
    fn every_request_accepted_is_ok() {
        assert!(run(vec![(3, ok()), (5, ok()), (1, ok())]).is_none());
    }

    #[test]
    fn partial_successes_add_up_and_are_capped_at_their_request() {
        let (accepted, rejected, message) = run(vec![
            (3, partial(2, "too big")),
            (4, ok()),
            (5, partial(1, "bad")),
        ])
        .unwrap();
        assert_eq!((accepted, rejected), (12, 3));
        assert!(message.contains("rejected 3 of 12"), "{message}");
        assert!(message.contains("too big"), "the first reason: {message}");
        // A receiver claiming more than the request held.
        let (accepted, rejected, _) = run(vec![(3, partial(10, "x")), (4, ok())]).unwrap();
        assert_eq!((accepted, rejected), (7, 3));
    }

    #[test]
    fn a_refused_request_counts_as_done_and_rejected() {
        let refused = Outcome::Refused("InvalidArgument".to_owned());
        let (accepted, rejected, message) = run(vec![(2, ok()), (4, refused), (1, ok())]).unwrap();
        assert_eq!((accepted, rejected), (7, 4));
        assert!(message.contains("InvalidArgument"), "{message}");
    }

    #[test]
    fn the_first_request_to_retry_ends_what_is_accepted_and_keeps_earlier_reasons() {
        let refused = Outcome::Refused("InvalidArgument: bad record".to_owned());
        let (accepted, rejected, message) = run(vec![
            (3, ok()),
            (2, refused),
            (4, retry("Unavailable")),
            (5, ok()),
            (6, retry("later")),
        ])
        .unwrap();
        assert_eq!((accepted, rejected), (5, 2));
        assert!(message.starts_with("Unavailable"), "{message}");
        assert!(message.contains("bad record"), "{message}");
        assert_eq!(run(vec![(4, retry("down")), (3, ok())]).unwrap().0, 0);
    }

    #[test]
    fn the_longest_wait_asked_for_goes_with_the_error_capped() {
        let throttled = |secs: u64| Outcome::Retry {
            message: "429".to_owned(),
            source: None,
            after: Some(Duration::from_secs(secs)),
        };
        let outcomes = || {
            vec![
                (2, ok()),
                (3, throttled(1)),
                (4, retry("down")),
                (5, throttled(7)),
            ]
        };
        let error = settle(14, outcomes(), MAX_RETRY_AFTER).unwrap_err();
        assert_eq!(error.accepted(), 2);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        let error = settle(14, outcomes(), Duration::from_secs(2)).unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
        let error = settle(5, vec![(5, retry("down"))], MAX_RETRY_AFTER).unwrap_err();
        assert_eq!(error.retry_after(), None);
    }

    #[test]
    fn too_large_refuses_a_single_record_and_retries_a_request_of_several() {
        let too_large = || Outcome::TooLarge("OutOfRange: too large".to_owned());
        let (accepted, rejected, message) =
            run(vec![(2, ok()), (1, too_large()), (3, ok())]).unwrap();
        assert_eq!((accepted, rejected), (6, 1));
        assert!(message.contains("single log record"), "{message}");
        let (accepted, rejected, message) =
            run(vec![(2, ok()), (3, too_large()), (3, ok())]).unwrap();
        assert_eq!((accepted, rejected), (2, 0));
        assert!(message.contains("with_max_request_bytes"), "{message}");
    }
}
