//! The conformance suite on MongoDB: a fresh database per test, on the server named by
//! `PORTFOLIO_TEST_MONGO_URL` (default: a local one, as `scripts/provision-mongo.sh` starts
//! it). An unreachable server fails. The suite runs twice: once as configured by default
//! (transactions when the server has them) and once with compensation instead.

use pfs_storage_conformance::{Store, conformance_suite};
use pfs_storage_mongo::testing::{TestDatabase, fresh_store_with};
use pfs_storage_mongo::{MongoSettings, TransactionMode};
use std::sync::Arc;

async fn fresh(transactions: TransactionMode) -> (Store, TestDatabase) {
    let (store, database) = fresh_store_with(&MongoSettings { transactions, ..MongoSettings::default() }).await;
    (Arc::new(store), database)
}

mod default_mode {
    use super::*;
    conformance_suite!(fresh(TransactionMode::Auto));
}

mod compensation {
    use super::*;
    conformance_suite!(fresh(TransactionMode::Never));
}
