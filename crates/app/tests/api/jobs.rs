//! Background imports: `POST /api/v2/portfolios/imports` and `GET /api/v2/jobs/{jobId}`.
//! On MongoDB (no job queue) every test checks the 501 instead.

use crate::helpers::{expect_detail, expect_json, is_timestamp, status_json};
use pfs_platform::Config;
use pfs_test_support::{TestApp, json};
use serde_json::Value;
use std::time::Duration;

const IMPORTS: &str = "/api/v2/portfolios/imports";

/// The app, or `None` after checking that a backend without a queue refuses imports clearly.
async fn spawn(edit: impl FnOnce(&mut Config) + Send + 'static) -> Option<TestApp> {
    let app = TestApp::builder().with_config(edit).spawn().await;
    if std::env::var("PORTFOLIO_TEST_BACKEND").as_deref() != Ok("mongo") {
        return Some(app);
    }
    let (status, body) = status_json(app.post_json(IMPORTS, &json!([{"name": "x"}])).await).await;
    assert_eq!(status, 501, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("SQLite or PostgreSQL"));
    None
}

fn portfolios(n: usize, prefix: &str) -> Value {
    Value::Array((0..n).map(|i| json!({ "name": format!("{prefix} {i}"), "version": 2 })).collect())
}

async fn post_file(app: &TestApp, content_type: &str, body: impl Into<String>) -> pfs_test_support::reqwest::Response {
    let request = app.client.post(app.url(IMPORTS)).header("content-type", content_type).body(body.into());
    request.send().await.expect("POST")
}

/// Checks the 202 and its Location, and returns the job's URL path.
async fn accepted(response: pfs_test_support::reqwest::Response, total: u64) -> String {
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    let body = expect_json(response, 202).await;
    let id = body["jobId"].as_str().expect("jobId");
    assert_eq!(location.as_deref(), Some(format!("/api/v2/jobs/{id}").as_str()));
    assert_eq!((body["state"].as_str(), body["total"].as_u64()), (Some("queued"), Some(total)));
    location.unwrap()
}

/// Polls the job until it is finished (bounded: a stuck job fails the test).
async fn finished(app: &TestApp, job: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = expect_json(app.get(job).await, 200).await;
        if ["succeeded", "failed", "dead"].contains(&body["state"].as_str().unwrap()) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "job still {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn stored(app: &TestApp) -> Vec<Value> {
    expect_json(app.get("/api/v1/portfolios").await, 200).await.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_list_larger_than_the_bulk_cap_is_imported_in_the_background() {
    let Some(app) = spawn(|_| {}).await else { return };
    let job = accepted(app.post_json(IMPORTS, &portfolios(250, "Imported")).await, 250).await;
    let body = finished(&app, &job).await;
    assert_eq!(body["state"], "succeeded", "{body}");
    assert_eq!(body["kind"], "portfolio_import");
    assert_eq!(body["progress"], json!({"processed": 250, "total": 250}));
    assert_eq!(body["counts"], json!({"created": 250, "skippedExisting": 0, "invalid": 0}));
    assert_eq!(body["errors"], json!([]));
    assert_eq!((body["attempts"].as_u64(), body["lastError"].is_null()), (Some(1), true));
    for key in ["createdAt", "updatedAt", "startedAt", "finishedAt"] {
        assert!(is_timestamp(body[key].as_str().unwrap()), "{key}: {body}");
    }
    assert!(body["nextRunAt"].is_null());
    let all = stored(&app).await;
    assert_eq!(all.len(), 250);
    assert!(all.iter().all(|p| p["version"] == 2 && p["name"].as_str().unwrap().starts_with("Imported ")));
}

#[tokio::test]
async fn the_portfolio_limit_is_configurable_and_enforced_before_queuing() {
    let Some(app) = spawn(|c| c.jobs.import_max_portfolios = 5).await else { return };
    let (status, body) = status_json(app.post_json(IMPORTS, &portfolios(6, "p")).await).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["detail"],
        "Import cannot contain more than 5 portfolios (jobs.import_max_portfolios); it has more"
    );
    let lines: String =
        (0..6).map(|i| format!("{{\"_id\": \"6740f1c2a1b2c3d4e5f6071{i}\", \"name\": \"f{i}\"}}\n")).collect();
    assert_eq!(post_file(&app, "application/x-ndjson", lines).await.status(), 413);
    let job = accepted(app.post_json(IMPORTS, &portfolios(5, "p")).await, 5).await;
    assert_eq!(finished(&app, &job).await["state"], "succeeded");
    assert_eq!(stored(&app).await.len(), 5);
}

