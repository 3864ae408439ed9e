//! The pool figures behind the `db_client_connections_*` metrics, against a real server.

use pfs_storage::{ListAll, PoolStats, PortfolioStore};
use pfs_storage_postgres::PostgresSettings;
use pfs_storage_postgres::testing::TestSchema;

fn settings(read_url: Option<String>) -> PostgresSettings {
    PostgresSettings { max_connections: 3, min_connections: 1, read_url, ..PostgresSettings::default() }
}

#[tokio::test]
async fn without_a_replica_one_writer_pool_is_reported_and_a_held_transaction_is_used() {
    let schema = TestSchema::create().await;
    let store = schema.connect(&settings(None)).await;
    store.migrate().await.unwrap();

    let stats = store.pool_stats();
    assert_eq!(stats.len(), 1, "the reader is the writer pool, reported once: {stats:?}");
    assert_eq!((stats[0].name, stats[0].max), ("writer", 3), "{stats:?}");

    let mut held = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *held).await.unwrap();
    let [writer]: [PoolStats; 1] = store.pool_stats().try_into().unwrap();
    assert!(writer.used >= 1, "{writer:?}");
    assert!(writer.used + writer.idle <= writer.max, "{writer:?}");
    held.rollback().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_replica_is_reported_as_its_own_reader_pool() {
    let schema = TestSchema::create().await;
    let store = schema.connect(&settings(Some(schema.url()))).await;
    store.migrate().await.unwrap();
    // The replica pool connects lazily: nothing is open until the first read.
    let reader = |store: &pfs_storage_postgres::PostgresStore| {
        *store.pool_stats().iter().find(|s| s.name == "reader").expect("a reader pool")
    };
    assert_eq!(reader(&store), PoolStats { name: "reader", used: 0, idle: 0, max: 3 });
    assert!(store.list_all().await.unwrap().is_empty());
    let after = reader(&store);
    assert_eq!(after.used + after.idle, 1, "the read opened one connection: {after:?}");
    assert_eq!(store.pool_stats().len(), 2);
    store.close().await;
}
