//! The files under `collector-config/`, read: every YAML and JSON file parses, every collector
//! pipeline refers to components that are defined, every file the compose stack mounts exists,
//! every metric the crate records has a panel, and every label and log attribute of the
//! dashboard's LogQL queries is a name this crate exports ([`tracing_llm_audit::names`]) in the
//! form Loki gives it. Loki cannot run where the tests run; the PromQL queries are evaluated by
//! a real Prometheus in `tests/collector_live.rs`, and the collector runs there too.
//!
//! The LogQL queries are checked with a small tokenizer, not a full parser: it classifies each
//! identifier (function, keyword, label) by where it stands, which is enough for the queries a
//! dashboard holds. The last test makes sure it rejects wrong names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tracing_llm_audit::{fields, names, Status};

/// The collector configurations, relative to `collector-config/`.
const FULL_COLLECTOR: &str = "otel-collector.yaml";
const MINIMAL_COLLECTOR: &str = "otel-collector-minimal.yaml";
const COMPOSE: &str = "compose.yaml";
const PROMETHEUS_CONFIG: &str = "prometheus.yml";
const DASHBOARD: &str = "grafana/dashboards/llm-audit.json";
const DATASOURCES_DIR: &str = "grafana/provisioning/datasources";
const DASHBOARD_PROVIDERS_DIR: &str = "grafana/provisioning/dashboards";

/// The metrics recorded as histograms: Prometheus has them only as `_bucket`, `_sum` and
/// `_count` series.
const HISTOGRAMS: &[&str] = &[
    names::METRIC_TOKEN_USAGE,
    names::METRIC_OPERATION_DURATION,
    names::METRIC_TIME_TO_FIRST_CHUNK,
];
const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_sum", "_count"];

/// Index (stream) labels Loki's OTLP ingestion makes from resource attributes by default; the
/// only names a LogQL stream selector `{...}` can use. Log-record attributes are never stream
/// labels: they are structured metadata, filtered after the selector.
const LOKI_STREAM_LABELS: &[&str] = &[
    "service_name",
    "service_namespace",
    "service_instance_id",
    "deployment_environment",
    "deployment_environment_name",
];

/// Structured metadata Loki's OTLP ingestion adds to every record from the OTLP fields, and the
/// labels LogQL itself defines.
const LOKI_BUILTIN_METADATA: &[&str] = &[
    "trace_id",
    "span_id",
    "severity_text",
    "severity_number",
    "scope_name",
    "scope_version",
    "observed_timestamp",
    "flags",
    "detected_level",
    "__error__",
    "__error_details__",
];

const LOGQL_FUNCTIONS: &[&str] = &[
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "bytes",
    "bytes_over_time",
    "bytes_rate",
    "count",
    "count_over_time",
    "duration",
    "duration_seconds",
    "first_over_time",
    "label_replace",
    "last_over_time",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "quantile_over_time",
    "rate",
    "rate_counter",
    "sort",
    "sort_desc",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "topk",
    "vector",
];

/// Keywords of both languages; `(...)` after the first six holds label names.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const OTHER_KEYWORDS: &[&str] = &["bool", "and", "or", "unless", "offset", "atan2"];

/// LogQL pipeline stages; what follows them up to the next `|` is label names (or strings).
const LOGQL_STAGES: &[&str] = &[
    "json",
    "logfmt",
    "unpack",
    "regexp",
    "pattern",
    "line_format",
    "label_format",
    "decolorize",
    "keep",
    "drop",
    "unwrap",
];

// ---------------------------------------------------------------------------------------------
// Files

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("collector-config")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(&config_dir(), &mut out);
    out
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

fn parse(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    match extension(path) {
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        "yaml" | "yml" => serde_yaml::from_str(&text).map_err(|e| e.to_string()),
        other => Err(format!("not a YAML or JSON file (.{other})")),
    }
}

