//! Where configuration comes from: the environment (as a map), an optional file, and
//! command-line overrides.

use super::{ConfigError, DEFAULT_TOML, Profile};
use ::config::builder::DefaultState;
use ::config::{ConfigBuilder, File, FileFormat};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Short environment names for the most used keys (the guide's naming), and the original
/// service's `LOG_LEVEL`, `MONGODB_URI` and `MONGODB_DB` (so its deployments work unchanged;
/// ours win when both are set). Everything else is `PORTFOLIO_<SECTION>__<KEY>`.
const ALIASES: &[(&str, &str)] = &[
    ("LOG_LEVEL", "logging.level"),
    ("MONGODB_URI", "database.url"),
    ("MONGODB_DB", "database.mongo_database"),
    ("PORTFOLIO_HOST", "server.host"),
    ("PORTFOLIO_PORT", "server.port"),
    ("PORTFOLIO_DATABASE_URL", "database.url"),
    ("PORTFOLIO_DATA_DIR", "database.data_dir"),
    ("PORTFOLIO_REDIS_URL", "redis.url"),
    ("PORTFOLIO_LOG_LEVEL", "logging.level"),
    ("PORTFOLIO_LOG_FORMAT", "logging.format"),
    // The OpenTelemetry SDK's standard variables.
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "observability.otlp.endpoint"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "observability.otlp.protocol"),
    ("OTEL_SERVICE_NAME", "observability.service_name"),
    ("OTEL_RESOURCE_ATTRIBUTES", "observability.resource_attributes"),
    ("OTEL_TRACES_SAMPLER", "observability.trace_sampler"),
    ("OTEL_TRACES_SAMPLER_ARG", "observability.flags.trace_sample_ratio"),
];

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

    /// Environment variables mapped to config keys: aliases first (in table order, so
    /// `PORTFOLIO_LOG_LEVEL` beats `LOG_LEVEL`), then `PORTFOLIO_<SECTION>__<KEY>`. Variables
    /// with a single underscore that are no alias (Kubernetes service links such as
    /// `PORTFOLIO_SERVICE_PORT`) are not configuration and are left alone.
    fn env_overrides(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let aliases = ALIASES.iter().filter_map(|(var, key)| {
            let value = self.env.get(*var)?;
            let value = if *var == "LOG_LEVEL" { python_level(value) } else { value.clone() };
            Some(((*key).to_owned(), value))
        });
        let nested = self.env.iter().filter_map(|(var, value)| {
            let rest = var.strip_prefix("PORTFOLIO_")?;
            rest.contains("__").then(|| (rest.to_ascii_lowercase().replace("__", "."), value.clone()))
        });
        aliases.chain(nested)
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
