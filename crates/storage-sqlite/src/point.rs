//! Reads by primary key on the calling thread.
//!
//! sqlx-sqlite runs each connection on a worker thread of its own: every statement goes there
//! through a channel and its rows come back through another, two thread switches that cost more
//! than the primary-key read itself (a few microseconds on a cached page). The reads on the hot
//! path (`get`, short `get_many`) run instead on rusqlite connections of a small pool, used
//! synchronously by the task that asked: nothing awaits while a connection is checked out, so
//! one is held for the length of one statement and the pool never needs a queue of waiters.
//! When every connection is out (more threads reading at once than the pool holds), or the pool
//! is closed, [`PointReader::checkout`] says so and the caller reads through sqlx instead.
//! These connections never wait on SQLite's locks either (no busy timeout): waiting would
//! block a runtime thread. A WAL reader is refused only in rare moments (a recovery, a
//! checkpoint resetting the log); the read then reports `Unavailable` at once and the caller
//! reads through sqlx, whose connection thread waits out the lock.
//!
//! Each read is one autocommit statement, whose read transaction ends when the statement is
//! reset (a cached statement is reset when it goes back to the cache), so no snapshot outlives
//! a read: the next one sees everything the writer had committed when it started.

use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::pool::WaitRecorder;
use pfs_storage::{StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode, OpenFlags, Row};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

const GET: &str = "SELECT id, name, date_created, version FROM portfolio WHERE id = ?1";
/// One statement (one snapshot) for any number of ids, bound as one JSON array, so a single
/// prepared statement serves every batch size.
const GET_MANY: &str =
    "SELECT id, name, date_created, version FROM portfolio WHERE id IN (SELECT value FROM json_each(?1))";

/// The most ids read on the calling thread in one call: about a hundred microseconds of index
/// lookups. Longer batches go through sqlx, which does not hold up the runtime thread.
pub(crate) const MAX_MANY: usize = 64;

/// A fixed-size pool of read-only connections to one database file, opened on first need.
pub(crate) struct PointReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    opened: AtomicU32,
    max: u32,
    closed: AtomicBool,
    /// The reader pool's wait histogram, found once (by name and labels) on the first read.
    wait: OnceLock<WaitRecorder>,
}

impl fmt::Debug for PointReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PointReader").field("path", &self.path).field("max", &self.max).finish_non_exhaustive()
    }
}

impl PointReader {
    pub(crate) fn new(path: PathBuf, max: u32) -> Self {
        let max = max.max(1);
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(max as usize)),
            opened: AtomicU32::new(0),
            max,
            closed: AtomicBool::new(false),
            wait: OnceLock::new(),
        }
    }

    /// An idle connection, or a new one while fewer than `max` are open; `None` when all are out
    /// or the pool is closed. The time taken is recorded as the reader pool's wait.
    pub(crate) fn checkout(&self) -> Option<StoreResult<Lease<'_>>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let started = Instant::now();
        let conn = match self.idle().pop() {
            Some(conn) => Ok(conn),
            None => {
                let reserved =
                    self.opened.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1));
                reserved.ok()?;
                self.open().inspect_err(|_| {
                    self.opened.fetch_sub(1, Ordering::AcqRel);
                })
            }
        };
        self.wait.get_or_init(|| WaitRecorder::for_pool("reader")).record(started.elapsed());
        Some(conn.map(|conn| Lease { pool: self, conn: Some(conn) }))
    }

    fn open(&self) -> StoreResult<Connection> {
        // NO_MUTEX: a connection is only ever used by the one thread that checked it out.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(classify)?;
        // rusqlite sets a 5 s busy timeout on open; see the module comment for why none.
        conn.busy_timeout(Duration::ZERO).map_err(classify)?;
        Ok(conn)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The lock guards a push or a pop: a panic cannot leave the vector half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the idle connections; those checked out close when they come back.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let closed = std::mem::take(&mut *self.idle());
        self.opened.fetch_sub(closed.len() as u32, Ordering::AcqRel);
    }

    /// (used, idle, max) at this moment.
    pub(crate) fn stats(&self) -> (u32, u32, u32) {
        let idle = self.idle().len() as u32;
        (self.opened.load(Ordering::Acquire).saturating_sub(idle), idle, self.max)
    }
}

/// A checked-out connection, back in the pool when dropped.
pub(crate) struct Lease<'a> {
    pool: &'a PointReader,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.pool.closed.load(Ordering::Acquire) {
            self.pool.opened.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.pool.idle().push(conn);
        }
    }
}

