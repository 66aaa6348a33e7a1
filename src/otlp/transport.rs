//! Sends OTLP export requests over gRPC (tonic) or HTTP/protobuf (reqwest), on a small Tokio
//! runtime of the sink's own.
//!
//! The receiver is a server we do not control. Redirects are not followed (a header would go
//! to the host it names), replies are read as they arrive and never past a limit, and whatever
//! text the receiver sends back passes the exporter's [`Scrubber`], bounded, before it goes into
//! an error.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::bytes::BufMut as _;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{Bytes, GrpcMethod};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::config::{Compression, ExportConfig, Protocol};
use super::OtlpError;
use crate::scrub::Scrubber;

/// The most characters of a receiver's text (a gRPC status message, a partial success's
/// message, an error body) kept in an error.
pub(crate) const MAX_RECEIVER_TEXT: usize = 1024;

/// What the receiver said about an export.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Accepted, with the number of records it rejected (partial success) and why.
    Accepted { rejected: u64, message: String },
    /// Refused for good (a malformed request, refused credentials, no logs service, a
    /// redirect): retrying cannot help.
    Refused(String),
    /// Failed in a way that may pass on a retry (unreachable, timeout, overloaded), after the
    /// wait the receiver asked for, if it did.
    Retry {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
        after: Option<Duration>,
    },
    /// Refused as larger than the receiver takes (HTTP 413; gRPC `OUT_OF_RANGE` or
    /// `RESOURCE_EXHAUSTED` saying the message is too large). A smaller request may pass; the
    /// same one never will.
    TooLarge(String),
}

impl Outcome {
    /// A failure to retry after the usual backoff.
    pub(crate) fn retry(message: String) -> Self {
        Self::Retry {
            message,
            source: None,
            after: None,
        }
    }
}

/// A client of the receiver. Clones share the connection (gRPC multiplexes its streams; the
/// HTTP client keeps a pool), so a sink sends several requests at once through clones.
#[derive(Clone)]
pub(crate) struct Transport {
    client: Client,
    receiver: Receiver,
}

/// The receiver's address, and how much of what it says is read and kept.
#[derive(Clone)]
struct Receiver {
    endpoint: Arc<str>,
    /// The endpoint as messages show it (its query redacted).
    shown: Arc<str>,
    /// Knows every header value and the endpoint's query: whatever the receiver says passes it.
    scrubber: Arc<Scrubber>,
    max_response_bytes: usize,
}

