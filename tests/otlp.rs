//! `OtlpLogSink` against in-process receivers built on the official OTLP types: every entry
//! arrives as a log record with every attribute and the right ids, over gRPC and HTTP; a
//! collector that is down or hangs never holds up the application or the other sinks; secrets
//! never leak.
#![cfg(feature = "otlp")]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
use support::otlp_receiver::{closed_port_endpoint, GrpcReceiver, HangingReceiver, HttpReceiver};
use tracing_llm_audit::names;
use tracing_llm_audit::otlp::{Compression, OtlpLogSink, OtlpSetup, Protocol};
use tracing_llm_audit::{
    AuditEntry, AuditLayer, AuditSink as _, HashKey, LlmSpanExt, MemorySink, Status, Usage,
};
use tracing_subscriber::layer::SubscriberExt;

const API_KEY: &str = "Bearer sk-live-TOPSECRET-9f8e7d";

fn key() -> HashKey {
    HashKey::new("otlp-test", [5u8; 32]).unwrap()
}

/// `n` calls: every fifth fails, every third streams; all with content, usage and a user.
fn calls(n: u64) {
    for i in 0..n {
        let span = tracing_llm_audit::llm_span!(
            provider = "openai",
            model = "gpt-4o-mini",
            user = format!("user-{}", i % 3),
            session = "s-1",
        );
        let _enter = span.enter();
        span.record_system_prompt(b"You are terse.");
        span.record_input(format!("question {i}").as_bytes());
        span.record_usage(&Usage {
            input_tokens: Some(100 + i),
            output_tokens: Some(20),
            reasoning_output_tokens: Some(5),
            cache_read_input_tokens: Some(50),
            cache_creation_input_tokens: Some(0),
            cache_write_1h_input_tokens: None,
        });
        span.record_response_model("gpt-4o-mini-2024-07-18");
        span.record_response_id(&format!("chatcmpl-{i}"));
        span.record_finish_reasons(&["stop"]);
        if i % 3 == 0 {
            span.record_first_chunk();
        }
        if i % 5 == 4 {
            tracing::error!(error.type = "rate_limit_error", "slow down");
        } else {
            span.record_output(b"ok");
        }
    }
}

