//! Per-client rate limiting: a token bucket (GCRA) per API key or client IP.
//!
//! [`RateLimiter`] decides; [`LocalLimiter`] keeps the buckets in this process (governor), and
//! the app crate can substitute one shared across replicas through Redis. Probes and docs are
//! never limited: an orchestrator must always be able to ask whether the pod is alive.

use crate::error::ApiError;
use async_trait::async_trait;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter as Governor, clock::Clock, clock::DefaultClock};
use pfs_platform::config::{RateLimitBy, RateLimitConfig};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64;

/// The outcome for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests the client may still send at once.
    pub remaining: u32,
    /// When denied: how long until one more request would be allowed.
    pub retry_after: Duration,
}

/// Decides whether the client identified by `key` may send one more request.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    async fn check(&self, key: &str) -> Decision;
}

type KeyedGovernor =
    Governor<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Buckets in this process's memory.
pub struct LocalLimiter {
    governor: KeyedGovernor,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl LocalLimiter {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            governor: Governor::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str) -> Decision {
        // Buckets of clients gone quiet are full again and carry no information: drop them
        // now and then so memory follows the number of active clients, not of all clients.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.governor.retain_recent();
            self.governor.shrink_to_fit();
        }
        match self.governor.check_key(&key.to_owned()) {
            Ok(state) => {
                Decision { allowed: true, remaining: state.remaining_burst_capacity(), retry_after: Duration::ZERO }
            }
            Err(denied) => {
                Decision { allowed: false, remaining: 0, retry_after: denied.wait_time_from(self.clock.now()) }
            }
        }
    }
}

/// What the middleware needs: the limiter, who counts as one client, and the advertised limit.
#[derive(Clone)]
pub struct RateLimit {
    pub limiter: Arc<dyn RateLimiter>,
    pub config: Arc<RateLimitConfig>,
}

pub async fn layer(State(limit): State<RateLimit>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/health") || path.starts_with("/docs") || path == "/metrics" {
        return next.run(req).await;
    }
    let key = client_key(&limit.config, req.headers(), req.extensions().get::<ConnectInfo<SocketAddr>>());
    let decision = limit.limiter.check(&key).await;
    let mut response = if decision.allowed {
        next.run(req).await
    } else {
        metrics::counter!("http_server_rate_limited").increment(1);
        let seconds = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut denied = ApiError::RateLimited { retry_after_seconds: seconds }.into_response();
        denied.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        debug_assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
        denied
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit.config.burst));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    response
}

/// `key:<hash>` for an API key (never stored or logged in clear), otherwise `ip:<address>`.
fn client_key(config: &RateLimitConfig, headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> String {
    if config.by == RateLimitBy::ApiKeyOrIp
        && let Some(key) = headers.get(config.api_key_header.as_str()).filter(|k| !k.is_empty())
    {
        return format!("key:{:016x}", xxh3_64(key.as_bytes()));
    }
    let forwarded = config
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next().map(str::trim).map(str::to_owned))
        .flatten()
        .filter(|ip| !ip.is_empty());
    match (forwarded, peer) {
        (Some(ip), _) => format!("ip:{ip}"),
        (None, Some(ConnectInfo(addr))) => format!("ip:{}", addr.ip()),
        (None, None) => "ip:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(by: RateLimitBy, trust: bool) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            per_second: 1,
            burst: 2,
            by,
            api_key_header: "x-api-key".into(),
            trust_forwarded_for: trust,
        }
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_requests_are_refused_with_a_wait() {
        let limiter = LocalLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(2).unwrap());
        assert_eq!(limiter.check("a").await.remaining, 1);
        assert!(limiter.check("a").await.allowed);
        let denied = limiter.check("a").await;
        assert!(!denied.allowed && denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(1));
        assert!(limiter.check("b").await.allowed, "buckets are per client");
    }

    #[test]
    fn clients_are_told_apart_by_api_key_then_address() {
        let peer = ConnectInfo(SocketAddr::from(([10, 1, 2, 3], 5000)));
        let mut headers = HeaderMap::new();
        assert_eq!(client_key(&config(RateLimitBy::ApiKeyOrIp, false), &headers, Some(&peer)), "ip:10.1.2.3");
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        assert_eq!(
            client_key(&config(RateLimitBy::Ip, false), &headers, Some(&peer)),
            "ip:10.1.2.3",
            "spoofable unless trusted"
        );
        assert_eq!(
            client_key(&config(RateLimitBy::Ip, true), &headers, Some(&peer)),
            "ip:10.0.0.1",
            "the proxy's entry"
        );
        headers.insert("x-api-key", HeaderValue::from_static("secret"));
        let key = client_key(&config(RateLimitBy::ApiKeyOrIp, false), &headers, Some(&peer));
        assert!(key.starts_with("key:") && !key.contains("secret"));
        assert_eq!(client_key(&config(RateLimitBy::Ip, false), &headers, Some(&peer)), "ip:10.1.2.3");
    }
}
