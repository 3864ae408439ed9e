//! Composition root: the only crate that knows the concrete storage backends.
//!
//! [`App::build`] opens the configured store and assembles the router; it does not need the
//! database to be up (see [`bootstrap`]). [`App::serve`] runs it on a listener until the
//! shutdown token fires, then drains. `main` and the integration tests both start the service
//! through these two calls.

mod bootstrap;
mod connections;
mod dependencies;
mod events;
mod idempotency_purge;
mod jobs;
mod one_shot;
mod push_metrics;
mod shared_flags;
mod slow_clients;
mod startup_gate;
pub mod storage;
mod store_stack;
mod tls;

pub use one_shot::OneShot;

use anyhow::Context;
use bootstrap::Dependency;
pub use bootstrap::one_line;
use pfs_api::AppState;
use pfs_api::startup::Startup;
use pfs_platform::Config;
use pfs_platform::config::redact_url;
use pfs_storage::{IdempotencyStore, Layered, PortfolioStore};
use startup_gate::StartupGate;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the database holds besides portfolios; each is optional (a test's wrapped store, or a
/// backend without a job queue).
#[derive(Default)]
pub struct Companions {
    /// Background jobs, e.g. imports.
    pub queue: Option<Arc<dyn pfs_storage::jobs::JobQueue>>,
    /// `Idempotency-Key` records; without them the header is ignored.
    pub idempotency: Option<Arc<dyn IdempotencyStore>>,
}

/// A built application, ready to serve.
pub struct App {
    state: AppState,
    router: axum::Router,
    /// Background work (the Redis bus); stopped after the server has drained.
    tasks: TaskTracker,
    stop_tasks: CancellationToken,
    /// The job workers, run by `serve` when `jobs.workers_enabled` and by `worker`.
    workers: Option<Arc<pfs_jobs::WorkerPool>>,
}

impl App {
    /// Opens the store, puts the read cache in front of it (with the Redis bus when
    /// configured) and builds the router. The database (and Redis) get one attempt here; when
    /// one is down, the app is built anyway and connects in the background (see
    /// [`bootstrap`]): readiness is 503 until then, and migrations (when
    /// `database.migrate_on_start`) run once the database answers.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let backend = storage::open_lazily(&config.database).await?;
        let mut dependencies = vec![Dependency::Database {
            backend: backend.clone(),
            migrate: config.database.migrate_on_start,
            timeout: config.database.acquire_timeout,
        }];
        if !config.redis.url.is_empty() {
            let url = config.redis.url.as_str();
            let client = redis::Client::open(url).with_context(|| format!("invalid redis.url {}", redact_url(url)))?;
            dependencies.push(Dependency::Redis { client, timeout: config.database.acquire_timeout });
        }
        let names: Vec<&'static str> = dependencies.iter().map(Dependency::name).collect();
        let startup = Arc::new(Startup::waiting_for(&names));
        let store = Layered::wrap(startup_gate::Gate::new(startup.clone()), backend.clone().into_store());
        let idempotency: Arc<dyn IdempotencyStore> =
            Arc::new(StartupGate::new(backend.idempotency_store(), startup.clone()));
        let companions = Companions { queue: jobs::queue(&backend), idempotency: Some(idempotency) };
        let app = Self::assemble(config, store, companions, startup.clone())?;
        bootstrap::connect(dependencies, &startup, &config.reliability, &app.tasks, &app.stop_tasks).await;
        if config.cache.enabled && config.cache.warm_pages > 0 {
            let (state, pages) = (app.state.clone(), config.cache.warm_pages);
            if startup.is_complete() {
                warm_cache(&state, pages).await;
            } else {
                let stop = app.stop_tasks.clone();
                app.tasks.spawn(async move {
                    tokio::select! {
                        () = state.startup.wait() => warm_cache(&state, pages).await,
                        () = stop.cancelled() => {}
                    }
                });
            }
        }
        tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "application built");
        Ok(app)
    }

    /// Builds everything around a store that is already open (tests inject failing ones).
    /// `Idempotency-Key` is then ignored (see [`App::from_parts`]).
    pub fn from_store(config: &Config, store: Arc<dyn PortfolioStore>) -> anyhow::Result<Self> {
        Self::from_parts(config, store, Companions::default())
    }

    /// As [`App::from_store`], with what the same database holds besides portfolios.
    pub fn from_parts(config: &Config, store: Arc<dyn PortfolioStore>, companions: Companions) -> anyhow::Result<Self> {
        Self::assemble(config, store, companions, Arc::default())
    }

    fn assemble(
        config: &Config,
        store: Arc<dyn PortfolioStore>,
        companions: Companions,
        startup: Arc<Startup>,
    ) -> anyhow::Result<Self> {
        let Companions { queue, idempotency } = companions;
        let (tasks, stop_tasks) = (TaskTracker::new(), CancellationToken::new());
        let telemetry = pfs_observability::AppTelemetry::for_app(config);
        let dependencies = dependencies::Dependencies::new(config)?;
        let stack = store_stack::build(config, store, &dependencies, &telemetry.flags, None, (&tasks, &stop_tasks));
        if let Some(redis) = &dependencies.redis {
            shared_flags::start(
                redis.client.clone(),
                &config.redis.channel,
                telemetry.flags.clone(),
                &tasks,
                stop_tasks.clone(),
            );
        }
        let (service, workers) = queue.map(|q| jobs::start(&config.jobs, q, stack.entry.usual().clone())).unzip();
        let state = AppState::new(stack.entry, config.clone(), telemetry)
            .with_startup(startup)
            .with_cache(stack.cache, stack.bus)
            .with_breakers(dependencies.breakers())
            .with_events(stack.events)
            .with_jobs(service)
            .with_idempotency(idempotency);
        push_metrics::spawn(config, state.clone(), &tasks, stop_tasks.clone());
        if let Some(keys) = state.idempotency.clone().filter(|_| config.idempotency.enabled) {
            idempotency_purge::spawn(keys, &tasks, stop_tasks.clone());
        }
        let limiter = config.rate_limit.enabled.then(|| dependencies.rate_limiter(config));
        let router = pfs_api::router(state.clone(), config, limiter);
        Ok(Self { state, router, tasks, stop_tasks, workers })
    }

    /// The portfolio store handlers call: the backend inside the whole store stack (change
    /// events, read cache, breaker and retries, tracing), as configured. The conformance suite
    /// runs through it.
    pub fn store(&self) -> Arc<dyn PortfolioStore> {
        self.state.store.usual().clone()
    }

    /// The runtime flags this app reads, for SIGHUP reloads.
    pub fn flags(&self) -> Arc<pfs_observability::RuntimeFlags> {
        self.state.telemetry.flags.clone()
    }

    /// Serves until `shutdown` is cancelled, then: readiness turns 503 and the listener stays
    /// open for `shutdown_drain_delay` (so load balancers stop sending traffic), then the
    /// listener closes and in-flight requests get at most `shutdown_timeout` to finish, then
    /// the pool closes.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { state, router, tasks, stop_tasks, workers } = self;
        // Workers stop claiming as soon as shutdown begins; a running job is handed back at
        // its next checkpoint, and `tasks.wait()` below waits for that.
        if let Some(pool) = workers.filter(|_| state.config.jobs.workers_enabled) {
            start_workers_when_ready(pool, &state, &tasks, &shutdown);
        }
        let server_config = &state.config.server;
        let (drain_delay, grace) = (server_config.shutdown_drain_delay, server_config.shutdown_timeout);
        tracing::info!(address = %listener.local_addr()?, environment = %state.config.environment, "listening");

        let lifecycle = state.lifecycle.clone();
        let token = shutdown.clone();
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            lifecycle.start_draining();
            if !drain_delay.is_zero() {
                tracing::info!(?drain_delay, "draining: readiness is now 503");
                tokio::time::sleep(drain_delay).await;
            }
            tracing::info!(?grace, "closing the listener, finishing in-flight requests");
            lifecycle.close_streams();
            stopper.graceful_shutdown(Some(grace));
        });
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let (listener, reliability) = (listener.into_std()?, &state.config.reliability);
        // axum-server rather than `axum::serve` even without TLS: it exposes hyper's header
        // read timeout and bounds the protocol detection before a connection's first request.
        // The connection limits wrap the raw TCP stream, inside TLS: a refused connection costs
        // no handshake.
        let limits = connections::ConnectionLimits::new(
            axum_server::accept::DefaultAcceptor,
            server_config.max_connections,
            server_config.idle_timeout,
        );
        let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls::config(server_config).await?
        {
            None => Box::pin(
                slow_clients::limit(axum_server::from_tcp(listener)?.acceptor(limits), reliability, server_config)
                    .handle(handle)
                    .serve(service),
            ),
            Some(tls) => Box::pin(
                slow_clients::limit(
                    axum_server::tls_rustls::from_tcp_rustls(listener, tls)?.map(|tls| tls.acceptor(limits)),
                    reliability,
                    server_config,
                )
                .handle(handle)
                .serve(service),
            ),
        };
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(drain_delay + grace).await;
        };
        tokio::select! {
            result = server => result.context("HTTP server failed")?,
            () = deadline => tracing::warn!(?grace, "in-flight requests outlived the shutdown timeout; no longer waiting"),
        }
        stop_tasks.cancel();
        tasks.close();
        tasks.wait().await;
        // Closing waits for checked-out connections; requests still running past the deadline
        // may hold some, so give up after a few seconds rather than hang the exit.
        if tokio::time::timeout(std::time::Duration::from_secs(5), state.store.usual().close()).await.is_err() {
            tracing::warn!("connection pool still busy after 5 s; exiting without waiting");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Reads the newest `pages` search pages through the cache, and each portfolio on them.
/// Best effort: a failure only means a colder start, so it is logged, not returned.
async fn warm_cache(state: &AppState, pages: u32) {
    // With Redis, the cache only serves (and so only fills) once the bus has heard its own
    // heartbeat, within about a second; warming before that would do nothing.
    let connected = async {
        while !state.bus.is_connected() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(3), connected).await.is_err() {
        tracing::warn!("cache not warmed: the invalidation bus did not connect within 3 s");
        return;
    }
    let store = state.store.usual();
    let mut warmed = 0;
    for page in 0..u64::from(pages) {
        let request = pfs_domain::PageRequest { limit: 50, offset: page * 50 };
        match store.search(&pfs_domain::NameFilter::All, request).await {
            Ok(found) if !found.items.is_empty() => {
                let ids: Vec<_> = found.items.iter().map(|p| p.id).collect();
                warmed += store.get_many(&ids).await.map_or(0, |p| p.len());
            }
            Ok(_) => break,
            Err(err) => {
                tracing::warn!(error = %err, "cache warming stopped");
                break;
            }
        }
    }
    tracing::info!(portfolios = warmed, "cache warmed");
}

/// Workers claim nothing before the database is reached and migrated.
fn start_workers_when_ready(
    pool: Arc<pfs_jobs::WorkerPool>,
    state: &AppState,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let (startup, tracker, shutdown) = (state.startup.clone(), tasks.clone(), shutdown.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = startup.wait_for(startup_gate::DATABASE) => pool.spawn(&tracker, shutdown),
            () = shutdown.cancelled() => {}
        }
    });
}