fn attributes(record: &LogRecord) -> HashMap<String, Value> {
    record
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.clone().and_then(|v| v.value).unwrap(),
            )
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::StringValue(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn int(value: &Value) -> u64 {
    match value {
        Value::IntValue(n) => u64::try_from(*n).unwrap(),
        other => panic!("not an int: {other:?}"),
    }
}

/// Every record matches the entry with its request id, field by field.
fn check_records(records: &[LogRecord], entries: &[AuditEntry]) {
    assert_eq!(records.len(), entries.len());
    let entries: HashMap<String, &AuditEntry> = entries
        .iter()
        .map(|e| (e.request_id.to_string(), e))
        .collect();
    for record in records {
        let attrs = attributes(record);
        let entry = entries[&text(&attrs[names::REQUEST_ID])];
        assert_eq!(record.event_name, names::EVENT_NAME);
        assert_eq!(
            hex::encode(&record.trace_id),
            entry.trace_id.clone().unwrap()
        );
        assert_eq!(hex::encode(&record.span_id), entry.span_id.clone().unwrap());
        let (severity, severity_text) = match entry.status {
            Status::Success => (9, "INFO"),
            Status::Error => (17, "ERROR"),
            Status::Blocked => (13, "WARN"),
        };
        assert_eq!(record.severity_number, severity);
        assert_eq!(record.severity_text, severity_text);
        // The body is the entry itself.
        let Some(Value::StringValue(body)) = record.body.clone().and_then(|b| b.value) else {
            panic!("no body");
        };
        assert_eq!(&serde_json::from_str::<AuditEntry>(&body).unwrap(), entry);
        // Every field, under the names the dashboards use.
        assert_eq!(text(&attrs[names::USER_ID]), entry.user_id.clone().unwrap());
        assert_eq!(text(&attrs[names::SESSION_ID]), "s-1");
        assert_eq!(text(&attrs[names::PROVIDER_NAME]), "openai");
        assert_eq!(text(&attrs[names::OPERATION_NAME]), "chat");
        assert_eq!(text(&attrs[names::REQUEST_MODEL]), "gpt-4o-mini");
        assert_eq!(
            text(&attrs[names::RESPONSE_MODEL]),
            "gpt-4o-mini-2024-07-18"
        );
        assert_eq!(
            text(&attrs[names::RESPONSE_ID]),
            entry.response_id.clone().unwrap()
        );
        assert_eq!(text(&attrs[names::STATUS]), entry.status.as_str());
        assert_eq!(
            text(&attrs[names::USAGE_COST]),
            entry.cost_usd.unwrap().to_string(),
            "cost travels as the exact decimal"
        );
        assert_eq!(
            int(&attrs[names::USAGE_INPUT_TOKENS]),
            entry.input_tokens.unwrap()
        );
        assert_eq!(int(&attrs[names::USAGE_OUTPUT_TOKENS]), 20);
        assert_eq!(int(&attrs[names::USAGE_REASONING_OUTPUT_TOKENS]), 5);
        assert_eq!(int(&attrs[names::USAGE_CACHE_READ_INPUT_TOKENS]), 50);
        assert_eq!(int(&attrs[names::USAGE_CACHE_CREATION_INPUT_TOKENS]), 0);
        assert_eq!(int(&attrs[names::LATENCY_MS]), entry.latency_ms);
        assert_eq!(int(&attrs[names::SANITIZATION_COUNT]), 0);
        assert_eq!(int(&attrs[names::SCHEMA_VERSION]), 1);
        assert_eq!(
            text(&attrs[names::INPUT_HASH]),
            entry.input_hash.clone().unwrap()
        );
        assert_eq!(
            text(&attrs[names::SYSTEM_PROMPT_HASH]),
            entry.system_prompt_hash.clone().unwrap()
        );
        assert_eq!(text(&attrs[names::HASH_KEY_ID]), "otlp-test");
        let Value::ArrayValue(reasons) = &attrs[names::RESPONSE_FINISH_REASONS] else {
            panic!("finish reasons are an array");
        };
        assert_eq!(reasons.values.len(), 1);
        assert_eq!(
            attrs.contains_key(names::RESPONSE_TIME_TO_FIRST_CHUNK),
            entry.time_to_first_chunk_ms.is_some()
        );
        if entry.status == Status::Error {
            assert_eq!(text(&attrs[names::ERROR_TYPE]), "rate_limit_error");
            assert!(text(&attrs[names::ERROR_MESSAGE]).contains("slow down"));
        } else {
            assert_eq!(
                text(&attrs[names::OUTPUT_HASH]),
                entry.output_hash.clone().unwrap()
            );
        }
        for name in attrs.keys() {
            assert!(
                names::LOG_ATTRIBUTES.contains(&name.as_str())
                    || name.starts_with(names::SANITIZATION_PREFIX),
                "{name} is not a documented attribute"
            );
        }
        // Hash-only content: no raw prompt text anywhere in the record.
        assert!(!format!("{record:?}").contains("question"));
    }
}

/// Audits 20 calls through `sink` and a memory sink, losslessly; what the memory sink got.
fn twenty_calls_through(sink: OtlpLogSink) -> Vec<AuditEntry> {
    let memory = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_sink(memory.clone())
        .with_hash_key(key())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(20));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    memory.entries()
}

#[test]
fn grpc_receiver_gets_every_entry_as_a_log_record() {
    let receiver = GrpcReceiver::start();
    let sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .with_protocol(Protocol::Grpc)
        .with_header("authorization", API_KEY)
        .with_service_name("otlp-test-service")
        .build()
        .unwrap();
    let entries = twenty_calls_through(sink);
    let received = receiver.received.lock().unwrap();
    check_records(&received.records(), &entries);
    // The header went along with every request.
    assert!(received
        .headers
        .iter()
        .all(|h| h.contains(&("authorization".to_owned(), API_KEY.to_owned()))));
    let resource = received.requests[0].resource_logs[0]
        .resource
        .clone()
        .unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.clone().and_then(|v| v.value)
            == Some(Value::StringValue("otlp-test-service".to_owned()))));
    let scope = received.requests[0].resource_logs[0].scope_logs[0]
        .scope
        .clone()
        .unwrap();
    assert_eq!(scope.name, names::SCOPE_NAME);
}

#[test]
fn http_receiver_gets_every_entry_gzipped() {
    let receiver = HttpReceiver::start();
    let sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .with_protocol(Protocol::HttpProtobuf)
        .with_compression(Compression::Gzip)
        .with_header("x-api-key", API_KEY)
        .build()
        .unwrap();
    let entries = twenty_calls_through(sink);
    let received = receiver.received.lock().unwrap();
    check_records(&received.records(), &entries);
    for headers in &received.headers {
        assert!(headers.contains(&("content-encoding".to_owned(), "gzip".to_owned())));
        assert!(headers.contains(&("x-api-key".to_owned(), API_KEY.to_owned())));
    }
}

