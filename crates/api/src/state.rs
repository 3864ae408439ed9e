//! [`AppState`]: what every handler can reach, cheap to clone.

use pfs_cache::{InvalidationBus, LocalOnly, ReadCache};
use pfs_events::ChangeFeed;
use pfs_platform::Config;
use pfs_resilience::CircuitBreaker;
use pfs_storage::{IdempotencyStore, PortfolioStore, StoreEntry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Every middleware and handler taking `State` clones this once per request, so it is one
/// `Arc`: cloning a struct of a dozen `Arc`s cost a dozen contended reference-count updates
/// (and as many on drop) per clone, a measurable share of a cached read.
#[derive(Clone)]
pub struct AppState(Arc<Resources>);

impl std::ops::Deref for AppState {
    type Target = Resources;

    fn deref(&self) -> &Resources {
        &self.0
    }
}

/// What [`AppState`] gives access to.
#[derive(Clone)]
pub struct Resources {
    /// The portfolio store chain (`pfs-app`'s `store_stack` builds it); which backend is
    /// behind it is decided once, at start-up. Handlers reach it through
    /// [`Resources::portfolios`].
    pub store: StoreEntry,
    /// The validated configuration this process started with.
    pub config: Arc<Config>,
    /// Process lifecycle, for the health probes.
    pub lifecycle: Arc<Lifecycle>,
    /// The dependencies this process still waits for since it started (none once ready).
    pub startup: Arc<crate::startup::Startup>,
    /// The read cache behind `store`, if enabled (for its statistics).
    pub cache: Option<Arc<ReadCache>>,
    /// How this replica hears about other replicas' writes.
    pub bus: Arc<dyn InvalidationBus>,
    /// Where `Idempotency-Key`s are recorded; `None` ignores the header.
    pub idempotency: Option<Arc<dyn IdempotencyStore>>,
    /// The circuit breakers of the dependencies, for the health probes.
    pub breakers: Arc<[CircuitBreaker]>,
    /// The change stream, when `events.enabled` (writes through `store` publish to it).
    pub events: Option<Arc<ChangeFeed>>,
    /// Change-stream subscriptions held per client (`events.max_subscribers_per_client`).
    pub stream_clients: Arc<crate::client::ClientSlots>,
    /// The background job queue; `None` on a backend without one (MongoDB).
    pub jobs: Option<pfs_jobs::JobService>,
    /// Runtime flags and the Prometheus handle.
    pub telemetry: pfs_observability::AppTelemetry,
}

impl AppState {
    /// State without a cache, for a single replica. `telemetry` is the app's: its flags are
    /// shared with the storage decorators.
    pub fn new(store: StoreEntry, config: Config, telemetry: pfs_observability::AppTelemetry) -> Self {
        let stream_clients = crate::client::ClientSlots::new(config.events.max_subscribers_per_client);
        Self(Arc::new(Resources {
            store,
            telemetry,
            config: Arc::new(config),
            lifecycle: Arc::new(Lifecycle::default()),
            startup: Arc::default(),
            cache: None,
            bus: Arc::new(LocalOnly),
            idempotency: None,
            breakers: Arc::new([]),
            events: None,
            stream_clients,
            jobs: None,
        }))
    }

    /// Builder step: changes the resources before they are shared.
    fn with(self, change: impl FnOnce(&mut Resources)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        change(&mut shared);
        Self(Arc::new(shared))
    }

    /// Records the start-up progress the probes report (see [`crate::startup`]).
    pub fn with_startup(self, startup: Arc<crate::startup::Startup>) -> Self {
        self.with(|s| s.startup = startup)
    }

    /// Records the job queue that imports are sent to.
    pub fn with_jobs(self, jobs: Option<pfs_jobs::JobService>) -> Self {
        self.with(|s| s.jobs = jobs)
    }

    /// Records the cache and bus that `store` already goes through.
    pub fn with_cache(self, cache: Option<Arc<ReadCache>>, bus: Arc<dyn InvalidationBus>) -> Self {
        self.with(|s| {
            s.cache = cache;
            s.bus = bus;
        })
    }

    /// Records `Idempotency-Key`s in `store`.
    pub fn with_idempotency(self, store: Option<Arc<dyn IdempotencyStore>>) -> Self {
        self.with(|s| s.idempotency = store)
    }

    /// Records the breakers `store` and `bus` go through.
    pub fn with_breakers(self, breakers: Vec<CircuitBreaker>) -> Self {
        self.with(|s| s.breakers = breakers.into())
    }

    /// Hands the recorder the figures kept outside it (pool usage, cache lookups): called just
    /// before metrics are read, by a scrape and on the OTLP push interval.
    pub fn publish_metrics(&self) {
        pfs_storage::pool::record(&self.store.usual().pool_stats());
        if let Some(cache) = &self.cache {
            cache.publish_metrics();
        }
    }

    /// Records the change feed that `store` already publishes to.
    pub fn with_events(self, events: Option<Arc<ChangeFeed>>) -> Self {
        self.with(|s| s.events = events)
    }
}

impl Resources {
    /// The longest name a create or update accepts (`limits.max_name_bytes`).
    pub fn name_limit(&self) -> crate::wire::dto::NameLimit {
        crate::wire::dto::NameLimit(self.config.limits.max_name_bytes)
    }

    /// The store a handler uses for a call made now (the chain decides which way in).
    pub fn portfolios(&self) -> &Arc<dyn PortfolioStore> {
        self.store.current()
    }
}

/// Where the process is in its life: readiness turns 503 once draining starts, while
/// liveness stays 200 so the orchestrator does not kill a pod that is shutting down cleanly.
#[derive(Debug)]
pub struct Lifecycle {
    started: Instant,
    draining: AtomicBool,
    /// Fired when the listener closes: open streams end, so the graceful shutdown (which
    /// waits for every connection) is not held up by them.
    streams: CancellationToken,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self { started: Instant::now(), draining: AtomicBool::new(false), streams: CancellationToken::new() }
    }
}

impl Lifecycle {
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Ends every open stream (SSE); new ones end at once.
    pub fn close_streams(&self) {
        self.streams.cancel();
    }

    /// Cancelled by [`Lifecycle::close_streams`].
    pub fn streams_closing(&self) -> CancellationToken {
        self.streams.clone()
    }
}
