//! The middleware: authenticate once per request, then decide per route.

use super::credentials::{Authenticator, Principal};
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use pfs_platform::config::{AuthConfig, Role};
use pfs_rate_limit::FailureThrottle;
use std::sync::Arc;

/// What the auth layer found, for routes that decide later ([`admin_only`]). Absent when
/// auth is disabled.
#[derive(Clone, Debug)]
pub struct Authentication {
    pub principal: Option<Principal>,
    /// A credential was presented and did not verify.
    pub invalid: bool,
    /// The client's address (`crate::client`), for audit lines.
    pub client: Option<std::net::IpAddr>,
}

/// The layer's state: the parsed credentials, whether writes need one, and the failures
/// counted per client address.
pub struct AuthLayer {
    authenticator: Authenticator,
    protect_writes: bool,
    failures: FailureThrottle,
    /// How the client address is found (`rate_limit.trust_forwarded_for`).
    trust_forwarded_for: bool,
}

impl AuthLayer {
    /// `None` when auth is disabled: then no layer is installed at all.
    pub fn from_config(config: &AuthConfig, trust_forwarded_for: bool) -> Option<Arc<Self>> {
        config.enabled.then(|| {
            Arc::new(Self {
                authenticator: Authenticator::from_config(config),
                protect_writes: config.protect_writes,
                failures: FailureThrottle::new(config.max_failures, config.failure_window),
                trust_forwarded_for,
            })
        })
    }
}

/// Verifies the credential, refuses protected writes without the write role, and records the
/// outcome for the routes behind. A client address past its failed attempts is refused (429)
/// before its credential is looked at; a request without a credential costs nothing here.
pub async fn layer(State(auth): State<Arc<AuthLayer>>, mut req: Request, next: Next) -> Response {
    let client = crate::client::address(req.headers(), req.extensions(), auth.trust_forwarded_for);
    let presents = Authenticator::presents_credential(req.headers());
    if presents && let Some(wait) = client.and_then(|address| auth.failures.blocked(address)) {
        let seconds = wait.as_secs_f64().ceil() as u64;
        let refusal = ApiError::RateLimited { retry_after_seconds: seconds };
        audit_refusal(&req, &refusal, client);
        let mut response = refusal.into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    let authentication = match auth.authenticator.authenticate(req.headers()) {
        Ok(principal) => Authentication { principal, invalid: false, client },
        Err(_) => {
            if let Some(address) = client {
                auth.failures.failed(address);
            }
            Authentication { principal: None, invalid: true, client }
        }
    };
    if auth.protect_writes
        && is_api_write(&req)
        && let Err(refusal) = require(Some(&authentication), Role::Write)
    {
        audit_refusal(&req, &refusal, client);
        return refusal.into_response();
    }
    req.extensions_mut().insert(authentication);
    next.run(req).await
}

/// Wraps routes that are open while auth is disabled (the original's behaviour) but need the
/// admin role once it is enabled: `/health/detailed`, which names the backend and its version
/// and costs database round trips.
pub fn admin_when_enabled<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.route_layer(from_fn(|req: Request, next: Next| async move {
        if req.extensions().get::<Authentication>().is_none() {
            return next.run(req).await;
        }
        admit_admin(req, next).await
    }))
}

/// Wraps admin routes: only the admin role gets through, and nobody while auth is disabled.
pub fn admin_only<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.route_layer(from_fn(admit_admin))
}

async fn admit_admin(req: Request, next: Next) -> Response {
    let authentication = req.extensions().get::<Authentication>();
    match require(authentication, Role::Admin) {
        Ok(name) => {
            tracing::info!(principal = name, method = %req.method(), path = req.uri().path(), "admin request");
            next.run(req).await
        }
        Err(refusal) => {
            let client = authentication
                .and_then(|a| a.client)
                .or_else(|| crate::client::address(req.headers(), req.extensions(), false));
            audit_refusal(&req, &refusal, client);
            refusal.into_response()
        }
    }
}

