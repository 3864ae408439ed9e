//! PostgreSQL backend: for deployments that run several replicas or outgrow one SQLite file.
//!
//! # Layout
//! - [`PostgresStore`] (this file): pools and lifecycle.
//! - [`settings`]: [`PostgresSettings`], pool sizes and timeouts with their reasons.
//! - `queries`: the [`PortfolioStore`](pfs_storage::PortfolioStore) implementation.
//! - `pipelined`: get-by-id and get-many on a few shared tokio-postgres connections.
//! - `errors`: mapping driver errors onto [`StoreError`](pfs_storage::StoreError).
//! - `testing` (feature `testing`): a fresh schema per test.
//!
//! Unlike SQLite, Postgres takes concurrent writers, so one pool serves reads and writes;
//! row locks taken by `UPDATE ... WHERE version = $n` make optimistic locking exact under
//! READ COMMITTED. An optional second pool reads from a replica.
//!
//! The lookups by id, the hot path of a service whose cache is off, do not go through a pool:
//! a quarter of the read budget (at most two connections) is a set of pipelined tokio-postgres
//! connections shared by every request (`pipelined`); the pool keeps the rest. The total
//! stays `max_connections` per server.

mod errors;
mod idempotency;
mod jobs;
mod pipelined;
mod queries;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use settings::PostgresSettings;