/// Parses a file given relative to `collector-config/`.
fn load(relative: &str) -> Value {
    let path = config_dir().join(relative);
    parse(&path).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The YAML files directly in a directory relative to `collector-config/`.
fn yaml_files_in(relative: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(config_dir().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| matches!(extension(p), "yaml" | "yml"))
        .collect();
    out.sort();
    out
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn keys(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_object)
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

fn fail_on(errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{} problem(s):\n  - {}",
        errors.len(),
        errors.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------------
// (a) Every file parses

#[test]
fn every_yaml_and_json_file_parses() {
    let mut errors = Vec::new();
    let mut parsed = 0;
    for path in all_files() {
        if matches!(extension(&path), "yaml" | "yml" | "json") {
            match parse(&path) {
                Ok(Value::Null) => errors.push(format!("{}: empty document", path.display())),
                Ok(_) => parsed += 1,
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
    }
    for required in [
        FULL_COLLECTOR,
        MINIMAL_COLLECTOR,
        COMPOSE,
        PROMETHEUS_CONFIG,
        "tempo.yaml",
        "loki.yaml",
        DASHBOARD,
    ] {
        if !config_dir().join(required).is_file() {
            errors.push(format!("collector-config/{required} is missing"));
        }
    }
    if yaml_files_in(DATASOURCES_DIR).is_empty() {
        errors.push(format!("no data source file in {DATASOURCES_DIR}"));
    }
    if yaml_files_in(DASHBOARD_PROVIDERS_DIR).is_empty() {
        errors.push(format!(
            "no dashboard provider file in {DASHBOARD_PROVIDERS_DIR}"
        ));
    }
    fail_on(&errors);
    assert!(parsed >= 9, "only {parsed} files parsed");
}

// ---------------------------------------------------------------------------------------------
// (b) Collector pipelines

const COMPONENT_KINDS: &[&str] = &["receivers", "processors", "exporters", "connectors"];
const SIGNALS: &[&str] = &["traces", "metrics", "logs", "profiles"];

/// Checks one collector configuration: every component a pipeline names is defined, every
/// connector is used on both ends, every extension the service enables is defined. Returns the
/// errors and the warnings (components defined but never used).
fn check_collector(file: &str, config: &Value) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let defined: BTreeMap<&str, BTreeSet<String>> = COMPONENT_KINDS
        .iter()
        .map(|kind| (*kind, keys(config.get(kind))))
        .collect();
    let extensions = keys(config.get("extensions"));

    let Some(pipelines) = config
        .pointer("/service/pipelines")
        .and_then(Value::as_object)
    else {
        errors.push(format!("{file}: no service.pipelines"));
        return (errors, warnings);
    };
    if pipelines.is_empty() {
        errors.push(format!("{file}: service.pipelines is empty"));
    }

    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut connector_as_exporter = BTreeSet::new();
    let mut connector_as_receiver = BTreeSet::new();
    for (id, pipeline) in pipelines {
        let signal = id.split('/').next().unwrap_or_default();
        if !SIGNALS.contains(&signal) {
            errors.push(format!(
                "{file}: pipeline `{id}` is not of a known signal {SIGNALS:?}"
            ));
        }
        for (role, kinds) in [
            ("receivers", &["receivers", "connectors"][..]),
            ("processors", &["processors"][..]),
            ("exporters", &["exporters", "connectors"][..]),
        ] {
            let list = strings(pipeline.get(role));
            if role != "processors" && list.is_empty() {
                errors.push(format!("{file}: pipeline `{id}` has no {role}"));
            }
            let mut seen = BTreeSet::new();
            for component in list {
                if !seen.insert(component.clone()) {
                    errors.push(format!(
                        "{file}: pipeline `{id}` lists {role} `{component}` twice"
                    ));
                }
                let Some(kind) = kinds.iter().find(|k| defined[**k].contains(&component)) else {
                    errors.push(format!(
                        "{file}: pipeline `{id}` uses {role} `{component}`, which is not defined \
                         under {}",
                        kinds.join(" or ")
                    ));
                    continue;
                };
                if *kind == "connectors" {
                    if role == "receivers" {
                        connector_as_receiver.insert(component.clone());
                    } else {
                        connector_as_exporter.insert(component.clone());
                    }
                }
                used.entry(kind).or_default().insert(component);
            }
        }
    }
    for connector in connector_as_exporter.symmetric_difference(&connector_as_receiver) {
        errors.push(format!(
            "{file}: connector `{connector}` must be an exporter of one pipeline and a receiver \
             of another"
        ));
    }
    for kind in COMPONENT_KINDS {
        for component in &defined[kind] {
            if !used.get(kind).is_some_and(|u| u.contains(component)) {
                warnings.push(format!(
                    "{file}: {kind} `{component}` is defined but no pipeline uses it"
                ));
            }
        }
    }
    let enabled = strings(config.pointer("/service/extensions"));
    for extension in &enabled {
        if !extensions.contains(extension) {
            errors.push(format!(
                "{file}: service.extensions enables `{extension}`, which is not defined"
            ));
        }
    }
    for extension in &extensions {
        if !enabled.contains(extension) {
            warnings.push(format!(
                "{file}: extension `{extension}` is defined but not enabled"
            ));
        }
    }
    for signal in ["traces", "logs", "metrics"] {
        if !pipelines
            .keys()
            .any(|id| id.split('/').next() == Some(signal))
        {
            errors.push(format!("{file}: no {signal} pipeline"));
        }
    }
    (errors, warnings)
}

fn pipelines_of(config: &Value) -> Vec<(String, Value)> {
    config
        .pointer("/service/pipelines")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

#[test]
fn collector_pipelines_use_only_defined_components() {
    let mut errors = Vec::new();
    for file in [FULL_COLLECTOR, MINIMAL_COLLECTOR] {
        let (mut e, warnings) = check_collector(file, &load(file));
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        errors.append(&mut e);
    }

    // The full configuration: memory_limiter first and batch last wherever there are
    // processors, as the collector's documentation advises.
    let full = load(FULL_COLLECTOR);
    for (id, pipeline) in pipelines_of(&full) {
        let processors = strings(pipeline.get("processors"));
        if processors.is_empty() {
            continue;
        }
        if component_type(&processors[0]) != "memory_limiter" {
            errors.push(format!(
                "{FULL_COLLECTOR}: pipeline `{id}` does not start with memory_limiter"
            ));
        }
        if component_type(processors.last().expect("not empty")) != "batch" {
            errors.push(format!(
                "{FULL_COLLECTOR}: pipeline `{id}` does not end with batch"
            ));
        }
    }
    fail_on(&errors);
}

#[test]
fn the_check_catches_an_undefined_component() {
    let config: Value = serde_yaml::from_str(
        "receivers: {otlp: {}}\n\
         exporters: {debug: {}, otlp/unused: {}}\n\
         service:\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [debug]}\n",
    )
    .expect("yaml");
    let (errors, warnings) = check_collector("inline", &config);
    assert!(
        errors.iter().any(|e| e.contains("`batch`")),
        "undefined processor not reported: {errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("no logs pipeline")));
    assert!(
        warnings.iter().any(|w| w.contains("`otlp/unused`")),
        "unused exporter not reported: {warnings:?}"
    );
}

/// The full collector keeps the naming the dashboard relies on, and strips content attributes
/// (the crate's own names for them) from spans and log records.
#[test]
fn full_collector_exports_the_names_the_dashboard_expects() {
    let config = load(FULL_COLLECTOR);
    let mut errors = Vec::new();

    let exporters = config
        .get("exporters")
        .and_then(Value::as_object)
        .expect("exporters");
    let prometheus: Vec<&Value> = exporters
        .iter()
        .filter(|(id, _)| component_type(id) == "prometheus")
        .map(|(_, v)| v)
        .collect();
    if prometheus.is_empty() {
        errors.push("no prometheus exporter".to_owned());
    }
    for exporter in prometheus {
        let strategy = exporter.get("translation_strategy").and_then(Value::as_str);
        let without_suffixes = match strategy {
            Some(strategy) => strategy == "UnderscoreEscapingWithoutSuffixes",
            None => exporter.get("add_metric_suffixes") == Some(&Value::Bool(false)),
        };
        if !without_suffixes {
            errors.push(
                "the prometheus exporter must not add suffixes (add_metric_suffixes: false), \
                 or names::prometheus_name no longer gives the metric names"
                    .to_owned(),
            );
        }
        if exporter.pointer("/resource_to_telemetry_conversion/enabled") != Some(&Value::Bool(true))
        {
            errors.push(
                "the prometheus exporter must turn resource attributes into labels \
                 (service_name), resource_to_telemetry_conversion.enabled: true"
                    .to_owned(),
            );
        }
    }

    // Content attributes are deleted in the traces and logs pipelines.
    let content = [
        fields::SYSTEM_INSTRUCTIONS,
        fields::INPUT_MESSAGES,
        fields::OUTPUT_MESSAGES,
        fields::LEGACY_PROMPT,
        fields::LEGACY_COMPLETION,
    ];
    let processors = config
        .get("processors")
        .and_then(Value::as_object)
        .expect("processors");
    let strippers: BTreeSet<String> = processors
        .iter()
        .filter(|(id, processor)| {
            component_type(id) == "attributes" && {
                let deleted: BTreeSet<&str> = processor
                    .get("actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|a| a.get("action").and_then(Value::as_str) == Some("delete"))
                    .filter_map(|a| a.get("key").and_then(Value::as_str))
                    .collect();
                content.iter().all(|c| deleted.contains(c))
            }
        })
        .map(|(id, _)| id.clone())
        .collect();
    if strippers.is_empty() {
        errors.push(format!(
            "no attributes processor deletes all of the content attributes {content:?}"
        ));
    }
    for (id, pipeline) in pipelines_of(&config) {
        let signal = component_type(&id).to_owned();
        if (signal == "traces" || signal == "logs")
            && !strings(pipeline.get("processors"))
                .iter()
                .any(|p| strippers.contains(p))
        {
            errors.push(format!(
                "pipeline `{id}` does not delete the content attributes ({strippers:?})"
            ));
        }
    }
    fail_on(&errors);
}

/// The log attribute the full collector copies the OTLP event name into (Loki keeps no
/// `event_name` field of its own), and whether a logs pipeline runs that processor.
fn event_name_attribute(config: &Value) -> Result<String, String> {
    let processors = config
        .get("processors")
        .and_then(Value::as_object)
        .ok_or("no processors")?;
    for (id, processor) in processors {
        if component_type(id) != "transform" {
            continue;
        }
        let mut statements = Vec::new();
        for group in processor
            .get("log_statements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match group {
                Value::String(s) => statements.push(s.clone()),
                other => statements.extend(strings(other.get("statements"))),
            }
        }
        for statement in statements {
            let compact: String = statement.chars().filter(|c| !c.is_whitespace()).collect();
            let Some(rest) = compact
                .strip_prefix("set(attributes[\"")
                .or_else(|| compact.strip_prefix("set(log.attributes[\""))
            else {
                continue;
            };
            let Some((attribute, rest)) = rest.split_once("\"]") else {
                continue;
            };
            if rest.starts_with(",event_name)") || rest.starts_with(",log.event_name)") {
                let in_logs_pipeline = pipelines_of(config).iter().any(|(pid, pipeline)| {
                    component_type(pid) == "logs"
                        && strings(pipeline.get("processors")).contains(id)
                });
                if !in_logs_pipeline {
                    return Err(format!("processor `{id}` is in no logs pipeline"));
                }
                return Ok(attribute.to_owned());
            }
        }
    }
    Err("no transform processor copies `event_name` into a log attribute".to_owned())
}

// ---------------------------------------------------------------------------------------------
// (c) Compose

fn compose_services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose
        .get("services")
        .and_then(Value::as_object)
        .expect("compose.yaml has services")
}

/// `${VAR:-default}` and `${VAR-default}` become `default`, `${VAR}` becomes an empty string.
fn resolve_compose_variables(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        if let Some((_, default)) = inner.split_once(":-").or_else(|| inner.split_once('-')) {
            out.push_str(default);
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A service's bind mounts of files of this directory: (host path, container path).
fn bind_mounts(service: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for volume in service
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (source, target) = match volume {
            Value::String(short) => {
                let mut parts = short.splitn(3, ':');
                let source = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                (source, target)
            }
            long => (
                long.get("source")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                long.get("target")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        if source.starts_with("./") || source.starts_with("../") {
            out.push((resolve_compose_variables(&source), target));
        }
    }
    out
}

fn command_args(service: &Value) -> Vec<String> {
    match service.get("command") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        other => strings(other),
    }
}

#[test]
fn compose_mounts_files_that_exist() {
    let compose = load(COMPOSE);
    let services = compose_services(&compose);
    let mut errors = Vec::new();
    for required in [
        "otel-collector",
        "jaeger",
        "tempo",
        "loki",
        "prometheus",
        "grafana",
    ] {
        if !services.contains_key(required) {
            errors.push(format!("no `{required}` service"));
        }
    }
    for (name, service) in services {
        // Pinned images only.
        let image = service
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tag = image
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'));
        match tag {
            Some((_, tag)) if !tag.is_empty() && tag != "latest" => {}
            _ => errors.push(format!(
                "service `{name}`: image `{image}` has no pinned tag"
            )),
        }
        let mounts = bind_mounts(service);
        for (source, target) in &mounts {
            if !config_dir().join(source).exists() {
                errors.push(format!(
                    "service `{name}` mounts {source} (at {target}), which does not exist in \
                     collector-config/"
                ));
            }
        }
        // A configuration file named on the command line must be one of the mounted files.
        for arg in command_args(service) {
            let Some((flag, path)) = arg.split_once('=') else {
                continue;
            };
            if flag.trim_start_matches('-').starts_with("config") {
                let path = resolve_compose_variables(path);
                if !mounts.iter().any(|(_, target)| *target == path) {
                    errors.push(format!(
                        "service `{name}` reads {path} ({flag}), which it does not mount"
                    ));
                }
            }
        }
        for dependency in strings(service.get("depends_on"))
            .into_iter()
            .chain(keys(service.get("depends_on").filter(|d| d.is_object())))
        {
            if !services.contains_key(&dependency) {
                errors.push(format!(
                    "service `{name}` depends on unknown `{dependency}`"
                ));
            }
        }
    }
    // Both collector configurations are mounted, so either can be selected.
    if let Some(collector) = services.get("otel-collector") {
        for file in [FULL_COLLECTOR, MINIMAL_COLLECTOR] {
            if !bind_mounts(collector)
                .iter()
                .any(|(source, _)| source.trim_start_matches("./") == file)
            {
                errors.push(format!("otel-collector does not mount {file}"));
            }
        }
        let ports = strings(collector.get("ports"));
        for port in ["4317", "4318"] {
            if !ports.iter().any(|p| p.split(':').next() == Some(port)) {
                errors.push(format!(
                    "otel-collector does not publish port {port} to the host"
                ));
            }
        }
    }
    fail_on(&errors);
}

/// `http://host:port/path`, `host:port` or `0.0.0.0:port` → (host, port).
fn host_port(endpoint: &str) -> Option<(String, String)> {
    let without_scheme = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = without_scheme.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_owned(), port.to_owned()))
}

#[test]
fn services_refer_to_each_other_by_compose_names() {
    let compose = load(COMPOSE);
    let services = compose_services(&compose);
    let mut errors = Vec::new();
    let local = |host: &str| matches!(host, "0.0.0.0" | "localhost" | "127.0.0.1" | "");

    // Collector exporters reach compose services.
    let collector = load(FULL_COLLECTOR);
    let mut prometheus_port = None;
    for (id, exporter) in collector
        .get("exporters")
        .and_then(Value::as_object)
        .expect("exporters")
    {
        let Some(endpoint) = exporter.get("endpoint").and_then(Value::as_str) else {
            continue;
        };
        let Some((host, port)) = host_port(endpoint) else {
            errors.push(format!("exporter `{id}`: cannot read endpoint {endpoint}"));
            continue;
        };
        if component_type(id) == "prometheus" {
            prometheus_port = Some(port);
        } else if !local(&host) && !services.contains_key(&host) {
            errors.push(format!(
                "exporter `{id}` sends to `{host}`, which is no compose service"
            ));
        }
    }

    // Prometheus scrapes the collector's prometheus exporter.
    let prometheus = load(PROMETHEUS_CONFIG);
    let targets: Vec<String> = prometheus
        .get("scrape_configs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|job| {
            job.get("static_configs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| strings(c.get("targets")))
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = format!("otel-collector:{}", prometheus_port.unwrap_or_default());
    if !targets.contains(&expected) {
        errors.push(format!(
            "prometheus.yml does not scrape {expected} (targets: {targets:?})"
        ));
    }
    for target in &targets {
        if let Some((host, _)) = host_port(target) {
            if !local(&host) && !services.contains_key(&host) {
                errors.push(format!(
                    "prometheus.yml scrapes `{host}`, which is no compose service"
                ));
            }
        }
    }

    // Grafana's data sources point at compose services.
    for (uid, (_, url)) in datasources() {
        match host_port(&url) {
            Some((host, _)) if services.contains_key(&host) => {}
            _ => errors.push(format!(
                "data source `{uid}`: {url} is not a compose service"
            )),
        }
    }

    // The dashboard provider reads a directory Grafana mounts, holding the dashboard.
    let grafana = services.get("grafana").expect("grafana service");
    let mounts = bind_mounts(grafana);
    for file in yaml_files_in(DASHBOARD_PROVIDERS_DIR) {
        let providers = parse(&file).expect("provider file parses");
        for provider in providers
            .get("providers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = provider
                .pointer("/options/path")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match mounts
                .iter()
                .find(|(_, target)| target.trim_end_matches('/') == path.trim_end_matches('/'))
            {
                Some((source, _)) => {
                    let dashboard = Path::new(DASHBOARD);
                    if config_dir()
                        .join(source)
                        .join(dashboard.file_name().expect("name"))
                        .is_file()
                    {
                        continue;
                    }
                    errors.push(format!(
                        "the dashboards provider reads {path} (= {source}), which does not hold \
                         {DASHBOARD}"
                    ));
                }
                None => errors.push(format!(
                    "the dashboards provider reads {path}, which the grafana service does not mount"
                )),
            }
        }
    }
    fail_on(&errors);
}

// ---------------------------------------------------------------------------------------------
// (d) Dashboard queries

/// Provisioned data sources: uid → (type, url).
fn datasources() -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for file in yaml_files_in(DATASOURCES_DIR) {
        let doc = parse(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for ds in doc
            .get("datasources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let uid = ds.get("uid").and_then(Value::as_str).unwrap_or_else(|| {
                panic!(
                    "{}: a data source without uid cannot be referenced",
                    file.display()
                )
            });
            let kind = ds.get("type").and_then(Value::as_str).unwrap_or_default();
            let url = ds.get("url").and_then(Value::as_str).unwrap_or_default();
            out.insert(uid.to_owned(), (kind.to_owned(), url.to_owned()));
        }
    }
    out
}

/// The names a query may use, built from the crate's constants.
#[derive(Debug)]
struct Vocabulary {
    loki_stream_labels: BTreeSet<String>,
    loki_metadata: BTreeSet<String>,
    loki_metadata_prefixes: Vec<String>,
    /// The label the event name arrives under in Loki, from the collector configuration.
    loki_event_label: String,
    statuses: BTreeSet<&'static str>,
}

/// How Loki's OTLP ingestion names an attribute in structured metadata and labels
/// (`otlptranslator.NormalizeLabel`): every character other than a letter, digit or `_`
/// becomes `_`, the same rule as the Prometheus names.
fn loki_name(attribute: &str) -> String {
    names::prometheus_name(attribute)
}

fn vocabulary() -> Vocabulary {
    let event_attribute = event_name_attribute(&load(FULL_COLLECTOR))
        .unwrap_or_else(|e| panic!("{FULL_COLLECTOR}: {e}"));
    let loki_event_label = loki_name(&event_attribute);
    let loki_stream_labels: BTreeSet<String> =
        LOKI_STREAM_LABELS.iter().map(|l| (*l).to_owned()).collect();
    let loki_metadata = names::LOG_ATTRIBUTES
        .iter()
        .map(|a| loki_name(a))
        .chain(LOKI_BUILTIN_METADATA.iter().map(|l| (*l).to_owned()))
        .chain([loki_event_label.clone()])
        .chain(loki_stream_labels.iter().cloned())
        .collect();
    Vocabulary {
        loki_stream_labels,
        loki_metadata,
        loki_metadata_prefixes: vec![loki_name(names::SANITIZATION_PREFIX)],
        loki_event_label,
        statuses: [Status::Success, Status::Error, Status::Blocked]
            .into_iter()
            .map(Status::as_str)
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// A string literal's content.
    Str(String),
    /// A number or a duration.
    Number,
    /// A Grafana variable: `$name`, `${name}`, `$__rate_interval`.
    Variable,
    /// A range or subquery selector `[...]`, contents skipped.
    Range,
    Symbol(String),
}

fn tokenize(query: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string in `{query}`")),
                    Some('\\') if c != '`' => {
                        if let Some(escaped) = chars.get(i + 1) {
                            value.push(*escaped);
                        }
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Str(value));
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
            }
            tokens.push(Token::Variable);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            if i == chars.len() {
                return Err(format!("unterminated `[` in `{query}`"));
            }
            i += 1;
            tokens.push(Token::Range);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number);
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let pair: String = chars[i..chars.len().min(i + 2)].iter().collect();
            if ["=~", "!~", "!=", "==", "<=", ">=", "|=", "|~", "|>", "!>"].contains(&pair.as_str())
            {
                tokens.push(Token::Symbol(pair));
                i += 2;
            } else {
                tokens.push(Token::Symbol(c.to_string()));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

fn symbol(token: Option<&Token>, s: &str) -> bool {
    matches!(token, Some(Token::Symbol(t)) if t == s)
}

/// A function call `name(`, or an aggregation with its grouping first: `sum by (...) (`.
fn is_call(tokens: &[Token], i: usize) -> bool {
    symbol(tokens.get(i + 1), "(")
        || matches!(tokens.get(i + 1), Some(Token::Ident(k)) if k == "by" || k == "without")
}

/// `label = "value"` / `label != "value"`: the value, for labels whose values are known.
fn literal_value(tokens: &[Token], i: usize) -> Option<&str> {
    match (tokens.get(i + 1), tokens.get(i + 2)) {
        (Some(Token::Symbol(op)), Some(Token::Str(value)))
            if op == "=" || op == "!=" || op == "==" =>
        {
            Some(value)
        }
        _ => None,
    }
}

fn check_status_value(
    label: &str,
    value: &str,
    vocabulary: &Vocabulary,
    query: &str,
) -> Option<String> {
    (label == names::prometheus_name(names::STATUS) && !vocabulary.statuses.contains(value)).then(
        || {
            format!(
                "`{label}=\"{value}\"` in `{query}`: the status is one of {:?}",
                vocabulary.statuses
            )
        },
    )
}

/// Checks a LogQL query: stream labels in `{...}` and every other identifier that is not a
/// function, keyword or pipeline stage is a structured-metadata label.
fn check_logql(query: &str, vocabulary: &Vocabulary) -> Vec<String> {
    let mut errors = Vec::new();
    let tokens = match tokenize(query) {
        Ok(tokens) => tokens,
        Err(e) => return vec![e],
    };
    if !tokens.iter().any(|t| symbol(Some(t), "{")) {
        errors.push(format!("`{query}` has no stream selector"));
    }
    let mut in_braces = false;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Symbol(s) if s == "{" => in_braces = true,
            Token::Symbol(s) if s == "}" => in_braces = false,
            Token::Ident(name) if in_braces => {
                let known = vocabulary.loki_stream_labels.contains(name);
                errors.extend((!known).then(|| {
                    format!(
                        "stream label `{name}` in `{query}`: Loki indexes only {:?} from OTLP; \
                         log attributes are structured metadata, filtered after the selector",
                        vocabulary.loki_stream_labels
                    )
                }));
            }
            Token::Ident(name) => {
                let after_pipe = symbol(i.checked_sub(1).map(|p| &tokens[p]), "|");
                if LABEL_LIST_KEYWORDS.contains(&name.as_str())
                    || OTHER_KEYWORDS.contains(&name.as_str())
                    || (after_pipe && LOGQL_STAGES.contains(&name.as_str()))
                {
                    continue;
                }
                if is_call(&tokens, i) {
                    if !LOGQL_FUNCTIONS.contains(&name.as_str()) {
                        errors.push(format!("unknown LogQL function `{name}` in `{query}`"));
                    }
                    continue;
                }
                let known = vocabulary.loki_metadata.contains(name)
                    || vocabulary
                        .loki_metadata_prefixes
                        .iter()
                        .any(|p| name.starts_with(p.as_str()));
                if !known {
                    errors.push(format!(
                        "`{name}` in `{query}` is not the Loki name of a log attribute the crate \
                         exports (names::LOG_ATTRIBUTES with dots as underscores), nor \
                         `{}` nor a built-in {LOKI_BUILTIN_METADATA:?}",
                        vocabulary.loki_event_label
                    ));
                }
                if let Some(value) = literal_value(&tokens, i) {
                    if *name == vocabulary.loki_event_label && value != names::EVENT_NAME {
                        errors.push(format!(
                            "`{name}=\"{value}\"` in `{query}`: the audit records' event name is \
                             `{}`",
                            names::EVENT_NAME
                        ));
                    }
                    errors.extend(check_status_value(name, value, vocabulary, query));
                }
            }
            _ => {}
        }
    }
    errors
}

/// Every query of the dashboard with its data source type: (where, type, query).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let dashboard = load(DASHBOARD);
    let sources = datasources();
    let mut out = Vec::new();
    let uid_type = |ds: Option<&Value>, place: &str| -> String {
        let uid = ds.and_then(|d| d.get("uid")).and_then(Value::as_str);
        match uid.and_then(|u| sources.get(u)) {
            Some((kind, _)) => kind.clone(),
            None => panic!(
                "{place}: data source {ds:?} is not one of the provisioned uids {:?}",
                sources.keys().collect::<Vec<_>>()
            ),
        }
    };

    fn collect_panels<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
        for panel in panels {
            out.push(panel);
            if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
                collect_panels(nested, out);
            }
        }
    }
    let mut panels = Vec::new();
    collect_panels(
        dashboard
            .get("panels")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
        &mut panels,
    );
    for panel in panels {
        let title = panel.get("title").and_then(Value::as_str).unwrap_or("?");
        for target in panel
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let place = format!("panel `{title}`");
            let ds = target.get("datasource").or_else(|| panel.get("datasource"));
            let kind = uid_type(ds, &place);
            let expr = target
                .get("expr")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{place}: a target without expr"));
            out.push((place, kind, expr.to_owned()));
        }
    }
    for variable in dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if variable.get("type").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let name = variable.get("name").and_then(Value::as_str).unwrap_or("?");
        let place = format!("variable `{name}`");
        let kind = uid_type(variable.get("datasource"), &place);
        let query = match variable.get("query") {
            Some(Value::String(q)) => q.clone(),
            Some(q) => q
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        };
        out.push((place, kind, query));
    }
    out
}

