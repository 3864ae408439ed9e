//! Client-side connection pool figures, for the `db_client_connections_*` metrics.
//!
//! Backends report their pools' occupancy through [`PortfolioStore::pool_stats`]
//! (read when metrics are exported, and set as gauges by [`record`]) and the time spent
//! waiting for a connection through [`record_wait`], since no driver exposes that figure on its
//! own. The names are the OpenTelemetry semantic convention's.
//!
//! [`PortfolioStore::pool_stats`]: crate::PortfolioStore::pool_stats

use std::time::Duration;

/// The histogram of time spent waiting to acquire a connection, labelled by `pool_name`.
pub const WAIT_TIME_METRIC: &str = "db_client_connections_wait_time_seconds";

/// One pool's occupancy at the moment it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `writer` or `reader`: the `pool_name` label the dashboard and alerts select on.
    pub name: &'static str,
    /// Connections checked out.
    pub used: u32,
    /// Connections open but not checked out.
    pub idle: u32,
    /// The configured upper bound.
    pub max: u32,
}

/// Sets the usage and max gauges of each pool to the figures given: on every `/metrics`
/// scrape, and periodically when metrics are pushed.
pub fn record(pools: &[PoolStats]) {
    for pool in pools {
        let name = pool.name;
        metrics::gauge!("db_client_connections_usage", "state" => "used", "pool_name" => name).set(pool.used);
        metrics::gauge!("db_client_connections_usage", "state" => "idle", "pool_name" => name).set(pool.idle);
        metrics::gauge!("db_client_connections_max", "pool_name" => name).set(pool.max);
    }
}

/// Records one wait for a connection of `pool_name`, failed waits included: a pool timing
/// out is exactly when the figure matters.
pub fn record_wait(pool_name: &'static str, waited: Duration) {
    WaitRecorder::for_pool(pool_name).record(waited);
}

/// What [`record_wait`] records into, kept by a path that records on every request instead of
/// being found by name and labels each time. Bound to the recorder installed when it is made.
pub struct WaitRecorder(metrics::Histogram);

impl WaitRecorder {
    pub fn for_pool(pool_name: &'static str) -> Self {
        Self(metrics::histogram!(WAIT_TIME_METRIC, "pool_name" => pool_name))
    }

    pub fn record(&self, waited: Duration) {
        self.0.record(waited.as_secs_f64());
    }
}

/// Checks a connection out of `pool`, recording how long that took. sqlx has no hook for
/// the wait, so the backends acquire through here instead of passing the pool as executor.
#[cfg(feature = "sqlx")]
pub async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    pool_name: &'static str,
) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
    let started = std::time::Instant::now();
    let conn = pool.acquire().await;
    record_wait(pool_name, started.elapsed());
    conn
}

/// Occupancy of an sqlx pool. `size` counts idle connections too, and both are read
/// separately, so `used` saturates rather than underflow on a race.
#[cfg(feature = "sqlx")]
pub fn sqlx_stats<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, name: &'static str) -> PoolStats {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    PoolStats { name, used: size.saturating_sub(idle), idle: idle.min(size), max: pool.options().get_max_connections() }
}