/// Entries with content large enough that a batch of them exceeds 4 MiB, the message limit of
/// gRPC receivers (the OpenTelemetry Collector's, tonic's and grpc-go's default).
fn large_entries(n: usize) -> Vec<AuditEntry> {
    (0..n)
        .map(|i| {
            let mut entry = AuditEntry::new("chat");
            entry.user_id = Some(format!("user-{i}"));
            // About 100 KB a record: the message goes in the body and in an attribute.
            entry.error_message = Some("x".repeat(50_000));
            entry
        })
        .collect()
}

fn request_ids(records: &[LogRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| text(&attributes(r)[names::REQUEST_ID]))
        .collect()
}

/// A batch of about 6.5 MB goes as requests of about the configured size, each under the
/// receiver's 4 MiB limit; one request of it all would be refused.
#[test]
fn a_batch_over_the_receivers_message_limit_arrives_whole_in_smaller_requests() {
    let receiver = GrpcReceiver::start();
    let entries = large_entries(64);
    for max_request_bytes in [None, Some(1_000_000)] {
        let mut builder = OtlpLogSink::builder().with_endpoint(receiver.endpoint());
        if let Some(bytes) = max_request_bytes {
            builder = builder.with_max_request_bytes(bytes);
        }
        let mut sink = builder.build().unwrap();
        sink.write_batch(&entries).unwrap();
        let mut received = receiver.received.lock().unwrap();
        // The bytes of each request's records (each with its tag and length), and of one.
        let records_len = |records: &[LogRecord]| -> usize {
            records
                .iter()
                .map(|r| {
                    let len = r.encoded_len();
                    len + prost::encoding::encoded_len_varint(len as u64) + 1
                })
                .sum()
        };
        let one = records_len(&received.records()[..1]);
        let mut sizes: Vec<usize> = received
            .requests
            .iter()
            .map(|r| records_len(&r.resource_logs[0].scope_logs[0].log_records))
            .collect();
        sizes.sort_unstable();
        let limit = max_request_bytes.unwrap_or(tracing_llm_audit::otlp::DEFAULT_MAX_REQUEST_BYTES);
        // Each request is within the limit, and but for the last one more record would not fit.
        assert!(sizes.len() > 1, "{sizes:?}");
        assert!(sizes.iter().all(|&size| size <= limit), "{sizes:?}");
        assert!(
            sizes[1..].iter().all(|&size| size + one > limit),
            "{sizes:?}"
        );
        let whole: Vec<usize> = received.requests.iter().map(|r| r.encoded_len()).collect();
        assert!(whole.iter().all(|&size| size < 4 << 20), "{whole:?}");
        // Every entry once; the requests may arrive in any order, each holds consecutive ones.
        let mut got: Vec<Vec<String>> = received
            .requests
            .iter()
            .map(|r| request_ids(&r.resource_logs[0].scope_logs[0].log_records))
            .collect();
        got.sort_by_key(|ids| {
            entries
                .iter()
                .position(|e| e.request_id.to_string() == ids[0])
        });
        let want: Vec<String> = entries.iter().map(|e| e.request_id.to_string()).collect();
        assert_eq!(got.concat(), want);
        received.requests.clear();
        received.headers.clear();
    }
    // The same batch as one request is refused by this receiver: the split is what lets it in.
    let mut sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .with_max_request_bytes(usize::MAX)
        .build()
        .unwrap();
    let error = sink.write_batch(&entries).unwrap_err();
    assert_eq!(error.accepted(), 0, "{error}");
    assert!(
        error.to_string().contains("with_max_request_bytes"),
        "the error says what to lower: {error}"
    );
    assert!(receiver.received.lock().unwrap().requests.is_empty());
}

