//! [`ChangeFeed`]: publishing committed changes and subscribing to them.

use crate::event::{Change, Event, EventId};
use crate::hub::{Hub, REPLAY_PAGE, Subscription};
use crate::local::LocalLog;
use crate::redis_log::RedisLog;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Sizes of the feed.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Events kept for resuming (`Last-Event-ID`). In Redis, the stream's `MAXLEN ~` (Redis
    /// may keep somewhat more, never fewer).
    pub history_size: usize,
    /// What the events kept in process may weigh (their data): the in-process history is cut
    /// at whichever bound comes first. Redis trims by count only (see `redis_log`).
    pub history_max_bytes: usize,
    /// Events that may wait for one slow client before it is dropped.
    pub client_buffer: usize,
    /// Concurrent subscribers on this replica; more are refused.
    pub max_subscribers: usize,
}

/// Counters for health and tests (the same figures go to the metrics facade).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedStats {
    pub subscribers: usize,
    pub dropped: u64,
}

/// Why a subscription was not started.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("too many change-stream subscribers")]
    TooMany,
    #[error("the event history is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A page of history after a position.
#[derive(Debug)]
pub(crate) enum Page {
    /// Every event after the position, up to the page size, oldest first.
    Events(Vec<Arc<Event>>),
    /// The position is not in the history: what came after it is (partly) gone.
    Gap { head: Option<EventId> },
}

pub(crate) type HistoryError = Box<dyn std::error::Error + Send + Sync>;

/// Where events are ordered and kept: in process, or in Redis.
#[async_trait]
pub(crate) trait Log: Send + Sync + 'static {
    /// Orders `changes` (in this order) after everything published before. Returns once they
    /// are ordered, or after a short wait if the log is unreachable (they stay queued). Never
    /// fails the caller; a log that has to discard changes publishes a reset instead.
    async fn publish(&self, changes: Vec<Change>);

    /// The page of history after `after`, or a gap when `after` is no longer in it.
    async fn after(&self, after: EventId, limit: usize) -> Result<Page, HistoryError>;

    fn kind(&self) -> &'static str;

    /// Waits until live events flow to this replica (the Redis reader has its position).
    async fn ready(&self) -> Result<(), HistoryError> {
        Ok(())
    }
}

/// The change stream of this replica. Cheap to share.
pub struct ChangeFeed {
    hub: Arc<Hub>,
    log: Arc<dyn Log>,
}

impl ChangeFeed {
    /// A single replica's feed: ids, order and history in this process.
    pub fn local(settings: &FeedSettings) -> Arc<Self> {
        let hub = hub(settings);
        Arc::new(Self { log: LocalLog::new(settings.history_size, settings.history_max_bytes, hub.clone()), hub })
    }

    /// A feed shared by every replica using the same Redis stream `key`. Its tasks (publisher
    /// and reader) keep retrying while Redis is unreachable and stop with `shutdown`.
    pub fn redis(
        client: redis::Client,
        key: String,
        settings: &FeedSettings,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let hub = hub(settings);
        let log = RedisLog::start(client, key, settings.history_size, hub.clone(), tasks, shutdown);
        Arc::new(Self { hub, log })
    }

    /// Publishes committed changes, in order. Call only after the write has committed. Once
    /// this returns (normally), the events are in the global order: a write answered after
    /// it, on any replica, comes later in every subscriber's stream.
    pub async fn publish(&self, changes: Vec<Change>) {
        if !changes.is_empty() {
            self.log.publish(changes).await;
        }
    }

    /// Starts a subscription: events after `resume_after` (from the history) and then live
    /// ones, or only live ones without a position. It ends when `stop` fires.
    pub async fn subscribe(
        &self,
        resume_after: Option<EventId>,
        stop: CancellationToken,
    ) -> Result<Subscription, Refused> {
        self.log.ready().await.map_err(Refused::Unavailable)?;
        let slot = self.hub.admit().ok_or(Refused::TooMany)?;
        // Subscribed to live events before reading the history, so nothing falls between them.
        let first = match resume_after {
            None => None,
            Some(after) => Some(self.log.after(after, REPLAY_PAGE).await.map_err(Refused::Unavailable)?),
        };
        Ok(self.hub.start(slot, self.log.clone(), first, stop))
    }

    pub fn stats(&self) -> FeedStats {
        self.hub.stats()
    }

    /// `local` or `redis`, for health reporting.
    pub fn kind(&self) -> &'static str {
        self.log.kind()
    }
}

fn hub(settings: &FeedSettings) -> Arc<Hub> {
    // The broadcast only has to absorb scheduling hiccups of the forwarding tasks, which move
    // pointers; the per-client buffers are what slow clients fill.
    Hub::new(settings.client_buffer.max(1024), settings.client_buffer, settings.max_subscribers)
}
