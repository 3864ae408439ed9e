//! Write-ahead-log checkpoints off the request path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the log past
//! `wal_autocheckpoint` pages (1,000 by default, about 77 bulk creates of ten): that one write
//! copies the log back into the database file and waits for its fsyncs, milliseconds that were
//! the p99 of every write (docs/BENCHMARKS.md). Here a thread of its own checkpoints, PASSIVE
//! (it never waits on the writer or a reader), whenever something was committed since its last
//! look, every [`INTERVAL`]; a commit then only appends to the log.
//!
//! The writer's automatic checkpoint stays as a backstop at [`BACKSTOP_PAGES`]: only a writer
//! resets the log, and only once a checkpoint has copied all of it, which a checkpoint running
//! beside writes that never pause does not achieve, nor one behind a reader holding an old
//! snapshot. After a reset `journal_size_limit` truncates the file: the disk the log takes
//! stays bounded whatever the write load.

use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// How often the checkpointer looks for new commits while there are some: often, so that each
/// checkpoint copies little.
pub(crate) const INTERVAL: Duration = Duration::from_millis(20);

/// How far the looks space out, doubling each time, while nothing is committed: an idle
/// service wakes the thread four times a second.
const IDLE_INTERVAL: Duration = Duration::from_millis(250);

/// The writer's own automatic checkpoint: 4,096 pages, 16 MiB at SQLite's default page size.
pub(crate) const BACKSTOP_PAGES: u32 = 4096;

/// The size the log file is truncated to once a checkpoint has reset it.
pub(crate) const LOG_FILE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

/// The writer connection's settings that go with the checkpointer.
pub(crate) fn writer_pragmas() -> [(&'static str, String); 2] {
    [("wal_autocheckpoint", BACKSTOP_PAGES.to_string()), ("journal_size_limit", LOG_FILE_LIMIT_BYTES.to_string())]
}

/// The running checkpointer; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    pub(crate) fn start(path: PathBuf) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
            let mut log = Log { path, connection: None, seen: None, failing: false };
            let mut interval = INTERVAL;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                interval = if log.fold_back() { INTERVAL } else { (interval * 2).min(IDLE_INTERVAL) };
            }
        })?;
        Ok(Self { _stop: stop })
    }
}

struct Log {
    path: PathBuf,
    /// Opened on first need, and again after an error.
    connection: Option<Connection>,
    /// `data_version` at the last checkpoint: it changes when another connection commits.
    seen: Option<i64>,
    failing: bool,
}

impl Log {
    /// Checkpoints if anything was committed since the last time; whether something was.
    fn fold_back(&mut self) -> bool {
        match self.checkpoint() {
            Ok(committed) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(path = %self.path.display(), "SQLite WAL checkpoints succeed again");
                }
                committed
            }
            // Another process checkpointing the same file, or a recovery in progress: the next
            // look tries again.
            Err(err) if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => true,
            Err(err) => {
                self.connection = None;
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(
                        path = %self.path.display(),
                        "SQLite WAL checkpoint failed: {err}; writes checkpoint past {BACKSTOP_PAGES} pages until it succeeds"
                    );
                }
                false
            }
        }
    }

    fn checkpoint(&mut self) -> rusqlite::Result<bool> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(open(&self.path)?),
        };
        let version = connection.prepare_cached("PRAGMA data_version")?.query_row([], |row| row.get(0))?;
        if self.seen == Some(version) {
            return Ok(false);
        }
        // (busy, pages in the log, pages copied): a reader's snapshot can stop the copy short,
        // and then the next look tries again even without a new commit.
        let (logged, copied): (i64, i64) = connection
            .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
            .query_row([], |row| Ok((row.get(1)?, row.get(2)?)))?;
        self.seen = (copied >= logged).then_some(version);
        Ok(true)
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Rows of `t` in the database file itself, ignoring the log (`immutable=1`).
    fn rows_in_file(path: &Path) -> i64 {
        let uri = format!("file:{}?immutable=1", path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(uri, flags).unwrap();
        connection.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).unwrap_or(0)
    }

    fn insert(writer: &Connection, rows: usize) {
        for _ in 0..rows {
            writer.execute("INSERT INTO t VALUES (randomblob(512))", []).unwrap();
        }
    }

    fn log_bytes(path: &Path) -> u64 {
        std::fs::metadata(path.with_extension("sqlite-wal")).map_or(0, |m| m.len())
    }

    /// 4 MiB per call, in transactions of 64 rows of 4 KiB.
    fn write_4_mib(writer: &mut Connection) {
        for _ in 0..16 {
            let transaction = writer.transaction().unwrap();
            for _ in 0..64 {
                transaction.execute("INSERT INTO t VALUES (randomblob(4096))", []).unwrap();
            }
            transaction.commit().unwrap();
        }
    }

    #[test]
    fn the_log_file_shrinks_back_to_its_limit_after_a_reader_held_it_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x);").unwrap();
        for (name, value) in writer_pragmas() {
            writer.pragma_update(None, name, value).unwrap();
        }
        let _checkpointer = Checkpointer::start(path.clone()).unwrap();

        // A reader's snapshot keeps every page written after it in the log.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
        for _ in 0..6 {
            write_4_mib(&mut writer);
        }
        assert!(log_bytes(&path) > LOG_FILE_LIMIT_BYTES, "the pinned log grew: {}", log_bytes(&path));

        reader.execute_batch("COMMIT").unwrap();
        for _ in 0..6 {
            write_4_mib(&mut writer);
            std::thread::sleep(INTERVAL * 3);
        }
        let limit = LOG_FILE_LIMIT_BYTES + 4 * 1024 * 1024;
        assert!(log_bytes(&path) <= limit, "the log stays within its limit: {} bytes", log_bytes(&path));
    }

    #[test]
    fn committed_rows_reach_the_database_file_without_a_commit_checkpointing_and_stop_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let writer = Connection::open(&path).unwrap();
        // No automatic checkpoint: only the checkpointer moves rows into the file.
        writer.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x);").unwrap();
        insert(&writer, 100);
        assert_eq!(rows_in_file(&path), 0, "the rows are in the log only");

        let checkpointer = Checkpointer::start(path.clone()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows_in_file(&path) < 100 {
            assert!(Instant::now() < deadline, "the log was not folded back: {} rows in the file", rows_in_file(&path));
            std::thread::sleep(Duration::from_millis(20));
        }

        drop(checkpointer);
        std::thread::sleep(INTERVAL / 2);
        insert(&writer, 100);
        std::thread::sleep(IDLE_INTERVAL * 3);
        assert_eq!(rows_in_file(&path), 100, "a dropped checkpointer checkpoints no more");
    }
}