/// A single record over the receiver's limit is refused for good, not retried forever; the
/// records around it arrive.
#[test]
fn a_record_too_large_for_the_receiver_is_counted_as_failed_and_the_rest_arrive() {
    let receiver = GrpcReceiver::start();
    let mut entries = large_entries(5);
    entries[2].error_message = Some("x".repeat(3 << 20));
    let mut sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .build()
        .unwrap();
    let error = sink.write_batch(&entries).unwrap_err();
    assert_eq!((error.accepted(), error.rejected()), (5, 1), "{error}");
    assert!(error.to_string().contains("too large"), "{error}");
    let mut got = request_ids(&receiver.received.lock().unwrap().records());
    got.sort();
    let mut want: Vec<String> = [0, 1, 3, 4]
        .iter()
        .map(|&i| entries[i].request_id.to_string())
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// The timeout bounds a whole batch, however many requests it takes: against a receiver that
/// never answers, a batch of 40 requests with a timeout of 300 ms gives up at about 300 ms, not
/// after one timeout for each round of four requests in flight (3 s).
#[test]
fn the_timeout_bounds_the_whole_batch_not_each_request() {
    let hanging = HangingReceiver::start();
    let mut sink = OtlpLogSink::builder()
        .with_endpoint(hanging.endpoint())
        .with_timeout(Duration::from_millis(300))
        .with_max_request_bytes(1)
        .build()
        .unwrap();
    let entries = large_entries(40);
    let began = std::time::Instant::now();
    let error = sink.write_batch(&entries).unwrap_err();
    let took = began.elapsed();
    assert_eq!(error.accepted(), 0, "{error}");
    assert!(
        error.to_string().to_lowercase().contains("timeout"),
        "{error}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// One request of a batch fails: the batch's error says which entries went before it, and the
/// pipeline's retry sends the rest again, so every entry arrives (some twice: at least once).
#[test]
fn a_failed_request_in_a_batch_is_retried_with_the_entries_after_it() {
    let receiver = GrpcReceiver::start();
    let entries = large_entries(12);
    let mut sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .with_max_request_bytes(1)
        .build()
        .unwrap();
    *receiver.fail_once.lock().unwrap() = Some("user-5".to_owned());
    let error = sink.write_batch(&entries).unwrap_err();
    assert_eq!(error.accepted(), 5, "{error}");
    assert_eq!(error.rejected(), 0);
    assert!(error.to_string().contains("Unavailable"), "{error}");
    assert!(error.to_string().contains(&receiver.endpoint()), "{error}");
    // The five before it arrived, and not the failed one; the sink stopped sending once it knew
    // (what it sent meanwhile is sent again on the retry).
    let got = request_ids(&receiver.received.lock().unwrap().records());
    for (i, entry) in entries.iter().enumerate() {
        let arrived = got.contains(&entry.request_id.to_string());
        match i {
            0..5 => assert!(arrived, "entry {i}"),
            5 => assert!(!arrived, "the failed request"),
            _ => {}
        }
    }
    assert!(got.len() < entries.len() - 1, "{} arrived", got.len());

    // Through the pipeline: the retry completes the batch and nothing is counted as lost.
    let receiver = GrpcReceiver::start();
    *receiver.fail_once.lock().unwrap() = Some("user-1".to_owned());
    let sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .with_max_request_bytes(1)
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_max_batch(10)
        .with_retry(3, Duration::from_millis(10))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(10));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    let otlp = &stats.sinks[0];
    assert!(stats.is_lossless(), "{stats:?}");
    assert_eq!((otlp.written, otlp.retries), (10, 1), "{stats:?}");
    let received = request_ids(&receiver.received.lock().unwrap().records());
    let unique: std::collections::HashSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), 10);
}

#[test]
fn rejected_records_are_counted_as_failed_without_retry() {
    let receiver = GrpcReceiver::start_rejecting(2);
    let sink = OtlpLogSink::builder()
        .with_endpoint(receiver.endpoint())
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_max_batch(5)
        .with_linger(Duration::ZERO)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(5));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    let otlp = &stats.sinks[0];
    // The receiver rejects 2 records of every request (or all of a smaller one).
    let rejected: u64 = receiver
        .received
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.resource_logs[0].scope_logs[0].log_records.len().min(2) as u64)
        .sum();
    assert_eq!(otlp.retries, 0, "a partial success is not retried");
    assert_eq!(otlp.failed, rejected);
    assert_eq!(otlp.written + otlp.failed, 5);
    assert!(otlp
        .last_error
        .as_deref()
        .unwrap()
        .contains("records too large"));
}

