//! Runtime flags: read with one wait-free load on the hot path, replaced whole on change.
//! Every change is logged (at WARN, so production logs keep it) and applied to the logging
//! filter and the trace sampler of the process. Which value wins when the configuration and
//! the admin API disagree is [`layers`]' rule.

mod layers;

pub use layers::Source;

use arc_swap::{ArcSwap, Guard};
use layers::Layers;
use pfs_platform::Config;
use pfs_platform::config::RuntimeFlags as ConfiguredFlags;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The flags in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flags {
    /// The log filter (`logging.level`).
    pub log_level: String,
    #[serde(flatten)]
    pub runtime: ConfiguredFlags,
}

impl Flags {
    pub fn from_config(config: &Config) -> Self {
        Self { log_level: config.logging.level.clone(), runtime: config.observability.flags.clone() }
    }
}

/// A partial update (`PATCH /admin/flags`); absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_sample_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_tracing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_middleware: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_logging: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_sample_rate: Option<f64>,
}

/// Where this replica's admin changes go so that every replica applies them (Redis, when
/// configured). Called after the change is in force here; must not block.
pub trait ShareFlags: Send + Sync {
    /// `values` were set through the admin API.
    fn set(&self, values: &Map<String, Value>);
    /// The overrides of `keys` were dropped because the configuration changed those keys.
    fn dropped(&self, keys: &[String]);
}

pub struct RuntimeFlags {
    current: ArcSwap<Flags>,
    /// The switches read on every request, as bits beside the whole set: loading the set
    /// (`arc-swap`) publishes a hazard pointer with a full fence, a plain load of these does not.
    switches: AtomicU8,
    /// What the flags in force are made of. Held while they are replaced, so the set, its
    /// switches and its layers change together.
    layers: Mutex<Layers>,
    share: OnceLock<Box<dyn ShareFlags>>,
}

impl std::fmt::Debug for RuntimeFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeFlags").field("current", &self.current).finish_non_exhaustive()
    }
}

const METRICS_MIDDLEWARE: u8 = 1;
const REQUEST_LOGGING: u8 = 2;
const DATABASE_TRACING: u8 = 4;

fn switches(flags: &ConfiguredFlags) -> u8 {
    let bit = |on: bool, bit: u8| if on { bit } else { 0 };
    bit(flags.metrics_middleware, METRICS_MIDDLEWARE)
        | bit(flags.request_logging, REQUEST_LOGGING)
        | bit(flags.database_tracing, DATABASE_TRACING)
}

impl RuntimeFlags {
    pub fn from_config(config: &Config) -> Self {
        Self::new(Flags::from_config(config))
    }

    pub fn new(flags: Flags) -> Self {
        apply_effects(&flags);
        let switches = AtomicU8::new(switches(&flags.runtime));
        let layers = Mutex::new(Layers::new(flags.clone()));
        Self { current: ArcSwap::from_pointee(flags), switches, layers, share: OnceLock::new() }
    }

    /// Sends this replica's admin changes to `share` from now on (once; later calls are ignored).
    pub fn share_through(&self, share: Box<dyn ShareFlags>) {
        let _ = self.share.set(share);
    }

    /// The flags in force: no lock, no allocation.
    pub fn load(&self) -> Guard<Arc<Flags>> {
        self.current.load()
    }

    fn switch(&self, bit: u8) -> bool {
        self.switches.load(Ordering::Relaxed) & bit != 0
    }

    pub fn metrics_middleware(&self) -> bool {
        self.switch(METRICS_MIDDLEWARE)
    }

    pub fn request_logging(&self) -> bool {
        self.switch(REQUEST_LOGGING)
    }

    pub fn database_tracing(&self) -> bool {
        self.switch(DATABASE_TRACING)
    }

    /// Applies an admin change (`who` for the log): its values override the configuration's
    /// until set again or until the configuration changes the same keys. Returns the names of
    /// the flags that changed; an invalid value changes nothing.
    pub fn patch(&self, patch: &FlagsPatch, who: &str) -> Result<Vec<&'static str>, String> {
        let Ok(Value::Object(values)) = serde_json::to_value(patch) else { return Ok(Vec::new()) };
        let changed = self.update(&format!("admin:{who}"), |layers| {
            layers.overrides.extend(values.clone());
        })?;
        if let Some(share) = self.share.get() {
            share.set(&values);
        }
        Ok(changed)
    }

    /// Takes the flags of a newly loaded configuration (`cause`: `sighup`, `file`), keeping
    /// each admin override whose key the configuration did not change.
    pub fn reconfigure(&self, configured: Flags, cause: &str) -> Result<Vec<&'static str>, String> {
        let mut dropped = Vec::new();
        let changed = self.update(cause, |layers| dropped = layers.reconfigure(configured))?;
        if let (Some(share), false) = (self.share.get(), dropped.is_empty()) {
            share.dropped(&dropped);
        }
        Ok(changed)
    }

    /// Adopts the overrides every replica shares (read from Redis), in place of this
    /// replica's own.
    pub fn adopt_shared(&self, overrides: Map<String, Value>) -> Result<Vec<&'static str>, String> {
        self.update("admin:shared", |layers| layers.overrides = overrides)
    }

    /// Where each flag in force came from (`configuration` or `admin`), by flag name.
    pub fn sources(&self) -> Value {
        self.layers.lock().unwrap_or_else(PoisonError::into_inner).sources()
    }

    /// Changes the layers with `change` and installs the flags they make, or changes nothing
    /// if those are invalid. Logs each changed flag with `source`.
    fn update(&self, source: &str, change: impl FnOnce(&mut Layers)) -> Result<Vec<&'static str>, String> {
        let mut layers = self.layers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = layers.clone();
        change(&mut next);
        let flags = next.effective()?;
        validate(&flags)?;
        *layers = next;
        self.switches.store(switches(&flags.runtime), Ordering::Relaxed);
        let previous = self.current.swap(Arc::new(flags.clone()));
        let changed = diff(&previous, &flags);
        for (name, from, to) in &changed {
            tracing::warn!(flag = name, from = %from, to = %to, source, "runtime flag changed");
        }
        if !changed.is_empty() {
            apply_effects(&flags);
        }
        Ok(changed.into_iter().map(|(name, ..)| name).collect())
    }
}

