//! Checks that need more than types: every problem is collected and reported at once.

use super::{Config, ConfigError};
use std::net::IpAddr;
use std::time::Duration;

impl Config {
    /// Every problem with the configuration, reported at once; [`Config::load`] runs it, and
    /// whoever edits a loaded configuration (tests) runs it again.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, message: String| {
            if !ok {
                problems.push(message);
            }
        };
        let server = &self.server;
        check(
            server.host.parse::<IpAddr>().is_ok() || is_hostname(&server.host),
            format!("server.host: {:?} is neither an IP address nor a host name", server.host),
        );
        check(
            server.request_timeout >= Duration::from_millis(10),
            "server.request_timeout: must be at least 10ms".into(),
        );
        check(server.max_body_bytes >= 1024, "server.max_body_bytes: must be at least 1024".into());
        check(
            !server.cors_allowed_origins.is_empty(),
            "server.cors_allowed_origins: list at least one origin, or \"*\"".into(),
        );
        for origin in &server.cors_allowed_origins {
            check(
                origin == "*"
                    || ((origin.starts_with("http://") || origin.starts_with("https://"))
                        && url::Url::parse(origin).is_ok()),
                format!("server.cors_allowed_origins: {origin:?} is not \"*\" or an http(s) origin"),
            );
        }
        check(
            !(server.cors_allowed_origins.len() > 1 && server.cors_allowed_origins.iter().any(|o| o == "*")),
            "server.cors_allowed_origins: \"*\" cannot be combined with other origins".into(),
        );

        check(
            (1..=1_000_000).contains(&server.max_connections),
            "server.max_connections: must be between 1 and 1000000".into(),
        );
        check(
            (1..=10_000).contains(&server.http2_max_concurrent_streams),
            "server.http2_max_concurrent_streams: must be between 1 and 10000".into(),
        );
        for (key, value) in [
            ("idle_timeout", server.idle_timeout),
            ("http2_keep_alive_interval", server.http2_keep_alive_interval),
            ("http2_keep_alive_timeout", server.http2_keep_alive_timeout),
        ] {
            check(value >= Duration::from_millis(100), format!("server.{key}: must be at least 100ms"));
        }

        let (cert, key) = (&server.tls_cert_path, &server.tls_key_path);
        check(
            cert.as_os_str().is_empty() == key.as_os_str().is_empty(),
            "server.tls_cert_path and server.tls_key_path: set both (TLS) or neither (plain HTTP)".into(),
        );
        for path in [cert, key].into_iter().filter(|p| !p.as_os_str().is_empty()) {
            check(path.is_file(), format!("server.tls_*_path: {} is not a readable file", path.display()));
        }

        let db = &self.database;
        let url = db.effective_url();
        check(
            ["sqlite:", "postgres://", "postgresql://", "mongodb://"].iter().any(|scheme| url.starts_with(scheme)),
            format!(
                "database.url: unsupported scheme in {:?}; supported: sqlite://PATH, postgres://..., mongodb://...",
                super::redact_url(&url)
            ),
        );
        let replica = !db.read_url.trim().is_empty();
        check(
            !replica || url.starts_with("postgres"),
            "database.read_url: a read replica needs a PostgreSQL database.url".into(),
        );
        // A miss right after a write would read the lagging replica and cache the old row as
        // fresh until the next write or the TTL: the two cannot be combined safely.
        check(
            !(replica && self.cache.enabled),
            "database.read_url: set cache.enabled = false to read from a replica (a lagging replica would be cached as fresh)".into(),
        );
        check(db.max_connections >= 1, "database.max_connections: must be at least 1".into());
        check(
            db.min_connections <= db.max_connections,
            "database.min_connections: cannot exceed database.max_connections".into(),
        );
        check(db.acquire_timeout >= Duration::from_millis(1), "database.acquire_timeout: must be positive".into());
        check(self.cache.ttl >= Duration::from_millis(1), "cache.ttl: must be positive".into());
        check(
            self.redis.url.is_empty() || self.redis.url.starts_with("redis://"),
            format!("redis.url: {:?} is not a redis:// URL (TLS is not supported)", super::redact_url(&self.redis.url)),
        );
        check(!self.redis.channel.is_empty(), "redis.channel: must not be empty".into());
        let limit = &self.rate_limit;
        check(
            (1..=1_000_000).contains(&limit.per_second),
            "rate_limit.per_second: must be between 1 and 1000000".into(),
        );
        check(limit.burst >= 1, "rate_limit.burst: must be at least 1".into());
        check(
            (1..=10_000_000).contains(&limit.max_clients),
            "rate_limit.max_clients: must be between 1 and 10000000".into(),
        );
        check(
            axum_header_name(&limit.api_key_header),
            format!("rate_limit.api_key_header: {:?} is not a valid header name", limit.api_key_header),
        );
        check(
            crate::telemetry::parse_filter(&self.logging.level).is_ok(),
            format!("logging.level: {:?} is not a log level or tracing filter", self.logging.level),
        );
        check(self.health.probe_timeout >= Duration::from_millis(1), "health.probe_timeout: must be positive".into());
        problems.extend(self.database.mongo_database_problems());
        problems.extend(self.idempotency.problems(self.server.request_timeout));
        problems.extend(self.reliability.problems());
        problems.extend(self.observability.problems());
        problems.extend(self.auth.problems());
        problems.extend(self.limits.problems());
        problems.extend(self.events.problems());
        problems.extend(self.jobs.problems());
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }

    /// Settings that are valid but risky where they are: logged as warnings at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.environment == super::Profile::Production {
            if self.server.cors_allowed_origins.iter().any(|origin| origin == "*") {
                warnings.push(
                    "server.cors_allowed_origins is \"*\" in production: any web page may call this API from a browser; list your origins".into(),
                );
            }
            if !self.auth.enabled {
                warnings.push("auth.enabled is false in production: anyone who can reach the port can write".into());
            }
        }
        warnings
    }
}

/// RFC 9110 token characters, lower case (header names are matched lower-cased).
fn axum_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