#[test]
fn dashboard_queries_use_only_names_the_crate_exports() {
    let vocabulary = vocabulary();
    let mut errors = Vec::new();
    let mut used_metrics = BTreeSet::new();
    let mut promql = 0;
    let mut logql = 0;
    for (place, kind, query) in dashboard_queries() {
        match kind.as_str() {
            // Evaluated by a real Prometheus in tests/collector_live.rs; here only the names
            // they use, for the coverage check below.
            "prometheus" => {
                promql += 1;
                match tokenize(&query) {
                    Ok(tokens) => used_metrics.extend(tokens.into_iter().filter_map(|t| match t {
                        Token::Ident(name) => Some(name),
                        _ => None,
                    })),
                    Err(e) => errors.push(format!("{place}: {e}")),
                }
            }
            "loki" => {
                logql += 1;
                errors.extend(
                    check_logql(&query, &vocabulary)
                        .into_iter()
                        .map(|e| format!("{place}: {e}")),
                );
            }
            other => errors.push(format!(
                "{place}: no check for a `{other}` query: `{query}`"
            )),
        }
    }
    assert!(promql >= 8, "only {promql} PromQL queries found");
    assert!(logql >= 2, "only {logql} LogQL queries found");

    // Every metric the crate records has a place on the dashboard: a counter under its name, a
    // histogram under one of its series.
    for metric in names::METRICS {
        let base = names::prometheus_name(metric);
        let shown = if HISTOGRAMS.contains(metric) {
            HISTOGRAM_SUFFIXES
                .iter()
                .any(|s| used_metrics.contains(&format!("{base}{s}")))
        } else {
            used_metrics.contains(&base)
        };
        if !shown {
            errors.push(format!("no panel shows the metric {metric} ({base})"));
        }
    }
    fail_on(&errors);
}

