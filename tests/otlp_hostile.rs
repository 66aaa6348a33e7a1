//! `OtlpLogSink` and `OtlpSetup` against receivers that redirect, echo keys, flood and throttle,
//! all on 127.0.0.1: no header reaches another host, no key reaches an error, a reply of a
//! gigabyte is cut at the limit in bounded memory, throttling is waited out instead of lost, and
//! the retry rules are the README's.
#![cfg(feature = "otlp")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message as _;
use tracing_llm_audit::otlp::{OtlpLogSink, OtlpLogSinkBuilder, OtlpSetup, Protocol};
use tracing_llm_audit::sink::MAX_RETRY_AFTER;
use tracing_llm_audit::{AuditEntry, AuditLayer, AuditSink as _, HashKey, LlmSpanExt, SinkError};
use tracing_subscriber::layer::SubscriberExt;

const SECRET: &str = "sk-live-TOPSECRET-9f8e7d";

fn key() -> HashKey {
    HashKey::new("hostile", [7u8; 32]).unwrap()
}

fn calls(n: usize) {
    for i in 0..n {
        let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o-mini");
        let _enter = span.enter();
        span.record_input(format!("question {i}").as_bytes());
        span.record_output(b"ok");
    }
}

fn entries(n: usize) -> Vec<AuditEntry> {
    (0..n).map(|_| AuditEntry::new("chat")).collect()
}

// ---------------------------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------------------------

/// One request an HTTP receiver got.
#[derive(Debug, Clone)]
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    at: Instant,
}

impl Request {
    fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("/")
    }
}

type Answer = dyn Fn(usize, &Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers the n-th (counted
/// over all connections, from 0) as `answer` writes.
struct HttpServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    fn start<F>(answer: F) -> Self
    where
        F: Fn(usize, &Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, answer) = (shared.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &seen, &*answer));
            }
        });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>, answer: &Answer) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            line: line.trim_end().to_owned(),
            headers,
            at: Instant::now(),
        };
        let index = {
            let mut seen = seen.lock().unwrap();
            seen.push(request.clone());
            seen.len() - 1
        };
        if answer(index, &request, &mut writer).is_err() {
            return;
        }
    }
}

/// Writes a whole answer in one write (no delayed-ACK wait between head and body).
fn reply(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)
}

fn ok(stream: &mut TcpStream) -> std::io::Result<()> {
    let body = ExportLogsServiceResponse::default().encode_to_vec();
    reply(
        stream,
        "200 OK",
        &[("content-type", "application/x-protobuf".to_owned())],
        &body,
    )
}

type GrpcAnswer =
    dyn Fn(usize) -> Result<ExportLogsServiceResponse, tonic::Status> + Send + Sync + 'static;

#[derive(Clone)]
struct ScriptedLogs {
    answer: Arc<GrpcAnswer>,
    requests: Arc<AtomicUsize>,
    records: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl LogsService for ScriptedLogs {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let answer = (self.answer)(self.requests.fetch_add(1, SeqCst));
        if answer.is_ok() {
            let records = request
                .get_ref()
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum::<usize>();
            self.records.fetch_add(records, SeqCst);
        }
        answer.map(tonic::Response::new)
    }
}

