//! `GET /api/fast/portfolios/search`: the original's fast-path search.
//!
//! The v2 search without the name-format rule (any text is matched literally, whole or as a
//! substring, case-insensitively; an empty one means no filter), with the range errors as 400s
//! and their own messages, `processingTimeMs` in the body and `X-Total-Count`.

use super::{PROCESSING_TIME, elapsed_ms, python_float};
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::state::AppState;
use crate::wire::dto::{PaginationDto, PortfolioDto};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use pfs_domain::{NameFilter, PageRequest, Pagination, SearchError, SearchTerm};
use serde_json::json;
use std::time::Instant;

/// The original's 500 for any other failure.
pub const FAST_SEARCH_FAILURE: &str = "Internal server error during fast search";

/// Search by exact name or substring (legacy fast path; use `GET /api/v2/portfolios`).
#[utoipa::path(get, path = "/api/fast/portfolios/search", tag = "fast", operation_id = "fast_search",
    params(
        ("name" = Option<String>, Query, description = "Exact name, case-insensitive, any text"),
        ("name_like" = Option<String>, Query, description = "Substring, case-insensitive, any text"),
        ("limit" = Option<i64>, Query, description = "1..=1000, default 50"),
        ("offset" = Option<i64>, Query, description = ">= 0, default 0"),
    ),
    responses(
        (status = 200, description = "The v2 body plus processingTimeMs; header X-Total-Count"),
        (status = 400, description = "Limit or offset out of range, or both name and name_like"),
        (status = 422, description = "limit or offset not an integer")))]
#[deprecated = "legacy route of the original service"]
pub async fn search(State(state): State<AppState>, QueryParams(query): QueryParams) -> Result<Response, ApiError> {
    let start = Instant::now();
    let (limit, offset) = match (query.int("limit", 50, i64::MIN, None), query.int("offset", 0, i64::MIN, None)) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (limit, offset) => return Err(ApiError::Validation(limit.err().into_iter().chain(offset.err()).collect())),
    };
    if !(1..=i64::from(PageRequest::MAX_LIMIT)).contains(&limit) {
        return Err(ApiError::BadRequest("Limit must be between 1 and 1000".into()));
    }
    if offset < 0 {
        return Err(ApiError::BadRequest("Offset must be non-negative".into()));
    }
    let (name, name_like) = (query.get("name").unwrap_or(""), query.get("name_like").unwrap_or(""));
    if !name.is_empty() && !name_like.is_empty() {
        return Err(ApiError::BadRequest(SearchError::BothGiven.to_string()));
    }
    let filter = match (SearchTerm::literal(name), SearchTerm::literal(name_like)) {
        (Some(term), _) => NameFilter::Exact(term),
        (None, Some(term)) => NameFilter::Contains(term),
        (None, None) => NameFilter::All,
    };
    // Both are in range: checked just above.
    let page = PageRequest { limit: limit as u32, offset: offset as u64 };
    let found =
        state.portfolios().search(&filter, page).await.map_err(|e| ApiError::from_store(e, FAST_SEARCH_FAILURE))?;
    let took = elapsed_ms(start);
    let body = json!({
        "portfolios": found.items.iter().map(PortfolioDto::from).collect::<Vec<_>>(),
        "pagination": PaginationDto::from(Pagination::compute(found.total, page)),
        "processingTimeMs": took
    });
    let total = HeaderName::from_static("x-total-count");
    Ok(([(PROCESSING_TIME, python_float(took)), (total, found.total.into())], Json(body)).into_response())
}
