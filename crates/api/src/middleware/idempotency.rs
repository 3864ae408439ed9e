//! `Idempotency-Key` on the creating POSTs: a retry with the same key and body gets the first
//! response again (with `Idempotent-Replayed: true`) and writes nothing; the same key with
//! another body is a 422; a retry while the first attempt still runs is a 409.
//!
//! A key belongs to its caller: the scope it is stored under is the method, the route and a
//! digest of the authenticated principal (or of the client address while auth is off), so one
//! caller's key never replays another caller's response and nobody can claim a key another
//! caller uses.
//!
//! The key is reserved in the database before the handler runs, with a lease
//! (`idempotency.lease`), and completed with the response afterwards. Between the write and
//! recording its response the process can die; the write is not lost, but its response is.
//! So the write does not use random ids: every key carries a random `seed` and its creation
//! time, and the handler derives the ids of what it creates from them ([`PlannedIds`]). A
//! retry that finds the lease expired without a response takes the key over in recovery: the
//! handler looks those ids up first, and if the (all-or-nothing) write happened, answers with
//! what was stored instead of writing again.
//!
//! What is stored stays small: only a successful response is recorded, and only up to
//! `idempotency.max_response_bytes` (a larger one is recorded as a 409 saying the request
//! succeeded, which is what a replay gets). A client error (4xx) wrote nothing, so its key is
//! forgotten and a corrected retry may use it; on a 5xx the lease is released at once, so the
//! next retry recovers as above. Expired keys are purged at most once a minute per replica
//! after a keyed request, and on a timer by the application (`idempotency_purge`).

use crate::auth::Authentication;
use crate::error::{ApiError, V1_FAILURE};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use pfs_domain::{Portfolio, PortfolioId};
use pfs_platform::IdempotencyConfig;
use pfs_storage::{Begin, BeginRequest, IdempotencyStore, KeyRef, PortfolioStore, StoreResult, StoredResponse};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The header as the OpenAPI document describes it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyHeader {
    /// Optional. A retry with the same key and body replays the first response
    /// (`Idempotent-Replayed: true`) and creates nothing; 1 to 255 visible ASCII characters.
    #[param(rename = "Idempotency-Key", max_length = 255)]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

/// How often one replica purges expired keys (besides `begin` ignoring them).
const PURGE_EVERY_MS: i64 = 60_000;

/// The ids a keyed create gives its portfolios, derived from the key's record so that every
/// attempt under one key computes the same ones.
#[derive(Clone, Debug)]
pub struct PlannedIds {
    seconds: u32,
    seed: [u8; 5],
    /// An earlier attempt under this key ended without a response: its write may be stored.
    pub recovering: bool,
}

impl PlannedIds {
    /// An ObjectId like [`PortfolioId::generate`]'s: the key's creation second, 5 random bytes
    /// fixed per key (in place of the per-process ones) and the item's index as the counter.
    pub fn id(&self, index: usize) -> PortfolioId {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&self.seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(&self.seed);
        bytes[9..].copy_from_slice(&(index as u32).to_be_bytes()[1..]);
        PortfolioId::from_bytes(bytes)
    }
}

/// Gives `portfolios` their planned ids when the request is keyed, and when it recovers a
/// lost attempt, returns what that attempt stored (in request order) if it stored it: then
/// the caller answers with that instead of inserting. Inserts are all-or-nothing, so either
/// every planned id is stored or none is.
pub async fn prepare_create(
    planned: Option<&PlannedIds>,
    store: &dyn PortfolioStore,
    portfolios: &mut [Portfolio],
) -> StoreResult<Option<Vec<Portfolio>>> {
    let Some(planned) = planned else { return Ok(None) };
    for (index, portfolio) in portfolios.iter_mut().enumerate() {
        portfolio.id = planned.id(index);
    }
    if !planned.recovering {
        return Ok(None);
    }
    let ids: Vec<PortfolioId> = portfolios.iter().map(|p| p.id).collect();
    let mut stored = store.get_many(&ids).await?;
    if stored.len() != ids.len() {
        return Ok(None);
    }
    stored.sort_by_key(|p| ids.iter().position(|id| *id == p.id));
    Ok(Some(stored))
}

#[derive(Clone)]
struct Keys {
    store: Arc<dyn IdempotencyStore>,
    config: IdempotencyConfig,
    last_purge_ms: Arc<AtomicI64>,
    /// `rate_limit.trust_forwarded_for`: callers without credentials are told apart by the
    /// address a trusted proxy forwarded, as the rate limit tells them apart.
    trust_forwarded_for: bool,
}

/// `route` (a creating POST) with the key handling in front; unchanged in behaviour when
/// idempotency is off or the state has no key store.
pub fn keyed(state: &AppState, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    let keys = state.idempotency.clone().filter(|_| state.config.idempotency.enabled).map(|store| Keys {
        store,
        config: state.config.idempotency.clone(),
        last_purge_ms: Arc::new(AtomicI64::new(0)),
        trust_forwarded_for: state.config.rate_limit.trust_forwarded_for,
    });
    route.layer(from_fn_with_state(keys, handle))
}

async fn handle(State(keys): State<Option<Keys>>, req: Request, next: Next) -> Response {
    let Some(keys) = keys else { return next.run(req).await };
    let key = match read_key(req.headers(), keys.config.max_key_length) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(req).await,
        Err(message) => return ApiError::BadRequest(message).into_response(),
    };
    let scope = format!(
        "{} {} {}",
        req.method(),
        req.extensions().get::<MatchedPath>().map_or(req.uri().path(), MatchedPath::as_str),
        caller(&req, keys.trust_forwarded_for)
    );
    let content_type = req.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge.into_response();
        }
        Err(_) => return ApiError::BadRequest("There was an error parsing the body".into()).into_response(),
    };
    let key_ref = KeyRef { scope: &scope, key: &key };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let request = BeginRequest {
        fingerprint: fingerprint(&scope, &content_type, &bytes),
        token: uuid::Uuid::new_v4().to_string(),
        seed: rand_seed(),
        now_ms,
        lease_until_ms: now_ms.saturating_add(millis(keys.config.lease)),
        expires_at_ms: now_ms.saturating_add(millis(keys.config.ttl)),
    };
    keys.purge_now_and_then(now_ms);
    let reservation = match keys.store.begin(key_ref, &request).await {
        Ok(Begin::Execute(reservation)) => reservation,
        Ok(Begin::Replay(stored)) => {
            metrics::counter!("idempotency_replays").increment(1);
            return replay(stored);
        }
        Ok(Begin::InFlight) => return ApiError::IdempotencyKeyInFlight.into_response(),
        Ok(Begin::Mismatch) => return ApiError::IdempotencyKeyReused.into_response(),
        Err(err) => return ApiError::from_store(err, V1_FAILURE).into_response(),
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(PlannedIds {
        seconds: u32::try_from(reservation.created_at_ms / 1000).unwrap_or(u32::MAX),
        seed: reservation.seed.to_be_bytes()[3..].try_into().unwrap_or_default(),
        recovering: reservation.recovering,
    });
    let response = next.run(req).await;
    let status = response.status();
    if status.is_server_error() {
        if let Err(err) = keys.store.release(key_ref, &reservation.token).await {
            tracing::warn!(error = %err, "idempotency key not released; a retry waits for its lease");
        }
        return response;
    }
    if status.is_client_error() {
        if let Err(err) = keys.store.forget(key_ref, &reservation.token).await {
            tracing::warn!(error = %err, "idempotency key not forgotten; a retry recovers it after its lease");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers build their responses in memory: this copies, it does not buffer a stream.
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::Internal { detail: V1_FAILURE, source: None }.into_response();
    };
    let stored = if body.len() <= keys.config.max_response_bytes {
        StoredResponse {
            status: status.as_u16(),
            content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
            body: body.to_vec(),
        }
    } else {
        not_kept(status, body.len(), keys.config.max_response_bytes)
    };
    match keys.store.complete(key_ref, &reservation.token, &stored).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("idempotency key taken over before its response was recorded"),
        // The write stands; a retry recovers it once the lease expires.
        Err(err) => tracing::warn!(error = %err, "idempotency response not recorded"),
    }
    Response::from_parts(parts, Body::from(body))
}

