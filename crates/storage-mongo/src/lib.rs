//! MongoDB backend: reads and writes exactly the documents of the original Python service, so
//! old and new replicas can share one collection during a migration.
//!
//! # Layout
//! - [`MongoStore`] (this file): the client, its options and lifecycle.
//! - [`settings`]: [`MongoSettings`], pool sizes and timeouts with their reasons.
//! - `document`: the original's document shape and its regex search filters.
//! - `queries`: the [`PortfolioStore`](pfs_storage::PortfolioStore) implementation.
//! - `batch`: the multi-document inserts, in a transaction or with compensation.
//! - `indexes`: the original's indexes plus ours, and the migration commands mapped onto them.
//! - `errors`: mapping driver errors onto [`StoreError`](pfs_storage::StoreError).
//! - `pool`: the driver's pool occupancy and checkout waits, from its monitoring events.
//! - `testing` (feature `testing`): a fresh database per test.
//!
//! Single-document writes are atomic in MongoDB, so the version-checked update and delete are
//! one `findOneAndUpdate`/`deleteOne` whose filter carries the expected version.

mod batch;
mod document;
mod errors;
mod idempotency;
mod indexes;
mod pool;
mod queries;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use indexes::{INDEXES_VERSION, ORDER_INDEX};
pub use settings::{MongoSettings, TransactionMode};

use errors::classify;
use mongodb::bson::{Document, doc};
use mongodb::options::{Acknowledgment, ClientOptions, ReadConcern, WriteConcern};
use mongodb::{Client, Collection, Database};
use pfs_storage::StoreResult;
use std::sync::{Arc, OnceLock};

/// A MongoDB collection behind the driver's connection pool.
#[derive(Clone, Debug)]
pub struct MongoStore {
    client: Client,
    collection: Collection<Document>,
    /// Whether multi-document inserts run in a transaction (decided by the first handshake;
    /// shared by clones).
    transactions: Arc<Transactions>,
    pools: Arc<pool::PoolMonitor>,
}

impl MongoStore {
    /// Connects to `url` (`mongodb://host:port,.../?options`) and asks the server what it is
    /// (`hello`), so a wrong URL or an unreachable server fails at startup rather than on the
    /// first request, and so the store knows whether transactions are available (a
    /// replica-set member or `mongos`; not a standalone `mongod`).
    ///
    /// The pool and timeouts come from `settings`. Where the URL is silent the original's
    /// client options apply: `retryWrites` and `retryReads` on, write concern `w: 1`, read
    /// concern `local` (read preference is the driver's default, `primary`). The original
    /// also asked for `journal: false` and wire compression; neither is set here (see
    /// docs/MONGODB.md). Does not create indexes: call [`MongoStore::migrate`].
    pub async fn connect(url: &str, settings: &MongoSettings) -> StoreResult<Self> {
        let store = Self::connect_lazy(url, settings).await?;
        store.handshake().await?;
        Ok(store)
    }

    /// As [`MongoStore::connect`], but without asking the server anything: the driver
    /// connects in the background, so the store exists while the server is down (`serve`
    /// starts this way and waits for the database with [`MongoStore::handshake`]). Only a
    /// malformed URL (or an SRV record that cannot be resolved) fails here.
    pub async fn connect_lazy(url: &str, settings: &MongoSettings) -> StoreResult<Self> {
        let mut options = ClientOptions::parse(url).await.map_err(classify)?;
        apply(&mut options, settings);
        // `apply` always sets a size; 10 is what the driver would use otherwise.
        let pools = pool::PoolMonitor::new(options.max_pool_size.unwrap_or(10));
        options.cmap_event_handler = Some(pools.handler());
        let client = Client::with_options(options).map_err(classify)?;
        let collection = client.database(&settings.database).collection(&settings.collection);
        let transactions = Arc::new(Transactions { mode: settings.transactions, supported: OnceLock::new() });
        Ok(Self { client, collection, transactions, pools })
    }