/// The collector is down (nothing listens) or hangs (accepts and never answers): the JSONL sink
/// receives every entry while the OTLP sink is still failing, and the failures are counted.
#[test]
fn a_collector_that_is_down_or_hangs_holds_up_nothing() {
    let hanging = HangingReceiver::start();
    for (endpoint, expect) in [
        (closed_port_endpoint(), "failed"),
        (hanging.endpoint(), "timeout"),
    ] {
        let sink = OtlpLogSink::builder()
            .with_endpoint(&endpoint)
            .with_header("authorization", API_KEY)
            .with_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = AuditLayer::builder()
            .with_sink(sink)
            .with_sink(tracing_llm_audit::JsonlSink::new(dir.path()).unwrap())
            .with_hash_key(key())
            .with_retry(2, Duration::from_millis(20))
            .build()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || calls(200));
        // The JSONL trail has everything while the OTLP lane is still retrying its first
        // batch (3 attempts of 300 ms each at the least).
        let lines = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|f| {
                    std::fs::read_to_string(f.unwrap().path())
                        .unwrap()
                        .lines()
                        .count()
                })
                .sum::<usize>()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while lines() < 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "JSONL has {} of 200",
                lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let during = guard.stats();
        assert!(
            during.sinks[0].written == 0,
            "nothing can have reached a dead collector: {during:?}"
        );
        let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
        let (otlp, healthy) = (&stats.sinks[0], &stats.sinks[1]);
        assert_eq!(healthy.written, 200, "{stats:?}");
        assert_eq!(otlp.written, 0);
        assert_eq!(otlp.failed + otlp.dropped, 200, "{stats:?}");
        assert!(otlp.retries >= 2);
        let error = otlp.last_error.clone().unwrap();
        assert!(error.to_lowercase().contains(expect), "{error}");
        assert!(
            error.contains(&endpoint),
            "the error names the endpoint: {error}"
        );
        assert!(!error.contains("TOPSECRET"), "{error}");
    }
}

#[test]
fn header_values_never_appear_in_debug_output() {
    let builder = OtlpLogSink::builder()
        .with_endpoint("http://127.0.0.1:4317")
        .with_header("authorization", API_KEY);
    assert!(!format!("{builder:?}").contains("TOPSECRET"));
    let sink = builder.build().unwrap();
    let debug = format!("{sink:?}");
    assert!(debug.contains("authorization"), "{debug}");
    assert!(!debug.contains("TOPSECRET"), "{debug}");
    let http = OtlpLogSink::builder()
        .with_endpoint("http://127.0.0.1:4318/v1/logs")
        .with_protocol(Protocol::HttpProtobuf)
        .with_header("authorization", API_KEY)
        .build()
        .unwrap();
    assert!(!format!("{http:?}").contains("TOPSECRET"));
}

#[test]
fn an_invalid_header_is_named_without_its_value() {
    let err = OtlpLogSink::builder()
        .with_endpoint("http://127.0.0.1:4317")
        .with_header("authorization", "Bearer TOPSECRET\nInjected: 1")
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("authorization"), "{err}");
    assert!(!err.contains("TOPSECRET"), "{err}");
}

/// The one-call setup against one collector endpoint: spans (with the audit values on them),
/// log records and metrics all arrive, and one call shuts everything down.
#[test]
fn otlp_setup_sends_spans_logs_and_metrics_to_one_collector() {
    let receiver = GrpcReceiver::start();
    let otlp = OtlpSetup::builder()
        .with_endpoint(receiver.endpoint())
        .with_service_name("setup-test")
        .with_header("authorization", API_KEY)
        .build()
        .unwrap();
    assert!(!format!("{otlp:?}").contains("TOPSECRET"));
    let (audit, guard) = AuditLayer::builder()
        .with_sink(otlp.log_sink().unwrap())
        .with_sink(otlp.metrics_sink())
        .with_hash_key(key())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(audit)
        .with(otlp.tracing_layer());
    tracing::subscriber::with_default(subscriber, || calls(10));
    let done = otlp.shutdown_after(guard, Duration::from_secs(30));
    done.providers.unwrap();
    let stats = done.audit.unwrap();
    assert!(stats.is_lossless(), "{stats:?}");

    let records = receiver.received.lock().unwrap().records();
    assert_eq!(records.len(), 10);
    let signals = receiver.signals.lock().unwrap();
    let spans = signals.spans();
    assert_eq!(spans.len(), 10, "one span per call");
    for span in &spans {
        // The log record of the same call points at this very span.
        let record = records
            .iter()
            .find(|r| r.span_id == span.span_id)
            .expect("a log record with the span's id");
        assert_eq!(record.trace_id, span.trace_id);
        assert!(span.name.starts_with("chat gpt-4o-mini"), "{}", span.name);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        for name in [
            names::USAGE_COST,
            names::INPUT_HASH,
            names::STATUS,
            names::REQUEST_ID,
        ] {
            assert!(keys.contains(&name), "{name} missing on the span: {keys:?}");
        }
    }
    // With the default content policy (HashOnly) no byte of a prompt, input or output leaves
    // the process: not in the log records, the spans or the metrics.
    let exported = format!(
        "{:?}{:?}{:?}",
        receiver.received.lock().unwrap().requests,
        signals.traces,
        signals.metrics
    );
    for content in ["You are terse", "question 3", "\"ok\""] {
        assert!(!exported.contains(content), "{content} was exported");
    }
    assert!(
        exported.contains("hmac-sha256:"),
        "the hashes were exported"
    );
    let metric_names = signals.metric_names();
    for name in [
        names::METRIC_TOKEN_USAGE,
        names::METRIC_OPERATION_DURATION,
        names::METRIC_COST,
        names::METRIC_CALLS,
    ] {
        assert!(
            metric_names.iter().any(|n| n == name),
            "{name} not exported: {metric_names:?}"
        );
    }
    let resource = signals.traces[0].resource_spans[0]
        .resource
        .clone()
        .unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.clone().and_then(|v| v.value)
            == Some(Value::StringValue("setup-test".to_owned()))));
}

