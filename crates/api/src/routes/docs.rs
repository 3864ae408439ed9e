//! `/openapi.json` (generated from the handlers' annotations) and a self-hosted Swagger UI.
//!
//! The UI's files are compiled into the binary (utoipa-swagger-ui's `vendored` feature), so
//! the docs work offline and inside locked-down clusters. `/redoc` serves the same UI: Redoc
//! itself would need a CDN.

use crate::error::ApiError;
use crate::routes::{events, fast, health, jobs, v1, v2};
use crate::wire::dto;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, LazyLock};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "GlobeCo Portfolio Service", version = "2.0.0",
        description = "Portfolio management API: v1 CRUD with optimistic locking, v2 search and bulk create."),
    paths(v1::list, v1::get, v1::create, v1::update, v1::delete, v2::search, v2::bulk_create, events::stream,
        jobs::create_import, jobs::get_job,
        health::root, health::plain, health::live, health::ready, health::startup, health::detailed, health::metrics,
        fast::bulk::create, fast::search::search, fast::health, fast::stats),
    components(schemas(dto::PortfolioDto, dto::SearchResponse, dto::PaginationDto, dto::PortfolioPostSchema, dto::PortfolioPutSchema,
        jobs::ImportAccepted, jobs::JobDto, jobs::JobProgressDto, jobs::JobCountsDto, jobs::JobErrorDto)),
    tags((name = "v1", description = "Single portfolios"), (name = "v2", description = "Search, bulk create and the change stream"),
        (name = "jobs", description = "Background imports and their status"),
        (name = "health", description = "Probes"), (name = "service", description = "Service information"),
        (name = "fast", description = "The original's undocumented fast-path routes, kept for its scripts (legacy, deprecated)"))
)]
pub struct ApiDoc;

/// Rendered once: the document is static for the life of the process.
static OPENAPI_JSON: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));

static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"])));

pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON.as_str()).into_response()
}

/// The UI page. Its asset links are relative, so a `<base>` makes them resolve under `/docs/`
/// whether the page was requested as `/docs` or `/redoc`.
pub async fn index() -> Result<Response, ApiError> {
    let page = asset("index.html")?;
    let html = String::from_utf8_lossy(&page.0).replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1);
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

pub async fn oauth2_redirect() -> Result<Response, ApiError> {
    asset("oauth2-redirect.html").map(IntoResponse::into_response)
}

/// The UI's own files only change with the binary, so they may be cached for a day; an
/// unknown name is a 404 that nobody should keep.
pub async fn file(Path(file): Path<String>) -> Result<Response, ApiError> {
    let mut response = asset(&file)?.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}

struct Asset(Vec<u8>, String);

impl IntoResponse for Asset {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, self.1)], self.0).into_response()
    }
}

fn asset(name: &str) -> Result<Asset, ApiError> {
    match utoipa_swagger_ui::serve(name, SWAGGER_CONFIG.clone()) {
        Ok(Some(file)) => Ok(Asset(file.bytes.into_owned(), file.content_type)),
        _ => Err(ApiError::RouteNotFound),
    }
}