#[tokio::test]
async fn an_upload_over_the_byte_limit_is_refused() {
    let Some(app) = spawn(|c| c.jobs.max_upload_bytes = 2048).await else { return };
    let response = post_file(&app, "application/x-ndjson", "x".repeat(4096)).await;
    expect_detail(response, 413, "Import body is larger than 2048 bytes (jobs.max_upload_bytes)").await;
}

#[tokio::test]
async fn invalid_lists_are_refused_up_front_like_bulk_create() {
    let Some(app) = spawn(|_| {}).await else { return };
    let body = expect_json(app.post_json(IMPORTS, &json!([{"name": "ok"}, {"version": 1}])).await, 422).await;
    assert_eq!(body["detail"][0]["type"], "missing");
    assert_eq!(body["detail"][0]["loc"], json!(["body", 1, "name"]));
    let duplicate = app.post_json(IMPORTS, &json!([{"name": "Growth"}, {"name": " growth "}])).await;
    expect_detail(duplicate, 400, "Duplicate portfolio names found in request:  growth ").await;
    expect_detail(app.post_json(IMPORTS, &json!([])).await, 400, "Request must contain at least 1 portfolio").await;
    let not_list = expect_json(app.post_json(IMPORTS, &json!({"name": "x"})).await, 422).await;
    assert_eq!(not_list["detail"][0]["type"], "list_type");
    let malformed = expect_json(app.post_raw(IMPORTS, "[{\"name\": ").await, 422).await;
    assert_eq!(malformed["detail"][0]["type"], "json_invalid");
    assert!(stored(&app).await.is_empty(), "nothing was queued or written");
}

#[tokio::test]
async fn an_export_file_keeps_ids_and_skips_portfolios_already_stored() {
    let Some(app) = spawn(|_| {}).await else { return };
    let existing = app.create_portfolio("Already here").await;
    let existing_id = existing["portfolioId"].as_str().unwrap();
    let file = format!(
        "{{\"_id\": {{\"$oid\": \"6740f1c2a1b2c3d4e5f60718\"}}, \"name\": \"Tech\", \"dateCreated\": {{\"$date\": \"2024-01-15T10:30:00.123Z\"}}, \"version\": 3}}\n\
         \n\
         {{\"_id\": {{\"$oid\": \"{existing_id}\"}}, \"name\": \"Renamed in the file\", \"version\": 9}}\n\
         {{\"_id\": \"6740f1c2a1b2c3d4e5f60719\", \"name\": \"Bonds\"}}\n"
    );
    let job = accepted(post_file(&app, "application/x-ndjson", file).await, 3).await;
    let body = finished(&app, &job).await;
    assert_eq!(body["state"], "succeeded", "{body}");
    assert_eq!(body["counts"], json!({"created": 2, "skippedExisting": 1, "invalid": 0}));
    let tech = expect_json(app.get("/api/v1/portfolio/6740f1c2a1b2c3d4e5f60718").await, 200).await;
    assert_eq!(
        tech,
        json!({"portfolioId": "6740f1c2a1b2c3d4e5f60718", "name": "Tech", "dateCreated": "2024-01-15T10:30:00.123Z", "version": 3})
    );
    let kept = expect_json(app.get(&format!("/api/v1/portfolio/{existing_id}")).await, 200).await;
    assert_eq!(kept, existing, "an existing portfolio is never overwritten");

    let array = "[{\"_id\": \"6740f1c2a1b2c3d4e5f6071a\", \"name\": \"From an array\"}]";
    let job = accepted(post_file(&app, "application/octet-stream", array).await, 1).await;
    assert_eq!(finished(&app, &job).await["counts"]["created"], 1);
    assert_eq!(stored(&app).await.len(), 4);
}

