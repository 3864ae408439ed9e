//! Runtime flags: read with one wait-free load on the hot path, replaced whole on change.
//! Every change is logged (at WARN, so production logs keep it) and applied to the logging
//! filter and the trace sampler of the process.

use arc_swap::{ArcSwap, Guard};
use pfs_platform::Config;
use pfs_platform::config::RuntimeFlags as ConfiguredFlags;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsPatch {
    pub log_level: Option<String>,
    pub trace_sample_ratio: Option<f64>,
    pub database_tracing: Option<bool>,
    pub metrics_middleware: Option<bool>,
    pub request_logging: Option<bool>,
    pub log_sample_rate: Option<f64>,
}

impl FlagsPatch {
    pub fn applied_to(&self, current: &Flags) -> Flags {
        let mut next = current.clone();
        let runtime = &mut next.runtime;
        if let Some(level) = &self.log_level {
            next.log_level.clone_from(level);
        }
        runtime.trace_sample_ratio = self.trace_sample_ratio.unwrap_or(runtime.trace_sample_ratio);
        runtime.database_tracing = self.database_tracing.unwrap_or(runtime.database_tracing);
        runtime.metrics_middleware = self.metrics_middleware.unwrap_or(runtime.metrics_middleware);
        runtime.request_logging = self.request_logging.unwrap_or(runtime.request_logging);
        runtime.log_sample_rate = self.log_sample_rate.unwrap_or(runtime.log_sample_rate);
        next
    }
}

#[derive(Debug)]
pub struct RuntimeFlags {
    current: ArcSwap<Flags>,
    /// The switches read on every request, as bits beside the whole set: loading the set
    /// (`arc-swap`) publishes a hazard pointer with a full fence, a plain load of these does not.
    switches: AtomicU8,
    /// Held while the flags are replaced, so the set and its switches change together.
    writing: Mutex<()>,
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
        Self { current: ArcSwap::from_pointee(flags), switches, writing: Mutex::new(()) }
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

    /// Validates and installs `next`, logging each changed flag with `source` (who changed it).
    /// Returns the names of the flags that changed.
    pub fn set(&self, next: Flags, source: &str) -> Result<Vec<&'static str>, String> {
        validate(&next)?;
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        self.switches.store(switches(&next.runtime), Ordering::Relaxed);
        let previous = self.current.swap(Arc::new(next.clone()));
        let changed = diff(&previous, &next);
        for (name, from, to) in &changed {
            tracing::warn!(flag = name, from = %from, to = %to, source, "runtime flag changed");
        }
        if !changed.is_empty() {
            apply_effects(&next);
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
        Ok(config) => match flags.set(Flags::from_config(&config), cause) {
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
        let changed = live.set(patch.applied_to(&live.load()), "test").unwrap();
        assert_eq!(changed, ["log_level", "database_tracing"]);
        assert!(!live.load().runtime.database_tracing);
        assert!(live.load().runtime.metrics_middleware);
        assert!(!live.database_tracing() && live.metrics_middleware() && live.request_logging());
    }

    #[test]
    fn invalid_values_are_refused_and_the_flags_in_force_stay() {
        let live = RuntimeFlags::new(flags());
        let bad_ratio = FlagsPatch { trace_sample_ratio: Some(1.5), ..Default::default() };
        assert!(live.set(bad_ratio.applied_to(&live.load()), "test").is_err());
        let bad_level = FlagsPatch { log_level: Some("loud[".into()), ..Default::default() };
        assert!(live.set(bad_level.applied_to(&live.load()), "test").is_err());
        assert_eq!(**live.load(), flags());
        assert!(live.database_tracing() && live.metrics_middleware() && live.request_logging());
    }
}
