//! Background imports: `POST /api/v2/portfolios/imports` queues one, `GET /api/v2/jobs/{jobId}`
//! reports on it.
//!
//! The upload is streamed ([`upload`]): read, validated and staged in bounded chunks as it
//! arrives, so a client learns at once that its request is unusable without the service ever
//! holding the body: JSON lists get the bulk create's full validation (422 issues, 400 for
//! duplicate names), export files must be readable as JSON lines or one array, and both must
//! fit `jobs.import_max_portfolios` and `jobs.max_upload_bytes` (413). Problems inside an
//! export's documents are the job's to report: one invalid document fails the job with
//! nothing loaded and the problems in its `errors`. A full queue (`jobs.max_pending`) is a 503
//! with `Retry-After` before any of the body is read.

pub mod upload;

use crate::error::ApiError;
use crate::loc;
use crate::state::AppState;
use crate::wire::Issue;
use crate::wire::dto;
use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use pfs_jobs::JobService;
use pfs_jobs::import::{ImportPayload, ImportReport, KIND};
use pfs_platform::config::JobsConfig;
use pfs_storage::jobs::{JobId, JobRecord, JobState};
use serde::Serialize;
use serde_json::Value;
use upload::{BodyEnd, Limits, Source, Staged};
use utoipa::ToSchema;

/// The 500 `detail` of the import routes.
const IMPORT_FAILURE: &str = "An unexpected error occurred while queuing the import";

/// The import route, with its own body limit (it applies to a multipart form; a plain body
/// is counted as it streams).
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

/// Queue an import of up to `jobs.import_max_portfolios` portfolios (default 100,000) in a
/// body of up to `jobs.max_upload_bytes` (default 32 MiB, counted after decompression).
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
        (status = 408, description = "The body did not arrive within reliability.body_read_timeout"),
        (status = 413, description = "More portfolios than jobs.import_max_portfolios, a body over jobs.max_upload_bytes, or one portfolio over server.max_body_bytes"),
        (status = 422, description = "Validation error"),
        (status = 501, description = "The storage backend has no job queue (MongoDB)"),
        (status = 503, description = "jobs.max_pending jobs are queued or running already; see Retry-After")))]
pub async fn create_import(State(state): State<AppState>, request: Request) -> Response {
    create(state, request).await.unwrap_or_else(|err| err.into_response())
}

async fn create(state: AppState, request: Request) -> Result<Response, ApiError> {
    let jobs = state.jobs.clone().ok_or(ApiError::JobsUnavailable)?;
    refuse_when_full(&state, &jobs).await?;
    let id = JobId::generate();
    let staged = match receive(&state, &jobs, id, request).await {
        Ok(staged) => staged,
        Err(err) => {
            discard(&jobs, id).await;
            return Err(err);
        }
    };
    let Staged { chunks, total, rejected } = staged;
    let payload = match rejected {
        Some(report) => {
            discard(&jobs, id).await;
            ImportPayload::Rejected { report }
        }
        None => ImportPayload::Chunks { chunks },
    };
    if let Err(err) = jobs.enqueue_as(id, KIND, payload.encode(), 0, total).await {
        discard(&jobs, id).await;
        return Err(ApiError::from_store(err, IMPORT_FAILURE));
    }
    let location = format!("/api/v2/jobs/{id}");
    let mut response =
        (StatusCode::ACCEPTED, Json(ImportAccepted { job_id: id.to_string(), state: "queued", total })).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// 503 while `jobs.max_pending` jobs are queued or running (checked before the body is read;
/// uploads racing past the check together may overshoot it by their number).
async fn refuse_when_full(state: &AppState, jobs: &JobService) -> Result<(), ApiError> {
    let depth = jobs.queue.depth().await.map_err(|e| ApiError::from_store(e, IMPORT_FAILURE))?;
    let pending = depth.queued + depth.running;
    if pending >= state.config.jobs.max_pending {
        metrics::counter!("jobs_refused", "reason" => "queue_full").increment(1);
        return Err(ApiError::JobQueueFull(pending));
    }
    Ok(())
}

/// Drops what an upload that will not become a runnable job staged; if this fails, the
/// periodic purge drops it later.
async fn discard(jobs: &JobService, id: JobId) {
    if let Err(err) = jobs.queue.discard_chunks(id).await {
        tracing::warn!(job.id = %id, error = %err, "staged import chunks not dropped; the job purge will");
    }
}

/// Streams the body, or the `file` part of a multipart form, into staged chunks.
async fn receive(state: &AppState, jobs: &JobService, id: JobId, request: Request) -> Result<Staged, ApiError> {
    let limits = Limits::from_config(&state.config);
    let queue = jobs.queue.as_ref();
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        let source =
            if crate::wire::json::is_json_content_type(request.headers()) { Source::List } else { Source::Export };
        let body = request.into_body().into_data_stream();
        return upload::stage(queue, id, body, body_end, source, limits).await;
    }
    // Only a form's headers are read here; its parts stream.
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|_| ApiError::BadRequest("There was an error parsing the body".into()))?;
    while let Some(field) = form.next_field().await.map_err(|e| refusal(multipart_end(&e), &limits))? {
        if field.name() == Some("file") {
            return upload::stage(queue, id, field, multipart_end, Source::Export, limits).await;
        }
    }
    Err(ApiError::BadRequest("The multipart form has no \"file\" part".into()))
}

/// Why a plain body failed: the body deadline, or a broken connection.
fn body_end(err: &axum::Error) -> BodyEnd {
    if crate::extract::timed_out(err) { BodyEnd::TimedOut } else { BodyEnd::Broken }
}

/// Why a multipart body failed: over the route's limit, the body deadline, or broken.
fn multipart_end(err: &MultipartError) -> BodyEnd {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        BodyEnd::TooLarge
    } else if crate::extract::timed_out(err) {
        BodyEnd::TimedOut
    } else {
        BodyEnd::Broken
    }
}

/// The answer to a body that stopped arriving.
fn refusal(end: BodyEnd, limits: &Limits) -> ApiError {
    match end {
        BodyEnd::TooLarge => ApiError::ImportTooLarge(format!(
            "Import body is larger than {} bytes (jobs.max_upload_bytes)",
            limits.max_upload_bytes
        )),
        BodyEnd::TimedOut => ApiError::BodyTimeout,
        _ => ApiError::BadRequest("There was an error parsing the body".into()),
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
