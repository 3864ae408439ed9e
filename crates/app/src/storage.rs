//! Choosing the storage backend from the database URL, once.

use anyhow::{Context, bail};
use pfs_platform::config::{DatabaseConfig, redact_url};
use pfs_storage::PortfolioStore;
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::sync::Arc;

/// The configured backend, before it is erased to `dyn PortfolioStore`, for the operations
/// that differ per backend (migrations).
pub enum Backend {
    Sqlite(SqliteStore),
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
    bail!("unsupported database URL {}", redact_url(&url))
}

impl Backend {
    pub fn into_store(self) -> Arc<dyn PortfolioStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store),
        }
    }

    pub async fn migrate_up(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate().await.map_err(Into::into),
        }
    }

    /// Reverts applied migrations down to (not including) `target`; 0 reverts everything.
    pub async fn migrate_down(&self, target: i64) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(store) => store.migrate_down(target).await.map_err(Into::into),
        }
    }

    pub async fn migration_status(&self) -> anyhow::Result<Vec<MigrationStatus>> {
        match self {
            Self::Sqlite(store) => {
                let applied = store.applied_migrations().await?;
                Ok(pfs_storage_sqlite::MIGRATOR
                    .iter()
                    .filter(|m| m.migration_type.is_up_migration())
                    .map(|m| MigrationStatus {
                        version: m.version,
                        description: m.description.to_string(),
                        applied: applied.contains(&m.version),
                    })
                    .collect())
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
        }
    }
}