use pfs_storage::{StoreError, StoreResult};
use pipelined::{PipelinedReads, ReadConfig};
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The schema history, embedded so the binary migrates itself.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A Postgres database behind a primary pool, plus a replica pool for reads when configured.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    writer: PgPool,
    /// The replica pool, or a handle to `writer` when there is no replica.
    reader: PgPool,
    /// Whether `reader` is a pool of its own; otherwise its metrics are the writer's.
    replica: bool,
    /// Get-by-id and get-many, on the reader's server; `None` when the URL's TLS settings are
    /// sqlx's alone or the budget is a single connection (then `reader` serves them).
    pipelined: Option<Arc<PipelinedReads>>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db?...`), opening `min_connections`
    /// now so a wrong URL or an unreachable server fails at startup rather than on the first
    /// request. The replica pool, if any, connects lazily: a replica that is down must not
    /// stop the service from starting. Does not migrate: call [`PostgresStore::migrate`] or
    /// use `portfolio-service migrate`.
    pub async fn connect(url: &str, settings: &PostgresSettings) -> StoreResult<Self> {
        let store = Self::connect_lazy(url, settings)?;
        store.reachable(settings.acquire_timeout).await?;
        let primary = PgConnectOptions::from_str(url).map_err(errors::classify)?;
        let pipelined = store.pipelined.as_ref().filter(|_| !store.replica).map_or(0, |p| p.connections());
        let writer = pool_options(settings, pipelined).connect_with(primary).await.map_err(errors::classify)?;
        Ok(Self { writer: writer.clone(), reader: if store.replica { store.reader } else { writer }, ..store })
    }

    /// One connection attempt outside the pool, bounded by `timeout`. A pool's acquire retries
    /// a refused connection until its own timeout and then reports only that it timed out;
    /// this fails at once, with the network's or the server's own error.
    pub async fn reachable(&self, timeout: Duration) -> StoreResult<()> {
        let options = self.writer.connect_options();
        match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
            Ok(Ok(connection)) => {
                // Closing politely is a courtesy; the check already succeeded.
                let _ = connection.close().await;
                Ok(())
            }
            Ok(Err(err)) => Err(errors::classify(err)),
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {timeout:?}").into())),
        }
    }

    /// As [`PostgresStore::connect`], but without connecting: the pools open connections on
    /// first use, so the store exists while the server is down and its calls fail as
    /// `Unavailable` until it is up (`serve` starts this way and waits for the database in the
    /// background). Only a malformed URL fails here.
    pub fn connect_lazy(url: &str, settings: &PostgresSettings) -> StoreResult<Self> {
        let primary = PgConnectOptions::from_str(url).map_err(errors::classify)?;
        let replica = match &settings.read_url {
            Some(read_url) => Some(PgConnectOptions::from_str(read_url).map_err(errors::classify)?),
            None => None,
        };
        let (read_url, read_options) = match (&settings.read_url, &replica) {
            (Some(read_url), Some(options)) => (read_url.as_str(), options),
            _ => (url, &primary),
        };
        let pipelined = pipelined_reads(read_url, read_options, settings, replica.is_some());
        // The pipelined connections come out of the budget of the server they read from.
        let share = pipelined.as_ref().map_or(0, |p| p.connections());
        let (writer, reader) = match replica {
            Some(replica) => (
                pool_options(settings, 0).connect_lazy_with(primary),
                pool_options(settings, share).connect_lazy_with(replica),
            ),
            None => {
                let writer = pool_options(settings, share).connect_lazy_with(primary);
                (writer.clone(), writer)
            }
        };
        Ok(Self { writer, reader, replica: settings.read_url.is_some(), pipelined })
    }

    /// Applies every pending migration. Concurrent callers serialize on sqlx's advisory lock.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(errors::migrate)
    }

    /// Reverts applied migrations newer than `target`; 0 reverts them all.
    pub async fn migrate_down(&self, target: i64) -> StoreResult<()> {
        MIGRATOR.undo(&self.writer, target).await.map_err(errors::migrate)
    }

    /// Versions of the migrations applied so far (none on a new database). The history table
    /// is looked up through `search_path`, like every other table of the store.
    pub async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        let tracked: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.writer)
            .await
            .map_err(errors::classify)?;
        if !tracked {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.writer)
            .await
            .map_err(errors::classify)
    }

    /// The primary pool, for tests that inspect the schema.
    pub fn pool(&self) -> &PgPool {
        &self.writer
    }
}

/// The pipelined read connections: a quarter of the server's budget, at most two, none when
/// the budget is a single connection or sqlx must make the TLS checks the URL asks for. Each
/// keeps one server process busy back to back; a third or fourth one measured no faster and
/// cost the server more per read (fewer statements per wake-up), and two already serve more
/// than one replica's HTTP stack can ask.
fn pipelined_reads(
    url: &str,
    options: &PgConnectOptions,
    settings: &PostgresSettings,
    replica: bool,
) -> Option<Arc<PipelinedReads>> {
    let share = pipelined_share(settings.max_connections);
    if share == 0 {
        return None;
    }
    let config = ReadConfig::from_url(url, options, settings.statement_timeout)?;
    let pool_name = if replica { "reader" } else { "writer" };
    Some(Arc::new(PipelinedReads::new(config, share, settings.acquire_timeout, settings.max_lifetime, pool_name)))
}

fn pipelined_share(max_connections: u32) -> usize {
    if max_connections < 2 { 0 } else { (max_connections / 4).clamp(1, 2) as usize }
}

/// Both pools share the settings, less the connections `pipelined` takes from the same
/// server. `statement_timeout` is set with `set_config` after connect rather than in the
/// `options` startup parameter, which connection poolers such as PgBouncer reject.
fn pool_options(settings: &PostgresSettings, pipelined: u32) -> PgPoolOptions {
    let max = settings.max_connections.saturating_sub(pipelined).max(1);
    let statement_timeout = settings.statement_timeout.as_millis().to_string();
    PgPoolOptions::new()
        .max_connections(max)
        .min_connections(settings.min_connections.min(max))
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .after_connect(move |conn, _meta| {
            let statement_timeout = statement_timeout.clone();
            Box::pin(async move {
                sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                    .bind(statement_timeout)
                    .execute(conn)
                    .await
                    .map(drop)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipelined_reads_take_a_quarter_of_the_budget_and_at_most_two() {
        assert_eq!([1, 2, 3, 4, 8, 10, 16, 50].map(pipelined_share), [0, 1, 1, 1, 2, 2, 2, 2]);
    }

    #[tokio::test]
    async fn the_pool_keeps_the_rest_of_the_budget() {
        let settings = PostgresSettings::default();
        let store = PostgresStore::connect_lazy("postgres://u@127.0.0.1/db", &settings).unwrap();
        let pipelined = store.pipelined.as_ref().map(|p| p.connections()).unwrap();
        assert_eq!(pipelined + store.writer.options().get_max_connections(), settings.max_connections);
    }
}
