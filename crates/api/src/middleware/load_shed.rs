//! Load shedding: a bound on the requests handled at once, so that excess load is refused
//! quickly with 503 + `Retry-After` instead of queueing into timeouts.
//!
//! A tokio semaphore rather than tower's `ConcurrencyLimitLayer` + `LoadShedLayer`: that pair
//! refuses the instant every slot is busy, so a burst of a few milliseconds turns into errors.
//! Here a request may wait `queue_timeout` for a slot (the semaphore is fair, first come first
//! served); only sustained overload outlasts that. The probes and `/metrics` bypass the limit
//! (`paths::is_exempt`): a replica that is busy is not dead, readiness must keep answering, and
//! an overload is exactly when its metrics are needed. `/health/detailed` is shed like any
//! request: it costs database round trips.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct LoadShed {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl LoadShed {
    /// `None` when `max_concurrent` is 0 (no limit).
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Option<Self> {
        (max_concurrent > 0).then(|| Self { slots: Arc::new(Semaphore::new(max_concurrent)), queue_timeout })
    }
}

pub async fn layer(State(shed): State<LoadShed>, req: Request, next: Next) -> Response {
    if crate::paths::is_exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let slot = match shed.slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => match tokio::time::timeout(shed.queue_timeout, shed.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                metrics::counter!("http_server_shed_requests", "reason" => "overload").increment(1);
                return ApiError::Overloaded.into_response();
            }
        },
    };
    let response = next.run(req).await;
    drop(slot);
    response
}