/// Whose key it is: the authenticated principal, else the client's address (the connection's
/// peer). Digested, so the scope is short and holds neither in clear.
fn caller(req: &Request, trust_forwarded_for: bool) -> String {
    let authentication = req.extensions().get::<Authentication>();
    let principal = authentication.and_then(|auth| auth.principal.as_ref());
    // The address the rate limit and the audit lines use: a trusted X-Forwarded-For, else the peer.
    let address = authentication
        .and_then(|auth| auth.client)
        .or_else(|| crate::client::address(req.headers(), req.extensions(), trust_forwarded_for));
    let who = match (principal, address) {
        (Some(principal), _) => format!("principal:{}", principal.name),
        (None, Some(address)) => format!("address:{address}"),
        (None, None) => "address:unknown".to_owned(),
    };
    let digest = Sha256::digest(who.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("caller:{hex}")
}

/// What a replay answers when the response was too large to keep: the request succeeded,
/// nothing is written again, and the client reads what it created instead.
fn not_kept(status: StatusCode, size: usize, limit: usize) -> StoredResponse {
    let detail = format!(
        "The request with this Idempotency-Key already succeeded ({}); its response ({size} bytes) was larger than \
         idempotency.max_response_bytes ({limit}) and is not kept for replay. Nothing was written again.",
        status.as_u16()
    );
    StoredResponse {
        status: StatusCode::CONFLICT.as_u16(),
        content_type: Some("application/json".into()),
        body: serde_json::to_vec(&serde_json::json!({ "detail": detail })).unwrap_or_default(),
    }
}

/// The key, if sent: one header of 1 to `max_len` visible ASCII characters.
fn read_key(headers: &HeaderMap, max_len: usize) -> Result<Option<String>, String> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err("Send one Idempotency-Key header, not several".into());
    }
    let key = value.as_bytes();
    if key.is_empty() || key.len() > max_len || !key.iter().all(|b| b.is_ascii_graphic()) {
        return Err(format!("Idempotency-Key must be 1 to {max_len} visible ASCII characters"));
    }
    Ok(Some(String::from_utf8_lossy(key).into_owned()))
}

