//! Background imports: `POST /api/v2/portfolios/imports` queues one, `GET /api/v2/jobs/{jobId}`
//! reports on it.
//!
//! What is cheap to check is checked before the job is queued, so a client learns at once that
//! its request is unusable: JSON lists get the bulk create's full validation (422 issues, 400
//! for duplicate names), export files must be readable as JSON lines or one array, and both
//! must fit `jobs.import_max_portfolios` (413). Problems inside an export's documents are the
//! job's to find: it validates every document before writing anything, and one invalid
//! document fails the job with nothing loaded and the problems in its `errors`.

use crate::error::ApiError;
use crate::loc;
use crate::state::AppState;
use crate::wire::Issue;
use crate::wire::dto;
use crate::wire::json::{self, Body};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use pfs_domain::{BulkError, Portfolio, Version, check_unique_names};
use pfs_jobs::import::{ImportItem, ImportPayload, ImportReport, KIND, scan_export};
use pfs_platform::config::JobsConfig;
use pfs_storage::jobs::{JobId, JobRecord, JobState};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The 500 `detail` of the import routes.
const IMPORT_FAILURE: &str = "An unexpected error occurred while queuing the import";
/// Validation issues listed in a 422 for an import (all are found; the rest are summarised).
const MAX_ISSUES: usize = 100;

/// The import route, with its own body limit: imports are far larger than other requests.
pub fn imports_route(config: &JobsConfig) -> MethodRouter<AppState> {
    post(create_import).layer(DefaultBodyLimit::max(config.max_upload_bytes))
}

fn unavailable() -> Response {
    ApiError::JobsUnavailable.into_response()
}

/// Accepted for a background import: where to follow it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportAccepted {
    pub job_id: String,
    pub state: &'static str,
    /// Portfolios (JSON list) or documents (export file) to import.
    pub total: u64,
}

/// Queue an import of up to `jobs.import_max_portfolios` portfolios (default 100,000).
/// `Content-Type: application/json` (or none): a JSON list of portfolios validated like
/// `POST /api/v2/portfolios` but without the 100-item cap; ids are assigned now.
/// `multipart/form-data` with a `file` part (`curl -F file=@portfolio.json`), or the file as
/// the whole body with any other content type (`application/x-ndjson`,
/// `application/octet-stream`, ...): a `mongoexport` file (JSON lines or one JSON array; ids,
/// dates and versions are kept; ids already stored are skipped). Answers 202 with the job id
/// and `Location: /api/v2/jobs/{jobId}`.
#[utoipa::path(post, path = "/api/v2/portfolios/imports", tag = "jobs",
    request_body(content = Vec<dto::PortfolioPostSchema>, description = "A JSON list of portfolios, or a mongoexport file"),
    responses((status = 202, body = ImportAccepted, headers(("Location" = String, description = "The job's status URL"))),
        (status = 400, description = "Empty, duplicate names, or an unreadable file"),
        (status = 413, description = "More portfolios than jobs.import_max_portfolios, or a body over jobs.max_upload_bytes"),
        (status = 422, description = "Validation error"),
        (status = 501, description = "The storage backend has no job queue (MongoDB)")))]
pub async fn create_import(State(state): State<AppState>, request: Request) -> Response {
    create(state, request).await.unwrap_or_else(|response| response)
}

/// The body, or the `file` part of a multipart form, and whether it is a JSON list.
async fn read_upload(state: &AppState, request: Request) -> Result<(Bytes, bool), Response> {
    let limit = state.config.jobs.max_upload_bytes;
    let read_failed = |status: StatusCode| match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::ImportTooLarge(format!("Import body is larger than {limit} bytes (jobs.max_upload_bytes)"))
                .into_response()
        }
        _ => ApiError::BadRequest("There was an error parsing the body".into()).into_response(),
    };
    let headers: &HeaderMap = request.headers();
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        let is_json = json::is_json_content_type(headers);
        let bytes = Bytes::from_request(request, state).await.map_err(|e| read_failed(e.status()))?;
        return Ok((bytes, is_json));
    }
    let mut form = Multipart::from_request(request, state).await.map_err(|e| read_failed(e.status()))?;
    while let Some(field) = form.next_field().await.map_err(|e| read_failed(e.status()))? {
        if field.name() == Some("file") {
            return Ok((field.bytes().await.map_err(|e| read_failed(e.status()))?, false));
        }
    }
    Err(ApiError::BadRequest("The multipart form has no \"file\" part".into()).into_response())
}

