//! Several replicas: one Redis stream orders and keeps the events of all of them.
//!
//! Writes are queued to a publisher task that appends them with `XADD ... MAXLEN ~ history`
//! (in batches, each batch in `MULTI`), so Redis assigns the one global order and trims the
//! history. A reader task per replica follows the stream with `XREAD BLOCK` on a connection of
//! its own and hands each event to the local subscribers. Resuming reads the stream directly
//! (`XRANGE`), so any replica can resume a client another replica served.
//!
//! Bytes: Redis trims a stream by count or id only, so the stream holds at most about
//! `history_size` events, each at most one portfolio's JSON, whose name `limits.max_name_bytes`
//! bounds (with the 4 KiB default, about 4.3 KB an event). In this process, the writes waiting
//! for Redis are bounded by count ([`QUEUE`]) and by the bytes of their events ([`QUEUE_BYTES`]).

use crate::event::{Change, Event, EventId, EventKind};
use crate::feed::{HistoryError, Log, Page};
use crate::hub::Hub;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, RedisResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OnceCell, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Writes waiting for Redis, and what their events may weigh together; if either overflows
/// (Redis down for long), the changes that did not fit are replaced by one `reset` event.
const QUEUE: usize = 16_384;
const QUEUE_BYTES: usize = 16 << 20;
/// Writes appended per round trip.
const BATCH: usize = 256;

/// One write's changes, and who waits for them to be appended.
type Pending = (Vec<Change>, Option<oneshot::Sender<()>>);
/// How long one `XREAD` waits for new entries before asking again.
const BLOCK: Duration = Duration::from_secs(1);
/// Budget for connecting and for every command except the blocking read.
const TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) struct RedisLog {
    client: redis::Client,
    key: String,
    history_size: usize,
    hub: Arc<Hub>,
    queue: mpsc::Sender<Pending>,
    /// The event data waiting in `queue` and in the publisher's batch, in bytes.
    queued_bytes: AtomicUsize,
    lost: AtomicBool,
    /// Shared by the publisher and resuming subscribers; connected on first use.
    manager: OnceCell<ConnectionManager>,
    /// True once the reader has its position: a subscriber admitted earlier could miss events
    /// appended before the reader's first read.
    positioned: watch::Sender<bool>,
}

impl RedisLog {
    pub fn start(
        client: redis::Client,
        key: String,
        history_size: usize,
        hub: Arc<Hub>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (queue, pending) = mpsc::channel(QUEUE);
        let log = Arc::new(Self {
            client,
            key,
            history_size: history_size.max(1),
            hub,
            queue,
            queued_bytes: AtomicUsize::new(0),
            lost: AtomicBool::new(false),
            manager: OnceCell::new(),
            positioned: watch::Sender::new(false),
        });
        tasks.spawn(log.clone().publish_loop(pending, shutdown.clone()));
        tasks.spawn(log.clone().read_loop(shutdown));
        log
    }

    async fn manager(&self) -> RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let manager =
            self.manager.get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config)).await?;
        Ok(manager.clone())
    }

    /// Appends `batch` all or nothing. A connection lost after `EXEC` ran but before its reply
    /// makes the retry append the batch twice: delivery is at least once while Redis fails.
    async fn append(&self, batch: &[Pending]) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for change in batch.iter().flat_map(|(changes, _)| changes) {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.history_size)
                .arg("*")
                .arg("kind")
                .arg(change.kind.as_str())
                .arg("data")
                .arg(&change.data)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.manager().await?).await
    }

    async fn publish_loop(self: Arc<Self>, mut pending: mpsc::Receiver<Pending>, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut failures = 0u32;
        loop {
            if batch.is_empty() {
                let received = tokio::select! {
                    () = shutdown.cancelled() => break,
                    n = pending.recv_many(&mut batch, BATCH) => n,
                };
                if received == 0 {
                    break;
                }
            }
            if self.lost.swap(false, Ordering::AcqRel) {
                batch.insert(0, (vec![Change::reset("events were lost: Redis was unreachable for too long")], None));
            }
            match self.append(&batch).await {
                Ok(()) => {
                    // The `reset` entries the loop adds itself (no one waits on them) were never counted.
                    let appended_bytes: usize =
                        batch.iter().filter(|(_, waiting)| waiting.is_some()).map(|(changes, _)| weight(changes)).sum();
                    self.queued_bytes.fetch_sub(appended_bytes, Ordering::AcqRel);
                    for (_, appended) in batch.drain(..) {
                        if let Some(waiting) = appended {
                            let _ = waiting.send(());
                        }
                    }
                    failures = 0;
                }
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %err, failures, "change stream: cannot append to Redis; retrying");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff(failures)) => {}
                    }
                }
            }
        }
        // The server has drained before the tasks stop: flush what its last writes queued.
        pending.close();
        while let Ok(change) = pending.try_recv() {
            batch.push(change);
        }
        if !batch.is_empty() && !matches!(tokio::time::timeout(TIMEOUT * 2, self.append(&batch)).await, Ok(Ok(()))) {
            tracing::warn!(events = batch.len(), "change stream: events not appended before exit");
        }
    }

    async fn read_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut position: Option<EventId> = None;
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                result = self.follow(&mut position, &mut failures) => result,
            };
            if let Err(err) = result {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %err, failures, "change stream: lost the Redis stream; reconnecting");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
            }
        }
    }

    /// Connects, checks that nothing was trimmed away while disconnected, then hands every new
    /// entry to the local subscribers until the connection fails.
    async fn follow(&self, position: &mut Option<EventId>, failures: &mut u32) -> RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(BLOCK + TIMEOUT));
        let mut connection = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        let head = newest(&mut connection, &self.key).await?;
        match *position {
            // First connection: only what is published from now on.
            None => *position = Some(head.unwrap_or(EventId { ms: 0, seq: 0 })),
            Some(at) if at.ms > 0 && !contains(&mut connection, &self.key, at).await? => {
                tracing::warn!(%at, "change stream: events were trimmed while Redis was unreachable");
                let id = head.filter(|h| *h > at).unwrap_or(EventId { seq: at.seq + 1, ..at });
                let reset = Change::reset("events were missed while Redis was unreachable");
                self.hub.send(Arc::new(Event { id, kind: reset.kind, data: reset.data }));
                *position = Some(head.filter(|h| *h > at).unwrap_or(at));
            }
            Some(_) => {}
        }
        self.positioned.send_replace(true);
        loop {
            let at = position.unwrap_or(EventId { ms: 0, seq: 0 }).to_string();
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(BATCH * 2)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(at)
                .query_async(&mut connection)
                .await?;
            *failures = 0;
            let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            if entries.is_empty() {
                continue;
            }
            // Trimming can overtake a reader that fell more than the history behind: then
            // entries after its position were deleted unread, and subscribers must be told.
            if let (Some(at), Some(deleted)) = (*position, max_deleted(&mut connection, &self.key).await?)
                && deleted > at
            {
                tracing::warn!(%at, %deleted, "change stream: the reader fell behind the history");
                let reset = Change::reset("events were trimmed before this replica read them");
                self.hub.send(Arc::new(Event { id: deleted, kind: reset.kind, data: reset.data }));
                *position = Some(deleted);
            }
            for entry in &entries {
                if let Some(event) = decode(entry) {
                    *position = Some(event.id);
                    self.hub.send(Arc::new(event));
                }
            }
        }
    }
}

