//! Where and how to send OTLP: from the builder, else from the standard
//! `OTEL_EXPORTER_OTLP_*` environment variables, else the defaults of the specification.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::OtlpError;

/// Default timeout of one export (the specification's 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default endpoint for gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default endpoint for HTTP/protobuf.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC, usually on port 4317. The default.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, usually on port 4318.
    HttpProtobuf,
}

impl Protocol {
    fn parse(value: &str, variable: &'static str) -> Result<Self, OtlpError> {
        match value.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(OtlpError::InvalidSetting {
                setting: variable,
                reason: format!(
                    "`{other}` is not a supported protocol; use `grpc` or `http/protobuf`"
                ),
            }),
        }
    }
}

/// Compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// None. The default.
    #[default]
    None,
    /// gzip.
    Gzip,
}

impl Compression {
    fn parse(value: &str, variable: &'static str) -> Result<Self, OtlpError> {
        match value.trim() {
            "gzip" => Ok(Self::Gzip),
            "none" | "" => Ok(Self::None),
            other => Err(OtlpError::InvalidSetting {
                setting: variable,
                reason: format!("`{other}` is not a supported compression; use `gzip` or `none`"),
            }),
        }
    }
}

/// A header value that never shows in `Debug` output or error messages (API keys, tokens).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything an exporter needs to reach its receiver.
#[derive(Debug, Clone)]
pub(crate) struct ExportConfig {
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) headers: BTreeMap<String, Secret>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
    pub(crate) ca_certificate: Option<PathBuf>,
    pub(crate) client_certificate: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

/// Settings given in code; each one left `None` comes from the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) endpoint: Option<String>,
    /// The endpoint is a base URL to which HTTP appends the signal's path (`OtlpSetup`), not the
    /// full URL of one signal (`OtlpLogSink`).
    pub(crate) endpoint_is_base: bool,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: BTreeMap<String, Secret>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<Compression>,
    pub(crate) ca_certificate: Option<PathBuf>,
    pub(crate) client_certificate: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

/// Reads an environment variable, signal-specific first (`OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`),
/// then general (`OTEL_EXPORTER_OTLP_TIMEOUT`). Returns the value and the variable's name.
fn env(
    lookup: &dyn Fn(&str) -> Option<String>,
    signal: &str,
    name: &'static str,
    general: &'static str,
) -> Option<(String, bool, &'static str)> {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_{name}");
    if let Some(value) = lookup(&specific).filter(|v| !v.trim().is_empty()) {
        return Some((value, true, general));
    }
    lookup(general)
        .filter(|v| !v.trim().is_empty())
        .map(|value| (value, false, general))
}

