//! Pool and client settings, defaulting to what the original service runs with in production.

use std::time::Duration;

/// Where the portfolios live and how the client pools connections.
///
/// These are applied over whatever the URL says about the same options, because the service's
/// configuration is the one place operators tune them. Everything else in the URL (hosts,
/// credentials, TLS, `replicaSet`, `w`, `readPreference`, ...) is kept as written; see
/// [`crate::MongoStore::connect`] for the defaults applied when the URL is silent.
#[derive(Clone, Debug)]
pub struct MongoSettings {
    /// Database name. `portfolio` is the original's (`MONGODB_DB`); old and new replicas must
    /// name the same one to share data.
    pub database: String,
    /// Collection name. The original hard-codes `portfolio`.
    pub collection: String,
    /// Connections per server, per replica. The original's production profile uses 20, which
    /// its spec states as the per-pod budget (< 20 DB connections per pod); a `mongod`
    /// accepts tens of thousands of connections, so this bounds client-side concurrency
    /// rather than server slots.
    pub max_pool_size: u32,
    /// Connections kept open while idle (the original's 5), so the first requests after a
    /// quiet spell skip the TCP (+ TLS + auth) handshake.
    pub min_pool_size: u32,
    /// Connections a pool may be establishing at once (the original's `maxConnecting` 10):
    /// enough to refill a pool quickly after a failover without a connection storm.
    pub max_connecting: u32,
    /// Bound on one TCP + handshake attempt. 10 s is the driver's default; the original's
    /// 30 s buys nothing here because a request never waits longer than
    /// `server_selection_timeout` for a usable server.
    pub connect_timeout: Duration,
    /// How long an operation waits for a suitable server (primary) before it fails as
    /// unavailable (503). The original's 5 s, and the same budget the SQL backends give a
    /// request waiting for a pooled connection.
    pub server_selection_timeout: Duration,
    /// Idle connections above `min_pool_size` are closed after this long (the original's
    /// 5 min), returning server resources after a burst.
    pub max_idle_time: Duration,
    /// Whether multi-document writes may use transactions; see [`TransactionMode`].
    pub transactions: TransactionMode,
}

impl Default for MongoSettings {
    fn default() -> Self {
        Self {
            database: "portfolio".to_owned(),
            collection: "portfolio".to_owned(),
            max_pool_size: 20,
            min_pool_size: 5,
            max_connecting: 10,
            connect_timeout: Duration::from_secs(10),
            server_selection_timeout: Duration::from_secs(5),
            max_idle_time: Duration::from_secs(5 * 60),
            transactions: TransactionMode::Auto,
        }
    }
}

/// How `insert_many` and `insert_missing` get their all-or-nothing behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransactionMode {
    /// Use a transaction when the server supports them (a replica-set member or `mongos`, as
    /// its `hello` reply says at connect time), and compensation otherwise.
    #[default]
    Auto,
    /// Never use transactions: an ordered insert, and on failure a delete of what it
    /// inserted. For servers that advertise transactions but should not run them, and for
    /// testing the fallback against a replica set.
    Never,
}
