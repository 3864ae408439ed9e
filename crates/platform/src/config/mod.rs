//! Typed configuration, loaded in layers and validated once at start.
//!
//! Layers, later ones win: the embedded `config/default.toml`, the embedded profile overlay,
//! an optional file, `PORTFOLIO_*` environment variables, then command-line overrides.
//! Loading reads the environment only through [`ConfigSources`], so tests pass a map and
//! never mutate the process environment.

mod auth;
mod diagnose;
mod events;
mod idempotency;
mod jobs;
mod limits;
mod mongo_database;
mod observability;
mod profile;
mod redact;
mod reliability;
mod sources;
mod validate;

pub use auth::{ApiKeyEntry, AuthConfig, Role};
pub use events::EventsConfig;
pub use idempotency::IdempotencyConfig;
pub use jobs::JobsConfig;
pub use limits::LimitsConfig;
pub use observability::{ObservabilityConfig, OtlpConfig, OtlpProtocol, RuntimeFlags};
pub use profile::Profile;
pub use redact::redact_url;
pub use reliability::ReliabilityConfig;
pub use sources::{ConfigSources, named_variables};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The embedded defaults, shown by `config print-default`.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");

/// The effective configuration of one process.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The deployment profile; chosen from the environment, never from a file.
    #[serde(default)]
    pub environment: Profile,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub redis: RedisConfig,
    pub rate_limit: RateLimitConfig,
    pub logging: LoggingConfig,
    pub health: HealthConfig,
    pub observability: ObservabilityConfig,
    #[serde(default)]
    pub idempotency: IdempotencyConfig,
    pub reliability: ReliabilityConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    pub events: EventsConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The `OTEL_*` (and Downward API `MY_*`) variables, which the observability crate
    /// resolves per signal over `observability.otlp` ([`ConfigSources::telemetry_env`]).
    #[serde(skip)]
    pub telemetry_env: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub compression_min_bytes: u64,
    pub cors_allowed_origins: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub shutdown_drain_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
    /// Believe `X-Forwarded-Proto` and `X-Forwarded-Host` (a proxy in front sets them) when
    /// writing absolute URLs; otherwise redirects carry a relative `Location`.
    #[serde(default)]
    pub trust_forwarded_headers: bool,
    /// Connections open at once; a new one past it is closed at once.
    pub max_connections: usize,
    /// A connection (HTTP/1.1 or HTTP/2) with no request in progress for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Requests in progress at once on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 pings this often, and a peer that leaves one unanswered this long is dropped.
    #[serde(with = "humantime_serde")]
    pub http2_keep_alive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub http2_keep_alive_timeout: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// May carry a password: printed only through [`redact_url`].
    pub url: String,
    /// May carry a password: printed only through [`redact_url`].
    pub read_url: String,
    pub data_dir: PathBuf,
    /// MongoDB only: the database holding the `portfolio` collection, when the URL names none.
    /// [`Config::load`] replaces it with [`DatabaseConfig::effective_mongo_database`].
    pub mongo_database: String,
    pub migrate_on_start: bool,
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    pub warm_pages: u32,
    pub max_portfolios: u64,
    pub max_page_items: u64,
    /// What all cached entries may weigh together, in bytes (names included).
    #[serde(default = "CacheConfig::default_max_bytes")]
    pub max_bytes: u64,
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl CacheConfig {
    fn default_max_bytes() -> u64 {
        12 << 20
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub per_second: u32,
    pub burst: u32,
    pub by: RateLimitBy,
    pub api_key_header: String,
    pub trust_forwarded_for: bool,
    /// Buckets kept in this process at most (least recently used evicted).
    pub max_clients: u64,
}

/// Who counts as one client for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBy {
    /// The API key header when present, otherwise the client address.
    ApiKeyOrIp,
    Ip,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// May carry a password: printed only through [`redact_url`].
    pub url: String,
    pub channel: String,
}

impl DatabaseConfig {
    /// The URL in use: the configured one, or SQLite under the data directory.
    pub fn effective_url(&self) -> String {
        if self.url.trim().is_empty() {
            format!("sqlite://{}", self.data_dir.join("portfolio.db").display())
        } else {
            self.url.trim().to_owned()
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
}

/// Why configuration could not be loaded; every message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Load(#[from] ::config::ConfigError),
    #[error("invalid profile {value:?} in {source_var}: expected development, staging or production")]
    Profile { source_var: &'static str, value: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Loads and validates the configuration from `sources`.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let profile = sources.profile()?;
        let merged = sources.builder(profile)?.build()?;
        let config: Config = match merged.clone().try_deserialize() {
            Ok(config) => config,
            Err(first) => {
                let base = || sources.base_builder(profile);
                return Err(ConfigError::Invalid(diagnose::problems(&merged, base, first)));
            }
        };
        let mut config = Config { environment: profile, telemetry_env: sources.telemetry_env(), ..config };
        config.validate()?;
        // Resolved once, so `config print` and every role see the database actually used.
        config.database.mongo_database = config.database.effective_mongo_database();
        Ok(config)
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.database.url, &mut shown.database.read_url, &mut shown.redis.url] {
            *secret = redact_url(secret);
        }
        if !shown.auth.jwt_hs256_secret.is_empty() {
            shown.auth.jwt_hs256_secret = "[REDACTED]".into();
        }
        // Export headers carry credentials: names only.
        let headers = &mut shown.observability.otlp.headers;
        *headers = headers
            .split(',')
            .filter(|pair| !pair.trim().is_empty())
            .map(|pair| format!("{}=[REDACTED]", pair.split('=').next().unwrap_or_default().trim()))
            .collect::<Vec<_>>()
            .join(",");
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
