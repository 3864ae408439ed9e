//! Get-by-id and get-many on a few shared, pipelined tokio-postgres connections.
//!
//! Why not the sqlx pool: a pooled read checks a connection out, pings it (a round trip of its
//! own), runs the statement and checks it back in, one request per connection at a time. Here
//! every request sends its statement (prepared once per connection) on a connection it shares
//! with the other requests in flight: tokio-postgres writes them back to back and matches the
//! answers in order, so a handful of server processes stay busy without a checkout, a ping or a
//! context switch per request. Measured figures: the `postgres` helper report.
//!
//! A connection opens on first use (the store exists while the server is down), is replaced
//! once it is closed or older than `max_lifetime`, and a read that finds its connection broken
//! (the server restarted) reconnects and runs once more: reads are idempotent.

mod connect;

pub(crate) use connect::ReadConfig;

use crate::errors::classify_pg;
use arc_swap::ArcSwapOption;
use pfs_domain::{Portfolio, PortfolioId, Timestamp, Version};
use pfs_storage::{PoolStats, StoreError, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row, Statement};

const COLUMNS: &str = "id, name, (extract(epoch FROM date_created) * 1000)::int8 AS millis, version";

/// The pipelined read connections of one server (the primary, or the replica when there is one).
pub(crate) struct PipelinedReads {
    config: ReadConfig,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// Bounds opening a connection, like the pools' `acquire_timeout`.
    connect_timeout: Duration,
    max_lifetime: Duration,
    /// The `pool_name` label of the wait metric: the reads count as the pool they replace.
    pool_name: &'static str,
    closed: AtomicBool,
}

#[derive(Default)]
struct Slot {
    current: ArcSwapOption<Connection>,
    /// Held while (re)opening, so one request opens and the others wait for its result.
    opening: tokio::sync::Mutex<()>,
}

struct Connection {
    client: Client,
    get: Statement,
    get_many: Statement,
    opened: Instant,
    in_flight: AtomicU32,
}

/// Counts a request against its connection for the usage figures while it runs.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn start(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for PipelinedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinedReads").field("connections", &self.slots.len()).finish_non_exhaustive()
    }
}

impl PipelinedReads {
    pub(crate) fn new(
        config: ReadConfig,
        connections: usize,
        connect_timeout: Duration,
        max_lifetime: Duration,
        pool_name: &'static str,
    ) -> Self {
        Self {
            config,
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            connect_timeout,
            max_lifetime,
            pool_name,
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn connections(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    pub(crate) async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        let id = &id.to_hex();
        let row = self.run(|conn| async move { conn.client.query_opt(&conn.get, &[id]).await }).await?;
        row.as_ref().map(to_portfolio).transpose()
    }

    pub(crate) async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        let ids = &ids.iter().map(PortfolioId::to_hex).collect::<Vec<String>>();
        let rows = self.run(|conn| async move { conn.client.query(&conn.get_many, &[ids]).await }).await?;
        rows.iter().map(to_portfolio).collect()
    }

    /// Runs `query` on the next connection in turn; once more on a new connection when the one
    /// it had was found closed (a server restart is noticed by the first request after it).
    async fn run<T, F, Fut>(&self, query: F) -> StoreResult<T>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let (conn, fresh) = self.connection(slot).await?;
        let result = {
            let _counted = InFlight::start(&conn.in_flight);
            query(conn.clone()).await
        };
        match result {
            Err(err) if err.is_closed() => {
                slot.retire(&conn);
                if fresh {
                    return Err(classify_pg(err));
                }
                let (conn, _) = self.connection(slot).await?;
                let _counted = InFlight::start(&conn.in_flight);
                query(conn.clone()).await.map_err(classify_pg)
            }
            result => result.map_err(classify_pg),
        }
    }

    /// The slot's open connection, or a new one; `true` when it was opened for this call.
    async fn connection(&self, slot: &Slot) -> StoreResult<(Arc<Connection>, bool)> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let current = slot.current.load_full();
        if let Some(conn) = &current
            && !conn.client.is_closed()
        {
            if conn.opened.elapsed() < self.max_lifetime {
                return Ok((conn.clone(), false));
            }
            // Past its lifetime but working: whoever replaces it does so while the others keep
            // using it, rather than everyone queueing behind one handshake.
            if let Ok(_opening) = slot.opening.try_lock() {
                return self.open(slot).await.map(|conn| (conn, true)).or_else(|_| Ok((conn.clone(), false)));
            }
            return Ok((conn.clone(), false));
        }
        let started = Instant::now();
        let opened = tokio::time::timeout(self.connect_timeout, async {
            let _opening = slot.opening.lock().await;
            // Someone else may have opened it while this call waited for the lock.
            match slot.current.load_full() {
                Some(conn) if !conn.client.is_closed() => Ok((conn, false)),
                _ => self.open(slot).await.map(|conn| (conn, true)),
            }
        })
        .await;
        pfs_storage::pool::record_wait(self.pool_name, started.elapsed());
        opened.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!("no connection within {:?}", self.connect_timeout).into()))
        })
    }

    /// Opens a connection into `slot` and prepares the statements on it; the caller holds `opening`.
    async fn open(&self, slot: &Slot) -> StoreResult<Arc<Connection>> {
        let client = self.config.connect().await.map_err(classify_pg)?;
        let get = client
            .prepare_typed(&format!("SELECT {COLUMNS} FROM portfolio WHERE id = $1"), &[Type::TEXT])
            .await
            .map_err(classify_pg)?;
        let get_many = client
            .prepare_typed(&format!("SELECT {COLUMNS} FROM portfolio WHERE id = ANY($1)"), &[Type::TEXT_ARRAY])
            .await
            .map_err(classify_pg)?;
        let conn = Arc::new(Connection { client, get, get_many, opened: Instant::now(), in_flight: AtomicU32::new(0) });
        // A store closed meanwhile must not keep the connection.
        if self.closed.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        slot.current.store(Some(conn.clone()));
        Ok(conn)
    }

    /// Figures for `db_client_connections_*`: a connection with a request in flight is used.
    pub(crate) fn stats(&self) -> PoolStats {
        let (mut used, mut idle) = (0, 0);
        for slot in &self.slots {
            match &*slot.current.load() {
                Some(conn) if conn.in_flight.load(Ordering::Relaxed) > 0 => used += 1,
                Some(_) => idle += 1,
                None => {}
            }
        }
        PoolStats { name: self.pool_name, used, idle, max: self.connections() }
    }

    /// Closes every connection once its requests in flight have their answers, and refuses new
    /// requests, as a closed sqlx pool does.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for slot in &self.slots {
            slot.current.store(None);
        }
    }
}

impl Slot {
    /// Forgets `conn` unless it was already replaced.
    fn retire(&self, conn: &Arc<Connection>) {
        let current = self.current.load();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            self.current.compare_and_swap(&*current, None);
        }
    }
}

fn to_portfolio(row: &Row) -> StoreResult<Portfolio> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt portfolio row: {what}").into());
    let id: &str = row.try_get(0).map_err(classify_pg)?;
    let millis: i64 = row.try_get(2).map_err(classify_pg)?;
    Ok(Portfolio {
        id: PortfolioId::parse(id).ok_or_else(|| corrupt("id"))?,
        name: row.try_get(1).map_err(classify_pg)?,
        date_created: Timestamp::from_millis(millis).ok_or_else(|| corrupt("date_created"))?,
        version: Version(row.try_get(3).map_err(classify_pg)?),
    })
}