/// Applications build their telemetry inside `#[tokio::main]`: building, using and dropping
/// the sink and the setup there must not panic (a Tokio runtime refuses to be dropped or to
/// block inside another).
#[test]
fn works_inside_an_async_runtime() {
    let receiver = GrpcReceiver::start();
    let endpoint = receiver.endpoint();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let otlp = OtlpSetup::builder()
            .with_endpoint(endpoint)
            .build()
            .unwrap();
        let (audit, guard) = AuditLayer::builder()
            .with_sink(otlp.log_sink().unwrap())
            .with_sink(otlp.metrics_sink())
            .with_hash_key(key())
            .build()
            .unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(audit)
            .with(otlp.tracing_layer());
        tracing::subscriber::with_default(subscriber, || calls(3));
        // A sink that fails to build, and one built and dropped unused, inside the runtime.
        assert!(OtlpLogSink::builder()
            .with_endpoint("http://127.0.0.1:4317")
            .with_header("bad header name", "x")
            .build()
            .is_err());
        drop(OtlpLogSink::builder().build().unwrap());
        // Shutting down waits, so it belongs on a blocking thread, as in any async program.
        let done = tokio::task::spawn_blocking(move || {
            otlp.shutdown_after(guard, Duration::from_secs(30))
        })
        .await
        .unwrap();
        done.providers.unwrap();
        assert!(done.audit.unwrap().is_lossless());
        // The HTTP flavour builds and drops inside the runtime too.
        let http = OtlpSetup::builder()
            .with_endpoint("http://127.0.0.1:4318")
            .with_protocol(Protocol::HttpProtobuf)
            .build()
            .unwrap();
        drop(http);
    });
    assert_eq!(receiver.received.lock().unwrap().records().len(), 3);
}

/// A CA and a certificate it signed for `localhost`: (CA PEM, leaf chain PEM, leaf key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// `https` endpoints: the sink trusts the CA file it is given, and refuses a receiver whose
/// certificate no trusted CA signed.
#[test]
fn tls_with_a_private_ca() {
    let (ca, cert, cert_key) = certificates();
    let receiver = GrpcReceiver::start_tls(&cert, &cert_key);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let endpoint = format!("https://localhost:{}", receiver.addr.port());

    let trusted = OtlpLogSink::builder()
        .with_endpoint(&endpoint)
        .with_ca_certificate(&ca_file)
        .build()
        .unwrap();
    let untrusted = OtlpLogSink::builder()
        .with_endpoint(&endpoint)
        .with_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(trusted)
        .with_sink(untrusted)
        .with_hash_key(key())
        .with_retry(1, Duration::from_millis(10))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(5));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(stats.sinks[0].written, 5, "{stats:?}");
    assert_eq!(stats.sinks[1].written, 0, "{stats:?}");
    assert_eq!(stats.sinks[1].failed, 5, "{stats:?}");
    assert_eq!(receiver.received.lock().unwrap().records().len(), 5);
}

#[test]
fn a_missing_ca_file_is_a_clear_error() {
    let err = OtlpLogSink::builder()
        .with_endpoint("https://localhost:4317")
        .with_ca_certificate("/nonexistent/ca.pem")
        .build()
        .unwrap_err();
    let message = format!("{err}");
    assert!(
        message.contains("CA certificate") && message.contains("/nonexistent/ca.pem"),
        "{message}"
    );
}
