//! What the telemetry pipeline of this process is doing, per signal, for `/health/detailed`
//! and `config print`: each exporter with where it sends and whether its last export was
//! delivered, or why the signal has none.

use super::plan::{Exporter, Plan, SignalPlan};
use pfs_resilience::{BreakerState, CircuitBreaker};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One running exporter's delivery state.
#[derive(Debug)]
pub(crate) struct ExporterStatus {
    pub(crate) signal: &'static str,
    description: Value,
    /// Names the exporter in messages: its URL and the variable the URL came from.
    pub(crate) label: String,
    /// The variable (or key) the endpoint came from: signals sharing it share one WARN.
    source: String,
    hint: Option<String>,
    failing: AtomicBool,
    delivered: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ExporterStatus {
    pub(crate) fn new(plan: &SignalPlan, exporter: &Exporter) -> Arc<Self> {
        let signal = plan.signal.name();
        let (description, label) = describe(exporter);
        let (source, hint) = match exporter {
            Exporter::Otlp(target) => (target.source.clone(), target.hint.clone()),
            Exporter::Console => ("console".into(), None),
        };
        Arc::new(Self {
            signal,
            description,
            label,
            source,
            hint,
            failing: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if self.failing.swap(false, Ordering::Relaxed) && failing_sources(&self.source, -1) == 0 {
            tracing::info!(target: "pfs::telemetry", "OTLP export to {} delivers again", self.label);
        }
    }

    /// A failed export. While exports configured by one variable keep failing, that is one
    /// WARN (for the first signal that fails); the breaker keeps further attempts rare, and
    /// they stay silent until a success.
    pub(crate) fn failed(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) && failing_sources(&self.source, 1) == 1 {
            let hint = self.hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
            tracing::warn!(
                target: "pfs::telemetry",
                "OTLP {} export to {} failed: {error}{hint}; the service runs on without it, retrying behind a circuit breaker",
                self.signal,
                self.label
            );
        }
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    fn report(&self) -> Value {
        let mut report = self.description.clone();
        report["delivering"] = json!(!self.failing.load(Ordering::Relaxed));
        report["exports_delivered"] = json!(self.delivered.load(Ordering::Relaxed));
        report["exports_failed"] = json!(self.failed.load(Ordering::Relaxed));
        if let Some(error) = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            report["last_error"] = json!(error);
        }
        report
    }
}

/// Adds `change` to the number of failing exporters configured by `source`; the new number.
fn failing_sources(source: &str, change: i64) -> i64 {
    static FAILING: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());
    let mut failing = FAILING.lock().unwrap_or_else(|p| p.into_inner());
    let index = match failing.iter().position(|(s, _)| s == source) {
        Some(index) => index,
        None => {
            failing.push((source.to_owned(), 0));
            failing.len() - 1
        }
    };
    failing[index].1 = (failing[index].1 + change).max(0);
    failing[index].1
}

fn describe(exporter: &Exporter) -> (Value, String) {
    match exporter {
        Exporter::Console => (json!({"exporter": "console"}), "stdout".into()),
        Exporter::Otlp(target) => {
            let header_names: Vec<&str> = target.headers.iter().map(|(name, _)| name.as_str()).collect();
            let description = json!({
                "exporter": "otlp",
                "endpoint": target.url,
                "protocol": target.protocol.as_str(),
                "endpoint_from": target.source,
                "timeout_ms": target.timeout.as_millis() as u64,
                "headers": header_names,
                "compression": target.compression.map(|c| format!("{c:?}").to_ascii_lowercase()),
                "tls": target.url.starts_with("https://"),
                "note": target.hint,
            });
            (description, format!("{} ({})", target.url, target.source))
        }
    }
}

/// The state of one signal: its running exporters, or why it has none.
#[derive(Debug)]
pub(crate) struct SignalStatus {
    pub(crate) name: &'static str,
    pub(crate) exporters: Vec<Arc<ExporterStatus>>,
    pub(crate) disabled: Option<String>,
    /// Exporters the configuration asked for that could not be built (bad endpoint, missing
    /// certificate): the signal runs without them.
    pub(crate) left_out: usize,
}

impl SignalStatus {
    fn report(&self) -> Value {
        match &self.disabled {
            Some(reason) if self.exporters.is_empty() => json!({"status": "disabled", "reason": reason}),
            _ => json!({
                "status": "enabled",
                "exporters": self.exporters.iter().map(|e| e.report()).collect::<Vec<_>>(),
            }),
        }
    }
}

/// What `init_process` set up.
#[derive(Debug)]
pub(crate) struct Installed {
    pub(crate) signals: Vec<SignalStatus>,
    pub(crate) propagators: Vec<&'static str>,
    pub(crate) warnings: Vec<String>,
    /// One per signal that exports: `otlp_traces`, `otlp_metrics`, `otlp_logs`.
    pub(crate) breakers: Vec<CircuitBreaker>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

pub(crate) fn install(installed: Installed) {
    let _ = INSTALLED.set(installed);
}

/// The `telemetry` section of `/health/detailed`: per signal `enabled` with its exporters
/// (endpoint, protocol, the variable it came from, whether exports are delivered) or
/// `disabled` with the reason; the propagators; and the warnings of the start.
pub fn report() -> Value {
    let Some(installed) = INSTALLED.get() else {
        return json!({"status": "not started", "reason": "this process did not start the telemetry pipeline"});
    };
    let mut report = serde_json::Map::new();
    for signal in &installed.signals {
        report.insert(signal.name.to_owned(), signal.report());
    }
    report.insert("propagators".into(), json!(installed.propagators));
    report.insert("warnings".into(), json!(installed.warnings));
    Value::Object(report)
}

/// The breakers of the signals this process exports, for the health probes' breaker list.
pub fn breakers() -> Vec<CircuitBreaker> {
    INSTALLED.get().map(|installed| installed.breakers.clone()).unwrap_or_default()
}

/// The `monitoring` block of the health probes, in the original's shape (`status`, `healthy`,
/// `fallback_mode`) but measured: it is in fallback mode while some telemetry the
/// configuration asked for is not delivered (an exporter left out at start, an export
/// failing, or its breaker not closed), and names what.
pub fn monitoring() -> Value {
    let Some(installed) = INSTALLED.get() else {
        return json!({"status": "disabled", "healthy": true, "fallback_mode": false, "failing": []});
    };
    let mut failing: Vec<String> = Vec::new();
    for signal in &installed.signals {
        if signal.left_out > 0 {
            failing.push(format!("{}: {} exporter(s) left out at start", signal.name, signal.left_out));
        }
        for exporter in signal.exporters.iter().filter(|e| e.failing.load(Ordering::Relaxed)) {
            failing.push(format!("{}: exports to {} failing", signal.name, exporter.label));
        }
    }
    for breaker in installed.breakers.iter().filter(|b| b.state() != BreakerState::Closed) {
        failing.push(format!("{} breaker {}", breaker.dependency(), breaker.state().as_str()));
    }
    let exporting = installed.signals.iter().any(|s| !s.exporters.is_empty());
    let status = match (failing.is_empty(), exporting) {
        (false, _) => "degraded",
        (true, true) => "healthy",
        (true, false) => "disabled",
    };
    json!({"status": status, "healthy": failing.is_empty(), "fallback_mode": !failing.is_empty(), "failing": failing})
}

/// The resolved plan as a TOML section, for `config print` (header values never appear).
pub fn plan_toml(plan: &Plan) -> String {
    let mut out = String::from(
        "\n# What each signal resolved to from the OTEL_* variables and the keys above\n# (docs/OBSERVABILITY.md).\n[telemetry]\n",
    );
    let quote = |s: &str| toml_string(s);
    let propagators: Vec<String> = plan.propagators.iter().map(|p| quote(p.as_str())).collect();
    out.push_str(&format!("propagators = [{}]\n", propagators.join(", ")));
    out.push_str(&format!("metric_export_interval = \"{}ms\"\n", plan.metric_interval.as_millis()));
    out.push_str(&format!("metric_export_timeout = \"{}ms\"\n", plan.metric_timeout.as_millis()));
    let warnings: Vec<String> = plan.warnings.iter().map(|w| quote(w)).collect();
    out.push_str(&format!("warnings = [{}]\n", warnings.join(", ")));
    let resource: Vec<String> = plan.resource.iter().map(|(k, v)| format!("{} = {}", quote(k), quote(v))).collect();
    out.push_str(&format!("resource = {{ {} }}\n", resource.join(", ")));
    for signal in plan.signals() {
        out.push_str(&format!("\n[telemetry.{}]\n", signal.signal.name()));
        match &signal.disabled {
            Some(reason) => {
                out.push_str(&format!("status = \"disabled\"\nreason = {}\n", quote(reason)));
            }
            None => {
                out.push_str("status = \"enabled\"\n");
                let kinds: Vec<String> = signal.exporters.iter().map(|e| quote(e.kind())).collect();
                out.push_str(&format!("exporters = [{}]\n", kinds.join(", ")));
                for exporter in &signal.exporters {
                    if let Exporter::Otlp(target) = exporter {
                        let names: Vec<String> = target.headers.iter().map(|(n, _)| quote(n)).collect();
                        out.push_str(&format!(
                            "endpoint = {}\nprotocol = \"{}\"\nendpoint_from = {}\ntimeout = \"{}ms\"\nheaders = [{}]\n",
                            quote(&target.url),
                            target.protocol.as_str(),
                            quote(&target.source),
                            target.timeout.as_millis(),
                            names.join(", ")
                        ));
                    }
                }
            }
        }
    }
    out
}

/// A TOML basic string (JSON's escapes are all valid TOML escapes).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