/// What one write's events weigh while they wait for Redis.
fn weight(changes: &[Change]) -> usize {
    changes.iter().map(|change| change.data.len() + std::mem::size_of::<Change>()).sum()
}

#[async_trait]
impl Log for RedisLog {
    async fn publish(&self, changes: Vec<Change>) {
        let (appended, waiting) = oneshot::channel();
        let bytes = weight(&changes);
        let held = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if held + bytes > QUEUE_BYTES || self.queue.try_send((changes, Some(appended))).is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.lost.store(true, Ordering::Release);
            return;
        }
        // Bounded, so an unreachable Redis slows writes down by at most this much.
        if !matches!(tokio::time::timeout(TIMEOUT, waiting).await, Ok(Ok(()))) {
            tracing::debug!("change stream: answering before the event reached Redis");
        }
    }

    async fn after(&self, after: EventId, limit: usize) -> Result<Page, HistoryError> {
        let mut connection = self.manager().await?;
        // Inclusive of `after`: finding it proves nothing after it was trimmed (entries are
        // trimmed oldest first and never deleted otherwise).
        let range: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(after.to_string())
            .arg("+")
            .arg("COUNT")
            .arg(limit + 1)
            .query_async(&mut connection)
            .await?;
        let mut entries = range.ids.iter();
        if entries.next().and_then(|first| first.id.parse::<EventId>().ok()) != Some(after) {
            return Ok(Page::Gap { head: newest(&mut connection, &self.key).await? });
        }
        Ok(Page::Events(entries.filter_map(decode).map(Arc::new).collect()))
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ready(&self) -> Result<(), HistoryError> {
        let mut positioned = self.positioned.subscribe();
        match tokio::time::timeout(TIMEOUT * 2, positioned.wait_for(|p| *p)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err("the Redis event stream is not reachable".into()),
        }
    }
}

async fn newest<C: redis::aio::ConnectionLike + Send>(connection: &mut C, key: &str) -> RedisResult<Option<EventId>> {
    let last: StreamRangeReply =
        redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(connection).await?;
    Ok(last.ids.first().and_then(|e| e.id.parse().ok()))
}

async fn contains(connection: &mut MultiplexedConnection, key: &str, id: EventId) -> RedisResult<bool> {
    let id = id.to_string();
    let found: StreamRangeReply = redis::cmd("XRANGE").arg(key).arg(&id).arg(&id).query_async(connection).await?;
    Ok(!found.ids.is_empty())
}

/// The newest id trimming has deleted (`XINFO STREAM`, Redis 7+; `None` before any trim or on
/// older servers, which then go unchecked).
async fn max_deleted(connection: &mut MultiplexedConnection, key: &str) -> RedisResult<Option<EventId>> {
    let mut info: std::collections::HashMap<String, redis::Value> =
        redis::cmd("XINFO").arg("STREAM").arg(key).query_async(connection).await?;
    let deleted = info.remove("max-deleted-entry-id").and_then(|v| redis::from_redis_value::<String>(v).ok());
    Ok(deleted.and_then(|id| id.parse().ok()).filter(|id: &EventId| id.ms > 0 || id.seq > 0))
}

fn decode(entry: &StreamId) -> Option<Event> {
    let event = (|| {
        let id = entry.id.parse().ok()?;
        let kind = EventKind::parse(&entry.get::<String>("kind")?)?;
        Some(Event { id, kind, data: entry.get("data")? })
    })();
    if event.is_none() {
        tracing::warn!(id = %entry.id, "change stream: skipping a malformed stream entry");
    }
    event
}

/// Retry delays: 100 ms doubling to 5 s, with up to 50% jitter so replicas do not reconnect
/// in lockstep after a Redis restart.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(5));
    base + base.mul_f64(rand::random::<f64>() * 0.5)
}
