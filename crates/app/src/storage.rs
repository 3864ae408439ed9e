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
#[derive(Clone)]
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

/// Connects to the backend the URL's scheme names, failing at once when it cannot be reached
/// (one-shot commands: `migrate`, `import`). Does not migrate.
pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Backend> {
    let url = config.effective_url();
    let unreachable = || format!("connecting to {}", redact_url(&url));
    let backend = match scheme(&url)? {
        Scheme::Sqlite => return open_sqlite(config, &url).await,
        Scheme::Postgres => {
            Backend::Postgres(PostgresStore::connect(&url, &postgres_settings(config)).await.with_context(unreachable)?)
        }
        Scheme::Mongo => {
            Backend::Mongo(MongoStore::connect(&url, &mongo_settings(config)).await.with_context(unreachable)?)
        }
    };
    Ok(backend)
}

/// As [`open`], but a network database is not contacted yet: its pool connects on first use,
/// so `serve` can start while the database is down (see [`Backend::establish`]). Only a
/// malformed URL fails here. SQLite is a local file and opens at once.
pub async fn open_lazily(config: &DatabaseConfig) -> anyhow::Result<Backend> {
    let url = config.effective_url();
    let invalid = || format!("invalid database URL {}", redact_url(&url));
    let backend = match scheme(&url)? {
        Scheme::Sqlite => return open_sqlite(config, &url).await,
        Scheme::Postgres => {
            Backend::Postgres(PostgresStore::connect_lazy(&url, &postgres_settings(config)).with_context(invalid)?)
        }
        Scheme::Mongo => {
            Backend::Mongo(MongoStore::connect_lazy(&url, &mongo_settings(config)).await.with_context(invalid)?)
        }
    };
    Ok(backend)
}

enum Scheme {
    Sqlite,
    Postgres,
    Mongo,
}

fn scheme(url: &str) -> anyhow::Result<Scheme> {
    if url.starts_with("sqlite:") {
        Ok(Scheme::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Scheme::Postgres)
    } else if url.starts_with("mongodb://") {
        Ok(Scheme::Mongo)
    } else {
        bail!("unsupported database URL {}", redact_url(url))
    }
}

async fn open_sqlite(config: &DatabaseConfig, url: &str) -> anyhow::Result<Backend> {
    let settings = SqliteSettings {
        max_read_connections: config.max_connections,
        acquire_timeout: config.acquire_timeout,
        ..SqliteSettings::default()
    };
    if config.url.trim().is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let store = SqliteStore::connect(url, &settings).await.with_context(|| format!("opening {}", redact_url(url)))?;
    Ok(Backend::Sqlite(store))
}

fn postgres_settings(config: &DatabaseConfig) -> PostgresSettings {
    PostgresSettings {
        max_connections: config.max_connections,
        min_connections: config.min_connections,
        acquire_timeout: config.acquire_timeout,
        idle_timeout: config.idle_timeout,
        max_lifetime: config.max_lifetime,
        statement_timeout: config.statement_timeout,
        read_url: Some(config.read_url.trim().to_owned()).filter(|u| !u.is_empty()),
    }
}

fn mongo_settings(config: &DatabaseConfig) -> MongoSettings {
    MongoSettings {
        database: config.effective_mongo_database(),
        max_pool_size: config.max_connections,
        min_pool_size: config.min_connections,
        server_selection_timeout: config.acquire_timeout,
        ..MongoSettings::default()
    }
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

    /// One round trip, bounded by `timeout`: the database answers (MongoDB: and says whether
    /// it takes transactions).
    pub async fn establish(&self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let answered = match self {
            Self::Sqlite(_) => return Ok(()),
            Self::Postgres(store) => match store.reachable(timeout).await {
                Ok(()) => store.ping(timeout).await,
                Err(err) => Err(err),
            },
            Self::Mongo(store) => match tokio::time::timeout(timeout, store.handshake()).await {
                Ok(result) => result,
                Err(_) => Err(pfs_storage::StoreError::Unavailable(format!("no answer within {timeout:?}").into())),
            },
        };
        answered.map_err(Into::into)
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
