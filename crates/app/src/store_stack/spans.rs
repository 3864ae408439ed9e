//! [`Spans`]: a child span per store call of a sampled request, named by its tier.

use pfs_observability::RuntimeFlags;
use pfs_storage::{Op, StoreHook, StoreResult};
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;

/// Which side of the read cache the spans are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    /// Calls that reach the database; spanned only while the `database_tracing` flag is on.
    Database,
    /// Calls into the read cache (a hit never gets further).
    Cache,
}

/// Spans on the calls of sampled requests. Probes (`ping`, `info`) get none: they are not
/// part of a request's work.
pub(crate) struct Spans {
    pub tier: Tier,
    pub flags: Arc<RuntimeFlags>,
}

impl Spans {
    fn on(&self, op: Op) -> bool {
        !op.is_probe()
            && pfs_observability::http::in_sampled_trace()
            && match self.tier {
                Tier::Cache => true,
                Tier::Database => self.flags.database_tracing(),
            }
    }
}

impl StoreHook for Spans {
    async fn around<'a, T, F>(&'a self, op: Op, mut call: impl FnMut() -> F + Send + 'a) -> StoreResult<T>
    where
        T: Send + 'a,
        F: Future<Output = StoreResult<T>> + Send + 'a,
    {
        if !self.on(op) {
            return call().await;
        }
        let operation = op.name();
        let span = match self.tier {
            Tier::Database => {
                tracing::info_span!("db", otel.name = operation, otel.kind = "client", db.operation.name = operation)
            }
            Tier::Cache => {
                tracing::info_span!("cache", otel.name = operation, otel.kind = "internal", cache.operation = operation)
            }
        };
        call().instrument(span).await
    }
}