/// What makes two requests "the same": route, content type and body bytes (after any
/// content-encoding was undone), so a client must resend the same bytes.
fn fingerprint(scope: &str, content_type: &[u8], body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [scope.as_bytes(), content_type, body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_seed() -> i64 {
    i64::from_be_bytes(*uuid::Uuid::new_v4().as_bytes().first_chunk().unwrap_or(&[0; 8]))
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    if let Some(value) = stored.content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

impl Keys {
    /// Purges expired keys in the background, at most once per [`PURGE_EVERY_MS`] per replica.
    fn purge_now_and_then(&self, now_ms: i64) {
        let last = self.last_purge_ms.load(Ordering::Relaxed);
        if now_ms - last < PURGE_EVERY_MS
            || self.last_purge_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            match store.purge_expired(now_ms).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired idempotency keys purged"),
                Err(err) => tracing::warn!(error = %err, "expired idempotency keys not purged"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(IDEMPOTENCY_KEY, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn keys_are_one_header_of_bounded_visible_ascii() {
        assert_eq!(read_key(&headers(&[]), 8), Ok(None));
        assert_eq!(read_key(&headers(&["abc-123"]), 8), Ok(Some("abc-123".into())));
        assert!(read_key(&headers(&["123456789"]), 8).is_err());
        assert!(read_key(&headers(&[""]), 8).is_err());
        assert!(read_key(&headers(&["a b"]), 8).is_err());
        assert!(read_key(&headers(&["a", "b"]), 8).is_err());
    }

    #[test]
    fn fingerprints_separate_route_type_and_body_unambiguously() {
        let base = fingerprint("POST /a", b"application/json", b"{}");
        assert_eq!(base, fingerprint("POST /a", b"application/json", b"{}"));
        assert_ne!(base, fingerprint("POST /b", b"application/json", b"{}"));
        assert_ne!(base, fingerprint("POST /a", b"text/plain", b"{}"));
        assert_ne!(base, fingerprint("POST /a", b"application/json", b"[]"));
        assert_ne!(fingerprint("a", b"bc", b""), fingerprint("ab", b"c", b""));
    }

    #[test]
    fn callers_are_told_apart_by_principal_then_address() {
        let request = |principal: Option<&str>, peer: Option<&str>| {
            let mut req = Request::new(Body::empty());
            req.headers_mut().insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
            if let Some(name) = principal {
                let principal = crate::auth::Principal { name: name.into(), role: None };
                req.extensions_mut().insert(Authentication {
                    principal: Some(principal),
                    invalid: false,
                    client: None,
                });
            }
            if let Some(peer) = peer {
                req.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            }
            caller(&req, false)
        };
        assert_eq!(request(Some("alice"), Some("10.0.0.1:1")), request(Some("alice"), Some("10.0.0.2:2")));
        assert_ne!(request(Some("alice"), None), request(Some("bob"), None));
        assert_eq!(request(None, Some("10.0.0.1:1")), request(None, Some("10.0.0.1:9")), "the port is not the caller");
        assert_ne!(request(None, Some("10.0.0.1:1")), request(None, Some("10.0.0.2:1")));
        assert_ne!(request(Some("10.0.0.1"), None), request(None, Some("10.0.0.1:1")), "a principal is not an address");
        assert!(!request(Some("alice"), None).contains("alice"), "digested");
    }

    #[test]
    fn behind_a_trusted_proxy_callers_are_told_apart_by_the_forwarded_address() {
        let request = |forwarded: &str, trust: bool| {
            let mut req = Request::new(Body::empty());
            req.headers_mut().insert("x-forwarded-for", forwarded.parse().unwrap());
            req.extensions_mut().insert(ConnectInfo("10.0.0.1:1".parse::<SocketAddr>().unwrap()));
            caller(&req, trust)
        };
        assert_ne!(request("203.0.113.9", true), request("203.0.113.10", true));
        assert_eq!(request("203.0.113.9", false), request("203.0.113.10", false), "untrusted: the proxy's peer");
    }

    #[test]
    fn a_response_too_large_to_keep_replays_as_a_409_naming_the_original_status() {
        let stored = not_kept(StatusCode::CREATED, 100_000, 65_536);
        assert_eq!(stored.status, 409);
        let body: serde_json::Value = serde_json::from_slice(&stored.body).unwrap();
        assert!(body["detail"].as_str().unwrap().contains("already succeeded (201)"), "{body}");
    }

    #[test]
    fn planned_ids_are_stable_per_key_and_distinct_per_item() {
        let planned = PlannedIds { seconds: 1_700_000_000, seed: [1, 2, 3, 4, 5], recovering: false };
        assert_eq!(planned.id(3), planned.id(3));
        assert_ne!(planned.id(0), planned.id(1));
        assert_eq!(planned.id(1).to_hex(), "6553f1000102030405000001");
    }
}
