//! What each signal's exporters resolve to: the OpenTelemetry environment specification's
//! variables over the `observability.otlp` keys over the defaults. Pure functions over a map
//! of variables, so every rule is tested without touching a process environment.
//!
//! Nothing here fails: a value that cannot be used becomes a warning naming its variable, and
//! either the next source in precedence order is used or the signal runs without that
//! exporter, with the reason kept for `/health/detailed` and `config print`.

use super::vars::{Vars, list};
use pfs_platform::Config;
use pfs_platform::config::{OtlpConfig, OtlpProtocol};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    /// The signal-specific variable `OTEL_EXPORTER_OTLP_<SIGNAL>_<what>`, then the general one.
    fn otlp_vars(self, what: &str) -> [String; 2] {
        [format!("OTEL_EXPORTER_OTLP_{}_{what}", self.upper()), format!("OTEL_EXPORTER_OTLP_{what}")]
    }
}

/// The wire protocol an OTLP exporter speaks (never `auto` once resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// The specification's one compression (`gzip`; `none` is the absence of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
}

/// A file named by a variable (or key), kept with that name for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    pub source: String,
    pub path: PathBuf,
}

/// One resolved OTLP exporter.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpTarget {
    /// With its scheme, and for HTTP the signal's path.
    pub url: String,
    pub protocol: Protocol,
    /// The variable (or configuration key) the endpoint came from.
    pub source: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub compression: Option<Compression>,
    pub certificate: Option<NamedFile>,
    pub client_certificate: Option<NamedFile>,
    pub client_key: Option<NamedFile>,
    /// Said with a failure: why the URL is what it is, when that is easy to miss.
    pub hint: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Exporter {
    Otlp(Box<OtlpTarget>),
    Console,
}

impl Exporter {
    pub fn kind(&self) -> &'static str {
        match self {
            Exporter::Otlp(_) => "otlp",
            Exporter::Console => "console",
        }
    }
}

/// A signal's exporters, or why it has none.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalPlan {
    pub signal: Signal,
    pub exporters: Vec<Exporter>,
    /// Set when there are no exporters.
    pub disabled: Option<String>,
}

impl SignalPlan {
    fn off(signal: Signal, reason: impl Into<String>) -> Self {
        Self { signal, exporters: Vec::new(), disabled: Some(reason.into()) }
    }
}

/// The bounded queue in front of a span or log exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    pub max_queue: usize,
    pub max_batch: usize,
    pub delay: Duration,
    pub timeout: Duration,
}

/// Everything the pipeline builds, resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    pub traces: SignalPlan,
    pub metrics: SignalPlan,
    pub logs: SignalPlan,
    pub spans: Batching,
    pub log_records: Batching,
    pub metric_interval: Duration,
    pub metric_timeout: Duration,
    pub propagators: Vec<crate::propagation::Kind>,
    pub resource: Vec<(String, String)>,
    /// One line per unusable value, each naming its variable.
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn signals(&self) -> [&SignalPlan; 3] {
        [&self.traces, &self.metrics, &self.logs]
    }
}

/// Resolves the whole pipeline from `config` and its `telemetry_env`.
pub fn plan(config: &Config) -> Plan {
    let vars = Vars::new(&config.telemetry_env);
    let observability = &config.observability;
    let otlp = &observability.otlp;
    let mut warnings = Vec::new();
    let disabled = vars.flag("OTEL_SDK_DISABLED", &mut warnings).unwrap_or(false);
    let gate = |signal: Signal| -> Option<String> {
        if disabled {
            return Some("OTEL_SDK_DISABLED=true".into());
        }
        match signal {
            Signal::Traces if !observability.tracing_enabled => Some("observability.tracing_enabled is false".into()),
            Signal::Metrics if !observability.metrics_enabled => {
                Some("metrics are off (observability.metrics_enabled, ENABLE_METRICS)".into())
            }
            _ => None,
        }
    };
    let mut resolve = |signal| match gate(signal) {
        Some(reason) => SignalPlan::off(signal, reason),
        None => signal_plan(signal, &vars, otlp, &mut warnings),
    };
    let (traces, metrics, logs) = (resolve(Signal::Traces), resolve(Signal::Metrics), resolve(Signal::Logs));
    let spans = batching("OTEL_BSP", &vars, otlp, &mut warnings);
    let log_records = batching("OTEL_BLRP", &vars, otlp, &mut warnings);
    let metric_interval = vars.millis(&["OTEL_METRIC_EXPORT_INTERVAL"], &mut warnings).unwrap_or(otlp.metrics_interval);
    let metric_timeout = vars.millis(&["OTEL_METRIC_EXPORT_TIMEOUT"], &mut warnings).unwrap_or(otlp.metrics_timeout);
    let propagators = crate::propagation::Kind::resolve(&vars, &mut warnings);
    let resource = super::resource::attributes(config, &vars, &mut warnings);
    Plan { traces, metrics, logs, spans, log_records, metric_interval, metric_timeout, propagators, resource, warnings }
}