#[tokio::test]
async fn an_export_with_an_invalid_document_fails_whole_with_nothing_written() {
    let Some(app) = spawn(|_| {}).await else { return };
    let file = "{\"_id\": \"6740f1c2a1b2c3d4e5f60718\", \"name\": \"Fine\"}\n\
                {\"_id\": \"6740f1c2a1b2c3d4e5f60719\"}\n\
                {\"_id\": \"nope\", \"name\": \"x\"}\n\
                not json at all\n";
    let job = accepted(post_file(&app, "application/x-ndjson", file).await, 4).await;
    let body = finished(&app, &job).await;
    assert_eq!(body["state"], "failed", "{body}");
    assert_eq!(body["attempts"], 1, "invalid input is not retried");
    assert_eq!(body["counts"], json!({"created": 0, "skippedExisting": 0, "invalid": 3}));
    let errors = body["errors"].as_array().unwrap();
    let locations: Vec<&str> = errors.iter().map(|e| e["location"].as_str().unwrap()).collect();
    assert_eq!(locations, ["line 2", "line 3", "line 4"]);
    assert_eq!(errors[0]["reason"], "missing name");
    assert!(body["lastError"].as_str().unwrap().contains("3 invalid document(s); nothing was imported"));
    assert!(stored(&app).await.is_empty(), "the valid document was not loaded either");
}

#[tokio::test]
async fn unreadable_files_are_refused_up_front() {
    let Some(app) = spawn(|_| {}).await else { return };
    let (status, body) = status_json(post_file(&app, "application/octet-stream", "[{\"_id\": 1},").await).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().starts_with("The export file cannot be read"), "{body}");
    expect_detail(
        post_file(&app, "application/x-ndjson", "\n  \n").await,
        400,
        "The export file contains no documents",
    )
    .await;
    let binary = app.client.post(app.url(IMPORTS)).header("content-type", "application/octet-stream");
    let (status, body) = status_json(binary.body(vec![0xff, 0xfe, 0x00]).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().starts_with("The export file is not UTF-8"), "{body}");
}

#[tokio::test]
async fn job_ids_are_validated_and_unknown_jobs_are_404() {
    let Some(app) = spawn(|_| {}).await else { return };
    let body = expect_json(app.get("/api/v2/jobs/not-a-uuid").await, 422).await;
    assert_eq!(
        body,
        json!({"detail": [{"type": "uuid_parsing", "loc": ["path", "jobId"], "msg": "Input should be a valid UUID", "input": "not-a-uuid"}]})
    );
    expect_detail(app.get("/api/v2/jobs/6f9619ff-8b86-d011-b42d-00c04fc964ff").await, 404, "Job not found").await;
}

#[tokio::test]
async fn with_workers_disabled_a_job_stays_queued_for_a_worker_process() {
    let Some(app) = spawn(|c| c.jobs.workers_enabled = false).await else { return };
    let job = accepted(app.post_json(IMPORTS, &portfolios(3, "later")).await, 3).await;
    let body = expect_json(app.get(&job).await, 200).await;
    assert_eq!((body["state"].as_str(), body["attempts"].as_u64()), (Some("queued"), Some(0)));
    assert!(is_timestamp(body["nextRunAt"].as_str().unwrap()));
    assert_eq!(body["progress"], json!({"processed": 0, "total": 3}));
}