/// A gRPC logs receiver on 127.0.0.1 answering the n-th request (from 0) as `answer` says.
struct GrpcServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    /// Records of the requests it accepted.
    records: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl GrpcServer {
    fn start(
        answer: impl Fn(usize) -> Result<ExportLogsServiceResponse, tonic::Status>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let service = ScriptedLogs {
            answer: Arc::new(answer),
            requests: Arc::new(AtomicUsize::new(0)),
            records: Arc::new(AtomicUsize::new(0)),
        };
        let (requests, records) = (service.requests.clone(), service.records.clone());
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(service))
                .serve_with_incoming(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await
                .unwrap();
        });
        Self {
            addr,
            requests,
            records,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn http_sink(url: String) -> OtlpLogSinkBuilder {
    OtlpLogSink::builder()
        .with_endpoint(url)
        .with_protocol(Protocol::HttpProtobuf)
        .with_header("api-key", SECRET)
}

fn grpc_sink(server: &GrpcServer) -> OtlpLogSinkBuilder {
    OtlpLogSink::builder()
        .with_endpoint(server.endpoint())
        .with_header("api-key", SECRET)
}

// ---------------------------------------------------------------------------------------------
// Egress
// ---------------------------------------------------------------------------------------------

/// Both HTTP clients (the log sink's and the span exporter's of `OtlpSetup`) meet a 307 to a
/// second server: it gets nothing, and the log sink counts its entries failed without retry,
/// naming the status.
#[test]
fn a_redirect_takes_no_header_to_another_host() {
    let elsewhere = HttpServer::start(|_, _, stream| ok(stream));
    let target = format!("http://{}", elsewhere.addr);
    let redirecting = HttpServer::start(move |_, request, stream| {
        let location = format!("{target}{}", request.path());
        reply(
            stream,
            "307 Temporary Redirect",
            &[("location", location)],
            b"",
        )
    });

    let sink = http_sink(redirecting.url("/v1/logs")).build().unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_retry(2, Duration::from_millis(1))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(3));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    let otlp = &stats.sinks[0];
    assert_eq!(
        (otlp.written, otlp.failed, otlp.retries),
        (0, 3, 0),
        "{stats:?}"
    );
    let error = otlp.last_error.clone().unwrap();
    assert!(error.contains("307"), "{error}");

    let setup = OtlpSetup::builder()
        .with_endpoint(redirecting.url(""))
        .with_protocol(Protocol::HttpProtobuf)
        .with_header("api-key", SECRET)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(setup.tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("some work").in_scope(|| {});
    });
    // The export fails (a redirect is an error): what matters is where it went.
    let _ = setup.shutdown();
    assert!(
        redirecting
            .requests()
            .iter()
            .any(|r| r.path() == "/v1/traces"),
        "the span exporter sent nothing: {:?}",
        redirecting.requests()
    );
    // The key went to the configured host, and only there.
    for request in redirecting.requests() {
        assert!(
            request
                .headers
                .contains(&("api-key".to_owned(), SECRET.to_owned())),
            "{request:?}"
        );
    }
    assert!(
        elsewhere.requests().is_empty(),
        "the other host got {:?}",
        elsewhere.requests()
    );
}

// ---------------------------------------------------------------------------------------------
// Scrubbing
// ---------------------------------------------------------------------------------------------

/// The header value as a receiver could echo it: as it is, JSON-escaped, percent-encoded
/// (once and twice), and inside base64 at two alignments.
fn spellings() -> Vec<String> {
    let json: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", u32::from(c)))
        .collect();
    let percent: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
    let twice = percent.replace('%', "%25");
    let base64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_owned(),
        json,
        percent,
        twice,
        base64.encode(SECRET),
        base64.encode(format!("user:{SECRET}")),
    ]
}

/// A receiver's message quoting the key in every spelling.
fn echo() -> String {
    spellings()
        .iter()
        .map(|s| format!("the key \"{s}\" is not valid"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains("TOPSECRET"), "{what}: {text}");
    for spelling in spellings() {
        assert!(!text.contains(&spelling), "{what}: {spelling} in {text}");
    }
    // The receiver's text is there, bounded, without the key.
    assert!(text.contains("is not valid"), "{what}: {text}");
}

/// Everything the crate says about a failed export: the sink's error (`Display`, `Debug`) and,
/// through the pipeline, `Stats` with its `last_error`.
fn outputs(builder: OtlpLogSinkBuilder) -> Vec<(&'static str, String)> {
    let mut sink = builder.clone().build().unwrap();
    let error = sink.write_batch(&entries(2)).unwrap_err();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(builder.build().unwrap())
        .with_hash_key(key())
        .with_retry(0, Duration::from_millis(1))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(2));
    let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
    vec![
        ("error", error.to_string()),
        ("error debug", format!("{error:?}")),
        ("last_error", stats.sinks[0].last_error.clone().unwrap()),
        ("stats debug", format!("{stats:?}")),
    ]
}

