//! [`OtlpSetup`]: OpenTelemetry in one call, for applications that have none yet.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{Filtered, LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer as _;

use super::config::{
    check_duration, Compression, EndpointUrl, ExportConfig, Overrides, Protocol, Secret,
};
use super::transport::MAX_RECEIVER_TEXT;
use super::{resource_attributes, OtlpError, OtlpLogSink, OtlpLogSinkBuilder, OwnRuntime};
use crate::names;
use crate::otel::OtelMetricsSink;
use crate::scrub::Scrubber;
use crate::{ShutdownError, Stats, WorkerGuard};

/// Crates whose spans and events belong to the export itself.
const EXPORT_STACK: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// What [`OtlpSetup::shutdown_after`] did: the audit pipeline's result and the providers'.
#[derive(Debug)]
#[non_exhaustive]
pub struct OtlpShutdown {
    /// The audit pipeline's final counters, or its timeout.
    pub audit: Result<Stats, ShutdownError>,
    /// Whether the tracer and meter providers flushed and shut down (they fail when the last
    /// export fails, for example with the collector down).
    pub providers: Result<(), OtlpError>,
}

/// Tracer and meter providers exporting over OTLP, with a resource carrying `service.name`, and
/// the audit sinks that go with them; shuts all of them down in one call.
///
/// ```no_run
/// use std::time::Duration;
/// use tracing_llm_audit::otlp::OtlpSetup;
/// use tracing_llm_audit::{AuditLayer, JsonlSink};
/// use tracing_subscriber::prelude::*;
///
/// let otlp = OtlpSetup::builder().with_service_name("checkout").build()?;
/// let (audit, guard) = AuditLayer::builder()
///     .with_sink(JsonlSink::new("./audit_logs")?)
///     .with_sink(otlp.log_sink()?)
///     .with_sink(otlp.metrics_sink())
///     // The hash key: build() reads LLM_AUDIT_HASH_KEY, and says how to set it when it is
///     // missing or malformed.
///     .build()?;
/// tracing_subscriber::registry()
///     .with(audit)                // the audit layer first,
///     .with(otlp.tracing_layer()) // the OpenTelemetry layer after it
///     .init();
/// // ... audited calls ...
/// let done = otlp.shutdown_after(guard, Duration::from_secs(5));
/// let stats = done.audit?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OtlpSetup {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logs: OtlpLogSinkBuilder,
    /// Scrubs the SDK's errors of every header value and the endpoints' queries.
    scrubber: Scrubber,
    /// Drives the gRPC channels of the span and metric exporters; kept alive with them.
    runtime: Option<OwnRuntime>,
}

/// Configures an [`OtlpSetup`]; settings apply to traces, metrics and logs alike and win over
/// the `OTEL_EXPORTER_OTLP_*` environment variables.
#[derive(Debug, Default)]
pub struct OtlpSetupBuilder {
    overrides: Overrides,
    service_name: Option<String>,
    resource: Vec<(String, String)>,
    metrics_interval: Option<Duration>,
}

impl OtlpSetupBuilder {
    export_settings!();