impl Lease<'_> {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("a lease holds its connection until dropped")
    }

    pub(crate) fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        let mut statement = self.conn().prepare_cached(GET).map_err(classify)?;
        let mut rows = statement.query([id.to_hex()]).map_err(classify)?;
        rows.next().map_err(classify)?.map(to_portfolio).transpose()
    }

    pub(crate) fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        let mut statement = self.conn().prepare_cached(GET_MANY).map_err(classify)?;
        let mut rows = statement.query([json_array(ids)]).map_err(classify)?;
        let mut found = Vec::with_capacity(ids.len());
        while let Some(row) = rows.next().map_err(classify)? {
            found.push(to_portfolio(row)?);
        }
        Ok(found)
    }
}

/// `["<hex>", ...]`: hex ids need no escaping.
fn json_array(ids: &[PortfolioId]) -> String {
    let mut json = String::with_capacity(2 + ids.len() * 27);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(&id.to_hex());
        json.push('"');
    }
    json.push(']');
    json
}

fn to_portfolio(row: &Row<'_>) -> StoreResult<Portfolio> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt portfolio row: {what}").into());
    let id = row.get_ref(0).map_err(classify)?.as_str().map_err(|_| corrupt("id"))?;
    Ok(Portfolio {
        id: PortfolioId::parse(id).ok_or_else(|| corrupt("id"))?,
        name: row.get(1).map_err(classify)?,
        date_created: Timestamp::from_millis(row.get(2).map_err(classify)?).ok_or_else(|| corrupt("date_created"))?,
        version: Version(row.get(3).map_err(classify)?),
    })
}

/// As for sqlx's errors (`errors::classify`): lock contention is transient, the rest is not.
fn classify(err: rusqlite::Error) -> StoreError {
    let transient = matches!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked));
    if transient { StoreError::Unavailable(Box::new(err)) } else { StoreError::Backend(Box::new(err)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(max: u32) -> (PointReader, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x); PRAGMA journal_mode = WAL;").unwrap();
        (PointReader::new(path, max), dir)
    }

    #[test]
    fn connections_open_on_demand_up_to_max_then_checkout_says_none() {
        let (pool, _dir) = reader(2);
        assert_eq!(pool.stats(), (0, 0, 2), "nothing opened before the first read");
        let first = pool.checkout().unwrap().unwrap();
        let second = pool.checkout().unwrap().unwrap();
        assert!(pool.checkout().is_none(), "a third reader falls back instead of waiting");
        assert_eq!(pool.stats(), (2, 0, 2));
        drop(first);
        assert_eq!(pool.stats(), (1, 1, 2));
        let again = pool.checkout().unwrap().unwrap();
        assert_eq!(pool.stats(), (2, 0, 2), "the idle connection is reused, not a third opened");
        drop((second, again));
        assert_eq!(pool.stats(), (0, 2, 2));
    }

    #[test]
    fn a_closed_pool_lends_nothing_and_closes_connections_as_they_come_back() {
        let (pool, _dir) = reader(2);
        let out = pool.checkout().unwrap().unwrap();
        drop(pool.checkout().unwrap().unwrap());
        pool.close();
        assert!(pool.checkout().is_none());
        assert_eq!(pool.stats(), (1, 0, 2));
        drop(out);
        assert_eq!(pool.stats(), (0, 0, 2));
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_a_backend_error_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let pool = PointReader::new(dir.path().join("missing"), 1);
        let err = pool.checkout().unwrap().err().unwrap();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert_eq!(pool.stats(), (0, 0, 1));
    }

    /// A writer holding an exclusive lock (here `locking_mode = EXCLUSIVE`) refuses readers:
    /// the point read says so at once instead of sleeping on the runtime thread.
    #[test]
    fn a_locked_database_is_reported_transient_without_waiting() {
        let (pool, dir) = reader(1);
        let writer = Connection::open(dir.path().join("db")).unwrap();
        writer.execute_batch("PRAGMA locking_mode = EXCLUSIVE; INSERT INTO t VALUES (1);").unwrap();
        let started = Instant::now();
        let lease = pool.checkout().unwrap().unwrap();
        let err = lease.conn().query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).map_err(classify);
        assert!(err.unwrap_err().is_transient());
        assert!(started.elapsed() < Duration::from_secs(1), "no busy wait: {:?}", started.elapsed());
    }

    #[test]
    fn lock_contention_is_transient_and_other_failures_are_not() {
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        let locked_sharedcache = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(6 | (1 << 8)), None);
        let corrupt = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(11), None);
        assert!(classify(busy).is_transient());
        assert!(classify(locked_sharedcache).is_transient());
        assert!(!classify(corrupt).is_transient());
        assert!(!classify(rusqlite::Error::InvalidQuery).is_transient());
    }

    #[test]
    fn the_id_list_is_a_json_array_of_hex_strings() {
        let ids = [PortfolioId::generate(), PortfolioId::generate()];
        assert_eq!(json_array(&ids), format!(r#"["{}","{}"]"#, ids[0].to_hex(), ids[1].to_hex()));
        assert_eq!(json_array(&[]), "[]");
    }
}
