//! [`RedisBus`]: invalidations out through `PUBLISH`, in through `SUBSCRIBE`.

use crate::message::{Message, decode, encode};
use futures_util::StreamExt;
use pfs_cache::{BusStatus, Invalidation, InvalidationBus, ReadCache};
use pfs_resilience::{BreakerSettings, CircuitBreaker};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Timing of the bus.
#[derive(Clone, Debug)]
pub struct RedisBusSettings {
    pub channel: String,
    /// How often this replica sends itself a heartbeat through Redis.
    pub heartbeat: Duration,
    /// Without a heartbeat back for this long, the bus counts as disconnected and the cache
    /// is bypassed: it is also the bound on how stale a cached read can be when Redis fails
    /// silently (a partition rather than a refused connection).
    pub liveness: Duration,
    /// Budget for connecting and for each command.
    pub timeout: Duration,
    /// While it is open, nothing is published (not even heartbeats): invalidations are owed
    /// as one catch-up `Everything` instead of each waiting on a dead Redis.
    pub breaker: CircuitBreaker,
}

impl RedisBusSettings {
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            heartbeat: Duration::from_millis(500),
            liveness: Duration::from_millis(2_000),
            timeout: Duration::from_secs(1),
            breaker: CircuitBreaker::new("redis", BreakerSettings::default()),
        }
    }
}

/// Outgoing invalidations wait here; if it overflows, one `Everything` replaces what was lost.
const QUEUE: usize = 1024;

/// `last_echo_ms` before the first heartbeat came back: not connected yet.
const NEVER: u64 = u64::MAX;

/// The invalidation bus. Cheap to share; its two tasks stop with the token given to `start`.
pub struct RedisBus {
    outgoing: mpsc::Sender<Message>,
    overflowed: AtomicBool,
    state: Arc<State>,
}

/// What the tasks share with the request path.
struct State {
    subscribed: AtomicBool,
    /// Milliseconds since `epoch` at which our own heartbeat last came back.
    last_echo_ms: AtomicU64,
    epoch: Instant,
    liveness: Duration,
}

impl State {
    fn connected(&self) -> bool {
        let last = self.last_echo_ms.load(Ordering::Acquire);
        if last == NEVER {
            return false;
        }
        let since_echo =
            self.epoch.elapsed().saturating_sub(Duration::from_millis(self.last_echo_ms.load(Ordering::Acquire)));
        self.subscribed.load(Ordering::Acquire) && since_echo < self.liveness
    }

    fn echo(&self) {
        self.last_echo_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }
}

impl RedisBus {
    /// Starts the publisher and the subscriber. Never fails on an unreachable Redis: both tasks
    /// keep retrying, and the bus reports disconnected until they succeed.
    pub fn start(
        client: redis::Client,
        settings: RedisBusSettings,
        cache: Arc<ReadCache>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let replica = format!("{:016x}", rand::random::<u64>());
        let state = Arc::new(State {
            subscribed: AtomicBool::new(false),
            last_echo_ms: AtomicU64::new(NEVER),
            epoch: Instant::now(),
            liveness: settings.liveness,
        });
        let (outgoing, queue) = mpsc::channel(QUEUE);
        let bus = Arc::new(Self { outgoing, overflowed: AtomicBool::new(false), state: state.clone() });
        tasks.spawn(publish(client.clone(), settings.clone(), replica.clone(), queue, bus.clone(), shutdown.clone()));
        tasks.spawn(subscribe(client, settings, replica, cache, state, shutdown));
        bus
    }
}

impl InvalidationBus for RedisBus {
    fn publish(&self, invalidation: Invalidation) {
        if self.outgoing.try_send(Message::Invalidate(invalidation)).is_err() {
            self.overflowed.store(true, Ordering::Release);
        }
    }

    fn is_connected(&self) -> bool {
        self.state.connected()
    }

    fn describe(&self) -> BusStatus {
        BusStatus { kind: "redis", connected: self.is_connected() }
    }
}

