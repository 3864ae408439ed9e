//! v2: paged search and bulk create.

use crate::error::{ApiError, BULK_FAILURE, SEARCH_FAILURE};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use crate::wire::dto::{self, PortfolioDto, SearchResponse};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pfs_domain::{NameFilter, PageRequest, Pagination, Portfolio, Version, check_bulk_names};

/// Search by exact name (`name`) or substring (`name_like`), both case-insensitive, newest
/// first, with offset pagination.
#[utoipa::path(get, path = "/api/v2/portfolios", tag = "v2",
    params(
        ("name" = Option<String>, Query, description = "Exact name, case-insensitive"),
        ("name_like" = Option<String>, Query, description = "Substring, case-insensitive"),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 50"),
        ("offset" = Option<u64>, Query, description = ">= 0, default 0"),
    ),
    responses((status = 200, body = SearchResponse), (status = 400, description = "Invalid search parameter"),
        (status = 422, description = "Validation error")))]
pub async fn search(
    State(state): State<AppState>,
    QueryParams(query): QueryParams,
) -> Result<Json<SearchResponse>, ApiError> {
    let limit = query.int("limit", i64::from(PageRequest::DEFAULT_LIMIT), 1, Some(i64::from(PageRequest::MAX_LIMIT)));
    let offset = query.int("offset", 0, 0, None);
    let (limit, offset) = match (limit, offset) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (limit, offset) => {
            return Err(ApiError::Validation(limit.err().into_iter().chain(offset.err()).collect()));
        }
    };
    let filter = NameFilter::from_params(query.get("name"), query.get("name_like"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // Both are in range: checked just above.
    let page = PageRequest { limit: limit as u32, offset: offset as u64 };
    let found = state.store.search(&filter, page).await.map_err(|e| ApiError::from_store(e, SEARCH_FAILURE))?;
    Ok(Json(SearchResponse {
        portfolios: found.items.iter().map(PortfolioDto::from).collect(),
        pagination: Pagination::compute(found.total, page).into(),
    }))
}

/// Create 1 to 100 portfolios at once, all or none, returned in request order.
#[utoipa::path(post, path = "/api/v2/portfolios", tag = "v2",
    request_body = Vec<dto::PortfolioPostSchema>,
    responses((status = 201, body = [PortfolioDto]), (status = 400, description = "Empty, too large, or duplicate names"),
        (status = 422, description = "Validation error")))]
pub async fn bulk_create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Vec<PortfolioDto>>), ApiError> {
    let items = dto::parse_bulk_body(body)?;
    check_bulk_names(items.iter().map(|item| item.name.as_str())).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let portfolios: Vec<Portfolio> = items
        .into_iter()
        .map(|item| Portfolio::new(item.name, item.date_created, Version::for_bulk_create(item.version)))
        .collect();
    state.store.insert_many(&portfolios).await.map_err(|e| ApiError::from_store(e, BULK_FAILURE))?;
    Ok((StatusCode::CREATED, Json(portfolios.iter().map(PortfolioDto::from).collect())))
}