#[derive(Clone)]
enum Client {
    Grpc {
        client: tonic::client::Grpc<Channel>,
        metadata: MetadataMap,
    },
    Http {
        client: reqwest::Client,
        headers: reqwest::header::HeaderMap,
        gzip: bool,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and metadata hold API keys: their values are never shown.
        let mut debug = match &self.client {
            Client::Grpc { metadata, .. } => {
                let mut debug = f.debug_struct("Grpc");
                debug.field("metadata", &metadata.keys().collect::<Vec<_>>());
                debug
            }
            Client::Http { headers, gzip, .. } => {
                let mut debug = f.debug_struct("Http");
                debug
                    .field("headers", &headers.keys().collect::<Vec<_>>())
                    .field("gzip", gzip);
                debug
            }
        };
        debug
            .field("endpoint", &self.receiver.shown)
            .field("max_response_bytes", &self.receiver.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the client. Must run inside the runtime that will drive it.
    pub(crate) fn new(config: &ExportConfig) -> Result<Self, OtlpError> {
        let client = match config.protocol {
            Protocol::Grpc => Client::grpc(config)?,
            Protocol::HttpProtobuf => Client::http(config)?,
        };
        let receiver = Receiver {
            endpoint: config.endpoint.0.as_str().into(),
            shown: config.endpoint.shown().into(),
            scrubber: Arc::new(config.scrubber()),
            max_response_bytes: config.max_response_bytes,
        };
        Ok(Self { client, receiver })
    }

    /// The endpoint as messages show it (its query redacted).
    pub(crate) fn shown(&self) -> &str {
        &self.receiver.shown
    }

    /// Sends one `ExportLogsServiceRequest`, already encoded as protobuf, through a clone of
    /// the client: the future borrows nothing, so it can be spawned.
    pub(crate) fn export(
        &self,
        request: Bytes,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let transport = self.clone();
        async move { transport.send(request).await }
    }

    /// Sends through this clone, whose headers or metadata go with the request as they are.
    async fn send(self, request: Bytes) -> Outcome {
        let Self { client, receiver } = self;
        match client {
            Client::Grpc {
                mut client,
                metadata,
            } => {
                let mut request = tonic::Request::new(request);
                *request.metadata_mut() = metadata;
                match grpc_export(&mut client, request).await {
                    Ok(response) => receiver.accepted(response.into_inner()),
                    Err(status) => receiver.grpc_failure(&status),
                }
            }
            Client::Http {
                client,
                headers,
                gzip,
            } => {
                let mut body = request;
                let mut post = client
                    .post(&*receiver.endpoint)
                    .headers(headers)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
                if gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    if encoder.write_all(&body).is_ok() {
                        if let Ok(compressed) = encoder.finish() {
                            body = Bytes::from(compressed);
                            post = post.header(reqwest::header::CONTENT_ENCODING, "gzip");
                        }
                    }
                }
                match post.body(body).send().await {
                    Ok(response) => receiver.http_answer(response).await,
                    Err(error) => Outcome::Retry {
                        message: format!("OTLP/HTTP export to {} failed", receiver.shown),
                        source: Some(Box::new(error.without_url())),
                        after: None,
                    },
                }
            }
        }
    }
}

impl Receiver {
    /// What an HTTP answer means, its body read up to the limit.
    async fn http_answer(&self, response: reqwest::Response) -> Outcome {
        let status = response.status();
        let after = retry_after(response.headers(), SystemTime::now());
        let protobuf = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
        let body = read_bounded(response, self.max_response_bytes).await;
        let shown = &self.shown;
        if status.is_success() {
            return match body {
                Ok((body, true)) => self.accepted(
                    ExportLogsServiceResponse::decode(body.as_slice()).unwrap_or_default(),
                ),
                Ok((_, false)) => Outcome::retry(format!(
                    "the reply of the OTLP receiver at {shown} is larger than the limit of {} \
                     bytes (`with_max_response_bytes`); it was not read further",
                    self.max_response_bytes
                )),
                Err(error) => Outcome::Retry {
                    message: format!("reading the reply of the OTLP receiver at {shown} failed"),
                    source: Some(Box::new(error.without_url())),
                    after: None,
                },
            };
        }
        let mut message = format!("OTLP/HTTP export to {shown} answered {status}");
        if let Ok((body, _)) = &body {
            let text = self.receiver_text(&body_text(body, protobuf));
            if !text.trim().is_empty() {
                message.push_str(": ");
                message.push_str(text.trim());
            }
        }
        match status.as_u16() {
            413 => Outcome::TooLarge(message),
            // May pass later: a timeout, throttling, a receiver in trouble.
            408 | 429 | 500.. => Outcome::Retry {
                message,
                source: None,
                after,
            },
            // A redirect (never followed: the headers would go to another host), a malformed
            // request, refused credentials, no logs service at this URL: the same request
            // meets the same answer on every retry.
            300..=499 => Outcome::Refused(if status.is_redirection() {
                format!("{message} (redirects are not followed; set the endpoint to the final URL)")
            } else {
                message
            }),
            _ => Outcome::retry(message),
        }
    }

