//! A fresh schema per test, so tests share one database yet never see each other's rows.
//!
//! The server comes from [`URL_VAR`] (default [`DEFAULT_URL`]). An unreachable server fails
//! the test with a message naming the variable: a Postgres test that silently skips proves
//! nothing. Each schema is `t_<ObjectId>`; its first eight hex digits are the creation time,
//! so a run that was killed before its guards dropped is cleaned up an hour later by the
//! next run.

use crate::{PostgresSettings, PostgresStore};
use pfs_domain::PortfolioId;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// The environment variable naming the test server.
pub const URL_VAR: &str = "PORTFOLIO_TEST_POSTGRES_URL";
/// Used when [`URL_VAR`] is unset: the local development server with trust authentication.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const STALE_AFTER_SECS: u64 = 3600;

static PREPARED: OnceCell<()> = OnceCell::const_new();

/// The test server's URL.
pub fn base_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// An empty schema, dropped (with everything in it) when the guard drops.
#[derive(Debug)]
pub struct TestSchema {
    name: String,
    base_url: String,
}

impl TestSchema {
    /// Creates the schema. Panics, naming [`URL_VAR`], when the server cannot be reached.
    pub async fn create() -> Self {
        let base_url = base_url();
        PREPARED.get_or_init(|| prepare_database(&base_url)).await;
        let name = format!("t_{}", PortfolioId::generate());
        let mut admin = connect_admin(&base_url).await;
        // Identifiers cannot be bound; the name is ours (`t_` + hex), never input.
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating test schema {name}: {e}"));
        let _ = admin.close().await;
        Self { name, base_url }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server URL with `search_path` set to this schema, then `public` for `pg_trgm`.
    /// Everything unqualified, sqlx's `_sqlx_migrations` included, lands in this schema.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options%5Bsearch_path%5D={}%2Cpublic", self.base_url, self.name)
    }

    /// A store on this schema, not migrated.
    pub async fn connect(&self, settings: &PostgresSettings) -> PostgresStore {
        PostgresStore::connect(&self.url(), settings)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test schema via {URL_VAR}: {e}"))
    }
}

impl Drop for TestSchema {
    /// Drop cannot await, and may run on a runtime that is shutting down, so the schema is
    /// dropped from a short-lived thread with its own runtime. Failures are only reported:
    /// the next run's sweep removes what is left.
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&url).await?;
                drop_schema(&mut admin, &name).await?;
                Ok(admin.close().await?)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test schema {} was not dropped: {dropped:?}", self.name);
        }
    }
}

/// A migrated store in a fresh schema; keep the guard alive for as long as the store is used.
pub async fn fresh_store() -> (PostgresStore, TestSchema) {
    let schema = TestSchema::create().await;
    let store = schema.connect(&PostgresSettings::default()).await;
    store.migrate().await.unwrap_or_else(|e| panic!("migrating test schema {}: {e}", schema.name()));
    (store, schema)
}

async fn connect_admin(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("cannot reach the test PostgreSQL at {url} (set {URL_VAR} to a reachable server): {e}")
    })
}

async fn drop_schema(admin: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))).execute(admin).await.map(drop)
}

/// Once per process: install `pg_trgm` in `public` (otherwise the first migration would
/// create it inside its own test schema, and dropping that schema would take it away from
/// every other test), and sweep schemas left behind by killed runs.
async fn prepare_database(url: &str) {
    let mut admin = connect_admin(url).await;
    if let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").execute(&mut admin).await {
        // Two processes creating it at once: one loses with a unique violation, and that is fine.
        let installed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')")
                .fetch_one(&mut admin)
                .await
                .unwrap_or(false);
        assert!(installed, "installing pg_trgm in the test database: {e}");
    }
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{24}$'")
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for name in schemas {
        let created = u64::from_str_radix(&name[2..10], 16).unwrap_or(u64::MAX);
        if created.saturating_add(STALE_AFTER_SECS) < now {
            let _ = drop_schema(&mut admin, &name).await;
        }
    }
    let _ = admin.close().await;
}
