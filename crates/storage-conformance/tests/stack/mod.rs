//! The store stack the application builds around a backend, for running the suite through it
//! as well as over the bare backend: whatever the layers add (change events, the read cache,
//! breaker and retries, tracing), the answers must stay the backend's.

use pfs_platform::{Config, ConfigSources};
use pfs_storage::PortfolioStore;
use pfs_storage_conformance::Store;
use std::sync::Arc;

/// `backend` inside the default configuration's store stack, plus what must outlive the test
/// (the backend's guard and the app that owns the stack's background tasks).
pub async fn full_stack<S: PortfolioStore + 'static, G>(
    backend: impl Future<Output = (Arc<S>, G)>,
) -> (Store, (G, pfs_app::App)) {
    let (store, guard) = backend.await;
    let config = Config::load(&ConfigSources::default()).expect("the default configuration is valid");
    let app = pfs_app::App::from_store(&config, store).expect("the store stack builds");
    (app.store(), (guard, app))
}
