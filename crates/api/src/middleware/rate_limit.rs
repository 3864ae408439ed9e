//! Per-client rate limiting at the edge: who counts as one client (the authenticated
//! principal, an API key, or the address), and the 429 with `Retry-After` and the
//! `x-ratelimit-*` headers. The buckets are the limiter's (`pfs-rate-limit`), in process or
//! shared through Redis.
//!
//! Exempt (see `docs/OPERATIONS.md`, "Exempt paths"): the four probes, which an orchestrator
//! must always reach, and `/metrics`, which a scraper reads once an interval and whose gaps
//! would hide exactly the overload being limited. Everything else, `/health/detailed` and the
//! docs included, counts like any request.

use crate::auth::Authentication;
use crate::error::ApiError;
use crate::paths;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pfs_platform::config::{RateLimitBy, RateLimitConfig};
use pfs_rate_limit::RateLimiter;
use std::net::IpAddr;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// What the middleware needs: the limiter, who counts as one client, and the advertised limit.
#[derive(Clone)]
pub struct RateLimit {
    pub limiter: Arc<dyn RateLimiter>,
    pub config: Arc<RateLimitConfig>,
}

pub async fn layer(State(limit): State<RateLimit>, req: Request, next: Next) -> Response {
    if paths::is_exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let address = crate::client::address(req.headers(), req.extensions(), limit.config.trust_forwarded_for);
    let key = client_key(&limit.config, req.headers(), req.extensions().get::<Authentication>(), address);
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

/// At most 45 bytes, whatever the request carries: `key:<hash>` or `ip:<address>`.
///
/// With `api_key_or_ip` and `[auth]` on, only a credential that verified gets a bucket of its
/// own (`key:` + a hash of the principal's name); an invalid one counts as its address, so
/// every guess draws on one bucket. With `[auth]` off nothing verifies keys here: the header's
/// hash is used as is, which is only sound when keys are checked upstream (as documented).
fn client_key(
    config: &RateLimitConfig,
    headers: &HeaderMap,
    authentication: Option<&Authentication>,
    address: Option<IpAddr>,
) -> String {
    if config.by == RateLimitBy::ApiKeyOrIp {
        let identity = match authentication {
            Some(authentication) => authentication.principal.as_ref().map(|p| xxh3_64(p.name.as_bytes())),
            None => {
                headers.get(config.api_key_header.as_str()).filter(|k| !k.is_empty()).map(|k| xxh3_64(k.as_bytes()))
            }
        };
        if let Some(hash) = identity {
            return format!("key:{hash:016x}");
        }
    }
    match address {
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    fn config(by: RateLimitBy) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            per_second: 1,
            burst: 2,
            by,
            api_key_header: "x-api-key".into(),
            trust_forwarded_for: false,
            max_clients: 100,
        }
    }

    #[test]
    fn clients_are_told_apart_by_api_key_then_address() {
        let address = Some(IpAddr::from([10, 1, 2, 3]));
        let mut headers = HeaderMap::new();
        assert_eq!(client_key(&config(RateLimitBy::ApiKeyOrIp), &headers, None, address), "ip:10.1.2.3");
        headers.insert("x-api-key", HeaderValue::from_static("secret"));
        let key = client_key(&config(RateLimitBy::ApiKeyOrIp), &headers, None, address);
        assert!(key.starts_with("key:") && !key.contains("secret"));
        assert_eq!(client_key(&config(RateLimitBy::Ip), &headers, None, address), "ip:10.1.2.3");
    }

    #[test]
    fn with_auth_on_only_a_verified_credential_gets_its_own_bucket() {
        let address = Some(IpAddr::from([10, 1, 2, 3]));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("a-guess"));
        let guessed = Authentication { principal: None, invalid: true, client: address };
        assert_eq!(
            client_key(&config(RateLimitBy::ApiKeyOrIp), &headers, Some(&guessed), address),
            "ip:10.1.2.3",
            "every guess draws on the address's bucket"
        );
        let verified = Authentication {
            principal: Some(Principal { name: "ci".into(), role: None }),
            invalid: false,
            client: address,
        };
        let key = client_key(&config(RateLimitBy::ApiKeyOrIp), &headers, Some(&verified), address);
        assert!(key.starts_with("key:"), "{key}");
    }

    #[test]
    fn keys_are_short_whatever_the_request_carries() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_str(&"k".repeat(60_000)).unwrap());
        let v6 = Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap());
        for by in [RateLimitBy::ApiKeyOrIp, RateLimitBy::Ip] {
            assert!(client_key(&config(by), &headers, None, v6).len() <= 45);
        }
    }
}