    /// The receiver's text, scrubbed of every secret this exporter knows, bounded, and with
    /// control characters made spaces.
    fn receiver_text(&self, text: &str) -> String {
        self.scrubber
            .scrub(text, MAX_RECEIVER_TEXT)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    fn accepted(&self, response: ExportLogsServiceResponse) -> Outcome {
        match response.partial_success {
            Some(partial) if partial.rejected_log_records > 0 => Outcome::Accepted {
                rejected: u64::try_from(partial.rejected_log_records).unwrap_or(0),
                message: self.receiver_text(&partial.error_message),
            },
            _ => Outcome::Accepted {
                rejected: 0,
                message: String::new(),
            },
        }
    }

    fn grpc_failure(&self, status: &tonic::Status) -> Outcome {
        let shown = &self.shown;
        // tonic's own refusal of a reply over `max_decoding_message_size`: the receiver's
        // answer, not its verdict on the request.
        let limit = self.max_response_bytes;
        if status.code() == tonic::Code::OutOfRange
            && status
                .message()
                .starts_with("Error, decoded message length too large")
            && status
                .message()
                .ends_with(&format!("the limit is: {limit} bytes"))
        {
            return Outcome::retry(format!(
                "the reply of the OTLP receiver at {shown} is larger than the limit of {limit} \
                 bytes (`with_max_response_bytes`); it was not read"
            ));
        }
        let message = format!(
            "OTLP/gRPC export to {shown} failed: {:?}: {}",
            status.code(),
            self.receiver_text(status.message())
        );
        // A message over the receiver's limit: tonic answers OUT_OF_RANGE ("decoded message
        // length too large"), grpc-go and grpcio RESOURCE_EXHAUSTED ("received message larger
        // than max"). RESOURCE_EXHAUSTED otherwise means overloaded, which a retry may pass.
        let too_large = {
            let text = status.message().to_ascii_lowercase();
            text.contains("too large") || text.contains("larger than max")
        };
        if too_large
            && matches!(
                status.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            )
        {
            return Outcome::TooLarge(message);
        }
        // A malformed request, a receiver without a logs service, or credentials it refuses: the
        // same request fails the same way on every retry.
        match status.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::Unimplemented
            | tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied => Outcome::Refused(message),
            _ => Outcome::Retry {
                message,
                source: None,
                after: retry_info(status.details()),
            },
        }
    }
}

impl Client {
    fn grpc(config: &ExportConfig) -> Result<Self, OtlpError> {
        let invalid = |reason: String| OtlpError::InvalidSetting {
            setting: "endpoint",
            reason,
        };
        let mut endpoint = Endpoint::from_shared(config.endpoint.0.clone())
            .map_err(|e| {
                invalid(format!(
                    "`{}` is not a valid URI: {e}",
                    config.endpoint.shown()
                ))
            })?
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if config.is_tls() {
            let files = config.tls_files()?;
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = files.ca {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = files.identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| invalid(format!("TLS configuration failed: {e}")))?;
        }
        let mut client = tonic::client::Grpc::new(endpoint.connect_lazy())
            .max_decoding_message_size(config.max_response_bytes);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let metadata = config.grpc_metadata()?;
        Ok(Self::Grpc { client, metadata })
    }

    fn http(config: &ExportConfig) -> Result<Self, OtlpError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect would take the headers (API keys) to whatever host it names.
            .redirect(reqwest::redirect::Policy::none());
        let (ca, identity) = config.reqwest_tls()?;
        if let Some(ca) = ca {
            builder = builder.add_root_certificate(ca);
        }
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| OtlpError::InvalidSetting {
            setting: "http client",
            reason: e.to_string(),
        })?;
        let headers = config.http_headers()?;
        Ok(Self::Http {
            client,
            headers,
            gzip: config.compression == Compression::Gzip,
        })
    }
}

