//! Sends OTLP export requests over gRPC (tonic) or HTTP/protobuf (reqwest), on a small Tokio
//! runtime of the sink's own.

use std::io::Write as _;

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

/// What the receiver said about an export.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Accepted, with the number of records it rejected (partial success) and why.
    Accepted { rejected: u64, message: String },
    /// Refused for good (a malformed request): retrying cannot help.
    Refused(String),
    /// Failed in a way that may pass on a retry (unreachable, timeout, overloaded).
    Retry(String, Option<Box<dyn std::error::Error + Send + Sync>>),
    /// Refused as larger than the receiver takes (HTTP 413; gRPC `OUT_OF_RANGE` or
    /// `RESOURCE_EXHAUSTED` saying the message is too large). A smaller request may pass; the
    /// same one never will.
    TooLarge(String),
}

/// A client of the receiver. Clones share the connection (gRPC multiplexes its streams; the
/// HTTP client keeps a pool), so a sink sends several requests at once through clones.
#[derive(Clone)]
pub(crate) enum Transport {
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
        match self {
            Self::Grpc { metadata, .. } => f
                .debug_struct("Grpc")
                .field("metadata", &metadata.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
            Self::Http { headers, gzip, .. } => f
                .debug_struct("Http")
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .field("gzip", gzip)
                .finish_non_exhaustive(),
        }
    }
}

impl Transport {
    /// Builds the client. Must run inside the runtime that will drive it.
    pub(crate) fn new(config: &ExportConfig) -> Result<Self, OtlpError> {
        match config.protocol {
            Protocol::Grpc => Self::grpc(config),
            Protocol::HttpProtobuf => Self::http(config),
        }
    }

    fn grpc(config: &ExportConfig) -> Result<Self, OtlpError> {
        let invalid = |reason: String| OtlpError::InvalidSetting {
            setting: "endpoint",
            reason,
        };
        let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| invalid(format!("`{}` is not a valid URI: {e}", config.endpoint)))?
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
        let mut client = tonic::client::Grpc::new(endpoint.connect_lazy());
        if config.compression == Compression::Gzip {
            client = client.send_compressed(CompressionEncoding::Gzip);
        }
        let metadata = config.grpc_metadata()?;
        Ok(Self::Grpc { client, metadata })
    }

    fn http(config: &ExportConfig) -> Result<Self, OtlpError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
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

    /// Sends one `ExportLogsServiceRequest`, already encoded as protobuf, through a clone of
    /// the client: the future borrows nothing, so it can be spawned.
    pub(crate) fn export(
        &self,
        endpoint: std::sync::Arc<str>,
        request: Bytes,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let transport = self.clone();
        async move { transport.send(&endpoint, request).await }
    }

    /// Sends through this clone, whose headers or metadata go with the request as they are.
    async fn send(self, endpoint: &str, request: Bytes) -> Outcome {
        match self {
            Self::Grpc {
                mut client,
                metadata,
            } => {
                let mut request = tonic::Request::new(request);
                *request.metadata_mut() = metadata;
                match grpc_export(&mut client, request).await {
                    Ok(response) => accepted(response.into_inner()),
                    Err(status) => grpc_failure(endpoint, &status),
                }
            }
            Self::Http {
                client,
                headers,
                gzip,
            } => {
                let mut body = request;
                let mut post = client
                    .post(endpoint)
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
                let response = match post.body(body).send().await {
                    Ok(response) => response,
                    Err(error) => {
                        return Outcome::Retry(
                            format!("OTLP/HTTP export to {endpoint} failed"),
                            Some(Box::new(error.without_url())),
                        )
                    }
                };
                let status = response.status();
                let bytes = response.bytes().await.unwrap_or_default();
                if status.is_success() {
                    let decoded =
                        ExportLogsServiceResponse::decode(bytes.as_ref()).unwrap_or_default();
                    return accepted(decoded);
                }
                let message = format!("OTLP/HTTP export to {endpoint} answered {status}");
                // 400 means the request itself is bad; everything else (401, 403, 404, 429,
                // 5xx) may pass later, once a token, a route or the receiver is fixed.
                if status == reqwest::StatusCode::BAD_REQUEST {
                    Outcome::Refused(message)
                } else if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                    Outcome::TooLarge(message)
                } else {
                    Outcome::Retry(message, None)
                }
            }
        }
    }
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

fn accepted(response: ExportLogsServiceResponse) -> Outcome {
    match response.partial_success {
        Some(partial) if partial.rejected_log_records > 0 => Outcome::Accepted {
            rejected: u64::try_from(partial.rejected_log_records).unwrap_or(0),
            message: partial.error_message,
        },
        _ => Outcome::Accepted {
            rejected: 0,
            message: String::new(),
        },
    }
}

fn grpc_failure(endpoint: &str, status: &tonic::Status) -> Outcome {
    let message = format!(
        "OTLP/gRPC export to {endpoint} failed: {:?}: {}",
        status.code(),
        status.message()
    );
    // A message over the receiver's limit: tonic answers OUT_OF_RANGE ("decoded message length
    // too large"), grpc-go and grpcio RESOURCE_EXHAUSTED ("received message larger than max").
    // RESOURCE_EXHAUSTED otherwise means overloaded, which a retry may pass.
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
        _ => Outcome::Retry(message, None),
    }
}