/// Retry delays: 100 ms doubling to 5 s, with up to 50% jitter so replicas do not reconnect
/// in lockstep after a Redis restart.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(5));
    base + base.mul_f64(rand::random::<f64>() * 0.5)
}

async fn publish(
    client: redis::Client,
    settings: RedisBusSettings,
    replica: String,
    mut queue: mpsc::Receiver<Message>,
    bus: Arc<RedisBus>,
    shutdown: CancellationToken,
) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(1);
    let mut connection: Option<ConnectionManager> = None;
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    let mut failures = 0u32;
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = heartbeat.tick() => Message::Heartbeat,
            next = queue.recv() => match next { Some(m) => m, None => return },
        };
        let message = if bus.overflowed.swap(false, Ordering::AcqRel) {
            Message::Invalidate(Invalidation::Everything)
        } else {
            message
        };
        let Some(ticket) = settings.breaker.allow() else {
            if matches!(message, Message::Invalidate(_)) {
                bus.overflowed.store(true, Ordering::Release);
            }
            continue;
        };
        if connection.is_none() {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(c) => connection = Some(c),
                Err(err) => {
                    ticket.failure();
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %err, failures, "redis: cannot connect to publish invalidations");
                    }
                    // Not sent: owe the others a catch-up `Everything` once connected.
                    if matches!(message, Message::Invalidate(_)) {
                        bus.overflowed.store(true, Ordering::Release);
                    }
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else { continue };
        let sent: redis::RedisResult<i64> = conn.publish(&settings.channel, encode(&replica, &message)).await;
        match sent {
            Ok(_) => {
                ticket.success();
                if failures > 0 {
                    tracing::info!(failures, "redis: publishing again");
                }
                failures = 0;
            }
            Err(err) => {
                ticket.failure();
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %err, failures, "redis: publish failed; other replicas fall back to the database");
                }
                if matches!(message, Message::Invalidate(_)) {
                    bus.overflowed.store(true, Ordering::Release);
                }
            }
        }
    }
}

async fn subscribe(
    client: redis::Client,
    settings: RedisBusSettings,
    replica: String,
    cache: Arc<ReadCache>,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0u32;
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let mut pubsub = tokio::time::timeout(settings.timeout, client.get_async_pubsub()).await.ok()?.ok()?;
            tokio::time::timeout(settings.timeout, pubsub.subscribe(&settings.channel)).await.ok()?.ok()?;
            Some(pubsub)
        };
        let Some(mut pubsub) = subscribed.await else {
            state.subscribed.store(false, Ordering::Release);
            if attempt == 0 || attempt.is_power_of_two() {
                tracing::warn!(attempt, "redis: cannot subscribe to invalidations; cache bypassed");
            }
            attempt += 1;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff(attempt)) => continue,
            }
        };
        // Whatever was published while we were not listening is lost: start from empty.
        cache.invalidate(Invalidation::Everything).await;
        state.subscribed.store(true, Ordering::Release);
        tracing::info!(channel = %settings.channel, "redis: listening for invalidations");
        attempt = 0;
        let mut messages = pubsub.on_message();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = tokio::time::timeout(settings.liveness, messages.next()) => next,
            };
            // A silent channel for longer than the liveness window (our own heartbeats stop
            // arriving) means the connection is dead even if the socket has not said so.
            let Ok(Some(message)) = next else { break };
            let Ok(payload) = message.get_payload::<String>() else { continue };
            match decode(&payload) {
                Some((sender, Message::Heartbeat)) if sender == replica => state.echo(),
                Some((sender, Message::Invalidate(what))) if sender != replica => cache.invalidate(what).await,
                _ => {}
            }
        }
        state.subscribed.store(false, Ordering::Release);
        tracing::warn!("redis: invalidation subscription lost; cache bypassed until it is back");
    }
}

/// Tells running replicas, once, that `invalidation` happened (for one-shot processes such
/// as `import`, which write without a cache of their own).
pub async fn announce(client: &redis::Client, channel: &str, invalidation: Invalidation) -> redis::RedisResult<()> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    let _: i64 = connection.publish(channel, encode("oneshot", &Message::Invalidate(invalidation))).await?;
    Ok(())
}
