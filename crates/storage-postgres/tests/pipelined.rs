//! The pipelined reads by id against a real server: they survive their connections being
//! killed, and report the server's absence as `Unavailable`.

use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::{PortfolioStore, StoreError};
use pfs_storage_postgres::testing::TestSchema;
use pfs_storage_postgres::{PostgresSettings, PostgresStore};
use std::time::Duration;

fn portfolio(name: &str) -> Portfolio {
    Portfolio::new(name.to_owned(), Some(Timestamp::from_millis(1_700_000_000_123).unwrap()), Version(1))
}

#[tokio::test]
async fn reads_by_id_reconnect_after_the_server_closes_their_connections() {
    let schema = TestSchema::create().await;
    // The application name marks this test's connections, and only them, for termination.
    let url = format!("{}&application_name={}", schema.url(), schema.name());
    let store = PostgresStore::connect(&url, &PostgresSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    let stored = portfolio("Growth");
    store.insert_many(std::slice::from_ref(&stored)).await.unwrap();
    assert_eq!(store.get(stored.id).await.unwrap().as_ref(), Some(&stored));

    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()) killed",
    )
    .bind(schema.name())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(terminated >= 1, "the read connection was open");
    // The server closes a terminated backend's socket a moment after the call returns.
    tokio::time::sleep(Duration::from_millis(200)).await;

    for _ in 0..8 {
        assert_eq!(store.get(stored.id).await.unwrap().as_ref(), Some(&stored), "every connection is replaced");
    }
    let many = store.get_many(&[stored.id, PortfolioId::generate()]).await.unwrap();
    assert_eq!(many, vec![stored]);
    store.close().await;
    assert!(matches!(store.get(PortfolioId::generate()).await, Err(StoreError::Unavailable(_))), "closed");
}

#[tokio::test]
async fn reads_by_id_from_a_server_that_is_not_there_are_unavailable() {
    let port = pfs_test_ports::free_port();
    let settings = PostgresSettings { acquire_timeout: Duration::from_secs(2), ..PostgresSettings::default() };
    let store =
        PostgresStore::connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/postgres"), &settings).unwrap();
    let err = store.get(PortfolioId::generate()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.get_many(&[PortfolioId::generate()]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
