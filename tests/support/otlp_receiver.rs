//! In-process OTLP log receivers built on the official `opentelemetry-proto` types: gRPC
//! (tonic) and HTTP/protobuf, plus a receiver that accepts connections and never answers.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// What a receiver got: every request, and the headers (lower-case names) of each.
#[derive(Debug, Default)]
pub struct Received {
    pub requests: Vec<ExportLogsServiceRequest>,
    pub headers: Vec<Vec<(String, String)>>,
}

impl Received {
    pub fn records(&self) -> Vec<LogRecord> {
        self.requests
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }
}

/// Traces and metrics a receiver got.
#[derive(Debug, Default)]
pub struct Signals {
    pub traces: Vec<ExportTraceServiceRequest>,
    /// The metadata (ASCII, lower-case names) of every trace export.
    pub trace_headers: Vec<Vec<(String, String)>>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
}

impl Signals {
    pub fn spans(&self) -> Vec<Span> {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Names of every metric received.
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.iter().map(|m| m.name.clone()))
            .collect()
    }
}

fn ascii_metadata(metadata: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    metadata
        .iter()
        .filter_map(|kv| match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect()
}

#[derive(Clone)]
struct OtherSignals(Arc<Mutex<Signals>>);

#[tonic::async_trait]
impl TraceService for OtherSignals {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = ascii_metadata(request.metadata());
        let mut signals = self.0.lock().unwrap();
        signals.trace_headers.push(headers);
        signals.traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for OtherSignals {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[derive(Clone)]
struct Service {
    received: Arc<Mutex<Received>>,
    reject_per_request: i64,
    fail_once: Arc<Mutex<Option<String>>>,
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let failing = self.fail_once.lock().unwrap().take_if(|user| {
            request
                .get_ref()
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .flat_map(|r| &r.attributes)
                .any(|kv| {
                    kv.key == "user.id"
                        && kv.value.as_ref().and_then(|v| v.value.as_ref())
                            == Some(&any_value::Value::StringValue(user.clone()))
                })
        });
        if let Some(user) = failing {
            return Err(tonic::Status::unavailable(format!(
                "not now (a request with {user})"
            )));
        }
        let mut received = self.received.lock().unwrap();
        received.headers.push(headers);
        received.requests.push(request.into_inner());
        let partial_success = (self.reject_per_request > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: self.reject_per_request,
            error_message: "records too large".to_owned(),
        });
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success,
        }))
    }
}

/// A gRPC receiver on 127.0.0.1 running on a runtime of its own.
pub struct GrpcReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
    /// Traces and metrics (the receiver is a whole collector's OTLP endpoint).
    pub signals: Arc<Mutex<Signals>>,
    /// A user id: the next request holding a record of this user fails (`UNAVAILABLE`) and
    /// is not kept, once.
    pub fail_once: Arc<Mutex<Option<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl GrpcReceiver {
    pub fn start() -> Self {
        Self::start_rejecting(0)
    }

    /// A receiver that reports `reject` records of every request as rejected (partial success).
    pub fn start_rejecting(reject: i64) -> Self {
        Self::start_with(reject, None)
    }

    /// A receiver speaking TLS with this certificate chain and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(
            0,
            Some(tonic::transport::Identity::from_pem(cert_pem, key_pem)),
        )
    }

    fn start_with(reject: i64, tls: Option<tonic::transport::Identity>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let fail_once = Arc::new(Mutex::new(None));
        let service = Service {
            received: received.clone(),
            reject_per_request: reject,
            fail_once: fail_once.clone(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let signals = Arc::new(Mutex::new(Signals::default()));
        let others = OtherSignals(signals.clone());
        runtime.spawn(async move {
            let mut server = tonic::transport::Server::builder();
            if let Some(identity) = tls {
                server = server
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                    .unwrap();
            }
            server
                .add_service(
                    LogsServiceServer::new(service)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .add_service(TraceServiceServer::new(others.clone()))
                .add_service(MetricsServiceServer::new(others))
                // TCP_NODELAY, as `Server::serve` sets it (the builder's setting does not
                // reach a listener of our own): with Nagle on, the response's trailers wait
                // for the client's delayed ACK.
                .serve_with_incoming(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                )
                .await
                .unwrap();
        });
        Self {
            addr,
            received,
            signals,
            fail_once,
            _runtime: runtime,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// An HTTP/1.1 OTLP receiver on 127.0.0.1 (protobuf bodies, gzip or not).
pub struct HttpReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Received>>,
}

impl HttpReceiver {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0")
    }

    /// On a fixed address, for a collector whose configuration names it.
    pub fn start_on(addr: &str) -> Self {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                std::thread::spawn(move || serve_http(stream, &shared));
            }
        });
        Self { addr, received }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/logs", self.addr)
    }
}

fn serve_http(stream: TcpStream, received: &Mutex<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let length: usize = header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        if header("content-encoding").as_deref() == Some("gzip") {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut decoded)
                .unwrap();
            body = decoded;
        }
        assert!(request_line.starts_with("POST /v1/logs "), "{request_line}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/x-protobuf")
        );
        let request = ExportLogsServiceRequest::decode(&body[..]).unwrap();
        {
            let mut received = received.lock().unwrap();
            received.headers.push(headers);
            received.requests.push(request);
        }
        let body = ExportLogsServiceResponse::default().encode_to_vec();
        // One write for the head and the body: written piecemeal, the pieces after the first
        // wait for the client's delayed ACK (Nagle), 40 ms on Linux, as no real collector does.
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        writer.write_all(&response).unwrap();
    }
}

/// Accepts connections and never answers, as a collector that hangs.
pub struct HangingReceiver {
    pub addr: SocketAddr,
    connections: Arc<Mutex<Vec<TcpStream>>>,
}

impl HangingReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let kept = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                kept.lock().unwrap().push(stream);
            }
        });
        Self { addr, connections }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
