//! SQLite backend: the embedded default, one file under the data directory.
//!
//! # Layout
//! - [`SqliteStore`] (this file): pools and lifecycle.
//! - `queries`: the [`PortfolioStore`](pfs_storage::PortfolioStore) implementation.
//! - `point`: reads by primary key on the calling thread (rusqlite).
//! - `errors`: mapping sqlx errors onto [`StoreError`](pfs_storage::StoreError).
//! - `checkpoint`: folding the write-ahead log back into the database file, off the request path.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight over
//! the write lock (and spin in `busy_timeout`), writes go through a pool of exactly one
//! connection and reads through a separate read-only pool; in WAL mode readers never block
//! the writer and always see its committed transactions. Reads by primary key skip sqlx's
//! connection threads and run on the caller's, on a pool of their own (`point`); the read
//! connections of `max_read_connections` are shared between the two reader pools.

mod checkpoint;
mod errors;
mod idempotency;
mod jobs;
mod point;
mod queries;

use pfs_storage::StoreResult;
use point::PointReader;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The schema history, embedded so the binary migrates itself.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Pool and connection settings.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    /// Read-only connections. SQLite reads run in parallel, so about one per core is enough;
    /// more only adds memory (each connection has its own page cache). Up to one per core
    /// (and at least one) serve the reads by primary key, the rest (at least one) sqlx's
    /// reader pool.
    pub max_read_connections: u32,
    /// How long a request waits for a free connection before the store reports unavailable.
    pub acquire_timeout: Duration,
    /// How long a statement waits on SQLite's write lock (another process, a checkpoint).
    pub busy_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self { max_read_connections: 4, acquire_timeout: Duration::from_secs(5), busy_timeout: Duration::from_secs(5) }
    }
}

/// A SQLite database with a single-connection writer pool and two read-only reader pools.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// `None` for an in-memory database, which another connection could not open.
    point: Option<Arc<PointReader>>,
    /// Stops with the last clone of the store; `None` for an in-memory database (no log).
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

/// How `max_read_connections` is split: (point reads, sqlx reader). A point read holds its
/// connection without yielding, so there are never more in use than threads running tasks:
/// one per core is enough, and the rest serve searches and listings, which hold theirs across
/// awaits.
fn split_readers(max_read_connections: u32) -> (u32, u32) {
    let cores = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let point = cores.min(max_read_connections.saturating_sub(1)).max(1);
    (point, max_read_connections.saturating_sub(point).max(1))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite:path`).
    /// Does not migrate: call [`SqliteStore::migrate`] or use `portfolio-service migrate`.
    pub async fn connect(url: &str, settings: &SqliteSettings) -> StoreResult<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(errors::classify)?
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash (SIGKILL) without losing committed
            // transactions; only an OS crash or power loss can drop the last few.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(settings.busy_timeout)
            .foreign_keys(false);
        let writer_options = checkpoint::writer_pragmas()
            .into_iter()
            .fold(base.clone().create_if_missing(true), |options, (name, value)| options.pragma(name, value));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(writer_options)
            .await
            .map_err(errors::classify)?;
        let (point_readers, sqlx_readers) = split_readers(settings.max_read_connections);
        let file = database_file(&writer).await?;
        let point = file.clone().map(|path| Arc::new(PointReader::new(path, point_readers)));
        let checkpointer = match file {
            Some(path) => Some(Arc::new(
                checkpoint::Checkpointer::start(path).map_err(|e| pfs_storage::StoreError::Backend(Box::new(e)))?,
            )),
            None => None,
        };
        let reader = SqlitePoolOptions::new()
            .max_connections(sqlx_readers)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(errors::classify)?;
        Ok(Self { writer, reader, point, _checkpointer: checkpointer })
    }

    /// Opens the database file at `path`, creating parent directories.
    pub async fn open_file(path: &Path, settings: &SqliteSettings) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| pfs_storage::StoreError::Backend(Box::new(e)))?;
        }
        Self::connect(&format!("sqlite://{}", path.display()), settings).await
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(errors::migrate)
    }

    /// Reverts applied migrations newer than `target`; 0 reverts them all.
    pub async fn migrate_down(&self, target: i64) -> StoreResult<()> {
        MIGRATOR.undo(&self.writer, target).await.map_err(errors::migrate)
    }

    /// Versions of the migrations applied so far (none on a new database).
    pub async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        let tracked: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_optional(&self.writer)
                .await
                .map_err(errors::classify)?;
        if tracked.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.writer)
            .await
            .map_err(errors::classify)
    }

    /// The writer pool, for tests that inspect the schema.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

/// The file the writer opened, as SQLite resolved the URL; `None` for an in-memory database.
async fn database_file(writer: &SqlitePool) -> StoreResult<Option<PathBuf>> {
    let file: String = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(writer)
        .await
        .map_err(errors::classify)?;
    Ok(Some(PathBuf::from(file)).filter(|path| !path.as_os_str().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::split_readers;

    #[test]
    fn the_read_connections_are_split_without_leaving_either_pool_empty() {
        for max in 2..=40 {
            let (point, sqlx) = split_readers(max);
            assert!(point >= 1 && sqlx >= 1, "{max}: ({point}, {sqlx})");
            assert_eq!(point + sqlx, max, "the configured total holds");
        }
        assert_eq!(split_readers(1), (1, 1), "one connection each at the least");
        assert_eq!(split_readers(0), (1, 1));
    }
}