async fn create(state: AppState, request: Request) -> Result<Response, Response> {
    let jobs = state.jobs.clone().ok_or_else(unavailable)?;
    let (bytes, is_json) = read_upload(&state, request).await?;
    let (max, names) = (state.config.jobs.import_max_portfolios, state.name_limit());
    // Validating a hundred thousand items takes a while: keep it off the async workers.
    let (payload, total) = tokio::task::spawn_blocking(move || {
        if is_json { validate_list(&bytes, max, names) } else { validate_export(&bytes, max) }
    })
    .await
    .map_err(|_| ApiError::Internal { detail: IMPORT_FAILURE, source: None }.into_response())??;
    let id = jobs
        .enqueue(KIND, payload.encode(), 0, total)
        .await
        .map_err(|e| ApiError::from_store(e, IMPORT_FAILURE).into_response())?;
    let location = format!("/api/v2/jobs/{id}");
    let mut response =
        (StatusCode::ACCEPTED, Json(ImportAccepted { job_id: id.to_string(), state: "queued", total })).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

fn too_many(count: usize, max: usize) -> Response {
    ApiError::ImportTooLarge(format!(
        "Import cannot contain more than {max} portfolios (jobs.import_max_portfolios); it has {count}"
    ))
    .into_response()
}

fn validate_list(bytes: &[u8], max: usize, names: dto::NameLimit) -> Result<(ImportPayload, u64), Response> {
    let body = json::read(true, bytes).map_err(|issue| ApiError::from(issue).into_response())?;
    if let Body::Json(Value::Array(items)) = &body
        && items.len() > max
    {
        return Err(too_many(items.len(), max));
    }
    let items = dto::parse_bulk_body(body, names).map_err(|mut issues| {
        issues.truncate(MAX_ISSUES);
        ApiError::Validation(issues).into_response()
    })?;
    if items.is_empty() {
        return Err(ApiError::BadRequest(BulkError::Empty.to_string()).into_response());
    }
    check_unique_names(items.iter().map(|item| item.name.as_str()))
        .map_err(|e| ApiError::BadRequest(e.to_string()).into_response())?;
    let portfolios: Vec<ImportItem> = items
        .into_iter()
        .map(|item| {
            ImportItem::from(&Portfolio::new(item.name, item.date_created, Version::for_bulk_create(item.version)))
        })
        .collect();
    let total = portfolios.len() as u64;
    Ok((ImportPayload::Portfolios { portfolios }, total))
}

fn validate_export(bytes: &[u8], max: usize) -> Result<(ImportPayload, u64), Response> {
    let bad = |message: String| ApiError::BadRequest(message).into_response();
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("The export file is not UTF-8 text: {e}")))?;
    let mut documents = 0_usize;
    scan_export(text, |_, _| documents += 1)
        .map_err(|reason| bad(format!("The export file cannot be read: {reason}")))?;
    match documents {
        0 => Err(bad("The export file contains no documents".into())),
        n if n > max => Err(too_many(n, max)),
        n => Ok((ImportPayload::Export { text: text.to_owned() }, n as u64)),
    }
}

/// A job's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobDto {
    pub job_id: String,
    pub kind: String,
    /// queued, running, succeeded, failed or dead.
    pub state: &'static str,
    /// Runs started so far (a run handed back on shutdown is not counted).
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: JobProgressDto,
    pub counts: JobCountsDto,
    /// The first problems found (bounded); `counts.invalid` counts them all.
    pub errors: Vec<JobErrorDto>,
    /// Why the last run failed, if it did.
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// When a queued job runs next (later than now while it waits out a retry backoff).
    pub next_run_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobProgressDto {
    pub processed: u64,
    pub total: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCountsDto {
    pub created: u64,
    /// Portfolios whose id was already stored, left unchanged.
    pub skipped_existing: u64,
    pub invalid: u64,
}

#[derive(Serialize, ToSchema)]
pub struct JobErrorDto {
    /// `line 3`, `array element 3` or `item 3`.
    pub location: String,
    pub reason: String,
}

impl From<JobRecord> for JobDto {
    fn from(job: JobRecord) -> Self {
        let report: ImportReport =
            job.progress.report.as_deref().and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default();
        Self {
            job_id: job.id.to_string(),
            kind: job.kind,
            state: job.state.as_str(),
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            progress: JobProgressDto { processed: job.progress.processed, total: job.progress.total },
            counts: JobCountsDto {
                created: report.counts.created,
                skipped_existing: report.counts.skipped_existing,
                invalid: report.counts.invalid,
            },
            errors: report.errors.into_iter().map(|e| JobErrorDto { location: e.location, reason: e.reason }).collect(),
            last_error: job.last_error,
            created_at: job.created_at.to_rfc3339(),
            updated_at: job.updated_at.to_rfc3339(),
            started_at: job.started_at.map(|t| t.to_rfc3339()),
            finished_at: job.finished_at.map(|t| t.to_rfc3339()),
            next_run_at: (job.state == JobState::Queued).then(|| job.run_at.to_rfc3339()),
        }
    }
}

/// A job's state, progress, counts and errors. A malformed id is a 422 (like FastAPI's UUID
/// path parameters), an unknown one a 404.
#[utoipa::path(get, path = "/api/v2/jobs/{jobId}", tag = "jobs",
    params(("jobId" = String, Path, description = "The id returned by the import (a UUID)")),
    responses((status = 200, body = JobDto), (status = 404, description = "Job not found"),
        (status = 422, description = "Malformed job id"),
        (status = 501, description = "The storage backend has no job queue (MongoDB)")))]
pub async fn get_job(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(jobs) = state.jobs.as_ref() else { return unavailable() };
    let Some(id) = JobId::parse(&raw) else {
        let issue = Issue::new("uuid_parsing", "Input should be a valid UUID", Value::String(raw));
        return ApiError::from(issue.at(&loc!["path", "jobId"])).into_response();
    };
    match jobs.get(id).await {
        Ok(Some(job)) => Json(JobDto::from(job)).into_response(),
        Ok(None) => ApiError::JobNotFound.into_response(),
        Err(err) => ApiError::from_store(err, IMPORT_FAILURE).into_response(),
    }
}
