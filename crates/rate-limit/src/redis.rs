//! Rate-limit buckets shared by every replica: GCRA in one Lua script, atomic in Redis.
//!
//! Each client key stores its "theoretical arrival time" (TAT). A request is allowed when
//! `TAT - burst * interval <= now`; then `TAT += interval`. The script reads the time from
//! Redis (`TIME`), so replicas with drifting clocks still share one timeline.

use crate::Decision;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local interval = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local allow_at = tat + interval - burst * interval
        if allow_at > now then
            return {0, 0, allow_at - now}
        end
        local new_tat = tat + interval
        redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
        return {1, math.floor((now - allow_at) / interval), 0}
        ",
    )
});

/// A shared limiter; connects lazily, so a Redis that is down at start-up is no error.
pub struct RedisRateLimiter {
    client: redis::Client,
    connection: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
    interval_us: u64,
    burst: u32,
    prefix: String,
    timeout: Duration,
}

impl RedisRateLimiter {
    pub fn new(client: redis::Client, per_second: u32, burst: u32, prefix: impl Into<String>) -> Self {
        Self {
            client,
            connection: Mutex::new((None, None)),
            interval_us: 1_000_000 / u64::from(per_second.max(1)),
            burst: burst.max(1),
            prefix: prefix.into(),
            // A limiter slower than the request it guards is worse than none: give up fast
            // and let the caller fall back to its local buckets.
            timeout: Duration::from_millis(50),
        }
    }

    pub async fn check(&self, key: &str) -> redis::RedisResult<Decision> {
        let mut connection = self.connection().await?;
        let mut invocation = GCRA.key(format!("{}{key}", self.prefix));
        invocation.arg(self.interval_us).arg(self.burst);
        let run = invocation.invoke_async::<(i64, i64, i64)>(&mut connection);
        let (allowed, remaining, wait_us) = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "rate limit check timed out")))??;
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(u64::try_from(wait_us.max(0)).unwrap_or(0)),
        })
    }

    /// The shared connection, made on first use; after a failed attempt, no new one for a
    /// second (callers fall back meanwhile instead of queueing on connects).
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut guard = self.connection.lock().await;
        if let Some(connection) = &guard.0 {
            return Ok(connection.clone());
        }
        if guard.1.is_some_and(|failed| failed.elapsed() < Duration::from_secs(1)) {
            return Err(redis::RedisError::from((redis::ErrorKind::Io, "redis unavailable (recent failure)")));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(connection) => {
                guard.0 = Some(connection.clone());
                Ok(connection)
            }
            Err(err) => {
                guard.1 = Some(Instant::now());
                Err(err)
            }
        }
    }
}