#[tokio::test]
async fn an_export_can_be_uploaded_as_a_multipart_form_file() {
    let Some(app) = spawn(|_| {}).await else { return };
    let form = |parts: &str| format!("{parts}--XyZ--\r\n");
    let note = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nmigration\r\n";
    let file = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"portfolio.json\"\r\n\
                Content-Type: application/json\r\n\r\n\
                {\"_id\": \"6740f1c2a1b2c3d4e5f60718\", \"name\": \"One\"}\n\
                {\"_id\": \"6740f1c2a1b2c3d4e5f60719\", \"name\": \"Two\"}\n\r\n";
    let content_type = "multipart/form-data; boundary=XyZ";
    let job = accepted(post_file(&app, content_type, form(&format!("{note}{file}"))).await, 2).await;
    let body = finished(&app, &job).await;
    assert_eq!(body["counts"], json!({"created": 2, "skippedExisting": 0, "invalid": 0}), "{body}");
    expect_detail(post_file(&app, content_type, form(note)).await, 400, "The multipart form has no \"file\" part")
        .await;
}

#[tokio::test]
async fn a_list_is_loaded_chunk_by_chunk_with_its_progress() {
    let Some(app) = spawn(|c| c.jobs.import_batch_size = 3).await else { return };
    let job = accepted(app.post_json(IMPORTS, &portfolios(10, "chunked")).await, 10).await;
    let body = finished(&app, &job).await;
    assert_eq!(body["state"], "succeeded", "{body}");
    assert_eq!(body["progress"], json!({"processed": 10, "total": 10}));
    assert_eq!(body["counts"], json!({"created": 10, "skippedExisting": 0, "invalid": 0}));
    let mut names: Vec<String> = stored(&app).await.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("chunked {i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "every chunk loaded once");
}

#[tokio::test]
async fn a_full_queue_is_refused_with_503_and_retry_after_before_the_body_is_read() {
    let Some(app) = spawn(|c| {
        c.jobs.workers_enabled = false;
        c.jobs.max_pending = 2;
    })
    .await
    else {
        return;
    };
    for _ in 0..2 {
        accepted(app.post_json(IMPORTS, &portfolios(1, "queued")).await, 1).await;
    }
    let refused = app.post_json(IMPORTS, &portfolios(1, "one too many")).await;
    assert_eq!(refused.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()).as_deref(), Some("30"));
    let (status, body) = status_json(refused).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("job queue is full"), "{body}");
}

#[tokio::test]
async fn a_compressed_upload_is_limited_by_its_decoded_size() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let Some(app) = spawn(|c| c.jobs.max_upload_bytes = 64 * 1024).await else { return };
    // 1 MiB of blank lines: a few kilobytes compressed, sixteen times the limit decoded.
    let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
    gzip.write_all(&vec![b'\n'; 1 << 20]).unwrap();
    let bomb = gzip.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let request = app.client.post(app.url(IMPORTS)).header("content-type", "application/x-ndjson");
    let response = request.header("content-encoding", "gzip").body(bomb).send().await.unwrap();
    expect_detail(response, 413, "Import body is larger than 65536 bytes (jobs.max_upload_bytes)").await;
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_is_408_not_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn(|c| c.reliability.body_read_timeout = Duration::from_millis(300)).await else { return };
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {IMPORTS} HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-ndjson\r\ncontent-length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"_id\": \"6740f1c2a1b2c3d4e5f60718\", \"name\": \"slow\"}\n").await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(stored(&app).await.is_empty());
}

#[tokio::test]
async fn a_refusal_found_early_is_answered_without_waiting_for_the_rest_of_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn(|c| {
        c.jobs.import_max_portfolios = 2;
        c.reliability.body_read_timeout = Duration::from_secs(20);
    })
    .await
    else {
        return;
    };
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {IMPORTS} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(br#"[{"name": "a"}, {"name": "b"}, {"name": "c"},"#).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
