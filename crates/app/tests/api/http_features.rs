//! HTTP features beyond the original: compression both ways, ETags with 304s, per-route
//! caching, and HTTP/2 without TLS (h2c).

use pfs_test_support::{TestApp, json};
use std::io::{Read, Write};

async fn seed(app: &TestApp, count: usize) {
    let batch: Vec<_> = (0..count).map(|i| json!({"name": format!("Compressible Portfolio Name {i}")})).collect();
    assert_eq!(app.post_json("/api/v2/portfolios", &serde_json::Value::Array(batch)).await.status(), 201);
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn large_responses_are_compressed_as_the_client_asks_and_decode_to_the_same_json() {
    let app = TestApp::spawn().await;
    seed(&app, 40).await;
    let plain = get_with(&app, "/api/v2/portfolios", &[]).await;
    assert_eq!(header(&plain, "content-encoding"), None);
    let plain: serde_json::Value = plain.json().await.unwrap();

    for coding in ["gzip", "br", "zstd"] {
        let response = get_with(&app, "/api/v2/portfolios", &[("accept-encoding", coding)]).await;
        assert_eq!(header(&response, "content-encoding").as_deref(), Some(coding));
        assert!(header(&response, "vary").is_some_and(|v| v.contains("accept-encoding")));
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.len() < serde_json::to_vec(&plain).unwrap().len() / 2, "{coding} actually compresses");
        if coding == "gzip" {
            let mut decoded = String::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut decoded).unwrap();
            assert_eq!(serde_json::from_str::<serde_json::Value>(&decoded).unwrap(), plain);
        }
        if coding == "zstd" {
            assert_eq!(bytes[..4], [0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
        }
    }
}

#[tokio::test]
async fn small_responses_are_not_compressed() {
    let app = TestApp::spawn().await;
    let response = get_with(&app, "/health/live", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&response, "content-encoding"), None);
}