#[test]
fn a_key_echoed_by_the_receiver_in_any_spelling_reaches_no_error() {
    let grpc_status = GrpcServer::start(|_| Err(tonic::Status::unavailable(echo())));
    let grpc_partial = GrpcServer::start(|_| {
        Ok(ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 1,
                error_message: echo(),
            }),
        })
    });
    let http_text = HttpServer::start(|_, _, stream| {
        reply(
            stream,
            "400 Bad Request",
            &[("content-type", "text/plain".to_owned())],
            echo().as_bytes(),
        )
    });
    let http_status = HttpServer::start(|_, _, stream| {
        // A `google.rpc.Status` as OTLP/HTTP receivers send it: code and message.
        let mut body = Vec::new();
        prost::encoding::int32::encode(1, &14, &mut body);
        prost::encoding::string::encode(2, &echo(), &mut body);
        reply(
            stream,
            "503 Service Unavailable",
            &[("content-type", "application/x-protobuf".to_owned())],
            &body,
        )
    });
    let http_partial = HttpServer::start(|_, _, stream| {
        let body = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 1,
                error_message: echo(),
            }),
        }
        .encode_to_vec();
        reply(
            stream,
            "200 OK",
            &[("content-type", "application/x-protobuf".to_owned())],
            &body,
        )
    });
    for (receiver, builder) in [
        ("gRPC status", grpc_sink(&grpc_status)),
        ("gRPC partial success", grpc_sink(&grpc_partial)),
        ("HTTP text body", http_sink(http_text.url("/v1/logs"))),
        ("HTTP status body", http_sink(http_status.url("/v1/logs"))),
        (
            "HTTP partial success",
            http_sink(http_partial.url("/v1/logs")),
        ),
    ] {
        for (what, text) in outputs(builder) {
            assert_clean(&format!("{receiver}, {what}"), &text);
        }
    }
}

