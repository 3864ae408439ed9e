//! A fresh database per test, so tests share one server yet never see each other's documents.
//!
//! The server comes from [`URL_VAR`] (default [`DEFAULT_URL`]); `scripts/provision-mongo.sh`
//! starts one. An unreachable server fails the test with a message naming both: a MongoDB
//! test that silently skips proves nothing. Each database is `t_<ObjectId>`; its first eight
//! hex digits are the creation time, so a run that was killed before its guards dropped is
//! cleaned up an hour later by the next run.

use crate::{MongoSettings, MongoStore};
use mongodb::Client;
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use pfs_domain::PortfolioId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// The environment variable naming the test server.
pub const URL_VAR: &str = "PORTFOLIO_TEST_MONGO_URL";
/// Used when [`URL_VAR`] is unset: a local server, as `scripts/provision-mongo.sh` starts it.
pub const DEFAULT_URL: &str = "mongodb://127.0.0.1:27017";

const STALE_AFTER_SECS: u64 = 3600;

static SWEPT: OnceCell<()> = OnceCell::const_new();

/// The test server's URL.
pub fn base_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// An empty database, dropped (with everything in it) when the guard drops.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Names a new database (MongoDB creates it on first write). Panics, naming [`URL_VAR`],
    /// when the server cannot be reached.
    pub async fn create() -> Self {
        let url = base_url();
        let admin = admin_client(&url).await;
        if let Err(e) = admin.database("admin").run_command(doc! { "ping": 1 }).await {
            panic!(
                "cannot reach the test MongoDB at {url} (set {URL_VAR} to a reachable server, \
                 or run scripts/provision-mongo.sh): {e}"
            );
        }
        SWEPT.get_or_init(|| sweep(&admin)).await;
        Self { name: format!("t_{}", PortfolioId::generate()), url }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Default settings pointed at this database.
    pub fn settings(&self) -> MongoSettings {
        MongoSettings { database: self.name.clone(), ..MongoSettings::default() }
    }

    /// A store on this database, without indexes; `settings.database` is replaced by ours.
    pub async fn connect(&self, settings: &MongoSettings) -> MongoStore {
        let settings = MongoSettings { database: self.name.clone(), ..settings.clone() };
        MongoStore::connect(&self.url, &settings)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test MongoDB via {URL_VAR}: {e}"))
    }
}

impl Drop for TestDatabase {
    /// Drop cannot await, and may run on a runtime that is shutting down, so the database is
    /// dropped from a short-lived thread with its own runtime. Failures are only reported:
    /// the next run's sweep removes what is left.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = admin_client(&url).await;
                admin.database(&name).drop().await?;
                admin.shutdown().immediate(true).await;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped: {dropped:?}", self.name);
        }
    }
}

/// An indexed store on a fresh database; keep the guard alive for as long as the store is used.
pub async fn fresh_store() -> (MongoStore, TestDatabase) {
    fresh_store_with(&MongoSettings::default()).await
}

/// Like [`fresh_store`], with chosen settings (e.g. transactions off).
pub async fn fresh_store_with(settings: &MongoSettings) -> (MongoStore, TestDatabase) {
    let database = TestDatabase::create().await;
    let store = database.connect(settings).await;
    store.migrate().await.unwrap_or_else(|e| panic!("creating indexes in test database {}: {e}", database.name()));
    (store, database)
}

/// A small client for administration: one connection, and a short wait for the server.
async fn admin_client(url: &str) -> Client {
    let mut options = ClientOptions::parse(url)
        .await
        .unwrap_or_else(|e| panic!("{URL_VAR}={url} is not a MongoDB connection string: {e}"));
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.max_pool_size = Some(2);
    Client::with_options(options).unwrap_or_else(|e| panic!("MongoDB client for {url}: {e}"))
}

/// Once per process: drop test databases left behind by killed runs.
async fn sweep(admin: &Client) {
    let filter = doc! { "name": { "$regex": "^t_[0-9a-f]{24}$" } };
    let names = admin.list_database_names().filter(filter).await.unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for name in names {
        let created = u64::from_str_radix(&name[2..10], 16).unwrap_or(u64::MAX);
        if created.saturating_add(STALE_AFTER_SECS) < now {
            let _ = admin.database(&name).drop().await;
        }
    }
}