    /// The collector's base URL, `http(s)://host:4317` for gRPC or `http(s)://host:4318` for
    /// HTTP (the signal paths `/v1/traces`, `/v1/metrics`, `/v1/logs` are added to its path,
    /// before any query). The values of its query never show in `Debug` output or errors.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.overrides.endpoint = Some(EndpointUrl(endpoint.into()));
        self.overrides.endpoint_is_base = true;
        self
    }

    /// How often metrics are exported. Default: `OTEL_METRIC_EXPORT_INTERVAL`, else 60 s. Longer
    /// than zero and at most [`MAX_DURATION`](crate::otlp::MAX_DURATION) (one hour), or `build`
    /// fails naming it.
    #[must_use]
    pub fn with_metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = Some(interval);
        self
    }

    /// Builds the providers. Exporters connect lazily: a collector that is down now is no
    /// error, and never blocks the application later.
    ///
    /// # Errors
    /// A setting or environment variable that is not valid, or an exporter the SDK refuses.
    pub fn build(self) -> Result<OtlpSetup, OtlpError> {
        self.build_with_env(&|name| std::env::var(name).ok())
    }

    fn build_with_env(
        self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<OtlpSetup, OtlpError> {
        let attributes =
            resource_attributes(self.service_name.clone(), self.resource.clone(), lookup);
        let resource = Resource::builder_empty()
            .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)))
            .build();
        let traces = ExportConfig::resolve(&self.overrides, "TRACES", "/v1/traces", lookup)?;
        let metrics = ExportConfig::resolve(&self.overrides, "METRICS", "/v1/metrics", lookup)?;
        let metrics_interval = metrics_interval(self.metrics_interval, lookup)?;
        let secrets = [traces.secrets(), metrics.secrets()].concat();
        let scrubber = Scrubber::new(secrets.iter().map(String::as_str));
        let needs_runtime = traces.protocol == Protocol::Grpc || metrics.protocol == Protocol::Grpc;
        let runtime = if needs_runtime {
            Some(OwnRuntime::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("llm-audit-otlp")
                    // The exporters' own I/O (h2, hyper, tonic) must not feed spans and events
                    // back into the application's subscriber.
                    .on_thread_start(|| {
                        std::mem::forget(tracing::dispatcher::set_default(
                            &tracing::Dispatch::none(),
                        ));
                    })
                    .enable_all()
                    .build()
                    .map_err(OtlpError::Runtime)?,
            ))
        } else {
            None
        };
        let span_exporter = exporter(&traces, runtime.as_ref(), "traces", |config| {
            match config.protocol {
                Protocol::Grpc => grpc(
                    opentelemetry_otlp::SpanExporter::builder().with_tonic(),
                    config,
                )?
                .build(),
                Protocol::HttpProtobuf => http(
                    opentelemetry_otlp::SpanExporter::builder().with_http(),
                    config,
                )?
                .build(),
            }
            .map_err(|e| e.to_string())
        })?;
        let metric_exporter = exporter(&metrics, runtime.as_ref(), "metrics", |config| {
            match config.protocol {
                Protocol::Grpc => grpc(
                    opentelemetry_otlp::MetricExporter::builder().with_tonic(),
                    config,
                )?
                .build(),
                Protocol::HttpProtobuf => http(
                    opentelemetry_otlp::MetricExporter::builder().with_http(),
                    config,
                )?
                .build(),
            }
            .map_err(|e| e.to_string())
        })?;
        let tracer_provider = SdkTracerProvider::builder()
            .with_batch_exporter(span_exporter)
            .with_resource(resource.clone())
            .build();
        let mut reader = PeriodicReader::builder(metric_exporter);
        if let Some(interval) = metrics_interval {
            reader = reader.with_interval(interval);
        }
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(reader.build())
            .with_resource(resource)
            .build();
        let mut logs = OtlpLogSink::builder();
        logs.overrides = self.overrides;
        if let Some(name) = self.service_name {
            logs = logs.with_service_name(name);
        }
        for (key, value) in self.resource {
            logs = logs.with_resource_attribute(key, value);
        }
        Ok(OtlpSetup {
            tracer_provider,
            meter_provider,
            logs,
            scrubber,
            runtime,
        })
    }
}