fn signal_plan(signal: Signal, vars: &Vars<'_>, otlp: &OtlpConfig, warnings: &mut Vec<String>) -> SignalPlan {
    let exporter_var = format!("OTEL_{}_EXPORTER", signal.upper());
    let named = vars.get(&exporter_var).map(list);
    let mut kinds: Vec<String> = Vec::new();
    for name in named.clone().unwrap_or_else(|| vec!["otlp".into()]) {
        match name.as_str() {
            "otlp" | "console" | "none" => kinds.push(name),
            // Pulled by Prometheus at /metrics, which is served whenever metrics are on.
            "prometheus" if signal == Signal::Metrics => {}
            other => warnings.push(format!("{exporter_var}: unknown exporter {other:?} ignored (otlp, console, none)")),
        }
    }
    if kinds.iter().any(|k| k == "none") || (named.is_some() && kinds.is_empty()) {
        return SignalPlan::off(signal, format!("{exporter_var}={}", vars.get(&exporter_var).unwrap_or_default()));
    }
    let mut exporters = Vec::new();
    let mut reason = None;
    if kinds.iter().any(|k| k == "otlp") {
        let switched_off = match signal {
            Signal::Traces => !otlp.traces,
            Signal::Metrics => !otlp.metrics,
            Signal::Logs => !otlp.logs,
        };
        if switched_off {
            reason = Some(format!("observability.otlp.{} is false", signal.name()));
        } else {
            match otlp_target(signal, vars, otlp, named.is_some(), warnings) {
                Ok(target) => exporters.push(Exporter::Otlp(Box::new(target))),
                Err(why) => reason = Some(why),
            }
        }
    }
    if kinds.iter().any(|k| k == "console") {
        exporters.push(Exporter::Console);
    }
    let disabled = exporters.is_empty().then(|| reason.unwrap_or_else(|| "no exporter".into()));
    SignalPlan { signal, exporters, disabled }
}