/// A receiver's text is bounded, however long: a status message of 8,000 characters makes an
/// error of about a kilobyte.
#[test]
fn a_receivers_text_is_bounded() {
    let long = GrpcServer::start(|_| Err(tonic::Status::unavailable("x".repeat(8_000))));
    let mut sink = grpc_sink(&long).build().unwrap();
    let error = sink.write_batch(&entries(1)).unwrap_err().to_string();
    assert!(error.len() < 2_000, "{} bytes", error.len());
    assert!(error.contains("Unavailable: xxx"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Bounded reads
// ---------------------------------------------------------------------------------------------

const GIB: usize = 1 << 30;

/// Peak resident memory of this process (Linux), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

const MEMORY_CHILD: &str = "LLM_AUDIT_OTLP_MEMORY_CHILD";

/// A receiver answers `200 OK` with a body of a gigabyte (with a length, and chunked), written
/// as it goes, never held: the export fails naming the limit and the process's peak memory
/// grows by far less than the body. The test runs itself in a process of its own, so that no
/// other test moves the peak.
#[test]
fn a_reply_of_a_gigabyte_fails_at_the_limit_in_bounded_memory() {
    const NAME: &str = "a_reply_of_a_gigabyte_fails_at_the_limit_in_bounded_memory";
    if std::env::var_os(MEMORY_CHILD).is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(MEMORY_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let flood = HttpServer::start(|index, _, stream| {
        let chunked = index % 2 == 1;
        let framing = if chunked {
            "transfer-encoding: chunked".to_owned()
        } else {
            format!("content-length: {GIB}")
        };
        stream.write_all(
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n{framing}\r\n\r\n")
                .as_bytes(),
        )?;
        let block = vec![0u8; 64 * 1024];
        for _ in 0..GIB / block.len() {
            if chunked {
                stream.write_all(format!("{:x}\r\n", block.len()).as_bytes())?;
            }
            stream.write_all(&block)?;
            if chunked {
                stream.write_all(b"\r\n")?;
            }
        }
        if chunked {
            stream.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    });
    let mut sink = http_sink(flood.url("/v1/logs"))
        // Time enough to read it all, were it read.
        .with_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let before = peak_memory();
    for _ in 0..2 {
        let error = sink.write_batch(&entries(1)).unwrap_err().to_string();
        assert!(
            error.contains("limit of 65536 bytes") && error.contains("with_max_response_bytes"),
            "{error}"
        );
    }
    let grown = peak_memory().saturating_sub(before);
    println!("peak memory grew by {} KiB", grown / 1024);
    assert!(grown < 64 << 20, "peak memory grew by {} MiB", grown >> 20);
    assert_eq!(flood.requests().len(), 2);
}

/// gRPC: a reply message over the limit is refused by tonic before it is read, and the error
/// names the limit; a higher limit lets it in.
#[test]
fn a_grpc_reply_over_the_limit_fails_naming_it() {
    let big = GrpcServer::start(|_| {
        Ok(ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 1,
                error_message: "y".repeat(100_000),
            }),
        })
    });
    let mut sink = grpc_sink(&big).build().unwrap();
    let error = sink.write_batch(&entries(1)).unwrap_err();
    assert_eq!(error.accepted(), 0, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("limit of 65536 bytes") && message.contains("with_max_response_bytes"),
        "{message}"
    );
    let mut sink = grpc_sink(&big)
        .with_max_response_bytes(1 << 20)
        .build()
        .unwrap();
    let error = sink.write_batch(&entries(1)).unwrap_err();
    assert_eq!((error.accepted(), error.rejected()), (1, 1), "{error}");
    // The receiver's message, bounded.
    assert!(error.to_string().len() < 2_000, "{error}");
}

// ---------------------------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------------------------

#[test]
fn durations_out_of_range_are_refused_when_built() {
    let named = |error: String, setting: &str| {
        assert!(
            error.contains(setting) && error.contains("3600s"),
            "{setting}: {error}"
        );
    };
    for timeout in [Duration::MAX, Duration::from_secs(3601), Duration::ZERO] {
        let error = OtlpLogSink::builder()
            .with_endpoint("http://127.0.0.1:4317")
            .with_timeout(timeout)
            .build()
            .unwrap_err();
        named(error.to_string(), "with_timeout");
        let error = OtlpSetup::builder()
            .with_endpoint("http://127.0.0.1:4317")
            .with_timeout(timeout)
            .build()
            .unwrap_err();
        named(error.to_string(), "with_timeout");
        let error = OtlpSetup::builder()
            .with_endpoint("http://127.0.0.1:4317")
            .with_metrics_interval(timeout)
            .build()
            .unwrap_err();
        named(error.to_string(), "with_metrics_interval");
    }
    let error = OtlpLogSink::builder()
        .with_max_retry_delay(Duration::from_secs(3600))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("with_max_retry_delay") && error.contains("300s"),
        "{error}"
    );
    // The longest timeout works: a batch against a closed port fails, without a panic.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut sink = OtlpLogSink::builder()
        .with_endpoint(closed)
        .with_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert!(sink.write_batch(&entries(1)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------------------------

/// Runs `n` calls through `sink` with no retries left for failures: whatever arrives got there
/// by waiting out the receiver.
fn through_pipeline(sink: OtlpLogSink, n: usize) -> tracing_llm_audit::Stats {
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_retry(0, Duration::from_millis(1))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(n));
    guard.shutdown(Duration::from_secs(60)).unwrap()
}

/// When the first answer came, as a receiver that throttles tracks it.
fn first_answer(at: &Mutex<Option<Instant>>) -> Instant {
    *at.lock().unwrap().get_or_insert_with(Instant::now)
}

/// HTTP 429 with `Retry-After: 1`, for as long as a second has not passed since the first
/// 429, then 200. The pipeline's own retries (three, after 50, 100 and 200 ms) would all come
/// too early; waiting the second asked for, nothing fails and no retry is used.
#[test]
fn http_retry_after_in_seconds_is_waited_out_and_nothing_fails() {
    let first = Mutex::new(None);
    let receiver = HttpServer::start(move |_, _, stream| {
        if first_answer(&first).elapsed() < Duration::from_secs(1) {
            reply(
                stream,
                "429 Too Many Requests",
                &[("retry-after", "1".to_owned())],
                b"",
            )
        } else {
            ok(stream)
        }
    });
    let (layer, guard) = AuditLayer::builder()
        .with_sink(http_sink(receiver.url("/v1/logs")).build().unwrap())
        .with_hash_key(key())
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(3));
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let otlp = &stats.sinks[0];
    assert!(stats.is_lossless(), "{stats:?}");
    assert_eq!(
        (otlp.written, otlp.throttled, otlp.retries),
        (3, 1, 0),
        "{stats:?}"
    );
    let at: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    assert!(at[1] - at[0] >= Duration::from_secs(1), "{at:?}");
}

/// `Retry-After` as an HTTP-date, on a 503.
#[test]
fn http_retry_after_as_a_date_is_waited_out() {
    let receiver = HttpServer::start(|index, _, stream| {
        if index == 0 {
            let soon = time::OffsetDateTime::from(SystemTime::now() + Duration::from_secs(1));
            let date = soon
                .format(time::macros::format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] \
                     [hour]:[minute]:[second] GMT"
                ))
                .unwrap();
            reply(
                stream,
                "503 Service Unavailable",
                &[("retry-after", date)],
                b"",
            )
        } else {
            ok(stream)
        }
    });
    let stats = through_pipeline(http_sink(receiver.url("/v1/logs")).build().unwrap(), 2);
    let otlp = &stats.sinks[0];
    assert!(stats.is_lossless(), "{stats:?}");
    assert_eq!((otlp.throttled, otlp.retries), (1, 0), "{stats:?}");
}

