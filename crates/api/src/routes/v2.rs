//! v2: paged search (plus the opt-in `fields=`, `cursor=` and `ids=`) and bulk create.

use crate::error::{ApiError, BULK_FAILURE, SEARCH_FAILURE};
use crate::extract::{JsonBody, QueryParams};
use crate::middleware::idempotency::{PlannedIds, prepare_create};
use crate::state::AppState;
use crate::wire::cursor;
use crate::wire::dto::{self, PaginationDto, PortfolioDto, SearchResponse};
use crate::wire::json::Body;
use crate::wire::projection::{Portfolios, Projection};
use crate::wire::query::Query;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pfs_domain::{
    BulkError, Keyset, NameFilter, PageRequest, Pagination, Portfolio, PortfolioId, Version, check_bulk_names,
};
use pfs_storage::SearchPage;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// Most ids one batch get may ask for.
const MAX_IDS: usize = 100;

/// Longest bulk list validated item by item; longer ones are refused as too large at once.
const MAX_VALIDATED_ITEMS: usize = 1000;

fn store_err(err: pfs_storage::StoreError) -> ApiError {
    ApiError::from_store(err, SEARCH_FAILURE)
}

/// Search by exact name (`name`) or substring (`name_like`), both case-insensitive, newest
/// first, with offset pagination. Opt-in additions that leave the original behaviour alone:
/// `fields=` projects each portfolio, `cursor=` switches to keyset pagination (`nextCursor`
/// in the response; stable while portfolios are inserted), and `ids=a,b,c` fetches several
/// portfolios by id at once.
#[utoipa::path(get, path = "/api/v2/portfolios", tag = "v2",
    params(
        ("name" = Option<String>, Query, description = "Exact name, case-insensitive"),
        ("name_like" = Option<String>, Query, description = "Substring, case-insensitive"),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 50"),
        ("offset" = Option<u64>, Query, description = ">= 0, default 0"),
        ("fields" = Option<String>, Query, description = "Comma-separated subset of portfolioId,name,dateCreated,version"),
        ("cursor" = Option<String>, Query, description = "Keyset pagination: empty for the first page, then the previous nextCursor"),
        ("ids" = Option<String>, Query, description = "Batch get: up to 100 comma-separated ids; answers {portfolios, missing}"),
    ),
    responses((status = 200, body = SearchResponse), (status = 400, description = "Invalid search parameter"),
        (status = 422, description = "Validation error")))]
pub async fn search(State(state): State<AppState>, QueryParams(query): QueryParams) -> Result<Response, ApiError> {
    let limit = query.int("limit", i64::from(PageRequest::DEFAULT_LIMIT), 1, Some(i64::from(PageRequest::MAX_LIMIT)));
    let offset = query.int("offset", 0, 0, None);
    let (limit, offset) = match (limit, offset) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (limit, offset) => return Err(ApiError::Validation(limit.err().into_iter().chain(offset.err()).collect())),
    };
    let filter = NameFilter::from_params(query.get("name"), query.get("name_like"))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let projection = Projection::parse(query.get("fields")).map_err(ApiError::BadRequest)?;
    // Both are in range: checked just above.
    let page = PageRequest { limit: limit as u32, offset: offset as u64 };
    if let Some(ids) = query.get("ids") {
        return batch_get(&state, &query, ids, projection).await;
    }
    let response = match query.get("cursor") {
        Some(token) => keyset_page(&state, &query, &filter, token, page.limit, projection).await?,
        None => {
            let found = state.portfolios().search(&filter, page).await.map_err(store_err)?;
            SearchResponse {
                portfolios: portfolios(&found.items, projection),
                pagination: Pagination::compute(found.total, page).into(),
                next_cursor: None,
            }
        }
    };
    Ok(Json(response).into_response())
}

fn portfolios(items: &[Portfolio], projection: Option<Projection>) -> Portfolios {
    Portfolios::new(items.iter().map(PortfolioDto::from).collect(), projection)
}

/// One more row than asked tells whether a next page exists without a second query.
async fn keyset_page(
    state: &AppState,
    query: &Query,
    filter: &NameFilter,
    token: &str,
    limit: u32,
    projection: Option<Projection>,
) -> Result<SearchResponse, ApiError> {
    if query.get("offset").is_some() {
        return Err(ApiError::BadRequest("cursor cannot be combined with offset".into()));
    }
    let after = match token {
        "" => None,
        token => Some(cursor::decode(token).ok_or_else(|| ApiError::BadRequest("Invalid cursor".into()))?),
    };
    let SearchPage { mut items, total } =
        state.portfolios().search_after(filter, after, limit + 1).await.map_err(store_err)?;
    let has_next = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = has_next.then(|| items.last().map(|last| cursor::encode(Keyset::of(last)))).flatten();
    let whole = Pagination::compute(total, PageRequest { limit, offset: 0 });
    Ok(SearchResponse {
        portfolios: portfolios(&items, projection),
        pagination: PaginationDto {
            current_page: None,
            has_next,
            has_previous: after.is_some(),
            ..PaginationDto::from(whole)
        },
        next_cursor: Some(next_cursor),
    })
}

