//! Database connection pool gauges (`db_client_connections_*`, the OpenTelemetry semantic
//! convention names), from the store's [`PoolStats`]. Refreshed on every `/metrics` scrape,
//! and periodically when metrics are pushed; the wait-time histogram is recorded by the
//! backends as they acquire connections (`pfs_storage::pool`).

use pfs_storage::PoolStats;

/// Sets the usage and max gauges of each pool to the figures given.
pub fn record(pools: &[PoolStats]) {
    for pool in pools {
        let name = pool.name;
        metrics::gauge!("db_client_connections_usage", "state" => "used", "pool_name" => name).set(pool.used);
        metrics::gauge!("db_client_connections_usage", "state" => "idle", "pool_name" => name).set(pool.idle);
        metrics::gauge!("db_client_connections_max", "pool_name" => name).set(pool.max);
    }
}
