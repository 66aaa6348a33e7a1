//! Where and how to send OTLP: from the builder, else from the standard
//! `OTEL_EXPORTER_OTLP_*` environment variables, else the defaults of the specification.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::OtlpError;
use crate::scrub::{Scrubber, REDACTED};

/// Default timeout of one export (the specification's 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout or interval any OTLP setting takes: one hour. A longer one (up to
/// `Duration::MAX`) is refused when the exporter is built, naming the setting.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Default of `with_max_response_bytes`: 64 KiB. An OTLP reply is a few bytes (a partial
/// success with a message at most).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
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

/// An endpoint URL. A query or fragment may carry a key (`?api_key=...`): `Debug` and
/// [`shown`](Self::shown) replace every value in them with `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct EndpointUrl(pub(crate) String);

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shown(), f)
    }
}

impl EndpointUrl {
    /// The URL for messages: the values of its query and its fragment redacted.
    pub(crate) fn shown(&self) -> String {
        let (base, query, fragment) = split_url(&self.0);
        let mut shown = base.to_owned();
        if let Some(query) = query {
            shown.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) => format!("{key}={REDACTED}"),
                    None if pair.is_empty() => String::new(),
                    None => REDACTED.to_owned(),
                })
                .collect();
            shown.push_str(&pairs.join("&"));
        }
        if fragment.is_some() {
            shown.push('#');
            shown.push_str(REDACTED);
        }
        shown
    }

    /// The values of the query and the fragment, as written and percent-decoded: what
    /// [`shown`](Self::shown) hides, for the scrubber.
    fn secrets(&self) -> Vec<String> {
        let (_, query, fragment) = split_url(&self.0);
        let values = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .map(|pair| pair.split_once('=').map_or(pair, |(_, value)| value))
            .chain(fragment);
        let mut secrets = Vec::new();
        for value in values {
            secrets.push(value.to_owned());
            if let Ok(decoded) = String::from_utf8(percent_decode(&value.replace('+', " "))) {
                secrets.push(decoded);
            }
        }
        secrets
    }
}

/// `(before the query, the query, the fragment)` of a URL, without their `?` and `#`.
fn split_url(url: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    match rest.split_once('?') {
        Some((base, query)) => (base, Some(query), fragment),
        None => (rest, None, fragment),
    }
}

/// A base URL with a signal's path (`/v1/logs`) added to its path, before any query.
fn with_signal_path(base: &str, path: &str) -> String {
    let at = base.find(['?', '#']).unwrap_or(base.len());
    let (head, tail) = base.split_at(at);
    format!("{}{path}{tail}", head.trim_end_matches('/'))
}

/// Everything an exporter needs to reach its receiver.
#[derive(Debug, Clone)]
pub(crate) struct ExportConfig {
    pub(crate) endpoint: EndpointUrl,
    pub(crate) protocol: Protocol,
    pub(crate) headers: BTreeMap<String, Secret>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
    pub(crate) ca_certificate: Option<PathBuf>,
    pub(crate) client_certificate: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    /// The most bytes of a reply read from the receiver.
    pub(crate) max_response_bytes: usize,
}

/// Settings given in code; each one left `None` comes from the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) endpoint: Option<EndpointUrl>,
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
    pub(crate) max_response_bytes: Option<usize>,
}

macro_rules! signal_variables {
    ($signal:literal) => {
        [
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_ENDPOINT"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_PROTOCOL"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_HEADERS"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_TIMEOUT"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_COMPRESSION"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_CERTIFICATE"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_CLIENT_CERTIFICATE"),
            concat!("OTEL_EXPORTER_OTLP_", $signal, "_CLIENT_KEY"),
        ]
    };
}

/// The signal-specific variables, so that an error names the one that was set.
const SIGNAL_VARIABLES: [[&str; 8]; 3] = [
    signal_variables!("LOGS"),
    signal_variables!("TRACES"),
    signal_variables!("METRICS"),
];

/// Reads an environment variable, signal-specific first (`OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`),
/// then general (`OTEL_EXPORTER_OTLP_TIMEOUT`). Returns the value, whether it was the
/// signal-specific one, and the name of the variable it came from.
fn env(
    lookup: &dyn Fn(&str) -> Option<String>,
    signal: &str,
    name: &'static str,
    general: &'static str,
) -> Option<(String, bool, &'static str)> {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_{name}");
    if let Some(value) = lookup(&specific).filter(|v| !v.trim().is_empty()) {
        let variable = SIGNAL_VARIABLES
            .iter()
            .flatten()
            .find(|variable| **variable == specific)
            .copied()
            .unwrap_or(general);
        return Some((value, true, variable));
    }
    lookup(general)
        .filter(|v| !v.trim().is_empty())
        .map(|value| (value, false, general))
}