/// The metrics export interval from the builder, else `OTEL_METRIC_EXPORT_INTERVAL` (which the
/// SDK would read unchecked), checked; `None` for the SDK's default.
fn metrics_interval(
    given: Option<Duration>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Duration>, OtlpError> {
    const VARIABLE: &str = "OTEL_METRIC_EXPORT_INTERVAL";
    if let Some(interval) = given {
        check_duration(interval, "with_metrics_interval")?;
        return Ok(Some(interval));
    }
    let Some(value) = lookup(VARIABLE).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let ms = value
        .trim()
        .parse::<u64>()
        .map_err(|_| OtlpError::InvalidSetting {
            setting: VARIABLE,
            reason: format!("`{value}` is not a number of milliseconds"),
        })?;
    let interval = Duration::from_millis(ms);
    check_duration(interval, VARIABLE)?;
    Ok(Some(interval))
}

/// Builds an exporter inside the runtime when it speaks gRPC (tonic spawns its connection
/// there), outside of it for HTTP (the blocking HTTP client refuses to start inside one).
fn exporter<T>(
    config: &ExportConfig,
    runtime: Option<&OwnRuntime>,
    signal: &'static str,
    build: impl FnOnce(&ExportConfig) -> Result<T, String>,
) -> Result<T, OtlpError> {
    let _entered = match (config.protocol, runtime) {
        (Protocol::Grpc, Some(runtime)) => Some(runtime.get().enter()),
        _ => None,
    };
    build(config).map_err(|message| OtlpError::Exporter { signal, message })
}

fn grpc<B: opentelemetry_otlp::WithTonicConfig + opentelemetry_otlp::WithExportConfig>(
    builder: B,
    config: &ExportConfig,
) -> Result<B, String> {
    let metadata = config.grpc_metadata().map_err(|e| e.to_string())?;
    // The SDK merges OTEL_EXPORTER_OTLP_*_HEADERS over the metadata it is given; the
    // interceptor runs after that merge, so the resolved headers (builder over environment)
    // are what goes out.
    let resolved = metadata.clone();
    let mut builder = builder
        .with_endpoint(config.endpoint.0.clone())
        .with_timeout(config.timeout)
        .with_metadata(metadata)
        .with_interceptor(move |mut request: tonic::Request<()>| {
            for entry in resolved.iter() {
                if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
                    request.metadata_mut().insert(key.clone(), value.clone());
                }
            }
            Ok(request)
        });
    if config.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if config.is_tls() {
        let files = config.tls_files().map_err(|e| e.to_string())?;
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = files.ca {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = files.identity {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        builder = builder.with_tls_config(tls);
    }
    Ok(builder)
}

/// The SDK's HTTP exporter merges OTEL_EXPORTER_OTLP_*_HEADERS over the headers it is given;
/// this client puts the resolved headers (builder over environment) back on every request. It
/// reads a reply up to `max_response_bytes`, and hands the SDK an error reply's text scrubbed.
#[derive(Debug)]
struct ResolvedHeaders {
    client: reqwest::blocking::Client,
    headers: http::HeaderMap,
    max_response_bytes: usize,
    scrubber: Scrubber,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ResolvedHeaders {
    async fn send_bytes(
        &self,
        mut request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use std::io::Read as _;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let mut response = self.client.execute(request.try_into()?)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let limit = self.max_response_bytes;
        let mut body = Vec::new();
        response
            .by_ref()
            .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
            .read_to_end(&mut body)?;
        if body.len() > limit {
            if status.is_success() {
                return Err(format!(
                    "the reply of the OTLP receiver is larger than the limit of {limit} bytes \
                     (`with_max_response_bytes`)"
                )
                .into());
            }
            body.truncate(limit);
        }
        if !status.is_success() {
            body = self
                .scrubber
                .scrub(&String::from_utf8_lossy(&body), MAX_RECEIVER_TEXT)
                .into_bytes();
        }
        let mut answer = http::Response::builder()
            .status(status)
            .body(bytes::Bytes::from(body))?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

fn http<B: opentelemetry_otlp::WithHttpConfig + opentelemetry_otlp::WithExportConfig>(
    builder: B,
    config: &ExportConfig,
) -> Result<B, String> {
    let headers = config.http_headers().map_err(|e| e.to_string())?;
    let (ca, identity) = config.reqwest_tls().map_err(|e| e.to_string())?;
    let timeout = config.timeout;
    // A blocking client runs a runtime of its own, which may not be started from inside the
    // application's runtime: build it on a thread of its own.
    let client = std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(timeout)
            // A redirect would take the headers (API keys) to whatever host it names.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca {
            builder = builder.add_root_certificate(ca);
        }
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.build().map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "building the HTTP client panicked".to_owned())??;
    let mut builder = builder
        .with_endpoint(config.endpoint.0.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(config.timeout)
        .with_http_client(ResolvedHeaders {
            client,
            headers,
            max_response_bytes: config.max_response_bytes,
            scrubber: config.scrubber(),
        });
    if config.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(builder)
}

impl OtlpSetup {
    /// Starts configuring the setup.
    #[must_use]
    pub fn builder() -> OtlpSetupBuilder {
        OtlpSetupBuilder::default()
    }

    /// The `tracing-opentelemetry` layer exporting spans through this setup. Add it **after**
    /// the audit layer.
    ///
    /// It leaves out the spans of the crates that carry the export itself (`h2`, `hyper`,
    /// `tonic`, `tower`, `reqwest`, `rustls` and OpenTelemetry's own): exporting them would
    /// export more of them, without end.
    #[must_use]
    pub fn tracing_layer<S>(
        &self,
    ) -> Filtered<tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>, Targets, S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let not_the_exporters = EXPORT_STACK.iter().fold(
            Targets::new().with_default(LevelFilter::TRACE),
            |targets, target| targets.with_target(*target, LevelFilter::OFF),
        );
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer_provider.tracer(names::SCOPE_NAME))
            .with_filter(not_the_exporters)
    }

    /// An audit sink sending every entry as a log record through the same collector.
    ///
    /// # Errors
    /// See [`OtlpLogSinkBuilder::build`].
    pub fn log_sink(&self) -> Result<OtlpLogSink, OtlpError> {
        self.logs.clone().build()
    }

    /// An audit sink recording the GenAI metrics on this setup's meter provider.
    #[must_use]
    pub fn metrics_sink(&self) -> OtelMetricsSink {
        let meter =
            opentelemetry::metrics::MeterProvider::meter(&self.meter_provider, names::SCOPE_NAME);
        OtelMetricsSink::new(&meter)
    }

    /// The tracer provider, for spans of the application's own.
    #[must_use]
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The meter provider, for metrics of the application's own.
    #[must_use]
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// Shuts the audit pipeline down first (its last entries still produce metrics and spans),
    /// then flushes and shuts down the tracer and meter providers. Every step is attempted; the
    /// result says how each went.
    pub fn shutdown_after(self, guard: WorkerGuard, timeout: Duration) -> OtlpShutdown {
        let audit = guard.shutdown(timeout);
        let providers = self.shutdown();
        OtlpShutdown { audit, providers }
    }

    /// Flushes and shuts down the tracer and meter providers.
    ///
    /// # Errors
    /// The first provider that failed.
    pub fn shutdown(mut self) -> Result<(), OtlpError> {
        let scrubber = &self.scrubber;
        let traces = self
            .tracer_provider
            .shutdown()
            .map_err(|e| OtlpError::Shutdown {
                signal: "traces",
                message: scrubber.scrub(&e.to_string(), MAX_RECEIVER_TEXT),
            });
        let metrics = self
            .meter_provider
            .shutdown()
            .map_err(|e| OtlpError::Shutdown {
                signal: "metrics",
                message: scrubber.scrub(&e.to_string(), MAX_RECEIVER_TEXT),
            });
        // The exporters are shut down: nothing is left on the runtime to wait for.
        drop(self.runtime.take());
        traces.and(metrics)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::metrics_interval;

    #[test]
    fn the_metrics_interval_is_bounded_from_the_builder_and_the_environment() {
        let env = |value: &'static str| {
            move |name: &str| (name == "OTEL_METRIC_EXPORT_INTERVAL").then(|| value.to_owned())
        };
        assert_eq!(metrics_interval(None, &|_| None).unwrap(), None);
        assert_eq!(
            metrics_interval(None, &env("15000")).unwrap(),
            Some(Duration::from_secs(15))
        );
        let given = Some(Duration::from_secs(5));
        assert_eq!(metrics_interval(given, &env("x")).unwrap(), given);
        for (value, reason) in [
            ("18446744073709551615", "3600s"),
            ("0", "3600s"),
            ("soon", "milliseconds"),
        ] {
            let err = metrics_interval(None, &env(value)).unwrap_err().to_string();
            assert!(
                err.contains("OTEL_METRIC_EXPORT_INTERVAL") && err.contains(reason),
                "{err}"
            );
        }
        let err = metrics_interval(Some(Duration::MAX), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("with_metrics_interval"), "{err}");
    }
}
