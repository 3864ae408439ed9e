//! Composition root: the only crate that knows the concrete storage backends.
//!
//! [`App::build`] opens (and migrates) the configured store and assembles the router;
//! [`App::serve`] runs it on a listener until the shutdown token fires, then drains. `main`
//! and the integration tests both start the service through these two calls.

mod dependencies;
mod events;
mod jobs;
mod one_shot;
mod push_metrics;
mod slow_clients;
pub mod storage;
mod store_stack;
mod tls;

pub use one_shot::OneShot;

use anyhow::Context;
use pfs_api::AppState;
use pfs_platform::Config;
use pfs_storage::{IdempotencyStore, PortfolioStore};
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
    /// Opens the store (migrating it when `database.migrate_on_start`), puts the read cache in
    /// front of it (with the Redis bus when configured) and builds the router.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let backend = storage::open(&config.database).await?;
        if config.database.migrate_on_start {
            backend.migrate_up().await.context("applying migrations")?;
        }
        let companions = Companions { queue: jobs::queue(&backend), idempotency: Some(backend.idempotency_store()) };
        let app = Self::from_parts(config, backend.into_store(), companions)?;
        if config.cache.enabled && config.cache.warm_pages > 0 {
            app.warm_cache(config.cache.warm_pages).await;
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
        let Companions { queue, idempotency } = companions;
        let (tasks, stop_tasks) = (TaskTracker::new(), CancellationToken::new());
        let telemetry = pfs_observability::AppTelemetry::for_app(config);
        let dependencies = dependencies::Dependencies::new(config)?;
        let stack = store_stack::build(config, store, &dependencies, &telemetry.flags, None, (&tasks, &stop_tasks));
        let (service, workers) = queue.map(|q| jobs::start(&config.jobs, q, stack.entry.usual().clone())).unzip();
        let state = AppState::new(stack.entry, config.clone(), telemetry)
            .with_cache(stack.cache, stack.bus)
            .with_breakers(dependencies.breakers())
            .with_events(stack.events)
            .with_jobs(service)
            .with_idempotency(idempotency);
        push_metrics::spawn(config, state.clone(), &tasks, stop_tasks.clone());
        let limiter = config.rate_limit.enabled.then(|| dependencies.rate_limiter(config));
        let router = pfs_api::router(state.clone(), config, limiter);
        Ok(Self { state, router, tasks, stop_tasks, workers })
    }

    /// Reads the newest `pages` search pages through the cache, and each portfolio on them.
    /// Best effort: a failure only means a colder start, so it is logged, not returned.
    async fn warm_cache(&self, pages: u32) {
        // With Redis, the cache only serves (and so only fills) once the bus has heard its own
        // heartbeat, within about a second; warming before that would do nothing.
        let connected = async {
            while !self.state.bus.is_connected() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(3), connected).await.is_err() {
            tracing::warn!("cache not warmed: the invalidation bus did not connect within 3 s");
            return;
        }
        let store = self.state.store.usual();
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

    /// Serves until `shutdown` is cancelled, then: readiness turns 503 and the listener stays
    /// open for `shutdown_drain_delay` (so load balancers stop sending traffic), then the
    /// listener closes and in-flight requests get at most `shutdown_timeout` to finish, then
    /// the pool closes.
    /// The runtime flags this app reads, for SIGHUP reloads.
    pub fn flags(&self) -> Arc<pfs_observability::RuntimeFlags> {
        self.state.telemetry.flags.clone()
    }

    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { state, router, tasks, stop_tasks, workers } = self;
        // Workers stop claiming as soon as shutdown begins; a running job is handed back at
        // its next checkpoint, and `tasks.wait()` below waits for that.
        if let Some(pool) = workers.filter(|_| state.config.jobs.workers_enabled) {
            pool.spawn(&tasks, shutdown.clone());
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
        let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls::config(server_config).await?
        {
            None => Box::pin(
                slow_clients::limit(axum_server::from_tcp(listener)?, reliability).handle(handle).serve(service),
            ),
            Some(tls) => Box::pin(
                slow_clients::limit(axum_server::tls_rustls::from_tcp_rustls(listener, tls)?, reliability)
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