/// Refuses a duration of zero or longer than [`MAX_DURATION`], naming the setting.
pub(crate) fn check_duration(value: Duration, setting: &'static str) -> Result<(), OtlpError> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(OtlpError::InvalidSetting {
            setting,
            reason: format!(
                "{value:?} is out of range: it must be longer than zero and at most \
                 {MAX_DURATION:?}"
            ),
        });
    }
    Ok(())
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
        let endpoint = EndpointUrl(match &overrides.endpoint {
            Some(endpoint) if overrides.endpoint_is_base && protocol == Protocol::HttpProtobuf => {
                with_signal_path(&endpoint.0, path)
            }
            Some(endpoint) => endpoint.0.clone(),
            None => match env(lookup, signal, "ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") {
                // A signal-specific endpoint is the full URL; the general one is a base to which
                // HTTP adds the signal's path.
                Some((value, true, _)) => value,
                Some((value, false, _)) if protocol == Protocol::HttpProtobuf => {
                    with_signal_path(&value, path)
                }
                Some((value, false, _)) => value,
                None if protocol == Protocol::HttpProtobuf => {
                    format!("{DEFAULT_HTTP_ENDPOINT}{path}")
                }
                None => DEFAULT_GRPC_ENDPOINT.to_owned(),
            },
        });
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
            Some(timeout) => {
                check_duration(timeout, "with_timeout")?;
                timeout
            }
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
                    let timeout = Duration::from_millis(ms);
                    check_duration(timeout, variable)?;
                    timeout
                }
                None => DEFAULT_TIMEOUT,
            },
        };
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
            max_response_bytes: overrides
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        })
    }

    /// Whether the endpoint is `https`.
    pub(crate) fn is_tls(&self) -> bool {
        self.endpoint.0.starts_with("https://")
    }

    /// A scrubber for what the receiver says: it knows the [`secrets`](Self::secrets).
    pub(crate) fn scrubber(&self) -> Scrubber {
        let secrets = self.secrets();
        Scrubber::new(secrets.iter().map(String::as_str))
    }

    /// Every header value (and the credential in it after an `authorization` scheme, decoded
    /// for `Basic`) and the values of the endpoint's query.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut secrets = self.endpoint.secrets();
        for Secret(value) in self.headers.values() {
            secrets.push(value.clone());
            if let Some((scheme, credential)) = value.trim().split_once(char::is_whitespace) {
                let credential = credential.trim();
                secrets.push(credential.to_owned());
                if scheme.eq_ignore_ascii_case("basic") {
                    let decoded = base64::Engine::decode(
                        &base64::engine::general_purpose::STANDARD,
                        credential,
                    )
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                    if let Some(decoded) = decoded {
                        if let Some((_, password)) = decoded.split_once(':') {
                            secrets.push(password.to_owned());
                        }
                        secrets.push(decoded);
                    }
                }
            }
        }
        secrets
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
fn check_endpoint(url: &EndpointUrl) -> Result<(), OtlpError> {
    let endpoint = url.0.as_str();
    // Credentials first, and never echoed: `user:token@host` without a scheme is still a secret.
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', '?', '#'])
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
            reason: format!("`{}` must start with http:// or https://", url.shown()),
        })?;
    if rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(OtlpError::InvalidSetting {
            setting: "endpoint",
            reason: format!("`{}` has no host", url.shown()),
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
        // Never changed silently: a value that does not decode to text is refused.
        let value = String::from_utf8(percent_decode(value.trim())).map_err(|_| {
            OtlpError::InvalidSetting {
                setting: variable,
                reason: format!(
                    "the value of entry {} (`{key}`) is not UTF-8 once percent-decoded",
                    index + 1
                ),
            }
        })?;
        headers.insert(key, Secret(value));
    }
    Ok(headers)
}

