//! The change stream's wiring: through Redis Streams when `redis.url` is set (every replica
//! sees every replica's writes, in one order), in process otherwise (one replica).

use pfs_events::{ChangeFeed, FeedSettings};
use pfs_platform::Config;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The feed, or `None` when `events.enabled` is off.
pub(crate) fn feed(
    config: &Config,
    redis: Option<redis::Client>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Option<Arc<ChangeFeed>> {
    let events = &config.events;
    if !events.enabled {
        return None;
    }
    let settings = FeedSettings {
        history_size: events.history_size,
        history_max_bytes: events.history_max_bytes,
        client_buffer: events.client_buffer,
        max_subscribers: events.max_subscribers,
    };
    Some(match redis {
        Some(client) => {
            let key = format!("{}:events", config.redis.channel);
            ChangeFeed::redis(client, key, &settings, tasks, shutdown.clone())
        }
        None => ChangeFeed::local(&settings),
    })
}
