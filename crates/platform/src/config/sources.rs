//! Where configuration comes from: the environment (as a map), an optional file, and
//! command-line overrides.

use super::{ConfigError, DEFAULT_TOML, Profile};
use ::config::builder::DefaultState;
use ::config::{ConfigBuilder, File, FileFormat};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Short environment names for the most used keys (the guide's naming), and the original
/// service's variables (so its deployments work unchanged; ours win when both are set).
/// Everything else is `PORTFOLIO_<SECTION>__<KEY>`.
const ALIASES: &[(&str, &str)] = &[
    ("LOG_LEVEL", "logging.level"),
    ("MONGODB_URI", "database.url"),
    ("MONGODB_DB", "database.mongo_database"),
    ("ENABLE_METRICS", "observability.metrics_enabled"),
    ("ENABLE_METRICS_MIDDLEWARE", "observability.flags.metrics_middleware"),
    ("ENABLE_DATABASE_TRACING", "observability.flags.database_tracing"),
    ("OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "observability.otlp.metrics_interval"),
    ("OTEL_METRICS_EXPORT_TIMEOUT_SECONDS", "observability.otlp.metrics_timeout"),
    // The original's pool bounds, which the suite's Helm chart sets (50/10).
    ("MAX_POOL_SIZE", "database.max_connections"),
    ("MIN_POOL_SIZE", "database.min_connections"),
    ("PORTFOLIO_HOST", "server.host"),
    ("PORTFOLIO_PORT", "server.port"),
    ("PORTFOLIO_DATABASE_URL", "database.url"),
    ("PORTFOLIO_DATA_DIR", "database.data_dir"),
    ("PORTFOLIO_REDIS_URL", "redis.url"),
    ("PORTFOLIO_LOG_LEVEL", "logging.level"),
    ("PORTFOLIO_LOG_FORMAT", "logging.format"),
];

/// The OpenTelemetry specification's variables that are configuration keys here. They beat
/// every other layer (the specification's precedence). The exporter variables
/// (`OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*`, ...) are not keys: the observability crate resolves
/// them per signal over these keys (`pfs_observability::pipeline::plan`).
const STANDARD: &[(&str, &str)] = &[
    ("OTEL_SERVICE_NAME", "observability.service_name"),
    ("OTEL_SERVICE_NAMESPACE", "observability.service_namespace"),
    ("OTEL_RESOURCE_ATTRIBUTES", "observability.resource_attributes"),
    ("OTEL_TRACES_SAMPLER", "observability.trace_sampler"),
    ("OTEL_TRACES_SAMPLER_ARG", "observability.flags.trace_sample_ratio"),
];

/// The variables the OpenTelemetry pipeline reads itself (see [`ConfigSources::telemetry_env`]).
const TELEMETRY_PREFIXES: &[&str] = &["OTEL_", "MY_"];
const TELEMETRY_VARS: &[&str] = &["HOSTNAME", "KUBERNETES_SERVICE_HOST"];

/// The original's durations in (possibly fractional) seconds, as a duration string.
const SECONDS_VARS: &[&str] = &["OTEL_METRICS_EXPORT_INTERVAL_SECONDS", "OTEL_METRICS_EXPORT_TIMEOUT_SECONDS"];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["server.cors_allowed_origins", "observability.redact_fields", "auth.api_keys"];

/// Profile selectors, strongest first. Only our own variable is strict; the original's are
/// read the way it read them, so an invalid value there is ignored rather than fatal.
const PROFILE_VARS: &[&str] = &["PORTFOLIO_SERVICE_ENV", "ENVIRONMENT", "ENV"];

/// The inputs of [`Config::load`](super::Config::load).
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// Environment variables (the process's, or a test's map).
    pub env: BTreeMap<String, String>,
    /// A configuration file that must exist (from `--config`); `PORTFOLIO_CONFIG_FILE` otherwise.
    pub file: Option<PathBuf>,
    /// `key = value` overrides from command-line flags; they beat everything else.
    pub overrides: Vec<(String, String)>,
}

impl ConfigSources {
    /// The process environment, and no file or overrides yet.
    pub fn from_process() -> Self {
        Self { env: std::env::vars().collect(), ..Self::default() }
    }

    pub fn with_override(mut self, key: &str, value: impl Into<String>) -> Self {
        self.overrides.push((key.to_owned(), value.into()));
        self
    }

    /// `PORTFOLIO_ENV`, then the original's selectors, then a Kubernetes namespace hint
    /// (`prod` or `stag` in `MY_NAMESPACE`/`KUBERNETES_NAMESPACE`), then development.
    pub fn profile(&self) -> Result<Profile, ConfigError> {
        if let Some(value) = self.env.get("PORTFOLIO_ENV") {
            return value
                .parse()
                .map_err(|()| ConfigError::Profile { source_var: "PORTFOLIO_ENV", value: value.clone() });
        }
        if let Some(profile) = PROFILE_VARS.iter().find_map(|var| self.env.get(*var)?.parse().ok()) {
            return Ok(profile);
        }
        let namespace = ["MY_NAMESPACE", "KUBERNETES_NAMESPACE"]
            .iter()
            .find_map(|var| self.env.get(*var))
            .map(|ns| ns.to_ascii_lowercase())
            .unwrap_or_default();
        Ok(if namespace.contains("prod") {
            Profile::Production
        } else if namespace.contains("stag") {
            Profile::Staging
        } else {
            Profile::Development
        })
    }

    /// The configuration file in use: `--config`, else `PORTFOLIO_CONFIG_FILE`.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.file.clone().or_else(|| self.env.get("PORTFOLIO_CONFIG_FILE").map(PathBuf::from))
    }

    /// The embedded layers for `profile`: the defaults and the profile overlay.
    pub(crate) fn base_builder(&self, profile: Profile) -> ConfigBuilder<DefaultState> {
        ::config::Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(profile.overlay(), FileFormat::Toml))
    }

    /// Stacks every layer for `profile`, in precedence order.
    pub(crate) fn builder(&self, profile: Profile) -> Result<ConfigBuilder<DefaultState>, ConfigError> {
        let mut builder = self.base_builder(profile);
        if let Some(path) = self.config_file() {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        for (key, value) in self.env_overrides().chain(self.overrides.iter().cloned()) {
            builder = if LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> =
                    value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
                builder.set_override(key, items)?
            } else {
                builder.set_override(key, value)?
            };
        }
        Ok(builder)
    }

    /// The variables the OpenTelemetry pipeline resolves itself, per signal (`OTEL_*`), and
    /// those its Kubernetes resource attributes come from (`MY_POD_NAME`, ...). Empty values
    /// count as unset, as in the OpenTelemetry SDKs.
    pub fn telemetry_env(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .filter(|(var, value)| {
                !value.trim().is_empty()
                    && (TELEMETRY_PREFIXES.iter().any(|p| var.starts_with(p)) || TELEMETRY_VARS.contains(&var.as_str()))
            })
            .map(|(var, value)| (var.clone(), value.clone()))
            .collect()
    }

    /// Environment variables mapped to config keys: aliases first (in table order, so
    /// `PORTFOLIO_LOG_LEVEL` beats `LOG_LEVEL`), then `PORTFOLIO_<SECTION>__<KEY>`, then the
    /// OpenTelemetry standard names. Variables with a single underscore that are no alias
    /// (Kubernetes service links such as `PORTFOLIO_SERVICE_PORT`) are not configuration and
    /// are left alone.
    fn env_overrides(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let aliases = ALIASES.iter().filter_map(|(var, key)| {
            let value = self.env.get(*var)?;
            let value = match *var {
                "LOG_LEVEL" => python_level(value),
                var if SECONDS_VARS.contains(&var) => seconds(value),
                _ => value.clone(),
            };
            Some(((*key).to_owned(), value))
        });
        let nested = self.env.iter().filter_map(|(var, value)| {
            let rest = var.strip_prefix("PORTFOLIO_")?;
            rest.contains("__").then(|| (rest.to_ascii_lowercase().replace("__", "."), value.clone()))
        });
        let standard = STANDARD.iter().filter_map(|(var, key)| {
            let value = self.env.get(*var).filter(|v| !v.trim().is_empty())?;
            Some(((*key).to_owned(), value.clone()))
        });
        aliases.chain(nested).chain(standard)
    }
}

/// `5` or `1.5` (seconds, as the original read them) as `5000ms`; anything else unchanged, so
/// that validation names the key.
fn seconds(value: &str) -> String {
    match value.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => format!("{}ms", (secs * 1000.0).round() as u64),
        _ => value.to_owned(),
    }
}

/// The original took Python logging level names; map the two tracing does not know.
fn python_level(value: &str) -> String {
    match value.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        "critical" | "fatal" => "error".to_owned(),
        other => other.to_owned(),
    }
}