fn percent_decode(value: &str) -> Vec<u8> {
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
    out
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
        assert_eq!(config.endpoint.0, "http://localhost:4317");
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
        assert_eq!(config.endpoint.0, "http://collector:4318/v1/logs");
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:9999/custom",
            ),
        ];
        let config = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(config.endpoint.0, "http://logs:9999/custom");
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
        assert_eq!(from_env.endpoint.0, "http://from-env:4317");
        assert_eq!(from_env.timeout, Duration::from_millis(2500));
        assert_eq!(from_env.compression, Compression::Gzip);
        assert_eq!(from_env.headers["authorization"].0, "Bearer env");
        let mut overrides = Overrides {
            endpoint: Some(EndpointUrl("https://from-code:4317".to_owned())),
            timeout: Some(Duration::from_secs(1)),
            compression: Some(Compression::None),
            ..Overrides::default()
        };
        overrides
            .headers
            .insert("authorization".to_owned(), Secret("Bearer code".to_owned()));
        let config = resolve(&overrides, &vars).unwrap();
        assert_eq!(config.endpoint.0, "https://from-code:4317");
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

    #[test]
    fn errors_name_the_signal_specific_variable_that_was_set() {
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "no-equals-sign"),
        ] {
            let err = resolve(&Overrides::default(), &[(variable, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(variable), "{variable}: {err}");
        }
        let err = ExportConfig::resolve(
            &Overrides::default(),
            "TRACES",
            "/v1/traces",
            &lookup(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), "{err}");
    }

    #[test]
    fn a_header_value_that_is_not_utf8_once_decoded_is_refused() {
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-ok=1,api-key=sk%FFSECRET")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{err}");
        assert!(err.contains("entry 2") && err.contains("api-key"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
        // Percent-encoded UTF-8 is decoded.
        let config = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-name=caf%C3%A9")],
        )
        .unwrap();
        assert_eq!(config.headers["x-name"].0, "café");
    }

    #[test]
    fn the_signal_path_goes_into_the_path_before_the_query() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector:4318/otlp/?tenant=a&api_key=SECRET99",
            ),
        ];
        let config = resolve(&Overrides::default(), &vars).unwrap();
        assert_eq!(
            config.endpoint.0,
            "https://collector:4318/otlp/v1/logs?tenant=a&api_key=SECRET99"
        );
        let overrides = Overrides {
            endpoint: Some(EndpointUrl("http://c:4318?k=SECRET99#frag".to_owned())),
            endpoint_is_base: true,
            protocol: Some(Protocol::HttpProtobuf),
            ..Overrides::default()
        };
        let config = resolve(&overrides, &[]).unwrap();
        assert_eq!(config.endpoint.0, "http://c:4318/v1/logs?k=SECRET99#frag");
        // A query with an `@` in it is no credential.
        resolve(
            &Overrides {
                endpoint: Some(EndpointUrl("http://c:4317?owner=a@b".to_owned())),
                ..Overrides::default()
            },
            &[],
        )
        .unwrap();
    }

    #[test]
    fn a_secret_in_the_endpoint_query_shows_nowhere() {
        let overrides = Overrides {
            endpoint: Some(EndpointUrl(
                "http://c:4317/?api_key=SECRET99&x=%53ECRET88&SECRET77#SECRET66".to_owned(),
            )),
            ..Overrides::default()
        };
        let config = resolve(&overrides, &[]).unwrap();
        let shown = format!("{overrides:?} {config:?} {}", config.endpoint.shown());
        for secret in ["SECRET99", "SECRET88", "SECRET77", "SECRET66"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("api_key=[redacted]"), "{shown}");
        // The scrubber knows the values, decoded too.
        let scrubbed = config
            .scrubber()
            .scrub("bad key SECRET99 / SECRET88 / SECRET77 / SECRET66", 200);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        // An endpoint refused for its form does not echo its query either.
        let err = resolve(
            &Overrides {
                endpoint: Some(EndpointUrl("ftp://c/?api_key=SECRET99".to_owned())),
                ..Overrides::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("SECRET99"), "{err}");
    }

    #[test]
    fn the_scrubber_knows_the_credential_inside_an_authorization_value() {
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "tenant:PASSWORD42",
        );
        let vars = [(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Bearer%20TOKEN1234,x-basic=Basic%20{basic}"),
        )];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = resolve(&Overrides::default(), &vars).unwrap();
        let scrubbed = config.scrubber().scrub(
            "token TOKEN1234 refused; tenant:PASSWORD42 and PASSWORD42 unknown",
            500,
        );
        assert!(
            !scrubbed.contains("TOKEN1234") && !scrubbed.contains("PASSWORD42"),
            "{scrubbed}"
        );
    }

    #[test]
    fn timeouts_are_bounded_when_resolved() {
        for timeout in [
            Duration::MAX,
            MAX_DURATION + Duration::from_nanos(1),
            Duration::ZERO,
        ] {
            let overrides = Overrides {
                timeout: Some(timeout),
                ..Overrides::default()
            };
            let err = resolve(&overrides, &[]).unwrap_err().to_string();
            assert!(
                err.contains("with_timeout") && err.contains("3600s"),
                "{err}"
            );
        }
        let overrides = Overrides {
            timeout: Some(MAX_DURATION),
            ..Overrides::default()
        };
        assert_eq!(resolve(&overrides, &[]).unwrap().timeout, MAX_DURATION);
        let err = resolve(
            &Overrides::default(),
            &[("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "18446744073709551615")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"), "{err}");
    }
}
