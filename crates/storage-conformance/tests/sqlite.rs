//! The conformance suite on SQLite: a fresh database file per test.

use pfs_storage_conformance::{Store, conformance_suite};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;

async fn fresh() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_file(&dir.path().join("test.db"), &SqliteSettings::default()).await.expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

conformance_suite!(fresh());
