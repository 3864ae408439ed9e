//! Choosing the storage backend from the database URL, once.

use anyhow::{Context, bail};
use pfs_platform::config::{DatabaseConfig, redact_url};
use pfs_storage::{IdempotencyStore, PortfolioStore};
use pfs_storage_mongo::{MongoSettings, MongoStore};
use pfs_storage_postgres::{PostgresSettings, PostgresStore};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;

/// The configured backend, before it is erased to `dyn PortfolioStore`, for the operations
/// that differ per backend (migrations).
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    Mongo(MongoStore),
}

/// One applied or pending migration.
#[derive(Debug)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// Connects to the backend the URL's scheme names. Does not migrate.
pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Backend> {
    let url = config.effective_url();
    if url.starts_with("sqlite:") {
        let settings = SqliteSettings {
            max_read_connections: config.max_connections,
            acquire_timeout: config.acquire_timeout,
            ..SqliteSettings::default()
        };
        if config.url.trim().is_empty() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        }
        let store =
            SqliteStore::connect(&url, &settings).await.with_context(|| format!("opening {}", redact_url(&url)))?;
        return Ok(Backend::Sqlite(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let settings = PostgresSettings {
            max_connections: config.max_connections,
            min_connections: config.min_connections,
            acquire_timeout: config.acquire_timeout,
            idle_timeout: config.idle_timeout,
            max_lifetime: config.max_lifetime,
            statement_timeout: config.statement_timeout,
            read_url: Some(config.read_url.trim().to_owned()).filter(|u| !u.is_empty()),
        };
        let store = PostgresStore::connect(&url, &settings)
            .await
            .with_context(|| format!("connecting to {}", redact_url(&url)))?;
        return Ok(Backend::Postgres(store));
    }
    if url.starts_with("mongodb://") {
        let settings = MongoSettings {
            database: config.effective_mongo_database(),
            max_pool_size: config.max_connections,
            min_pool_size: config.min_connections,
            server_selection_timeout: config.acquire_timeout,
            ..MongoSettings::default()
        };
        let store = MongoStore::connect(&url, &settings)
            .await
            .with_context(|| format!("connecting to {}", redact_url(&url)))?;
        return Ok(Backend::Mongo(store));
    }
    bail!("unsupported database URL {}", redact_url(&url))
}

impl Backend {
    pub fn into_store(self) -> Arc<dyn PortfolioStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store),
            Self::Postgres(store) => Arc::new(store),
            Self::Mongo(store) => Arc::new(store),
        }
    }

    /// The same database, as the `Idempotency-Key` record.
    pub fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
            Self::Mongo(store) => Arc::new(store.clone()),
        }
    }

    pub async fn migrate_up(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate().await.map_err(Into::into),
            Self::Postgres(store) => store.migrate().await.map_err(Into::into),
            Self::Mongo(store) => store.migrate().await.map_err(Into::into),
        }
    }

    /// Reverts applied migrations down to (not including) `target`; 0 reverts everything.
    pub async fn migrate_down(&self, target: i64) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate_down(target).await.map_err(Into::into),
            Self::Postgres(store) => store.migrate_down(target).await.map_err(Into::into),
            Self::Mongo(store) => store.migrate_down(target).await.map_err(Into::into),
        }
    }

    pub async fn migration_status(&self) -> anyhow::Result<Vec<MigrationStatus>> {
        let (migrator, applied) = match self {
            Self::Sqlite(store) => (&pfs_storage_sqlite::MIGRATOR, store.applied_migrations().await?),
            Self::Postgres(store) => (&pfs_storage_postgres::MIGRATOR, store.applied_migrations().await?),
            // MongoDB has no schema: its one "migration" is the set of indexes we ensure.
            Self::Mongo(store) => {
                let applied = store.applied_migrations().await?;
                return Ok(vec![MigrationStatus {
                    version: pfs_storage_mongo::INDEXES_VERSION,
                    description: "ensure indexes".into(),
                    applied: applied.contains(&pfs_storage_mongo::INDEXES_VERSION),
                }]);
            }
        };
        Ok(migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect())
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
            Self::Mongo(store) => store.close().await,
        }
    }
}
