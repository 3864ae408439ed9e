//! Runtime flags shared by every replica through Redis.
//!
//! An admin change is written to the hash `<redis.channel>:flags` (flag name to JSON value)
//! and announced on the channel of the same name; every replica re-reads the hash when told,
//! each time it (re)subscribes, and every [`RESYNC`] in case a message was lost, and adopts it
//! as its set of overrides (the precedence rule is `pfs_observability::flags`'). A
//! configuration reload that changes a key deletes that key's override from the hash, so the
//! file's value wins on every replica, including those started later. While Redis cannot be
//! reached, a change applies to this replica only and the failure is logged.

use pfs_observability::RuntimeFlags;
use pfs_observability::flags::ShareFlags;
use redis::AsyncCommands;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The longest a replica goes without re-reading the shared flags.
const RESYNC: Duration = Duration::from_secs(30);
/// Budget of each Redis round trip.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts of one write before it is given up (and logged).
const ATTEMPTS: u32 = 3;

enum Change {
    Set(Map<String, Value>),
    Dropped(Vec<String>),
}

/// Hands this replica's changes to the writer task, never blocking the admin request.
struct Outbox(mpsc::Sender<Change>);

impl ShareFlags for Outbox {
    fn set(&self, values: &Map<String, Value>) {
        self.send(Change::Set(values.clone()));
    }

    fn dropped(&self, keys: &[String]) {
        self.send(Change::Dropped(keys.to_vec()));
    }
}

impl Outbox {
    fn send(&self, change: Change) {
        if self.0.try_send(change).is_err() {
            tracing::warn!("runtime flags: too many changes waiting for Redis; this one applies to this replica only");
        }
    }
}

/// Shares `flags` through the Redis of `client` until `shutdown`.
pub(crate) fn start(
    client: redis::Client,
    channel: &str,
    flags: Arc<RuntimeFlags>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let key = format!("{channel}:flags");
    let (outgoing, changes) = mpsc::channel(64);
    flags.share_through(Box::new(Outbox(outgoing)));
    tasks.spawn(write(client.clone(), key.clone(), changes, shutdown.clone()));
    tasks.spawn(follow(client, key, flags, shutdown));
}

async fn write(client: redis::Client, key: String, mut changes: mpsc::Receiver<Change>, shutdown: CancellationToken) {
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            next = changes.recv() => match next { Some(change) => change, None => return },
        };
        for attempt in 1..=ATTEMPTS {
            match tokio::time::timeout(TIMEOUT, store(&client, &key, &change)).await {
                Ok(Ok(())) => break,
                failed => {
                    let error = failed.map_or_else(
                        |_| "timed out".to_owned(),
                        |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                    );
                    if attempt == ATTEMPTS {
                        tracing::warn!(%error, "runtime flags: change not shared through Redis; it applies to this replica only");
                    } else {
                        tokio::time::sleep(Duration::from_millis(200) * attempt).await;
                    }
                }
            }
        }
    }
}

/// Writes `change` to the hash and announces it, in one transaction.
async fn store(client: &redis::Client, key: &str, change: &Change) -> redis::RedisResult<()> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    match change {
        Change::Set(values) => {
            for (name, value) in values {
                pipe.hset(key, name, value.to_string()).ignore();
            }
        }
        Change::Dropped(names) => {
            for name in names {
                pipe.hdel(key, name).ignore();
            }
        }
    }
    pipe.publish(key, "changed").ignore();
    pipe.query_async(&mut connection).await
}

/// Subscribes to the announcements and adopts the hash whenever one arrives, after each
/// (re)subscription and every [`RESYNC`].
async fn follow(client: redis::Client, key: String, flags: Arc<RuntimeFlags>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let mut pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub()).await.ok()?.ok()?;
            tokio::time::timeout(TIMEOUT, pubsub.subscribe(&key)).await.ok()?.ok()?;
            Some(pubsub)
        };
        if let Some(mut pubsub) = subscribed.await {
            failures = 0;
            // Subscribed first, then read: a change made in between is announced, not missed.
            adopt(&client, &key, &flags).await;
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = tokio::time::timeout(RESYNC, futures_util::StreamExt::next(&mut messages)) => match next {
                        Ok(None) => break,
                        Ok(Some(_)) | Err(_) => adopt(&client, &key, &flags).await,
                    },
                }
            }
        }
        failures += 1;
        if failures == 1 || failures.is_power_of_two() {
            tracing::warn!(failures, "runtime flags: not following the shared flags in Redis; retrying");
        }
        let delay = Duration::from_millis(250).saturating_mul(1 << failures.min(5));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn adopt(client: &redis::Client, key: &str, flags: &RuntimeFlags) {
    let read = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        connection.hgetall::<_, HashMap<String, String>>(key).await
    };
    let shared = match tokio::time::timeout(TIMEOUT, read).await {
        Ok(Ok(shared)) => shared,
        Ok(Err(err)) => return tracing::warn!(error = %err, "runtime flags: cannot read the shared flags"),
        Err(_) => return tracing::warn!("runtime flags: reading the shared flags timed out"),
    };
    let mut overrides = Map::new();
    for (name, value) in shared {
        match serde_json::from_str(&value) {
            Ok(value) => {
                overrides.insert(name, value);
            }
            Err(_) => tracing::warn!(flag = %name, "runtime flags: ignoring a shared value that is not JSON"),
        }
    }
    if let Err(err) = flags.adopt_shared(overrides) {
        tracing::warn!(error = %err, "runtime flags: the shared flags are invalid; keeping the current ones");
    }
}