/// gRPC `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` of one second, then OK.
#[test]
fn grpc_retry_info_is_waited_out_and_nothing_fails() {
    let first = Mutex::new(None);
    let receiver = GrpcServer::start(move |_| {
        if first_answer(&first).elapsed() >= Duration::from_secs(1) {
            return Ok(ExportLogsServiceResponse::default());
        }
        // google.rpc.Status { code: 8, message, details: [Any { RetryInfo { 1 s } }] }
        let mut delay = Vec::new();
        prost::encoding::int64::encode(1, &1, &mut delay);
        let mut info = Vec::new();
        prost::encoding::bytes::encode(1, &delay, &mut info);
        let mut any = Vec::new();
        prost::encoding::string::encode(
            1,
            &"type.googleapis.com/google.rpc.RetryInfo".to_owned(),
            &mut any,
        );
        prost::encoding::bytes::encode(2, &info, &mut any);
        let mut status = Vec::new();
        prost::encoding::int32::encode(1, &8, &mut status);
        prost::encoding::string::encode(2, &"over quota".to_owned(), &mut status);
        prost::encoding::bytes::encode(3, &any, &mut status);
        Err(tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            "over quota",
            status.into(),
        ))
    });
    let stats = through_pipeline(grpc_sink(&receiver).build().unwrap(), 3);
    let otlp = &stats.sinks[0];
    assert!(stats.is_lossless(), "{stats:?}");
    assert_eq!((otlp.throttled, otlp.retries), (1, 0), "{stats:?}");
    assert_eq!(receiver.records.load(SeqCst), 3);
    assert!(receiver.requests.load(SeqCst) >= 2);
}

