//! `GET/PATCH /admin/flags`: the runtime flags, readable and changeable without a restart by an
//! admin credential (403 for everyone while authentication is disabled).

use crate::auth::{Authentication, admin_only};
use crate::error::ApiError;
use crate::paths::ADMIN_FLAGS;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use pfs_observability::{Flags, FlagsPatch};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    admin_only(Router::new().route(ADMIN_FLAGS, get(show).patch(update)))
}

async fn show(State(state): State<AppState>) -> Json<Flags> {
    Json(Flags::clone(&state.telemetry.flags.load()))
}

/// Applies a partial update (`{"log_level": "debug"}`); unknown fields and out-of-range values
/// are refused with 400 and change nothing. A value set here stays until set again or until a
/// configuration reload changes the same key; with Redis it reaches every replica.
async fn update(
    State(state): State<AppState>,
    authentication: Option<Extension<Authentication>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let patch: FlagsPatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("Invalid flags: {e}")))?;
    let who = authentication.and_then(|Extension(a)| a.principal.map(|p| p.name)).unwrap_or_default();
    let flags = &state.telemetry.flags;
    let changed = flags.patch(&patch, &who).map_err(|e| ApiError::BadRequest(format!("Invalid flags: {e}")))?;
    Ok(Json(json!({"changed": changed, "flags": Flags::clone(&flags.load())})))
}
