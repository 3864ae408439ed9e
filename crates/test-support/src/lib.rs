//! [`TestApp`]: the real server, bound to `127.0.0.1:0`, with its own database, shut down when
//! dropped. Integration tests talk to it over HTTP.
//!
//! The database is a SQLite file in a temporary directory, or, with
//! `PORTFOLIO_TEST_BACKEND=postgres`, a fresh schema on the server named by
//! `PORTFOLIO_TEST_POSTGRES_URL` (dropped afterwards), or, with `PORTFOLIO_TEST_BACKEND=mongo`,
//! a fresh database on `PORTFOLIO_TEST_MONGO_URL`, so the same suite proves every backend.
//! With `PORTFOLIO_TEST_REDIS_URL`, every app also uses that Redis, as production replicas do.
//! [`sse`] reads the app's change stream.

pub mod sse;

use pfs_platform::{Config, ConfigSources};
use pfs_storage::PortfolioStore;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use reqwest;
pub use serde_json::json;

/// A running service plus an HTTP client that does not follow redirects (so 307s are visible).
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _isolation: Isolation,
}

/// What keeps a test's database apart, alive as long as the test.
struct Isolation {
    _data_dir: tempfile::TempDir,
    _schema: Option<pfs_storage_postgres::testing::TestSchema>,
    _mongo: Option<pfs_storage_mongo::testing::TestDatabase>,
}

impl TestApp {
    /// The default (development) configuration on a fresh database.
    pub async fn spawn() -> Self {
        Self::spawn_with_env(&[]).await
    }

    /// As [`TestApp::spawn`], with extra environment variables (e.g. `("PORTFOLIO_ENV", "production")`).
    pub async fn spawn_with_env(env: &[(&str, &str)]) -> Self {
        let (config, isolation) = test_config(env).await;
        let app = pfs_app::App::build(&config).await.expect("application builds");
        Self::start(app, config, isolation).await
    }

    /// The default configuration around a given store, e.g. one that fails on purpose.
    pub async fn spawn_with_store(store: Arc<dyn PortfolioStore>) -> Self {
        let (config, isolation) = test_config(&[]).await;
        let app = pfs_app::App::from_store(&config, store).expect("application builds");
        Self::start(app, config, isolation).await
    }

    /// The configured backend (migrated, with `Idempotency-Key` records) with its portfolio
    /// store wrapped by `wrap`, e.g. to lose a response after a committed write.
    pub async fn spawn_wrapping(wrap: impl FnOnce(Arc<dyn PortfolioStore>) -> Arc<dyn PortfolioStore>) -> Self {
        let (config, isolation) = test_config(&[]).await;
        let backend = pfs_app::storage::open(&config.database).await.expect("backend opens");
        backend.migrate_up().await.expect("migrations apply");
        let companions = pfs_app::Companions { idempotency: Some(backend.idempotency_store()), ..Default::default() };
        let app =
            pfs_app::App::from_parts(&config, wrap(backend.into_store()), companions).expect("application builds");
        Self::start(app, config, isolation).await
    }

    async fn start(app: pfs_app::App, config: Config, isolation: Isolation) -> Self {
        let listener = tokio::net::TcpListener::bind((config.server.host.as_str(), 0)).await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.serve(listener, shutdown.clone()));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { address, client, config, shutdown, server: Some(server), _isolation: isolation }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("POST")
    }

    /// POSTs `body` verbatim with `Content-Type: application/json` (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).json(body).send().await.expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.expect("DELETE")
    }

    /// Creates a portfolio through v1 and returns the response body.
    pub async fn create_portfolio(&self, name: &str) -> Value {
        let response = self.post_json("/api/v1/portfolios", &json!({ "name": name })).await;
        assert_eq!(response.status(), 201, "creating {name:?}");
        response.json().await.expect("JSON body")
    }

    /// Signals shutdown (like SIGTERM) without waiting; the server drains per its config.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the server gracefully and waits for it, returning what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }
}

/// Loopback, port 0, and a fresh database, plus `env`.
async fn test_config(env: &[(&str, &str)]) -> (Config, Isolation) {
    pfs_platform::telemetry::init_for_test();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut vars: Vec<(String, String)> = vec![
        ("PORTFOLIO_HOST".into(), "127.0.0.1".into()),
        ("PORTFOLIO_PORT".into(), "0".into()),
        ("PORTFOLIO_DATA_DIR".into(), data_dir.path().display().to_string()),
    ];
    let (mut schema, mut mongo) = (None, None);
    match std::env::var("PORTFOLIO_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let created = pfs_storage_postgres::testing::TestSchema::create().await;
            vars.push(("PORTFOLIO_DATABASE_URL".into(), created.url()));
            schema = Some(created);
        }
        Ok("mongo") => {
            let created = pfs_storage_mongo::testing::TestDatabase::create().await;
            vars.push(("PORTFOLIO_DATABASE_URL".into(), created.url().to_owned()));
            vars.push(("PORTFOLIO_DATABASE__MONGO_DATABASE".into(), created.name().to_owned()));
            mongo = Some(created);
        }
        Ok("sqlite") | Err(_) => {}
        Ok(other) => panic!("PORTFOLIO_TEST_BACKEND={other:?}: expected sqlite, postgres or mongo"),
    }
    // Like production: replicas share Redis for cache invalidation (and rate-limit buckets).
    if let Ok(redis) = std::env::var("PORTFOLIO_TEST_REDIS_URL") {
        vars.push(("PORTFOLIO_REDIS_URL".into(), redis));
        // Every test shares that Redis: a channel (and so change-stream key) per app keeps one
        // test's writes out of another's stream. Tests bringing their own Redis share theirs.
        if !env.iter().any(|(key, _)| *key == "PORTFOLIO_REDIS_URL") {
            vars.push(("PORTFOLIO_REDIS__CHANNEL".into(), format!("test:{}", data_dir.path().display())));
        }
    }
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let sources = ConfigSources { env: vars.into_iter().collect(), ..ConfigSources::default() };
    let config = Config::load(&sources).expect("test configuration is valid");
    (config, Isolation { _data_dir: data_dir, _schema: schema, _mongo: mongo })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
