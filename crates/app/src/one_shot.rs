//! [`OneShot`]: the store chain for a command that writes and exits (`import`), so that its
//! writes go through what the server's do: the `database` breaker and retries, the change
//! events, and the invalidation of running replicas' caches.

use crate::dependencies::Dependencies;
use crate::store_stack;
use pfs_cache::InvalidationBus;
use pfs_platform::Config;
use pfs_redis::AnnounceOnClose;
use pfs_storage::PortfolioStore;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The opened store chain of a one-shot command; [`OneShot::close`] it when done.
pub struct OneShot {
    store: Arc<dyn PortfolioStore>,
    /// Announces this process's writes to running replicas, when Redis is configured.
    announcer: Option<Arc<AnnounceOnClose>>,
    tasks: TaskTracker,
    stop_tasks: CancellationToken,
}

impl OneShot {
    /// Opens (and, with `database.migrate_on_start`, migrates) the configured store and builds
    /// the server's chain around it. With Redis, the read cache is always part of it: it never
    /// serves here (this process hears no other replica), but its writes are what tell the
    /// running replicas to drop what they cached.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let backend = crate::storage::open(&config.database).await?;
        if config.database.migrate_on_start {
            backend.migrate_up().await?;
        }
        let dependencies = Dependencies::new(config)?;
        let announcer = dependencies
            .redis
            .as_ref()
            .map(|r| Arc::new(AnnounceOnClose::new(r.client.clone(), &config.redis.channel)));
        let mut config = config.clone();
        config.cache.enabled |= announcer.is_some();
        let (tasks, stop_tasks) = (TaskTracker::new(), CancellationToken::new());
        let flags = Arc::new(pfs_observability::RuntimeFlags::from_config(&config));
        let bus = announcer.clone().map(|a| a as Arc<dyn InvalidationBus>);
        let stack =
            store_stack::build(&config, backend.into_store(), &dependencies, &flags, bus, (&tasks, &stop_tasks));
        Ok(Self { store: stack.entry.usual().clone(), announcer, tasks, stop_tasks })
    }

    pub fn store(&self) -> &Arc<dyn PortfolioStore> {
        &self.store
    }

    /// Closes the pool, stops the background tasks (the event stream's) and tells the running
    /// replicas what changed. Only that last step can fail: the writes themselves are done.
    pub async fn close(self) -> anyhow::Result<()> {
        self.store.close().await;
        self.stop_tasks.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(announcer) = self.announcer {
            announcer.announce().await?;
        }
        Ok(())
    }
}
