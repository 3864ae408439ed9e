//! The migrations are reversible and idempotent, checked against a real server.

use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_postgres::testing::{TestSchema, fresh_store};
use pfs_storage_postgres::{MIGRATOR, PostgresSettings};

/// Every column, index and constraint of the test schema, one sorted line each.
async fn catalog(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('column %s.%s %s nullable=%s default=%s', table_name, column_name, data_type, is_nullable, \
                column_default) \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         UNION ALL \
         SELECT format('index %s: %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = current_schema() \
         UNION ALL \
         SELECT format('constraint %s.%s: %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE connamespace = current_schema()::regnamespace \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("catalog dump")
}

/// Every migration's version, in order: what a fully migrated schema has applied.
fn every_version() -> Vec<i64> {
    let mut versions: Vec<i64> =
        MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).map(|m| m.version).collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

#[tokio::test]
async fn up_down_up_leaves_an_identical_schema() {
    let schema = TestSchema::create().await;
    let store = schema.connect(&PostgresSettings::default()).await;
    assert_eq!(store.applied_migrations().await.unwrap(), Vec::<i64>::new());

    store.migrate().await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), every_version());
    let first = catalog(store.pool()).await;
    for expected in ["portfolio_by_created", "portfolio_by_lower_name", "portfolio_by_name_trigram", "portfolio_pkey"] {
        assert!(first.iter().any(|line| line.starts_with(&format!("index {expected}:"))), "{expected}: {first:#?}");
    }

    store.migrate_down(0).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), Vec::<i64>::new());
    let after_down = catalog(store.pool()).await;
    assert!(after_down.iter().all(|line| line.contains("_sqlx_migrations")), "down left: {after_down:#?}");

    store.migrate().await.unwrap();
    assert_eq!(catalog(store.pool()).await, first);
}

#[tokio::test]
async fn rerunning_up_keeps_the_data() {
    let (store, _schema) = fresh_store().await;
    let p = Portfolio {
        id: PortfolioId::generate(),
        name: "kept".into(),
        date_created: Timestamp::from_millis(1_700_000_000_123).unwrap(),
        version: Version(3),
    };
    store.insert_many(std::slice::from_ref(&p)).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.list_all().await.unwrap(), vec![p]);
    assert_eq!(store.applied_migrations().await.unwrap(), every_version());
}

#[tokio::test]
async fn the_schema_rejects_ids_that_are_not_lowercase_object_ids() {
    let (store, _schema) = fresh_store().await;
    for bad in ["6740F1C2A1B2C3D4E5F60718", "abc"] {
        let inserted =
            sqlx::query("INSERT INTO portfolio VALUES ($1, 'x', now(), 1)").bind(bad).execute(store.pool()).await;
        assert!(inserted.is_err(), "{bad} was accepted");
    }
}

#[tokio::test]
async fn extreme_timestamps_round_trip_to_the_millisecond() {
    let (store, _schema) = fresh_store().await;
    let batch: Vec<_> = [-62_135_596_800_000, -86_400_123, -1, 0, 999, 1_700_000_000_123, 253_402_300_799_999]
        .into_iter()
        .map(|millis| Portfolio {
            id: PortfolioId::generate(),
            name: format!("at {millis}"),
            date_created: Timestamp::from_millis(millis).unwrap(),
            version: Version(1),
        })
        .collect();
    store.insert_many(&batch).await.unwrap();
    for p in &batch {
        assert_eq!(store.get(p.id).await.unwrap().as_ref(), Some(p));
    }
}

#[tokio::test]
async fn every_connection_carries_the_statement_timeout() {
    let schema = TestSchema::create().await;
    let settings = PostgresSettings { statement_timeout: std::time::Duration::from_millis(1234), ..Default::default() };
    let store = schema.connect(&settings).await;
    let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(store.pool()).await.unwrap();
    assert_eq!(shown, "1234ms");
}
