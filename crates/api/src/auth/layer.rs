//! The middleware: authenticate once per request, then decide per route.

use super::credentials::{Authenticator, Principal};
use crate::error::ApiError;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use pfs_platform::config::{AuthConfig, Role};
use std::net::SocketAddr;
use std::sync::Arc;

/// What the auth layer found, for routes that decide later ([`admin_only`]). Absent when
/// auth is disabled.
#[derive(Clone, Debug)]
pub struct Authentication {
    pub principal: Option<Principal>,
    /// A credential was presented and did not verify.
    pub invalid: bool,
}

/// The layer's state: the parsed credentials and whether writes need one.
pub struct AuthLayer {
    authenticator: Authenticator,
    protect_writes: bool,
}

impl AuthLayer {
    /// `None` when auth is disabled: then no layer is installed at all.
    pub fn from_config(config: &AuthConfig) -> Option<Arc<Self>> {
        config.enabled.then(|| {
            Arc::new(Self { authenticator: Authenticator::from_config(config), protect_writes: config.protect_writes })
        })
    }
}

/// Verifies the credential, refuses protected writes without the write role, and records the
/// outcome for the routes behind.
pub async fn layer(State(auth): State<Arc<AuthLayer>>, mut req: Request, next: Next) -> Response {
    let outcome = auth.authenticator.authenticate(req.headers());
    let authentication = match outcome {
        Ok(principal) => Authentication { principal, invalid: false },
        Err(_) => Authentication { principal: None, invalid: true },
    };
    if auth.protect_writes
        && is_api_write(&req)
        && let Err(refusal) = require(Some(&authentication), Role::Write)
    {
        audit_refusal(&req, &refusal);
        return refusal.into_response();
    }
    req.extensions_mut().insert(authentication);
    next.run(req).await
}

/// Wraps admin routes: only the admin role gets through, and nobody while auth is disabled.
pub fn admin_only<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes.route_layer(from_fn(|req: Request, next: Next| async move {
        match require(req.extensions().get::<Authentication>(), Role::Admin) {
            Ok(name) => {
                tracing::info!(principal = name, method = %req.method(), path = req.uri().path(), "admin request");
                next.run(req).await
            }
            Err(refusal) => {
                audit_refusal(&req, &refusal);
                refusal.into_response()
            }
        }
    }))
}

/// Every refused request leaves a WARN line (client address, method, route; never the
/// credential) and a count by reason, so guessing and misconfigured clients show up in the
/// logs and in `http_server_auth_failures_total`.
fn audit_refusal(req: &Request, refusal: &ApiError) {
    let reason = match refusal {
        ApiError::Unauthenticated { invalid: true } => "invalid_credentials",
        ApiError::Unauthenticated { invalid: false } => "missing_credentials",
        _ => "forbidden",
    };
    metrics::counter!("http_server_auth_failures", "reason" => reason).increment(1);
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
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
        match auth.and_then(AuthLayer::from_config) {
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