/// A `Retry-After` of an hour is cut to the sink's `with_max_retry_delay` (300 ms here, so the
/// test needs no hour): the error carries the cut wait, and through the pipeline the entries
/// arrive after it. The pipeline cuts any sink's wait at `MAX_RETRY_AFTER` (5 minutes).
#[test]
fn a_retry_after_of_an_hour_is_capped() {
    let receiver = HttpServer::start(|index, _, stream| {
        if index < 2 {
            reply(
                stream,
                "429 Too Many Requests",
                &[("retry-after", "3600".to_owned())],
                b"",
            )
        } else {
            ok(stream)
        }
    });
    let builder =
        http_sink(receiver.url("/v1/logs")).with_max_retry_delay(Duration::from_millis(300));
    let error = builder
        .clone()
        .build()
        .unwrap()
        .write_batch(&entries(1))
        .unwrap_err();
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_millis(300)),
        "{error}"
    );
    assert!(error.to_string().contains("429"), "{error}");
    let stats = through_pipeline(builder.build().unwrap(), 2);
    assert!(stats.is_lossless(), "{stats:?}");
    assert_eq!(stats.sinks[0].throttled, 1, "{stats:?}");
    let at: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    assert!(at[2] - at[1] >= Duration::from_millis(300), "{at:?}");
    assert_eq!(
        SinkError::new("x")
            .with_retry_after(Duration::MAX)
            .retry_after(),
        Some(MAX_RETRY_AFTER)
    );
    assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(300));
}

/// A receiver that throttles for good (`Retry-After: 300`, cut to 200 ms) does not hold up
/// shutdown: once the pipeline shuts down, each wait it asks for is one of the retries of
/// `with_retry`, and when they are used up the entries count as failed.
#[test]
fn a_receiver_that_throttles_for_good_does_not_hold_up_shutdown() {
    let receiver = HttpServer::start(|_, _, stream| {
        reply(
            stream,
            "429 Too Many Requests",
            &[("retry-after", "300".to_owned())],
            b"",
        )
    });
    let sink = http_sink(receiver.url("/v1/logs"))
        .with_max_retry_delay(Duration::from_millis(200))
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_retry(1, Duration::from_millis(1))
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(3));
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let otlp = &stats.sinks[0];
    assert_eq!((otlp.written, otlp.failed), (0, 3), "{stats:?}");
    assert!(otlp.throttled >= 1 && otlp.retries >= 1, "{stats:?}");
    // The first batch waited twice (a delay, then a retry) as asked, not the 1 ms backoff.
    let at: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    assert!(at[2] - at[0] >= Duration::from_millis(400), "{at:?}");
}

/// With a backlog too small to hold what arrives meanwhile, a throttled attempt is one of the
/// retries of `with_retry` (after the wait asked for): waiting for free would drop newer
/// entries instead.
#[test]
fn a_full_backlog_turns_throttling_into_failed_attempts() {
    let receiver = HttpServer::start(|_, _, stream| {
        reply(
            stream,
            "429 Too Many Requests",
            &[("retry-after", "300".to_owned())],
            b"",
        )
    });
    let sink = http_sink(receiver.url("/v1/logs"))
        .with_max_retry_delay(Duration::from_millis(100))
        .build()
        .unwrap();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_hash_key(key())
        .with_retry(1, Duration::from_millis(1))
        .with_sink_backlog(1)
        .with_max_batch(1)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || calls(1));
    let stats = guard.shutdown(Duration::from_secs(60)).unwrap();
    let otlp = &stats.sinks[0];
    assert_eq!(
        (otlp.failed, otlp.throttled, otlp.retries),
        (1, 0, 1),
        "{stats:?}"
    );
    // The retry came after the wait asked for (cut to 100 ms), not the 1 ms backoff.
    let at: Vec<Instant> = receiver.requests().iter().map(|r| r.at).collect();
    assert!(at[1] - at[0] >= Duration::from_millis(100), "{at:?}");
}