/// Every refused request leaves a WARN line (client address, method, route; never the
/// credential) and a count by reason, so guessing and misconfigured clients show up in the
/// logs and in `http_server_auth_failures_total`.
fn audit_refusal(req: &Request, refusal: &ApiError, client: Option<std::net::IpAddr>) {
    let reason = match refusal {
        ApiError::Unauthenticated { invalid: true } => "invalid_credentials",
        ApiError::Unauthenticated { invalid: false } => "missing_credentials",
        ApiError::RateLimited { .. } => "too_many_failures",
        _ => "forbidden",
    };
    metrics::counter!("http_server_auth_failures", "reason" => reason).increment(1);
    tracing::warn!(
        client = ?client,
        method = %req.method(),
        route = req.uri().path(),
        reason,
        "request refused: {refusal}"
    );
}

/// The principal's name if it holds `role`, otherwise the refusal to send.
fn require(authentication: Option<&Authentication>, role: Role) -> Result<String, ApiError> {
    let Some(authentication) = authentication else {
        return Err(ApiError::Forbidden("Admin endpoints are disabled: authentication is not configured"));
    };
    match &authentication.principal {
        Some(principal) if principal.has(role) => Ok(principal.name.clone()),
        Some(_) => Err(ApiError::Forbidden("Not enough permissions")),
        None => Err(ApiError::Unauthenticated { invalid: authentication.invalid }),
    }
}

fn is_api_write(req: &Request) -> bool {
    matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
        && req.uri().path().starts_with("/api/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt;

    fn admin_router(auth: Option<&AuthConfig>) -> Router {
        let routes = admin_only(Router::new().route("/admin/flags", get(|| async { "flags" })));
        match auth.and_then(|config| AuthLayer::from_config(config, false)) {
            Some(layer) => routes.layer(from_fn_with_state(layer, super::layer)),
            None => routes,
        }
    }

    async fn status(router: Router, key: Option<&str>) -> StatusCode {
        let mut request = Request::get("/admin/flags");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        router.oneshot(request.body(Body::empty()).unwrap()).await.unwrap().status()
    }

    fn config(keys: Vec<String>) -> AuthConfig {
        AuthConfig { enabled: true, api_keys: keys, ..AuthConfig::default() }
    }

    #[tokio::test]
    async fn an_address_that_keeps_failing_is_refused_before_its_credential_is_checked() {
        let digest = pfs_platform::config::ApiKeyEntry::digest_of;
        let config = AuthConfig { max_failures: 3, ..config(vec![format!("admin:ops:{}", digest("admin-key"))]) };
        let router = admin_router(Some(&config));
        let from = |ip: [u8; 4], key: &str| {
            let mut request = Request::get("/admin/flags").header("x-api-key", key).body(Body::empty()).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((ip, 4000))));
            request
        };
        for guess in 0..3 {
            let response = router.clone().oneshot(from([192, 0, 2, 1], &format!("guess-{guess}"))).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let throttled = router.clone().oneshot(from([192, 0, 2, 1], "admin-key")).await.unwrap();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS, "even the right key waits");
        assert!(throttled.headers().contains_key(header::RETRY_AFTER));
        let other = router.clone().oneshot(from([192, 0, 2, 2], "admin-key")).await.unwrap();
        assert_eq!(other.status(), StatusCode::OK, "other addresses are not affected");
        let anonymous = Request::get("/admin/flags").body(Body::empty()).unwrap();
        assert_eq!(router.oneshot(anonymous).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn admin_routes_are_closed_while_auth_is_disabled() {
        assert_eq!(status(admin_router(None), Some("admin-key")).await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn admin_routes_need_the_admin_role() {
        let digest = pfs_platform::config::ApiKeyEntry::digest_of;
        let keys = vec![format!("admin:ops:{}", digest("admin-key")), format!("write:ci:{}", digest("write-key"))];
        let router = || admin_router(Some(&config(keys.clone())));
        assert_eq!(status(router(), Some("admin-key")).await, StatusCode::OK);
        assert_eq!(status(router(), Some("write-key")).await, StatusCode::FORBIDDEN);
        assert_eq!(status(router(), Some("wrong")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(router(), None).await, StatusCode::UNAUTHORIZED);
    }
}
