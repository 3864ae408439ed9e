//! Every suite MongoDB has, a fresh database per test on the server named by
//! `PORTFOLIO_TEST_MONGO_URL` (default: a local one, as `scripts/provision-mongo.sh` starts it):
//! the portfolio suite as configured by default (transactions when the server has them), with
//! compensation instead, and through the application's whole store stack; idempotency keys.
//! MongoDB has no job queue. An unreachable server fails.

mod stack;

use pfs_storage_conformance::{conformance_suite, idempotency_suite};
use pfs_storage_mongo::testing::{TestDatabase, fresh_store_with};
use pfs_storage_mongo::{MongoSettings, MongoStore, TransactionMode};
use std::sync::Arc;

async fn fresh(transactions: TransactionMode) -> (Arc<MongoStore>, TestDatabase) {
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

mod full_stack {
    use super::*;
    conformance_suite!(stack::full_stack(fresh(TransactionMode::Auto)));
}

mod idempotency {
    use super::*;
    idempotency_suite!(fresh(TransactionMode::Auto));
}