impl ExportConfig {
    /// Resolves the configuration of one signal (`LOGS`, `TRACES`, `METRICS`): the builder wins
    /// over the environment, which wins over the defaults.
    pub(crate) fn resolve(
        overrides: &Overrides,
        signal: &str,
        path: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, OtlpError> {
        let protocol = match overrides.protocol {
            Some(protocol) => protocol,
            None => match env(lookup, signal, "PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
                Some((value, _, variable)) => Protocol::parse(&value, variable)?,
                None => Protocol::Grpc,
            },
        };
        let endpoint = match &overrides.endpoint {
            Some(endpoint) if overrides.endpoint_is_base && protocol == Protocol::HttpProtobuf => {
                format!("{}{path}", endpoint.trim_end_matches('/'))
            }
            Some(endpoint) => endpoint.clone(),
            None => match env(lookup, signal, "ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") {
                // A signal-specific endpoint is the full URL; the general one is a base to which
                // HTTP appends the signal's path.
                Some((value, true, _)) => value,
                Some((value, false, _)) if protocol == Protocol::HttpProtobuf => {
                    format!("{}{path}", value.trim_end_matches('/'))
                }
                Some((value, false, _)) => value,
                None if protocol == Protocol::HttpProtobuf => {
                    format!("{DEFAULT_HTTP_ENDPOINT}{path}")
                }
                None => DEFAULT_GRPC_ENDPOINT.to_owned(),
            },
        };
        check_endpoint(&endpoint)?;
        let mut headers = match env(lookup, signal, "HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
            Some((value, _, variable)) => parse_headers(&value, variable)?,
            None => BTreeMap::new(),
        };
        headers.extend(
            overrides
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let timeout = match overrides.timeout {
            Some(timeout) => timeout,
            None => match env(lookup, signal, "TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
                Some((value, _, variable)) => {
                    let ms =
                        value
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| OtlpError::InvalidSetting {
                                setting: variable,
                                reason: format!("`{value}` is not a number of milliseconds"),
                            })?;
                    Duration::from_millis(ms)
                }
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(OtlpError::InvalidSetting {
                setting: "timeout",
                reason: "the export timeout must be longer than zero".to_owned(),
            });
        }
        let compression = match overrides.compression {
            Some(compression) => compression,
            None => match env(
                lookup,
                signal,
                "COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ) {
                Some((value, _, variable)) => Compression::parse(&value, variable)?,
                None => Compression::None,
            },
        };
        let path_setting = |given: &Option<PathBuf>, name: &'static str, general: &'static str| {
            given
                .clone()
                .or_else(|| env(lookup, signal, name, general).map(|(v, _, _)| PathBuf::from(v)))
        };
        Ok(Self {
            endpoint,
            protocol,
            headers,
            timeout,
            compression,
            ca_certificate: path_setting(
                &overrides.ca_certificate,
                "CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ),
            client_certificate: path_setting(
                &overrides.client_certificate,
                "CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
            client_key: path_setting(
                &overrides.client_key,
                "CLIENT_KEY",
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ),
        })
    }

    /// Whether the endpoint is `https`.
    pub(crate) fn is_tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// The headers as gRPC metadata; a name or value that cannot be sent is named, never shown.
    pub(crate) fn grpc_metadata(&self) -> Result<tonic::metadata::MetadataMap, OtlpError> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (key, value) in &self.headers {
            let invalid = || OtlpError::InvalidHeader { name: key.clone() };
            let name =
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()).map_err(|_| invalid())?;
            let value = tonic::metadata::MetadataValue::try_from(value.0.as_str())
                .map_err(|_| invalid())?;
            metadata.insert(name, value);
        }
        Ok(metadata)
    }

    /// The headers as HTTP headers, marked sensitive.
    pub(crate) fn http_headers(&self) -> Result<http::HeaderMap, OtlpError> {
        let mut headers = http::HeaderMap::new();
        for (key, value) in &self.headers {
            let invalid = || OtlpError::InvalidHeader { name: key.clone() };
            let name = http::HeaderName::from_bytes(key.as_bytes()).map_err(|_| invalid())?;
            let mut value = http::HeaderValue::from_str(&value.0).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// The CA certificate and the client identity (certificate, key) files, read.
    pub(crate) fn tls_files(&self) -> Result<TlsFiles, OtlpError> {
        let read = |path: &std::path::Path, what: &'static str| {
            std::fs::read(path).map_err(|source| OtlpError::ReadFile {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let ca = self
            .ca_certificate
            .as_deref()
            .map(|path| read(path, "CA certificate"))
            .transpose()?;
        let identity = match (&self.client_certificate, &self.client_key) {
            (Some(cert), Some(key)) => {
                Some((read(cert, "client certificate")?, read(key, "client key")?))
            }
            _ => None,
        };
        Ok(TlsFiles { ca, identity })
    }

    /// The CA certificate and client identity for a reqwest client (async or blocking).
    pub(crate) fn reqwest_tls(
        &self,
    ) -> Result<(Option<reqwest::Certificate>, Option<reqwest::Identity>), OtlpError> {
        let files = self.tls_files()?;
        let ca = files
            .ca
            .map(|pem| {
                reqwest::Certificate::from_pem(&pem).map_err(|e| OtlpError::InvalidSetting {
                    setting: "ca_certificate",
                    reason: format!("not a PEM certificate: {e}"),
                })
            })
            .transpose()?;
        let identity = files
            .identity
            .map(|(mut pem, key)| {
                pem.extend(key);
                reqwest::Identity::from_pem(&pem).map_err(|_| OtlpError::InvalidSetting {
                    setting: "client_key",
                    reason: "the client certificate and key are not a valid PEM pair".to_owned(),
                })
            })
            .transpose()?;
        Ok((ca, identity))
    }
}

/// TLS files of an [`ExportConfig`], read.
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// An endpoint must be an `http` or `https` URL without credentials in it (credentials belong
/// in headers, which are never printed).
fn check_endpoint(endpoint: &str) -> Result<(), OtlpError> {
    // Credentials first, and never echoed: `user:token@host` without a scheme is still a secret.
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(OtlpError::InvalidSetting {
            setting: "endpoint",
            reason: "the endpoint URL contains credentials; pass them as a header instead \
                     (for example `authorization`)"
                .to_owned(),
        });
    }
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| OtlpError::InvalidSetting {
            setting: "endpoint",
            reason: format!("`{endpoint}` must start with http:// or https://"),
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(OtlpError::InvalidSetting {
            setting: "endpoint",
            reason: "the endpoint URL contains credentials; pass them as a header instead \
                     (for example `authorization`)"
                .to_owned(),
        });
    }
    if authority.is_empty() {
        return Err(OtlpError::InvalidSetting {
            setting: "endpoint",
            reason: format!("`{endpoint}` has no host"),
        });
    }
    Ok(())
}

/// Parses `key1=value1,key2=value2` (W3C baggage style, values percent-encoded).
fn parse_headers(
    value: &str,
    variable: &'static str,
) -> Result<BTreeMap<String, Secret>, OtlpError> {
    let mut headers = BTreeMap::new();
    for (index, pair) in value.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            // Never echo the pair: it may be a token.
            return Err(OtlpError::InvalidSetting {
                setting: variable,
                reason: format!("entry {} is not of the form key=value", index + 1),
            });
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(OtlpError::InvalidSetting {
                setting: variable,
                reason: format!("entry {} has an empty key", index + 1),
            });
        }
        headers.insert(key, Secret(percent_decode(value.trim())));
    }
    Ok(headers)
}

fn percent_decode(value: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        char::from(byte)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn resolve(overrides: &Overrides, vars: &[(&str, &str)]) -> Result<ExportConfig, OtlpError> {
        ExportConfig::resolve(overrides, "LOGS", "/v1/logs", &lookup(vars))
    }

    #[test]
    fn defaults_are_grpc_on_4317() {
        let config = resolve(&Overrides::default(), &[]).unwrap();
        assert_eq!(config.protocol, Protocol::Grpc);
        assert_eq!(config.endpoint, "http://localhost:4317");
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.compression, Compression::None);
    }

    #[test]
    fn http_appends_the_signal_path_to_the_general_endpoint_only() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ];
        let config = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(config.endpoint, "http://collector:4318/v1/logs");
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:9999/custom",
            ),
        ];
        let config = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(config.endpoint, "http://logs:9999/custom");
    }

    #[test]
    fn the_builder_wins_over_the_environment() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-tenant=env,authorization=Bearer%20env",
            ),
        ];
        let from_env = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(from_env.endpoint, "http://from-env:4317");
        assert_eq!(from_env.timeout, Duration::from_millis(2500));
        assert_eq!(from_env.compression, Compression::Gzip);
        assert_eq!(from_env.headers["authorization"].0, "Bearer env");
        let mut overrides = Overrides {
            endpoint: Some("https://from-code:4317".to_owned()),
            timeout: Some(Duration::from_secs(1)),
            compression: Some(Compression::None),
            ..Overrides::default()
        };
        overrides
            .headers
            .insert("authorization".to_owned(), Secret("Bearer code".to_owned()));
        let config = resolve(&overrides, &vars).unwrap();
        assert_eq!(config.endpoint, "https://from-code:4317");
        assert!(config.is_tls());
        assert_eq!(config.timeout, Duration::from_secs(1));
        assert_eq!(config.compression, Compression::None);
        assert_eq!(config.headers["authorization"].0, "Bearer code");
        assert_eq!(config.headers["x-tenant"].0, "env");
    }

    #[test]
    fn signal_specific_variables_win_over_general_ones() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "700"),
        ];
        let config = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(config.timeout, Duration::from_millis(700));
    }

    #[test]
    fn bad_settings_name_the_variable_and_never_echo_header_values() {
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && err.contains("http/json"));
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-ok=1,sk-live-SECRET")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("entry 2"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_TIMEOUT"), "{err}");
        let err = resolve(
            &Overrides::default(),
            &[(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://user:hunter2@collector:4317",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("credentials") && !err.contains("hunter2"),
            "{err}"
        );
        // Without a scheme the credentials are still never echoed.
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "user:hunter2@collector:4317")],
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn header_values_never_show_in_debug() {
        let config = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=sk-ant-SECRET123")],
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("api-key"));
        assert!(!debug.contains("SECRET123"), "{debug}");
    }
}
