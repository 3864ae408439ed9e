//! [`AppState`]: what every handler can reach, cheap to clone.

use pfs_cache::{InvalidationBus, LocalOnly, ReadCache};
use pfs_platform::Config;
use pfs_storage::PortfolioStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Clone)]
pub struct AppState {
    /// The portfolio store; which backend is behind it is decided once, at start-up.
    pub store: Arc<dyn PortfolioStore>,
    /// The validated configuration this process started with.
    pub config: Arc<Config>,
    /// Process lifecycle, for the health probes.
    pub lifecycle: Arc<Lifecycle>,
    /// The read cache behind `store`, if enabled (for its statistics).
    pub cache: Option<Arc<ReadCache>>,
    /// How this replica hears about other replicas' writes.
    pub bus: Arc<dyn InvalidationBus>,
    /// Runtime flags and the Prometheus handle.
    pub telemetry: pfs_observability::AppTelemetry,
}

impl AppState {
    /// State without a cache, for a single replica.
    pub fn new(store: Arc<dyn PortfolioStore>, config: Config) -> Self {
        Self {
            store,
            telemetry: pfs_observability::AppTelemetry::for_app(&config),
            config: Arc::new(config),
            lifecycle: Arc::new(Lifecycle::default()),
            cache: None,
            bus: Arc::new(LocalOnly),
        }
    }

    /// Records the cache and bus that `store` already goes through.
    pub fn with_cache(self, cache: Option<Arc<ReadCache>>, bus: Arc<dyn InvalidationBus>) -> Self {
        Self { cache, bus, ..self }
    }

    /// Replaces the telemetry handles (the app shares its flags with the storage decorators).
    pub fn with_telemetry(self, telemetry: pfs_observability::AppTelemetry) -> Self {
        Self { telemetry, ..self }
    }
}

/// Where the process is in its life: readiness turns 503 once draining starts, while
/// liveness stays 200 so the orchestrator does not kill a pod that is shutting down cleanly.
#[derive(Debug)]
pub struct Lifecycle {
    started: Instant,
    draining: AtomicBool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self { started: Instant::now(), draining: AtomicBool::new(false) }
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
}