/// The OTLP exporter of `signal`, or why there is none.
fn otlp_target(
    signal: Signal,
    vars: &Vars<'_>,
    otlp: &OtlpConfig,
    explicitly_named: bool,
    warnings: &mut Vec<String>,
) -> Result<OtlpTarget, String> {
    let [signal_endpoint, general_endpoint] = signal.otlp_vars("ENDPOINT");
    let configured = otlp.endpoint.trim();
    let (source, raw, per_signal) = if let Some(value) = vars.get(&signal_endpoint) {
        (signal_endpoint, value.to_owned(), true)
    } else if let Some(value) = vars.get(&general_endpoint) {
        (general_endpoint, value.to_owned(), false)
    } else if !configured.is_empty() {
        ("observability.otlp.endpoint".to_owned(), configured.to_owned(), false)
    } else if explicitly_named {
        ("the specification's default".to_owned(), String::new(), false)
    } else {
        return Err("no endpoint (OTEL_EXPORTER_OTLP_ENDPOINT is unset)".into());
    };
    let explicit = explicit_protocol(signal, vars, otlp, warnings);
    let protocol = protocol_for(explicit, &raw);
    let raw = if raw.is_empty() {
        match protocol {
            Protocol::Grpc => "http://localhost:4317".to_owned(),
            Protocol::HttpProtobuf => "http://localhost:4318".to_owned(),
        }
    } else {
        raw
    };
    let insecure = vars.first_flag(&signal.otlp_vars("INSECURE"), warnings).unwrap_or(otlp.insecure);
    let url = endpoint_url(&raw, signal, protocol, per_signal, insecure).map_err(|why| {
        let message = format!("{source}={raw:?} is not a usable endpoint: {why}");
        warnings.push(message.clone());
        message
    })?;
    let hint = (split_scheme(&raw).0.is_none() && !insecure).then(|| {
        format!("{source} has no scheme, so TLS is used; OTEL_EXPORTER_OTLP_INSECURE=true makes it plaintext")
    });
    let timeout = vars.millis(&signal.otlp_vars("TIMEOUT"), warnings).unwrap_or(otlp.timeout);
    let file = |what: &str, configured: &str| -> Option<NamedFile> {
        match vars.first(&signal.otlp_vars(what)) {
            Some((source, path)) => Some(NamedFile { source, path: PathBuf::from(path) }),
            None if !configured.is_empty() => {
                Some(NamedFile { source: "observability.otlp.certificate".into(), path: configured.into() })
            }
            None => None,
        }
    };
    let certificate = file("CERTIFICATE", otlp.certificate.trim());
    let client_certificate = file("CLIENT_CERTIFICATE", "");
    let client_key = file("CLIENT_KEY", "");
    for named in [&certificate, &client_certificate, &client_key].into_iter().flatten() {
        if !named.path.is_file() {
            let message = format!("{}={}: no such file", named.source, named.path.display());
            warnings.push(message.clone());
            return Err(message);
        }
    }
    if client_certificate.is_some() != client_key.is_some() {
        let message = format!(
            "{}: a client certificate needs both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
            signal.otlp_vars("CLIENT_CERTIFICATE")[1]
        );
        warnings.push(message.clone());
        return Err(message);
    }
    Ok(OtlpTarget {
        url,
        protocol,
        source,
        headers: headers(signal, vars, otlp, warnings),
        timeout,
        compression: compression(signal, vars, warnings),
        certificate,
        client_certificate,
        client_key,
        hint,
    })
}

/// The protocol asked for: the signal's variable, the general one, then the configuration key
/// (`None` when all of them leave it to the endpoint).
fn explicit_protocol(
    signal: Signal,
    vars: &Vars<'_>,
    otlp: &OtlpConfig,
    warnings: &mut Vec<String>,
) -> Option<Protocol> {
    for var in signal.otlp_vars("PROTOCOL") {
        let Some(value) = vars.get(&var) else { continue };
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => return Some(Protocol::Grpc),
            "http/protobuf" => return Some(Protocol::HttpProtobuf),
            "http/json" => {
                warnings.push(format!("{var}=http/json is not supported here; http/protobuf is used"));
                return Some(Protocol::HttpProtobuf);
            }
            other => warnings.push(format!("{var}: unknown protocol {other:?} ignored (grpc, http/protobuf)")),
        }
    }
    match otlp.protocol {
        OtlpProtocol::Auto => None,
        OtlpProtocol::Grpc => Some(Protocol::Grpc),
        OtlpProtocol::HttpProtobuf => Some(Protocol::HttpProtobuf),
    }
}

/// The protocol rule: an explicit choice wins; otherwise the endpoint decides. A path ending in
/// `/v1/traces`, `/v1/metrics` or `/v1/logs`, or port 4318, means http/protobuf; port 4317, or
/// no scheme at all (`host:port`, the form only gRPC clients accept), means gRPC; anything else
/// is http/protobuf, the specification's default.
pub fn protocol_for(explicit: Option<Protocol>, endpoint: &str) -> Protocol {
    if let Some(protocol) = explicit {
        return protocol;
    }
    let endpoint = endpoint.trim();
    let (scheme, rest) = split_scheme(endpoint);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    if ["v1/traces", "v1/metrics", "v1/logs"].iter().any(|suffix| path.ends_with(suffix)) {
        return Protocol::HttpProtobuf;
    }
    match authority.rsplit_once(':').map(|(_, port)| port) {
        Some("4318") => Protocol::HttpProtobuf,
        Some("4317") => Protocol::Grpc,
        _ if scheme.is_none() && !endpoint.is_empty() => Protocol::Grpc,
        _ => Protocol::HttpProtobuf,
    }
}