/// `ids=a,b,c`: the portfolios in the order asked (each once), and the ids not found.
async fn batch_get(
    state: &AppState,
    query: &Query,
    ids: &str,
    projection: Option<Projection>,
) -> Result<Response, ApiError> {
    if ["name", "name_like", "offset", "cursor"].iter().any(|p| query.get(p).is_some()) {
        return Err(ApiError::BadRequest("ids cannot be combined with name, name_like, offset or cursor".into()));
    }
    let mut seen = HashSet::new();
    let asked: Vec<&str> =
        ids.split(',').map(str::trim).filter(|id| !id.is_empty() && seen.insert(id.to_ascii_lowercase())).collect();
    if asked.is_empty() {
        return Err(ApiError::BadRequest("ids must list at least one portfolio id".into()));
    }
    if asked.len() > MAX_IDS {
        return Err(ApiError::BadRequest(format!("ids cannot list more than {MAX_IDS} portfolio ids")));
    }
    let parsed: Vec<(&str, Option<PortfolioId>)> = asked.iter().map(|raw| (*raw, PortfolioId::parse(raw))).collect();
    let ids: Vec<PortfolioId> = parsed.iter().filter_map(|(_, id)| *id).collect();
    let mut found: HashMap<PortfolioId, Portfolio> =
        state.portfolios().get_many(&ids).await.map_err(store_err)?.into_iter().map(|p| (p.id, p)).collect();
    let mut ordered = Vec::with_capacity(found.len());
    let mut missing = Vec::new();
    for (raw, id) in parsed {
        match id.and_then(|id| found.remove(&id)) {
            Some(portfolio) => ordered.push(portfolio),
            None => missing.push(raw),
        }
    }
    Ok(Json(json!({ "portfolios": portfolios(&ordered, projection), "missing": missing })).into_response())
}

/// Create 1 to 100 portfolios at once, all or none, returned in request order.
#[utoipa::path(post, path = "/api/v2/portfolios", tag = "v2",
    params(crate::middleware::idempotency::KeyHeader),
    request_body = Vec<dto::PortfolioPostSchema>,
    responses((status = 201, body = [PortfolioDto]),
        (status = 400, description = "Empty, too large, or duplicate names; malformed Idempotency-Key"),
        (status = 409, description = "A request with this Idempotency-Key is in flight"),
        (status = 422, description = "Validation error, or Idempotency-Key reused with another body")))]
pub async fn bulk_create(
    State(state): State<AppState>,
    planned: Option<Extension<PlannedIds>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Vec<PortfolioDto>>), ApiError> {
    // The contract validates every item before the size check (a 101-item list with a bad item
    // is a 422), but only a bounded list is worth validating: a million tiny items fit in a
    // compressed megabyte and would cost a 422 listing a million issues.
    if let Body::Json(Value::Array(items)) = &body
        && items.len() > MAX_VALIDATED_ITEMS
    {
        return Err(ApiError::BadRequest(BulkError::TooMany.to_string()));
    }
    let items = dto::parse_bulk_body(body, state.name_limit())?;
    check_bulk_names(items.iter().map(|item| item.name.as_str())).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut portfolios: Vec<Portfolio> = items
        .into_iter()
        .map(|item| Portfolio::new(item.name, item.date_created, Version::for_bulk_create(item.version)))
        .collect();
    let bulk_err = |e| ApiError::from_store(e, BULK_FAILURE);
    match prepare_create(planned.as_deref(), state.portfolios().as_ref(), &mut portfolios).await.map_err(bulk_err)? {
        Some(stored) => portfolios = stored,
        None => {
            state.portfolios().insert_many(&portfolios).await.map_err(bulk_err)?;
            bulk_stored(&portfolios);
        }
    }
    Ok((StatusCode::CREATED, Json(portfolios.iter().map(PortfolioDto::from).collect())))
}

/// A bulk create was stored: its size, and a line per portfolio (kept at `log_sample_rate`:
/// one line per item is far too many at volume).
pub(crate) fn bulk_stored(portfolios: &[Portfolio]) {
    metrics::histogram!("portfolio_bulk_size").record(portfolios.len() as f64);
    for portfolio in portfolios {
        tracing::debug!(sampled = true, portfolio_id = %portfolio.id, "portfolio stored");
    }
}
