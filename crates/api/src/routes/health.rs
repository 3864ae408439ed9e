//! The service banner and the health probes.
//!
//! Probes keep the original's JSON shapes (Kubernetes and dashboards read them). Readiness and
//! startup do one round trip through the existing pool, bounded by `health.probe_timeout`, and
//! never open a new connection, so they cannot flap under load the way the original's did.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use pfs_domain::Timestamp;
use pfs_observability::pipeline::monitoring;
use pfs_resilience::{BreakerState, CircuitBreaker};
use serde_json::{Value, json};
use std::time::Instant;

const SERVICE: &str = "globeco-portfolio-service";
const VERSION: &str = "2.0.0";

fn now() -> String {
    Timestamp::now().to_rfc3339()
}

fn millis_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// The circuit-breaker block the original reports, plus each breaker's state by dependency:
/// every breaker this process has, the app's dependencies' and the telemetry exporters'.
fn breakers(state: &AppState) -> Value {
    let all: Vec<CircuitBreaker> =
        state.breakers.iter().cloned().chain(pfs_observability::pipeline::breakers()).collect();
    let count = |wanted: BreakerState| all.iter().filter(|b| b.state() == wanted).count();
    let (total, open, half_open) = (all.len(), count(BreakerState::Open), count(BreakerState::HalfOpen));
    let healthy = total - open - half_open;
    let each: serde_json::Map<String, Value> =
        all.iter().map(|b| (b.dependency().to_owned(), json!(b.state().as_str()))).collect();
    json!({
        "status": if healthy == total { "healthy" } else { "degraded" },
        "total_breakers": total, "healthy_breakers": healthy, "open_breakers": open, "half_open_breakers": half_open,
        "overall_health": healthy_ratio(healthy, total),
        "breakers": each
    })
}

fn healthy_ratio(healthy: usize, total: usize) -> f64 {
    if total == 0 { 1.0 } else { healthy as f64 / total as f64 }
}

/// The service banner. The original's clients may read the `features` keys, so they stay, but
/// each value states what this process does: `prometheus_removed` is false while `/metrics`
/// is served, and `validation_caching` is false because every request is validated afresh
/// (the original advertised both as `true`).
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, description = "Banner")))]
pub async fn root(State(state): State<AppState>) -> Json<Value> {
    let observability = &state.config.observability;
    Json(json!({
        "message": "GlobeCo Portfolio Service",
        "version": VERSION,
        "environment": state.config.environment.as_str(),
        "status": "operational",
        "features": {
            // One recorder feeds both `/metrics` and OTLP.
            "unified_monitoring": observability.metrics_enabled,
            "prometheus_removed": state.telemetry.prometheus.is_none(),
            "optimized_performance": true,
            "environment_profiles": true,
            "circuit_breakers": !state.breakers.is_empty(),
            "validation_caching": false
        }
    }))
}

/// Plain-text `OK`: the process is up (Docker `HEALTHCHECK`).
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "OK", content_type = "text/plain")))]
pub async fn plain() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK")
}

/// Liveness: the process answers. Stays 200 while draining.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "Alive")))]
pub async fn live() -> Json<Value> {
    let start = Instant::now();
    Json(json!({
        "status": "alive", "timestamp": now(), "service": SERVICE, "probe_type": "liveness",
        "response_time_ms": millis_since(start), "cached": false
    }))
}

/// Readiness: every dependency answered once since start (else 503 naming what is missing and
/// its last error), the database answers through the pool, and the process is not draining. The
/// round trip goes through the database breaker: while it is open this is 503 at once, and
/// once it lets a probe through, this check may be that probe.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let start = Instant::now();
    let breakers = breakers(&state);
    let breaker_check = json!({
        "status": if breakers["open_breakers"] == 0 { "ready" } else { "degraded" },
        "healthy_ratio": breakers["overall_health"]
    });
    if let Some((mut checks, waiting_for)) = starting(&state, "ready", "unhealthy") {
        checks.insert("circuit_breakers".into(), breaker_check);
        checks.insert("lifecycle".into(), json!({"status": "starting"}));
        let body = json!({
            "status": "not_ready", "timestamp": now(), "service": SERVICE, "probe_type": "readiness",
            "checks": checks, "waiting_for": waiting_for,
            "response_time_ms": millis_since(start), "cached": false
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    let database = database_check(&state, "ready", "unhealthy").await;
    let draining = state.lifecycle.is_draining();
    let ready = database.0 && !draining;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "timestamp": now(), "service": SERVICE, "probe_type": "readiness",
        "checks": {
            "database": database.1,
            "circuit_breakers": breaker_check,
            "lifecycle": {"status": if draining { "draining" } else { "serving" }}
        },
        "response_time_ms": millis_since(start), "cached": false
    });
    (status(ready), Json(body))
}

/// While the process still waits for a dependency it could not reach at start: each one's
/// check (the last error and the attempts so far for those still missing), and their names.
fn starting(state: &AppState, ok_word: &str, fail_word: &str) -> Option<(serde_json::Map<String, Value>, Vec<Value>)> {
    if state.startup.is_complete() {
        return None;
    }
    let progress = state.startup.progress();
    let checks = progress
        .iter()
        .map(|p| {
            let check = if p.connected {
                json!({"status": ok_word})
            } else {
                json!({
                    "status": fail_word,
                    "error": p.last_error.as_deref().unwrap_or("not connected yet"),
                    "attempts": p.attempts
                })
            };
            (p.dependency.to_owned(), check)
        })
        .collect();
    let waiting_for = progress.iter().filter(|p| !p.connected).map(|p| json!(p.dependency)).collect();
    Some((checks, waiting_for))
}