    /// Asks the server what it is (`hello`), once it answers: this decides whether
    /// multi-document inserts use transactions. Fails (`Unavailable`) while no server can be
    /// selected, within `server_selection_timeout`.
    pub async fn handshake(&self) -> StoreResult<()> {
        let hello = self.client.database("admin").run_command(doc! { "hello": 1 }).await.map_err(classify)?;
        let supported = self.transactions.mode == TransactionMode::Auto && supports_transactions(&hello);
        // A second handshake (a reconnect) keeps the first answer: the deployment's kind does
        // not change under a running store.
        let _ = self.transactions.supported.set(supported);
        Ok(())
    }

    /// Creates the original's indexes when missing, plus the one serving our search order;
    /// see [`MongoStore::ensure_indexes`]. The Mongo counterpart of the SQL migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.ensure_indexes().await?;
        self.ensure_idempotency_indexes().await
    }

    /// With `target` below [`INDEXES_VERSION`] (0 included), drops the one index only this
    /// service creates ([`ORDER_INDEX`]). Never drops the collection, its documents, or the
    /// original's indexes, which a running original still relies on. A no-op otherwise.
    pub async fn migrate_down(&self, target: i64) -> StoreResult<()> {
        if target < INDEXES_VERSION { self.drop_order_index().await } else { Ok(()) }
    }

    /// `[INDEXES_VERSION]` when the index serving our search order exists, else empty: the
    /// pseudo-migration history of a schemaless store.
    pub async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        Ok(if self.has_order_index().await? { vec![INDEXES_VERSION] } else { Vec::new() })
    }

    /// Whether multi-document inserts use transactions on this server (else compensation).
    pub fn uses_transactions(&self) -> bool {
        self.transactions.supported.get().copied().unwrap_or(false)
    }

    /// The portfolio collection, for tests that read or write raw documents.
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }

    /// The database holding the collection.
    pub fn database(&self) -> Database {
        self.client.database(self.collection.namespace().db.as_str())
    }
}

/// What the configuration allows, and what the server turned out to support.
#[derive(Debug)]
struct Transactions {
    mode: TransactionMode,
    supported: OnceLock<bool>,
}

fn apply(options: &mut ClientOptions, settings: &MongoSettings) {
    let max = settings.max_pool_size.max(1);
    options.max_pool_size = Some(max);
    options.min_pool_size = Some(settings.min_pool_size.min(max));
    options.max_connecting = Some(settings.max_connecting.max(1));
    options.connect_timeout = Some(settings.connect_timeout);
    options.server_selection_timeout = Some(settings.server_selection_timeout);
    options.max_idle_time = Some(settings.max_idle_time);
    options.app_name.get_or_insert_with(|| "portfolio-service".to_owned());
    options.retry_writes.get_or_insert(true);
    options.retry_reads.get_or_insert(true);
    options.write_concern.get_or_insert_with(|| WriteConcern::builder().w(Acknowledgment::Nodes(1)).build());
    options.read_concern.get_or_insert_with(ReadConcern::local);
}

/// Transactions need sessions and a replica set or a sharded cluster: a `hello` reply with a
/// `setName` (replica-set member) or `msg: "isdbgrid"` (`mongos`), and session support.
fn supports_transactions(hello: &Document) -> bool {
    let sessions = hello.contains_key("logicalSessionTimeoutMinutes");
    let replicated = hello.contains_key("setName") || hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
    sessions && replicated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replica_sets_and_mongos_with_sessions_take_transactions() {
        let session = 30;
        assert!(supports_transactions(&doc! { "setName": "rs0", "logicalSessionTimeoutMinutes": session }));
        assert!(supports_transactions(&doc! { "msg": "isdbgrid", "logicalSessionTimeoutMinutes": session }));
        assert!(!supports_transactions(&doc! { "isWritablePrimary": true, "logicalSessionTimeoutMinutes": session }));
        assert!(!supports_transactions(&doc! { "setName": "rs0" }));
    }

    #[tokio::test]
    async fn the_url_keeps_what_settings_do_not_name() {
        let mut options =
            ClientOptions::parse("mongodb://h/?w=majority&maxPoolSize=3&retryWrites=false").await.unwrap();
        apply(&mut options, &MongoSettings::default());
        assert_eq!(options.max_pool_size, Some(20), "settings win for the pool");
        assert_eq!(options.write_concern.and_then(|w| w.w), Some(Acknowledgment::Majority));
        assert_eq!(options.retry_writes, Some(false));
        assert_eq!(options.read_concern, Some(ReadConcern::local()));
    }
}
