//! Pool and session settings, with defaults sized for a few service replicas sharing one server.

use std::fmt;
use std::time::Duration;

/// Pool and connection settings. `Debug` redacts `read_url`, which may carry a password.
#[derive(Clone)]
pub struct PostgresSettings {
    /// Upper bound per pool (primary, and replica when configured). Each connection is a
    /// server process (several MB of memory), and throughput peaks at a small multiple of
    /// the server's cores; 16 saturates a 4-8 core server while five replicas (80
    /// connections) still fit under the default `max_connections = 100` with room for
    /// superuser, migration and admin sessions.
    pub max_connections: u32,
    /// Connections kept open while idle, so the first requests after a quiet spell do not pay
    /// the TCP + TLS + authentication handshake; small, so idle replicas hold few server slots.
    pub min_connections: u32,
    /// How long a request waits for a free connection before the store reports unavailable
    /// (503); well under client timeouts, and the same as the SQLite backend.
    pub acquire_timeout: Duration,
    /// Surplus connections opened for a burst are closed after this long unused, returning
    /// their server slots.
    pub idle_timeout: Duration,
    /// Connections are recycled after this long, bounding per-backend memory growth (catalog
    /// and plan caches) and picking up failovers or DNS changes behind the host name.
    pub max_lifetime: Duration,
    /// Server-side cap on any one statement (`statement_timeout`, set on every new
    /// connection); zero disables it. Every query the store issues takes milliseconds, so
    /// this only stops a pathological one from holding a connection, and its locks,
    /// indefinitely.
    pub statement_timeout: Duration,
    /// A read replica for `get`, `list_stream` and `search`; `None` reads from the primary.
    /// Replicas lag: a read right after a write may not see it yet. Version-checked writes
    /// and their `NotFound`/`Conflict` checks always go to the primary.
    pub read_url: Option<String>,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            min_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10 * 60),
            max_lifetime: Duration::from_secs(30 * 60),
            statement_timeout: Duration::from_secs(5),
            read_url: None,
        }
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("statement_timeout", &self.statement_timeout)
            .field("read_url", &self.read_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_replica_url() {
        let settings =
            PostgresSettings { read_url: Some("postgres://app:hunter2@replica/db".into()), ..Default::default() };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && shown.contains("<redacted>"), "{shown}");
    }
}