/// Startup: every dependency answered once since the process started (migrations ran) and
/// the database answers now. While one is still missing: 503 naming it and its last error.
#[utoipa::path(get, path = "/health/startup", tag = "health",
    responses((status = 200, description = "Started"), (status = 503, description = "Starting")))]
pub async fn startup(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let start = Instant::now();
    let monitoring = monitoring();
    if let Some((mut checks, waiting_for)) = starting(&state, "connected", "error") {
        checks.insert("monitoring".into(), monitoring);
        let body = json!({
            "status": "starting", "timestamp": now(), "service": SERVICE, "probe_type": "startup",
            "checks": checks, "waiting_for": waiting_for,
            "response_time_ms": millis_since(start), "cached": false
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    let (ok, database) = database_check(&state, "connected", "error").await;
    let body = json!({
        "status": if ok { "started" } else { "starting" },
        "timestamp": now(), "service": SERVICE, "probe_type": "startup",
        "checks": {
            "database": database,
            "monitoring": monitoring
        },
        "response_time_ms": millis_since(start), "cached": false
    });
    (status(ok), Json(body))
}

/// Everything the probes know, plus the backend's version; 503 when the database is down.
#[utoipa::path(get, path = "/health/detailed", tag = "health",
    responses((status = 200, description = "Healthy"), (status = 503, description = "Unhealthy")))]
pub async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let start = Instant::now();
    let timeout = state.config.health.probe_timeout;
    let (ok, mut database) = database_check(&state, "healthy", "unhealthy").await;
    if ok && let Ok(Ok(info)) = tokio::time::timeout(timeout, state.store.usual().info()).await {
        database["server_version"] = json!(info.server_version);
        database["backend"] = json!(info.kind);
    }
    database["connection_configured"] = json!(true);
    let bus = state.bus.describe();
    let redis = match (state.config.redis.url.is_empty(), bus.connected) {
        (true, _) => json!({"status": "disabled"}),
        (false, true) => json!({"status": "connected"}),
        (false, false) => json!({"status": "disconnected", "effect": "cache bypassed; serving from the database"}),
    };
    let cache = match &state.cache {
        None => json!({"status": "disabled"}),
        Some(cache) => {
            let stats = cache.stats();
            let lookups = stats.hits + stats.misses;
            json!({
                "status": if bus.connected { "active" } else { "bypassed" },
                "hits": stats.hits, "misses": stats.misses,
                "hit_rate": if lookups == 0 { 0.0 } else { stats.hits as f64 / lookups as f64 },
                "portfolios": stats.portfolios, "pages": stats.pages
            })
        }
    };
    let body = json!({
        "status": if ok { "healthy" } else { "unhealthy" },
        "degraded": !bus.connected,
        "timestamp": now(), "service": SERVICE, "version": VERSION, "probe_type": "detailed",
        "environment": state.config.environment.as_str(),
        "uptime_seconds": state.lifecycle.uptime_seconds(),
        "draining": state.lifecycle.is_draining(),
        "startup": {
            "complete": state.startup.is_complete(),
            "waiting_for": state.startup.waiting().iter().map(|p| p.dependency).collect::<Vec<_>>()
        },
        "checks": {
            "database": database,
            "cache": cache,
            "redis": redis,
            "circuit_breakers": breakers(&state),
            "monitoring": monitoring()
        },
        "runtime_flags": *state.telemetry.flags.load().clone(),
        // Per flag: `configuration` or `admin` (set through `/admin/flags`, here or on another replica).
        "runtime_flag_sources": state.telemetry.flags.sources(),
        // Per signal: its exporters and whether they deliver, or why it has none.
        "telemetry": pfs_observability::pipeline::report(),
        "response_time_ms": millis_since(start)
    });
    (status(ok), Json(body))
}

/// Health-check statistics, in the original's shape, with a real uptime.
#[utoipa::path(get, path = "/health/metrics", tag = "health", responses((status = 200, description = "Health statistics")))]
pub async fn metrics(State(state): State<AppState>) -> Json<Value> {
    let start = Instant::now();
    Json(json!({
        "timestamp": now(), "service": SERVICE,
        "uptime_seconds": state.lifecycle.uptime_seconds(),
        "health_checks": {"liveness_cache_hit_rate": 0.0, "readiness_cache_hit_rate": 0.0, "startup_cache_hit_rate": 0.0},
        "circuit_breakers": breakers(&state),
        "monitoring": monitoring(),
        "response_time_ms": millis_since(start)
    }))
}

/// One pooled round trip: `(ok, {"status": ok_word|fail_word, "response_time_ms"|"error"})`.
async fn database_check(state: &AppState, ok_word: &str, fail_word: &str) -> (bool, Value) {
    let start = Instant::now();
    match state.store.usual().ping(state.config.health.probe_timeout).await {
        Ok(()) => (true, json!({"status": ok_word, "response_time_ms": millis_since(start)})),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            (
                false,
                json!({"status": fail_word, "error": "database unreachable", "response_time_ms": millis_since(start)}),
            )
        }
    }
}

fn status(ok: bool) -> StatusCode {
    if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}
