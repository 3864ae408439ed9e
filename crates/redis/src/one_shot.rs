//! [`AnnounceOnClose`]: the invalidation bus of a process that writes once and exits.

use crate::bus::announce;
use pfs_cache::{BusStatus, Invalidation, InvalidationBus};
use std::sync::Mutex;

/// Collects a one-shot process's invalidations (an `import`) and tells the running replicas
/// when it finishes: a process about to exit cannot keep a publisher task and a subscription
/// alive. It never reports itself connected, so a cache in front of it never serves: this
/// process hears nothing from the others.
pub struct AnnounceOnClose {
    client: redis::Client,
    channel: String,
    pending: Mutex<Vec<Invalidation>>,
}

/// More distinct invalidations than this are announced as one `Everything`.
const MAX_ANNOUNCED: usize = 64;

impl AnnounceOnClose {
    pub fn new(client: redis::Client, channel: impl Into<String>) -> Self {
        Self { client, channel: channel.into(), pending: Mutex::new(Vec::new()) }
    }

    /// Announces what was collected, once; nothing when nothing was written.
    pub async fn announce(&self) -> redis::RedisResult<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let pending = if pending.len() > MAX_ANNOUNCED { vec![Invalidation::Everything] } else { pending };
        for invalidation in pending {
            announce(&self.client, &self.channel, invalidation).await?;
        }
        Ok(())
    }
}

impl InvalidationBus for AnnounceOnClose {
    fn publish(&self, invalidation: Invalidation) {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !pending.contains(&invalidation) {
            pending.push(invalidation);
        }
    }

    fn is_connected(&self) -> bool {
        false
    }

    fn describe(&self) -> BusStatus {
        BusStatus { kind: "redis (one-shot)", connected: false }
    }
}
