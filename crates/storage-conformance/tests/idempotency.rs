//! The idempotency-key suite on every backend, each on a fresh, migrated database.

use pfs_storage_conformance::idempotency::Keys;
use pfs_storage_conformance::idempotency_suite;
use std::sync::Arc;

mod sqlite {
    use super::*;
    use pfs_storage_sqlite::{SqliteSettings, SqliteStore};

    async fn fresh() -> (Keys, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            SqliteStore::open_file(&dir.path().join("test.db"), &SqliteSettings::default()).await.expect("open");
        store.migrate().await.expect("migrate");
        (Arc::new(store), dir)
    }

    idempotency_suite!(fresh());
}

mod postgres {
    use super::*;
    use pfs_storage_postgres::testing::{TestSchema, fresh_store};

    async fn fresh() -> (Keys, TestSchema) {
        let (store, schema) = fresh_store().await;
        (Arc::new(store), schema)
    }

    idempotency_suite!(fresh());
}

mod mongo {
    use super::*;
    use pfs_storage_mongo::MongoSettings;
    use pfs_storage_mongo::testing::{TestDatabase, fresh_store_with};

    async fn fresh() -> (Keys, TestDatabase) {
        let (store, database) = fresh_store_with(&MongoSettings::default()).await;
        (Arc::new(store), database)
    }

    idempotency_suite!(fresh());
}