/// Reads a body as it arrives, keeping at most `limit` bytes: the bytes, and whether that was
/// all of it. What is past the limit is never read (the connection is dropped).
async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// The text of an error body: the message of a `google.rpc.Status` (what OTLP/HTTP receivers
/// send), else the body as text.
fn body_text(body: &[u8], protobuf: bool) -> String {
    if protobuf {
        if let Ok(status) = RpcStatus::decode(body) {
            return status.message;
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

/// The wait an HTTP `Retry-After` asks for, in delta-seconds or as an HTTP-date (one in the
/// past asks for none).
pub(crate) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    Some(
        SystemTime::from(at)
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    )
}

/// The retry delay of a `google.rpc.RetryInfo` among a gRPC status's details.
fn retry_info(details: &[u8]) -> Option<Duration> {
    RpcStatus::decode(details)
        .ok()?
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))
        .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay)
        .map(|delay| {
            let seconds = u64::try_from(delay.seconds).unwrap_or(0);
            let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
            Duration::new(seconds, nanos)
        })
}

/// `google.rpc.Status`: the body of an OTLP/HTTP error, the details of a gRPC status.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `LogsService/Export` as the generated client calls it, with a request already encoded.
async fn grpc_export(
    client: &mut tonic::client::Grpc<Channel>,
    mut request: tonic::Request<Bytes>,
) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
    request.extensions_mut().insert(GrpcMethod::new(
        "opentelemetry.proto.collector.logs.v1.LogsService",
        "Export",
    ));
    let path =
        PathAndQuery::from_static("/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    client.unary(request, path, EncodedCodec).await
}

/// A gRPC codec whose requests are protobuf bytes already and whose responses are
/// `ExportLogsServiceResponse`s.
#[derive(Debug, Clone, Copy, Default)]
struct EncodedCodec;

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for EncodedCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for EncodedCodec {
    type Item = ExportLogsServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use prost::Message as _;

    use super::{
        body_text, retry_after, retry_info, ProtoAny, ProtoDuration, RetryInfo, RpcStatus,
    };

    fn headers(value: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, value.parse().unwrap());
        headers
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        // Sun, 06 Nov 1994 08:49:37 GMT, the example of RFC 9110.
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let at = |secs: u64| retry_after(&headers(&secs.to_string()), date);
        assert_eq!(at(1), Some(Duration::from_secs(1)));
        assert_eq!(at(3600), Some(Duration::from_secs(3600)));
        let before = date - Duration::from_secs(90);
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), before),
            Some(Duration::from_secs(90))
        );
        // A date gone by asks for no wait.
        let after = date + Duration::from_secs(5);
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), after),
            Some(Duration::ZERO)
        );
        for garbage in ["soon", "-1", "1.5", "Sunday, 06-Nov-94 08:49:37 GMT", ""] {
            assert_eq!(retry_after(&headers(garbage), date), None, "{garbage}");
        }
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new(), date), None);
    }

    #[test]
    fn retry_info_is_found_among_the_status_details() {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: 2,
                nanos: 500_000_000,
            }),
        };
        let status = RpcStatus {
            code: 8,
            message: "slow down".to_owned(),
            details: vec![
                ProtoAny {
                    type_url: "type.googleapis.com/google.rpc.DebugInfo".to_owned(),
                    value: vec![1, 2, 3],
                },
                ProtoAny {
                    type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
                    value: info.encode_to_vec(),
                },
            ],
        };
        assert_eq!(
            retry_info(&status.encode_to_vec()),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(retry_info(&[]), None);
        assert_eq!(retry_info(b"\xff\xff not protobuf"), None);
        let negative = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: -5,
                nanos: -1,
            }),
        };
        let status = RpcStatus {
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".to_owned(),
                value: negative.encode_to_vec(),
            }],
            ..RpcStatus::default()
        };
        assert_eq!(retry_info(&status.encode_to_vec()), Some(Duration::ZERO));
    }

    #[test]
    fn an_error_body_is_the_message_of_its_status_or_its_text() {
        let status = RpcStatus {
            code: 3,
            message: "bad records".to_owned(),
            details: Vec::new(),
        };
        assert_eq!(body_text(&status.encode_to_vec(), true), "bad records");
        assert_eq!(body_text(b"plain text", false), "plain text");
    }
}
