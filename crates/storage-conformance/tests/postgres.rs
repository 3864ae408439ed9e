//! Every suite on PostgreSQL, a fresh schema per test in the database named by
//! `PORTFOLIO_TEST_POSTGRES_URL` (default: the local server): the portfolio suite over the bare
//! backend and through the application's whole store stack, idempotency keys, the job queue.
//! An unreachable server fails.

mod stack;

use pfs_storage_conformance::{conformance_suite, every_suite};
use pfs_storage_postgres::PostgresStore;
use pfs_storage_postgres::testing::{TestSchema, fresh_store};
use std::sync::Arc;

async fn fresh() -> (Arc<PostgresStore>, TestSchema) {
    let (store, schema) = fresh_store().await;
    (Arc::new(store), schema)
}

every_suite!(fresh());

mod full_stack {
    use super::*;
    conformance_suite!(stack::full_stack(fresh()));
}
