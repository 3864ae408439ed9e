//! Migrations are reversible: up -> down(all) -> up leaves an identical schema, and running up
//! again keeps the data.

use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::PortfolioStore;
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};

/// Every table and index definition, sqlx's bookkeeping table excluded.
async fn schema(store: &SqliteStore) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT type, name, COALESCE(sql, '') FROM sqlite_master \
         WHERE name NOT LIKE '_sqlx%' AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn up_down_up_leaves_an_identical_schema_and_up_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_file(&dir.path().join("db"), &SqliteSettings::default()).await.unwrap();
    assert!(store.applied_migrations().await.unwrap().is_empty());
    store.migrate().await.unwrap();
    let first = schema(&store).await;
    assert!(first.iter().any(|(kind, name, _)| kind == "table" && name == "portfolio"), "{first:?}");
    assert_eq!(
        store.applied_migrations().await.unwrap().len(),
        pfs_storage_sqlite::MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).count()
    );

    store.migrate_down(0).await.unwrap();
    assert!(schema(&store).await.is_empty(), "down(all) removes everything");
    assert!(store.applied_migrations().await.unwrap().is_empty());

    store.migrate().await.unwrap();
    assert_eq!(schema(&store).await, first);

    let kept = Portfolio {
        id: PortfolioId::generate(),
        name: "survivor".into(),
        date_created: Timestamp::from_millis(1).unwrap(),
        version: Version(4),
    };
    store.insert_many(std::slice::from_ref(&kept)).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.get(kept.id).await.unwrap(), Some(kept));
}
