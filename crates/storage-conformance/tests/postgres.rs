//! The conformance suite on PostgreSQL: a fresh schema per test, in the database named by
//! `PORTFOLIO_TEST_POSTGRES_URL` (default: the local server). An unreachable server fails.

use pfs_storage_conformance::{Store, conformance_suite};
use pfs_storage_postgres::testing::{TestSchema, fresh_store};
use std::sync::Arc;

async fn fresh() -> (Store, TestSchema) {
    let (store, schema) = fresh_store().await;
    (Arc::new(store), schema)
}

conformance_suite!(fresh());
