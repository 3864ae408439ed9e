//! Every suite on SQLite, a fresh database file per test: the portfolio suite over the bare
//! backend and through the application's whole store stack, idempotency keys, the job queue.

mod stack;

use pfs_storage_conformance::{conformance_suite, idempotency_suite, queue_suite};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;

async fn fresh() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_file(&dir.path().join("test.db"), &SqliteSettings::default()).await.expect("open");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

mod bare {
    use super::*;
    conformance_suite!(fresh());
}

mod full_stack {
    use super::*;
    conformance_suite!(stack::full_stack(fresh()));
}

mod idempotency {
    use super::*;
    idempotency_suite!(fresh());
}

mod queue {
    use super::*;
    queue_suite!(fresh());
}