#[tokio::test]
async fn gzip_request_bodies_are_accepted() {
    let app = TestApp::spawn().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(br#"{"name": "Zipped"}"#).unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/portfolios"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["name"], "Zipped");
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_until_the_resource_changes() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Tagged").await;
    let id = created["portfolioId"].as_str().unwrap();
    let path = format!("/api/v1/portfolio/{id}");
    let first = app.get(&path).await;
    let tag = header(&first, "etag").expect("strong etag");
    assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");
    assert_eq!(header(&first, "cache-control").as_deref(), Some("no-cache"));

    let again = get_with(&app, &path, &[("if-none-match", &tag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag").as_deref(), Some(tag.as_str()));
    assert!(again.bytes().await.unwrap().is_empty());

    let put = json!({"portfolioId": id, "name": "Changed", "version": 1});
    assert_eq!(app.put_json(&path, &put).await.status(), 200);
    let changed = get_with(&app, &path, &[("if-none-match", &tag)]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag").as_deref(), Some(tag.as_str()));
}

#[tokio::test]
async fn each_content_coding_has_its_own_strong_tag_and_either_form_revalidates() {
    let app = TestApp::spawn().await;
    seed(&app, 40).await;
    let identity = header(&app.get("/api/v2/portfolios").await, "etag").unwrap();
    let gzip = get_with(&app, "/api/v2/portfolios", &[("accept-encoding", "gzip")]).await;
    let gzip_tag = header(&gzip, "etag").unwrap();
    assert_eq!(gzip_tag, format!("\"{}-gzip\"", identity.trim_matches('"')));
    let revalidated =
        get_with(&app, "/api/v2/portfolios", &[("accept-encoding", "gzip"), ("if-none-match", &gzip_tag)]).await;
    assert_eq!(revalidated.status(), 304);
    assert_eq!(header(&revalidated, "etag"), Some(gzip_tag));
}

#[tokio::test]
async fn writes_and_probes_are_never_stored_but_docs_assets_are_cacheable() {
    let app = TestApp::spawn().await;
    let created = app.post_json("/api/v1/portfolios", &json!({"name": "x"})).await;
    assert_eq!(header(&created, "cache-control").as_deref(), Some("no-cache, no-store, must-revalidate"));
    assert_eq!(
        header(&app.get("/health/ready").await, "cache-control").as_deref(),
        Some("no-cache, no-store, must-revalidate")
    );
    let asset = app.get("/docs/swagger-ui.css").await;
    assert_eq!(asset.status(), 200);
    assert_eq!(header(&asset, "cache-control").as_deref(), Some("public, max-age=86400"));
}

#[tokio::test]
async fn http2_without_tls_is_served_on_the_same_port() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client.get(app.url("/api/v2/portfolios")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cache_warming_serves_the_first_reads_after_a_restart_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warm.db").display());
    let database = url.clone();
    let first = TestApp::builder().with_config(move |c| c.database.url = database).spawn().await;
    let created = first.create_portfolio("Warm").await;
    first.stop().await.unwrap();

    let app = TestApp::builder()
        .with_config(move |c| {
            c.database.url = url;
            c.cache.warm_pages = 1;
        })
        .spawn()
        .await;
    let counters = async || {
        let health: serde_json::Value = app.get("/health/detailed").await.json().await.unwrap();
        (health["checks"]["cache"]["hits"].as_u64().unwrap(), health["checks"]["cache"]["misses"].as_u64().unwrap())
    };
    let before = counters().await;
    let path = format!("/api/v1/portfolio/{}", created["portfolioId"].as_str().unwrap());
    assert_eq!(app.get(&path).await.status(), 200);
    let after = counters().await;
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 0), "the first read after start is a hit");
}

#[tokio::test]
async fn unknown_docs_files_are_404s_that_are_not_cached() {
    let app = TestApp::spawn().await;
    let missing = app.get("/docs/nope.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "cache-control").as_deref(), Some("no-cache, no-store, must-revalidate"));
}

#[tokio::test]
async fn bulk_lists_far_over_the_limit_are_refused_without_validating_each_item() {
    let app = TestApp::spawn().await;
    let items: Vec<_> = (0..1001).map(|i| if i % 2 == 0 { json!({}) } else { json!({"name": 1}) }).collect();
    let response = app.post_json("/api/v2/portfolios", &serde_json::Value::Array(items)).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "Request cannot contain more than 100 portfolios");
}

#[tokio::test]
async fn a_long_v1_list_streams_compressed_without_an_etag_and_a_short_one_keeps_both() {
    let app = TestApp::spawn().await;
    seed(&app, 3).await;
    let short = app.get("/api/v1/portfolios").await;
    assert!(header(&short, "etag").is_some() && header(&short, "content-length").is_some(), "one body under 64 KiB");
    // 600 portfolios of ~220 bytes: a list past 64 KiB, sent in chunks as it is read.
    for round in 0..6 {
        let batch: Vec<_> = (0..100).map(|i| json!({"name": format!("{round}-{i} {}", "s".repeat(200))})).collect();
        assert_eq!(app.post_json("/api/v2/portfolios", &serde_json::Value::Array(batch)).await.status(), 201);
    }
    let plain = app.get("/api/v1/portfolios").await;
    assert_eq!(plain.status(), 200);
    assert_eq!((header(&plain, "etag"), header(&plain, "content-length")), (None, None), "streamed");
    assert_eq!(header(&plain, "content-type").as_deref(), Some("application/json"));
    let plain = plain.bytes().await.unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&plain).unwrap();
    assert_eq!(listed.len(), 603);
    let ids: Vec<&str> = listed.iter().map(|p| p["portfolioId"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "creation (id) order");

    let gzip = get_with(&app, "/api/v1/portfolios", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzip.bytes().await.unwrap()[..]).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, plain, "the same bytes, compressed as they stream");
}
