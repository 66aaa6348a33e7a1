//! OTLP export (feature `otlp`): audit entries as log records ([`OtlpLogSink`]), and a one-call
//! setup of span and metric export ([`OtlpSetup`]) for applications that have no OpenTelemetry
//! yet.
//!
//! Applications that already run `tracing-opentelemetry` keep it: add the audit layer before it
//! (see [`otel`](crate::otel)) and add an [`OtlpLogSink`] and an
//! [`OtelMetricsSink`](crate::otel::OtelMetricsSink) to the audit layer.

use std::path::PathBuf;

/// The settings every OTLP builder shares, on a type with the fields `overrides`,
/// `service_name` and `resource`: one definition, one set of docs.
macro_rules! export_settings {
    () => {
        /// The transport. Default: `OTEL_EXPORTER_OTLP_PROTOCOL`, else [`Protocol::Grpc`].
        #[must_use]
        pub fn with_protocol(mut self, protocol: Protocol) -> Self {
            self.overrides.protocol = Some(protocol);
            self
        }

        /// A header (gRPC metadata) sent with every export, for example an API key; added to
        /// those of `OTEL_EXPORTER_OTLP_HEADERS`. Its value is never printed.
        #[must_use]
        pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.overrides
                .headers
                .insert(name.into().to_ascii_lowercase(), Secret(value.into()));
            self
        }

        /// Timeout of one export. Default: `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s. Longer than
        /// zero and at most [`MAX_DURATION`](crate::otlp::MAX_DURATION) (one hour), or `build`
        /// fails naming it.
        #[must_use]
        pub fn with_timeout(mut self, timeout: Duration) -> Self {
            self.overrides.timeout = Some(timeout);
            self
        }

        /// The most bytes of a reply read from the receiver over HTTP (gRPC: the largest reply
        /// message of the log sink). Default:
        /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::otlp::DEFAULT_MAX_RESPONSE_BYTES), 64 KiB; `0`
        /// is taken as 1. The body is read as it arrives and never past this: a longer
        /// successful reply fails the export with an error naming the limit (and it is
        /// retried); of an error reply, only this much is read.
        #[must_use]
        pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
            self.overrides.max_response_bytes = Some(bytes.max(1));
            self
        }

        /// Compression of requests. Default: `OTEL_EXPORTER_OTLP_COMPRESSION`, else none.
        #[must_use]
        pub fn with_compression(mut self, compression: Compression) -> Self {
            self.overrides.compression = Some(compression);
            self
        }

        /// A PEM file of the CA that signed the receiver's certificate (for `https`
        /// endpoints; the system's roots are trusted too).
        #[must_use]
        pub fn with_ca_certificate(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.overrides.ca_certificate = Some(path.into());
            self
        }

        /// A client certificate and key (PEM files) for mutual TLS.
        #[must_use]
        pub fn with_client_identity(
            mut self,
            certificate: impl Into<std::path::PathBuf>,
            key: impl Into<std::path::PathBuf>,
        ) -> Self {
            self.overrides.client_certificate = Some(certificate.into());
            self.overrides.client_key = Some(key.into());
            self
        }

        /// The resource's `service.name`. Default: `OTEL_SERVICE_NAME`, else `service.name`
        /// in `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service`.
        #[must_use]
        pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
            self.service_name = Some(name.into());
            self
        }

        /// Another resource attribute (`deployment.environment.name`, ...).
        #[must_use]
        pub fn with_resource_attribute(
            mut self,
            key: impl Into<String>,
            value: impl Into<String>,
        ) -> Self {
            self.resource.push((key.into(), value.into()));
            self
        }
    };
}

pub(crate) use crate::runtime::OwnRuntime;

mod config;
mod logs;
mod setup;
mod transport;
mod wire;

pub use config::{
    Compression, Protocol, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, MAX_DURATION,
};
pub use logs::{OtlpLogSink, OtlpLogSinkBuilder, DEFAULT_MAX_REQUEST_BYTES};
pub use setup::{OtlpSetup, OtlpSetupBuilder, OtlpShutdown};

/// An OTLP exporter could not be configured or shut down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// A setting (or the environment variable it came from) is not valid.
    #[error("invalid OTLP setting {setting}: {reason}")]
    InvalidSetting {
        /// The builder method or environment variable.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value cannot be sent (the value is never shown).
    #[error("the OTLP header `{name}` is not a valid header name or value")]
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// A certificate or key file could not be read.
    #[error("cannot read the {what} file {path}")]
    ReadFile {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The exporter's runtime could not start.
    #[error("cannot start the OTLP exporter's runtime")]
    Runtime(#[source] std::io::Error),
    /// The OpenTelemetry SDK refused to build an exporter.
    #[error("cannot build the OTLP {signal} exporter: {message}")]
    Exporter {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The SDK's error.
        message: String,
    },
    /// Flushing or shutting a provider down failed.
    #[error("OTLP {signal} provider failed to shut down: {message}")]
    Shutdown {
        /// `traces` or `metrics`.
        signal: &'static str,
        /// The SDK's error.
        message: String,
    },
}

/// Resource attributes: `service.name` from the builder, else `OTEL_SERVICE_NAME`, else
/// `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service`; then the other pairs of
/// `OTEL_RESOURCE_ATTRIBUTES` and the builder's.
pub(crate) fn resource_attributes(
    service_name: Option<String>,
    extra: Vec<(String, String)>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = lookup("OTEL_RESOURCE_ATTRIBUTES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let from_attributes = attributes
        .iter()
        .find(|(k, _)| k == "service.name")
        .map(|(_, v)| v.clone());
    attributes.retain(|(k, _)| k != "service.name");
    let service = service_name
        .or_else(|| lookup("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()))
        .or(from_attributes)
        .unwrap_or_else(|| "unknown_service".to_owned());
    attributes.insert(0, ("service.name".to_owned(), service));
    for (key, value) in extra {
        attributes.retain(|(k, _)| *k != key);
        attributes.push((key, value));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_comes_from_the_builder_then_the_environment() {
        let env = |name: &str| match name {
            "OTEL_RESOURCE_ATTRIBUTES" => {
                Some("service.name=from-attrs,deployment.environment.name=prod".to_owned())
            }
            "OTEL_SERVICE_NAME" => Some("from-env".to_owned()),
            _ => None,
        };
        let attrs = resource_attributes(Some("from-code".into()), vec![], &env);
        assert_eq!(attrs[0], ("service.name".into(), "from-code".into()));
        assert!(attrs.contains(&("deployment.environment.name".into(), "prod".into())));
        let attrs = resource_attributes(None, vec![], &env);
        assert_eq!(attrs[0].1, "from-env");
        let attrs = resource_attributes(None, vec![], &|_| None);
        assert_eq!(attrs[0].1, "unknown_service");
    }
}