// ---------------------------------------------------------------------------------------------
// Retry rules
// ---------------------------------------------------------------------------------------------

/// 3xx, 400, 401, 403, 404 (and the other 4xx) are refused for good: the batch counts as
/// done and rejected, and the pipeline does not retry it. 408, 429 and 5xx are retried. 413 is
/// "too large" (a single record refused, a larger request retried).
#[test]
fn each_http_status_is_refused_or_retried_as_the_readme_says() {
    let cases = [
        ("301 Moved Permanently", false),
        ("307 Temporary Redirect", false),
        ("400 Bad Request", false),
        ("401 Unauthorized", false),
        ("403 Forbidden", false),
        ("404 Not Found", false),
        ("405 Method Not Allowed", false),
        ("408 Request Timeout", true),
        ("429 Too Many Requests", true),
        ("500 Internal Server Error", true),
        ("502 Bad Gateway", true),
        ("503 Service Unavailable", true),
        ("504 Gateway Timeout", true),
    ];
    for (status, retried) in cases {
        let receiver = HttpServer::start(move |_, _, stream| reply(stream, status, &[], b""));
        let mut sink = http_sink(receiver.url("/v1/logs")).build().unwrap();
        let error = sink.write_batch(&entries(3)).unwrap_err();
        let code = &status[..3];
        assert!(error.to_string().contains(code), "{status}: {error}");
        assert!(!error.to_string().contains("TOPSECRET"), "{error}");
        let expected = if retried { (0, 0) } else { (3, 3) };
        assert_eq!(
            (error.accepted(), error.rejected()),
            expected,
            "{status}: {error}"
        );
        assert_eq!(error.retry_after(), None, "{status}");
    }
    // Through the pipeline: refused credentials are not retried, an overloaded receiver is.
    for (status, retries) in [("401 Unauthorized", 0), ("503 Service Unavailable", 2)] {
        let receiver = HttpServer::start(move |_, _, stream| reply(stream, status, &[], b""));
        let (layer, guard) = AuditLayer::builder()
            .with_sink(http_sink(receiver.url("/v1/logs")).build().unwrap())
            .with_hash_key(key())
            .with_retry(2, Duration::from_millis(1))
            .with_max_batch(2)
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            calls(2);
        });
        let stats = guard.shutdown(Duration::from_secs(30)).unwrap();
        let otlp = &stats.sinks[0];
        assert_eq!(otlp.failed, 2, "{status}: {stats:?}");
        // Each batch once, or three times.
        let requests = receiver.requests().len() as u64;
        assert_eq!(
            otlp.retries,
            requests * retries / (retries + 1),
            "{status}: {stats:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/// A key in the endpoint's query never shows: not in `Debug` of the builders, the sink or the
/// setup, nor in the errors of a failed export.
#[test]
fn a_key_in_the_endpoint_query_shows_nowhere() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let url = format!("{closed}/v1/logs?api_key={SECRET}");
    let builder = OtlpLogSink::builder()
        .with_endpoint(&url)
        .with_protocol(Protocol::HttpProtobuf)
        .with_timeout(Duration::from_millis(500));
    let mut sink = builder.clone().build().unwrap();
    assert_eq!(sink.endpoint(), url, "the sink sends to the URL as given");
    let error = sink.write_batch(&entries(1)).unwrap_err();
    let setup_builder = OtlpSetup::builder()
        .with_endpoint(format!("{closed}?api_key={SECRET}"))
        .with_protocol(Protocol::HttpProtobuf);
    let shown = format!("{builder:?} {sink:?} {setup_builder:?} {error} {error:?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
    assert!(shown.contains("api_key=[redacted]"), "{shown}");
    let setup = setup_builder.build().unwrap();
    let shown = format!("{setup:?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}