fn validate(flags: &Flags) -> Result<(), String> {
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    if !unit(flags.runtime.trace_sample_ratio) {
        return Err("trace_sample_ratio must be between 0 and 1".into());
    }
    if !unit(flags.runtime.log_sample_rate) {
        return Err("log_sample_rate must be between 0 and 1".into());
    }
    pfs_platform::telemetry::parse_filter(&flags.log_level)
        .map(|_| ())
        .map_err(|e| format!("log_level {:?} is not a level or filter: {e}", flags.log_level))
}

fn diff(a: &Flags, b: &Flags) -> Vec<(&'static str, String, String)> {
    let (x, y) = (&a.runtime, &b.runtime);
    let mut changed = Vec::new();
    let mut check = |name, from: String, to: String| {
        if from != to {
            changed.push((name, from, to));
        }
    };
    check("log_level", a.log_level.clone(), b.log_level.clone());
    check("trace_sample_ratio", x.trace_sample_ratio.to_string(), y.trace_sample_ratio.to_string());
    check("database_tracing", x.database_tracing.to_string(), y.database_tracing.to_string());
    check("metrics_middleware", x.metrics_middleware.to_string(), y.metrics_middleware.to_string());
    check("request_logging", x.request_logging.to_string(), y.request_logging.to_string());
    check("log_sample_rate", x.log_sample_rate.to_string(), y.log_sample_rate.to_string());
    changed
}

/// The process-wide parts: the log filter (when this process installed the subscriber) and
/// the sampler's ratio.
fn apply_effects(flags: &Flags) {
    if let Some(control) = pfs_platform::telemetry::control() {
        if std::env::var_os("RUST_LOG").is_none()
            && let Err(err) = control.set_level(&flags.log_level)
        {
            tracing::warn!(error = %err, "log level not changed");
        }
        control.set_sample_rate(flags.runtime.log_sample_rate);
    }
    crate::sampler::set_ratio(flags.runtime.trace_sample_ratio);
}

/// Re-reads the configuration and installs its flags on every SIGHUP and, when a configuration
/// file is in use, whenever its content changes (checked every
/// `observability.config_reload_interval`), until the process ends. The file is polled
/// rather than watched: a Kubernetes ConfigMap update swaps a symlink, which a watch on the
/// file's own inode never hears of. A configuration that no longer loads is reported and the
/// flags in force stay.
#[cfg(unix)]
pub fn reload_on_change(
    flags: Arc<RuntimeFlags>,
    sources: pfs_platform::ConfigSources,
    every: std::time::Duration,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    let sources = Arc::new(sources);
    let (on_signal, on_signal_sources) = (flags.clone(), sources.clone());
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reload(&on_signal, &on_signal_sources, "sighup");
        }
    });
    if let Some(path) = sources.config_file().filter(|_| !every.is_zero()) {
        tokio::spawn(async move {
            let mut seen = tokio::fs::read(&path).await.ok();
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let content = tokio::fs::read(&path).await.ok();
                // A file that is briefly missing (mid-swap) is not a change worth a reload.
                if content.is_some() && content != seen {
                    seen = content;
                    reload(&flags, &sources, "file");
                }
            }
        });
    }
    Ok(())
}

fn reload(flags: &RuntimeFlags, sources: &pfs_platform::ConfigSources, cause: &'static str) {
    match Config::load(sources) {
        Ok(config) => match flags.reconfigure(Flags::from_config(&config), cause) {
            Ok(changed) => tracing::warn!(?changed, cause, "configuration reloaded"),
            Err(err) => tracing::error!(error = %err, cause, "flags rejected on reload; keeping the current ones"),
        },
        Err(err) => tracing::error!(error = %err, cause, "configuration invalid on reload; keeping the current flags"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            log_level: "info".into(),
            runtime: ConfiguredFlags {
                trace_sample_ratio: 1.0,
                database_tracing: true,
                metrics_middleware: true,
                request_logging: true,
                log_sample_rate: 1.0,
            },
        }
    }

    #[test]
    fn a_patch_changes_only_the_named_flags_and_reports_them() {
        let live = RuntimeFlags::new(flags());
        let patch = FlagsPatch { database_tracing: Some(false), log_level: Some("warn".into()), ..Default::default() };
        let changed = live.patch(&patch, "test").unwrap();
        assert_eq!(changed, ["log_level", "database_tracing"]);
        assert!(!live.load().runtime.database_tracing);
        assert!(live.load().runtime.metrics_middleware);
        assert!(!live.database_tracing() && live.metrics_middleware() && live.request_logging());
    }

    #[test]
    fn invalid_values_are_refused_and_the_flags_in_force_stay() {
        let live = RuntimeFlags::new(flags());
        let bad_ratio = FlagsPatch { trace_sample_ratio: Some(1.5), ..Default::default() };
        assert!(live.patch(&bad_ratio, "test").is_err());
        let bad_level = FlagsPatch { log_level: Some("loud[".into()), ..Default::default() };
        assert!(live.patch(&bad_level, "test").is_err());
        assert_eq!(**live.load(), flags());
        assert!(live.database_tracing() && live.metrics_middleware() && live.request_logging());
    }
}
