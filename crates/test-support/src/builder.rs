//! [`TestAppBuilder`]: what a test changes about the app, as typed configuration edits and an
//! optional store, and the database isolation every test app gets.
//!
//! The database is a SQLite file in a temporary directory, or, with
//! `PORTFOLIO_TEST_BACKEND=postgres`, a fresh schema on the server named by
//! `PORTFOLIO_TEST_POSTGRES_URL` (dropped afterwards), or, with `PORTFOLIO_TEST_BACKEND=mongo`,
//! a fresh database on `PORTFOLIO_TEST_MONGO_URL`, so the same suite proves every backend.
//! With `PORTFOLIO_TEST_REDIS_URL`, every app that brings no Redis of its own uses that one,
//! as production replicas do.

use crate::TestApp;
use pfs_platform::{Config, ConfigSources};
use pfs_storage::PortfolioStore;
use std::sync::Arc;

type ConfigEdit = Box<dyn FnOnce(&mut Config) + Send>;
type StoreWrap = Box<dyn FnOnce(Arc<dyn PortfolioStore>) -> Arc<dyn PortfolioStore> + Send>;

/// Which portfolio store the app serves.
#[derive(Default)]
enum StoreChoice {
    /// The configured backend, migrated, with its job queue and idempotency records.
    #[default]
    Configured,
    /// A given store (e.g. one that fails on purpose), with no companions.
    Given(Arc<dyn PortfolioStore>),
    /// The configured backend (migrated, with idempotency records) wrapped by a test.
    Wrapped(StoreWrap),
}

/// Builds a [`TestApp`]: `TestApp::builder().with_config(|c| c.cache.enabled = false).spawn()`.
#[derive(Default)]
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    edits: Vec<ConfigEdit>,
    store: StoreChoice,
}

impl TestAppBuilder {
    /// Changes the loaded configuration; edits apply in order, after the test defaults
    /// (loopback, port 0, the test's database), and the result is validated like any other.
    pub fn with_config(mut self, edit: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// An environment variable for configuration loading. Only for tests of what the
    /// environment selects (e.g. `PORTFOLIO_ENV` and its profile overlay); every other setting
    /// goes through [`with_config`](Self::with_config).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Serves `store` instead of the configured backend; `Idempotency-Key` is then ignored.
    pub fn with_store(mut self, store: Arc<dyn PortfolioStore>) -> Self {
        self.store = StoreChoice::Given(store);
        self
    }

    /// Serves the configured backend's portfolio store wrapped by `wrap`, e.g. to lose a
    /// response after a committed write.
    pub fn wrapping(
        mut self,
        wrap: impl FnOnce(Arc<dyn PortfolioStore>) -> Arc<dyn PortfolioStore> + Send + 'static,
    ) -> Self {
        self.store = StoreChoice::Wrapped(Box::new(wrap));
        self
    }

    /// Builds the app and serves it on a loopback port.
    pub async fn spawn(self) -> TestApp {
        pfs_platform::telemetry::init_for_test();
        let sources = ConfigSources { env: self.env.into_iter().collect(), ..ConfigSources::default() };
        let mut config = Config::load(&sources).expect("the test's environment is valid configuration");
        let isolation = Isolation::create(&mut config).await;
        for edit in self.edits {
            edit(&mut config);
        }
        isolation.share_redis(&mut config);
        config.validate().expect("the test's configuration is valid");
        let app = match self.store {
            StoreChoice::Configured => pfs_app::App::build(&config).await,
            StoreChoice::Given(store) => pfs_app::App::from_store(&config, store),
            StoreChoice::Wrapped(wrap) => {
                let backend = pfs_app::storage::open(&config.database).await.expect("backend opens");
                backend.migrate_up().await.expect("migrations apply");
                let idempotency = Some(backend.idempotency_store());
                let companions = pfs_app::Companions { idempotency, ..Default::default() };
                pfs_app::App::from_parts(&config, wrap(backend.into_store()), companions)
            }
        };
        TestApp::start(app.expect("application builds"), config, isolation).await
    }
}

/// What keeps a test's database apart, alive as long as the test.
pub(crate) struct Isolation {
    data_dir: tempfile::TempDir,
    _schema: Option<pfs_storage_postgres::testing::TestSchema>,
    _mongo: Option<pfs_storage_mongo::testing::TestDatabase>,
}

impl Isolation {
    /// A fresh database of the backend `PORTFOLIO_TEST_BACKEND` names, written into `config`
    /// with loopback and port 0.
    async fn create(config: &mut Config) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        config.server.host = "127.0.0.1".into();
        config.server.port = 0;
        config.database.data_dir = data_dir.path().to_owned();
        let (mut schema, mut mongo) = (None, None);
        match std::env::var("PORTFOLIO_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let created = pfs_storage_postgres::testing::TestSchema::create().await;
                config.database.url = created.url();
                schema = Some(created);
            }
            Ok("mongo") => {
                let created = pfs_storage_mongo::testing::TestDatabase::create().await;
                config.database.url = created.url().to_owned();
                config.database.mongo_database = created.name().to_owned();
                mongo = Some(created);
            }
            Ok("sqlite") | Err(_) => {}
            Ok(other) => panic!("PORTFOLIO_TEST_BACKEND={other:?}: expected sqlite, postgres or mongo"),
        }
        Self { data_dir, _schema: schema, _mongo: mongo }
    }

    /// Like production, replicas share Redis for cache invalidation (and rate-limit buckets):
    /// an app that brings no Redis of its own gets `PORTFOLIO_TEST_REDIS_URL`, with a channel
    /// (and so change-stream key) of its own, since every test shares that Redis. Tests that
    /// bring their own Redis share its default channel between their apps.
    fn share_redis(&self, config: &mut Config) {
        if let Ok(redis) = std::env::var("PORTFOLIO_TEST_REDIS_URL")
            && config.redis.url.is_empty()
        {
            config.redis.url = redis;
            config.redis.channel = format!("test:{}", self.data_dir.path().display());
        }
    }
}