/// `(Some(scheme), rest)` when `://` comes before any path, query or fragment delimiter (the
/// rule the OpenTelemetry Rust exporter uses).
fn split_scheme(endpoint: &str) -> (Option<&str>, &str) {
    match endpoint.split_once("://") {
        Some((scheme, rest)) if !scheme.contains(['/', '?', '#']) => (Some(scheme), rest),
        _ => (None, endpoint),
    }
}

/// The URL an exporter posts to. A schemeless endpoint is read as the SDKs read it: `http://`
/// when insecure, `https://` otherwise. A general (base) endpoint gets the signal's path for
/// HTTP; a signal-specific one is used as it is.
pub fn endpoint_url(
    raw: &str,
    signal: Signal,
    protocol: Protocol,
    per_signal: bool,
    insecure: bool,
) -> Result<String, String> {
    let raw = raw.trim();
    let url = match split_scheme(raw) {
        (Some(_), _) => raw.to_owned(),
        (None, _) if insecure => format!("http://{raw}"),
        (None, _) => format!("https://{raw}"),
    };
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        other => return Err(format!("scheme {:?} (http or https expected)", other.unwrap_or(""))),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(match protocol {
        Protocol::HttpProtobuf if !per_signal => format!("{}/v1/{}", url.trim_end_matches('/'), signal.name()),
        _ => url,
    })
}

/// `key=value,key=value` with percent-encoded values; the signal's variable replaces the
/// general one, which replaces the key.
fn headers(signal: Signal, vars: &Vars<'_>, otlp: &OtlpConfig, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let (source, value) = match vars.first(&signal.otlp_vars("HEADERS")) {
        Some((source, value)) => (source, value.to_owned()),
        None => ("observability.otlp.headers".to_owned(), otlp.headers.clone()),
    };
    let mut headers = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let parsed = pair.split_once('=').and_then(|(name, value)| {
            let name = name.trim().to_ascii_lowercase();
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?.into_owned();
            let valid =
                http::HeaderName::from_bytes(name.as_bytes()).is_ok() && http::HeaderValue::from_str(&value).is_ok();
            valid.then_some((name, value))
        });
        match parsed {
            Some(header) => headers.push(header),
            // The value may be a secret: only the name goes into the message.
            None => warnings.push(format!(
                "{source}: header {:?} ignored (expected name=value)",
                pair.split('=').next().unwrap_or_default()
            )),
        }
    }
    headers
}

fn compression(signal: Signal, vars: &Vars<'_>, warnings: &mut Vec<String>) -> Option<Compression> {
    for var in signal.otlp_vars("COMPRESSION") {
        let Some(value) = vars.get(&var) else { continue };
        match value.trim().to_ascii_lowercase().as_str() {
            "gzip" => return Some(Compression::Gzip),
            "none" => return None,
            other => warnings.push(format!("{var}: unknown compression {other:?} ignored (gzip, none)")),
        }
    }
    None
}

/// `OTEL_BSP_*` (spans) or `OTEL_BLRP_*` (log records) over the queue keys. A batch larger
/// than the queue is cut to the queue, as the specification says.
fn batching(prefix: &str, vars: &Vars<'_>, otlp: &OtlpConfig, warnings: &mut Vec<String>) -> Batching {
    let max_queue = vars.count(&format!("{prefix}_MAX_QUEUE_SIZE"), warnings).unwrap_or(otlp.max_queue_size);
    let max_batch = vars.count(&format!("{prefix}_MAX_EXPORT_BATCH_SIZE"), warnings).unwrap_or(otlp.max_batch_size);
    Batching {
        max_queue,
        max_batch: max_batch.min(max_queue),
        delay: vars.millis(&[format!("{prefix}_SCHEDULE_DELAY")], warnings).unwrap_or(otlp.batch_delay),
        timeout: vars.millis(&[format!("{prefix}_EXPORT_TIMEOUT")], warnings).unwrap_or(otlp.timeout),
    }
}

#[cfg(test)]
mod tests;
