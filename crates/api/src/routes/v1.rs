//! v1: list, get, create, update and delete single portfolios.

use crate::error::{ApiError, V1_FAILURE};
use crate::extract::{JsonBody, PortfolioPath, QueryParams};
use crate::loc;
use crate::middleware::idempotency::{PlannedIds, prepare_create};
use crate::state::AppState;
use crate::wire::Issue;
use crate::wire::dto::{self, PortfolioDto};
use crate::wire::list_stream;
use crate::wire::projection::Projection;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pfs_domain::{Portfolio, PortfolioChanges, Version};
use serde_json::json;

type ApiResult<T> = Result<T, ApiError>;

fn store_err(err: pfs_storage::StoreError) -> ApiError {
    ApiError::from_store(err, V1_FAILURE)
}

/// List every portfolio, unpaged, in creation order. Streamed from the database in batches
/// ([`list_stream`]), so its memory does not grow with the number of portfolios.
#[utoipa::path(get, path = "/api/v1/portfolios", tag = "v1",
    responses((status = 200, body = [PortfolioDto])))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    let batches = state.portfolios().list_stream().await.map_err(store_err)?;
    list_stream::respond(batches).await.map_err(store_err)
}

/// Get one portfolio. Unknown and malformed ids are both 404. `fields=` (opt-in) projects it.
#[utoipa::path(get, path = "/api/v1/portfolio/{portfolioId}", tag = "v1",
    params(("portfolioId" = String, Path, description = "24 hex characters, either case"),
        ("fields" = Option<String>, Query, description = "Comma-separated subset of portfolioId,name,dateCreated,version")),
    responses((status = 200, body = PortfolioDto), (status = 400, description = "Unknown field in fields"),
        (status = 404, description = "Portfolio not found")))]
pub async fn get(
    State(state): State<AppState>,
    path: PortfolioPath,
    QueryParams(query): QueryParams,
) -> ApiResult<Response> {
    let projection = Projection::parse(query.get("fields")).map_err(ApiError::BadRequest)?;
    let found = state.portfolios().get(path.id()?).await.map_err(store_err)?;
    let portfolio = PortfolioDto::from(&found.ok_or(ApiError::PortfolioNotFound)?);
    Ok(match projection {
        None => Json(portfolio).into_response(),
        Some(projection) => Json(projection.apply(&portfolio)).into_response(),
    })
}

/// Create one portfolio. Any name up to `limits.max_name_bytes` is accepted; a missing, null or
/// 0 version becomes 1.
#[utoipa::path(post, path = "/api/v1/portfolios", tag = "v1",
    params(crate::middleware::idempotency::KeyHeader),
    request_body = dto::PortfolioPostSchema,
    responses((status = 201, body = PortfolioDto), (status = 400, description = "Malformed Idempotency-Key"),
        (status = 409, description = "A request with this Idempotency-Key is in flight"),
        (status = 422, description = "Validation error, or Idempotency-Key reused with another body")))]
pub async fn create(
    State(state): State<AppState>,
    planned: Option<Extension<PlannedIds>>,
    JsonBody(body): JsonBody,
) -> ApiResult<impl IntoResponse> {
    let new = dto::parse_new_body(body, state.name_limit())?;
    let mut created = vec![Portfolio::new(new.name, new.date_created, Version::for_v1_create(new.version))];
    match prepare_create(planned.as_deref(), state.portfolios().as_ref(), &mut created).await.map_err(store_err)? {
        Some(stored) => created = stored,
        None => state.portfolios().insert_many(&created).await.map_err(store_err)?,
    }
    Ok((StatusCode::CREATED, Json(PortfolioDto::from(&created[0]))))
}

/// Update a portfolio if its stored version equals the body's; the version then increments.
#[utoipa::path(put, path = "/api/v1/portfolio/{portfolioId}", tag = "v1",
    params(("portfolioId" = String, Path)),
    request_body = dto::PortfolioPutSchema,
    responses((status = 200, body = PortfolioDto), (status = 404, description = "Portfolio not found"),
        (status = 409, description = "Version conflict"), (status = 422, description = "Validation error")))]
pub async fn update(
    State(state): State<AppState>,
    path: PortfolioPath,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<PortfolioDto>> {
    let update = dto::parse_update_body(body, state.name_limit())?;
    let id = path.id()?;
    let expected = Version(update.version);
    if expected.next().is_none() {
        return Err(unincrementable(&state, id, expected).await);
    }
    let changes = PortfolioChanges { name: update.name, date_created: update.date_created };
    let updated = state.portfolios().update(id, expected, &changes).await.map_err(store_err)?;
    Ok(Json(PortfolioDto::from(&updated)))
}

/// Delete a portfolio if its stored version equals `?version=`.
#[utoipa::path(delete, path = "/api/v1/portfolio/{portfolioId}", tag = "v1",
    params(("portfolioId" = String, Path), ("version" = i64, Query, description = "The stored version")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Portfolio not found"),
        (status = 409, description = "Version conflict"), (status = 422, description = "Validation error")))]
pub async fn delete(
    State(state): State<AppState>,
    path: PortfolioPath,
    QueryParams(query): QueryParams,
) -> ApiResult<Response> {
    let version = query.required_int("version")?;
    state.portfolios().delete(path.id()?, Version(version)).await.map_err(store_err)?;
    // FastAPI sends a JSON content type even on an empty 204; clients may look for it.
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A PUT carrying `i64::MAX` is answered like any other (404, then 409) unless it matches the
/// stored version, in which case the version cannot be incremented and the body is at fault.
async fn unincrementable(state: &AppState, id: pfs_domain::PortfolioId, expected: Version) -> ApiError {
    match state.portfolios().get(id).await {
        Err(err) => store_err(err),
        Ok(None) => ApiError::PortfolioNotFound,
        Ok(Some(stored)) if stored.version != expected => ApiError::VersionConflict,
        Ok(Some(_)) => Issue::new("less_than", format!("Input should be less than {}", i64::MAX), json!(expected.0))
            .at(&loc!["body", "version"])
            .with_ctx(json!({ "lt": i64::MAX }))
            .into(),
    }
}
