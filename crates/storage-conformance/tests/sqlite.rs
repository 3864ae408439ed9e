//! Every suite on SQLite, a fresh database file per test: the portfolio suite over the bare
//! backend and through the application's whole store stack, idempotency keys, the job queue.

mod stack;

use pfs_storage_conformance::{conformance_suite, every_suite};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;

async fn fresh() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_file(&dir.path().join("test.db"), &SqliteSettings::default()).await.expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

every_suite!(fresh());

mod full_stack {
    use super::*;
    conformance_suite!(stack::full_stack(fresh()));
}