#[test]
fn the_logql_check_rejects_names_the_crate_does_not_export() {
    let vocabulary = vocabulary();
    let status = names::prometheus_name(names::STATUS);
    let user = loki_name(names::USER_ID);
    let event = &vocabulary.loki_event_label;
    let cost_attribute = loki_name(names::USAGE_COST);
    let bad_logql = [
        // Log attributes are structured metadata, not stream labels.
        format!("{{{user}=\"u-1\"}}"),
        format!("{{service_name=\"a\"}} | {user}x=\"u-1\""),
        "{service_name=\"a\"} | unwrap cost_usd [5m]".to_owned(),
        format!(
            "{{service_name=\"a\"}} | {event}=\"{}s\"",
            names::EVENT_NAME
        ),
        "sum by (gen_ai_model) (count_over_time({service_name=\"a\"} [5m]))".to_owned(),
        format!("{{service_name=\"a\"}} | {status}=\"ok\""),
    ];
    for query in &bad_logql {
        assert!(
            !check_logql(query, &vocabulary).is_empty(),
            "accepted `{query}`"
        );
    }
    let good_logql = [
        format!(
            "topk(5, sum by ({user}) (sum_over_time({{service_name=~\"$service\"}} | \
             {event}=\"{}\" | {cost_attribute} != \"\" | unwrap {cost_attribute} | \
             __error__=\"\" [$__range])))",
            names::EVENT_NAME
        ),
        format!(
            "{{service_name=\"a\"}} | {}email > 0 | trace_id=\"abc\"",
            loki_name(names::SANITIZATION_PREFIX)
        ),
    ];
    for query in &good_logql {
        let errors = check_logql(query, &vocabulary);
        assert!(errors.is_empty(), "rejected `{query}`: {errors:?}");
    }
}
