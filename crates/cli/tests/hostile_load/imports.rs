//! Imports: the upload streams into the queue in bounded chunks, so a large (or small but
//! highly compressed) body does not grow memory with its size, and a body that decodes past
//! `jobs.max_upload_bytes` is refused once that much is decoded.

use crate::support::{assert_within_budget, production};
use flate2::{Compression, write::GzEncoder};
use pfs_test_support::reqwest;
use std::io::Write;
use std::time::Duration;

const IMPORTS: &str = "/api/v2/portfolios/imports";

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(plain).unwrap();
    encoder.finish().unwrap()
}

/// A JSON list of `count` portfolios with names of about `name_bytes`, as gzip.
fn compressed_list(count: usize, name_bytes: usize) -> (Vec<u8>, usize) {
    let filler = "x".repeat(name_bytes);
    let mut plain = Vec::with_capacity(count * (name_bytes + 32));
    plain.push(b'[');
    for i in 0..count {
        if i > 0 {
            plain.push(b',');
        }
        write!(plain, "{{\"name\":\"{i:06} {filler}\"}}").unwrap();
    }
    plain.push(b']');
    (gzip(&plain), plain.len())
}

#[tokio::test]
async fn a_30_mib_import_from_a_small_gzip_stays_within_the_budget() {
    // The test binary is a debug build on a shared machine: give the upload time to be read
    // (about 6 s here for 30 MB; the release build is many times faster). Loading 15,000
    // portfolios of 2 KB publishes 15,000 events: the production history holds them only up to
    // its byte bound (`events.history_max_bytes`), so the peak includes that too.
    let service = production(&[
        ("PORTFOLIO_RELIABILITY__BODY_READ_TIMEOUT", "120s"),
        ("PORTFOLIO_SERVER__REQUEST_TIMEOUT", "150s"),
        ("PORTFOLIO_IDEMPOTENCY__LEASE", "160s"),
    ])
    .await;
    let before = service.footprint();
    let (body, decoded) = compressed_list(15_000, 2_000);
    let started = std::time::Instant::now();
    assert!(decoded > 30_000_000 && body.len() < 1 << 20, "{} bytes decoding to {decoded}", body.len());
    let client = reqwest::Client::new();
    let response = client
        .post(service.url(IMPORTS))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    eprintln!("upload answered in {:?}", started.elapsed());
    let accepted: serde_json::Value = response.json().await.unwrap();
    assert_eq!(accepted["total"], 15_000);
    let received = service.footprint();
    let job = service.url(&format!("/api/v2/jobs/{}", accepted["jobId"].as_str().unwrap()));
    pfs_test_support::eventually(Duration::from_secs(60), "the import finished", async || {
        let status: serde_json::Value = client.get(&job).send().await.unwrap().json().await.unwrap();
        status["state"] == "succeeded"
    })
    .await;
    let loaded = service.footprint();
    eprintln!(
        "import of {decoded} bytes: RSS {:.1} MiB at rest, {:.1} MiB after the upload, {:.1} MiB after loading, peak {:.1} MiB",
        before.rss_mib(),
        received.rss_mib(),
        loaded.rss_mib(),
        loaded.peak_rss as f64 / f64::from(1 << 20)
    );
    assert_within_budget(&service, "a 30 MiB import");
    // The import's own working set (about 40 MiB in this debug build, whatever the upload's
    // size) plus what the 15,000 events fill of the 8 MiB history and the read cache.
    assert!(
        loaded.peak_rss < before.rss + (64 << 20),
        "reading and loading {decoded} bytes raised peak RSS by more than 64 MiB: {before:?} -> {loaded:?}"
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_once_the_decoded_limit_is_reached() {
    let service = production(&[]).await;
    let before = service.footprint();
    // 256 MiB of blank lines: about 250 KiB compressed, eight times the 32 MiB default limit.
    let bomb = gzip(&vec![b'\n'; 256 << 20]);
    assert!(bomb.len() < 1 << 20);
    let response = reqwest::Client::new()
        .post(service.url(IMPORTS))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("jobs.max_upload_bytes"), "{body}");
    let after = service.footprint();
    eprintln!("decompression bomb: RSS {:.1} -> {:.1} MiB", before.rss_mib(), after.rss_mib());
    assert_within_budget(&service, "a decompression bomb");
    assert!(
        after.peak_rss < before.rss + (16 << 20),
        "the bomb raised peak RSS by 16 MiB or more: {before:?} -> {after:?}"
    );
}
