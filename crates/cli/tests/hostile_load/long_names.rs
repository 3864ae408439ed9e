//! Memory bounded by bytes, not by counts. Before, a name could be as long as the body limit:
//! 30 gzip uploads of 30 KB (each a 1 MB name) added 54 MB that never went away, and
//! `?limit=20` then answered 19 MB. Names are now refused past `limits.max_name_bytes`, and
//! the read cache and the event history hold no more than their byte budgets
//! (`cache.max_bytes`, `events.history_max_bytes`) however many long names pass through.

use crate::support::{assert_within_budget, production};
use flate2::{Compression, write::GzEncoder};
use pfs_test_support::reqwest;
use serde_json::{Value, json};
use std::io::Write;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_names_in_small_gzip_uploads_are_refused_and_hold_nothing() {
    let service = production(&[]).await;
    let client = reqwest::Client::new();
    let before = service.footprint();
    for i in 0..30 {
        let body = json!({ "name": format!("{i}{}", "n".repeat(1_000_000)) }).to_string();
        let compressed = gzip(body.as_bytes());
        assert!(compressed.len() < 40_000, "a small upload: {} bytes", compressed.len());
        let response = client
            .post(service.url("/api/v1/portfolios"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(compressed)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "upload {i}");
        let detail: Value = response.json().await.unwrap();
        assert_eq!(detail["detail"][0]["type"], "string_too_long");
    }
    let page = client.get(service.url("/api/v2/portfolios?limit=20")).send().await.unwrap().bytes().await.unwrap();
    assert!(page.len() < 1024, "nothing was stored, so the page is small: {} bytes", page.len());
    let after = service.footprint();
    eprintln!("refused long names: ?limit=20 is {} bytes; before {before:?}, after {after:?}", page.len());
    assert!(
        after.rss < before.rss + (16 << 20),
        "30 refused uploads left RSS {:.1} -> {:.1} MiB",
        mib(before.rss),
        mib(after.rss)
    );
    assert_within_budget(&service, "30 uploads of megabyte names");
}

/// One round: 1,500 new portfolios with names just under the 4 KiB limit (15 bulk requests),
/// each read by id (filling the cache by id), then the 30 newest search pages of 50 (filling the
/// page cache); every create is also an event in the history.
async fn round(service: &pfs_test_support::ServiceProcess, client: &reqwest::Client, round: usize) {
    let mut ids = Vec::new();
    for batch in 0..15 {
        let items: Vec<Value> =
            (0..100).map(|i| json!({ "name": format!("{round}-{batch}-{i}-{}", "q".repeat(4_000)) })).collect();
        let response = client.post(service.url("/api/v2/portfolios")).json(&items).send().await.unwrap();
        assert_eq!(response.status(), 201, "round {round} batch {batch}");
        let created: Vec<Value> = response.json().await.unwrap();
        ids.extend(created.iter().map(|p| p["portfolioId"].as_str().unwrap().to_owned()));
    }
    for id in &ids {
        let response = client.get(service.url(&format!("/api/v1/portfolio/{id}"))).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    for page in 0..30 {
        let url = service.url(&format!("/api/v2/portfolios?limit=50&offset={}", page * 50));
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_at_the_limit_fill_the_cache_and_history_only_up_to_their_byte_budgets() {
    // Counted by entries, the cache (10,000 portfolios, 50,000 page items) and the production
    // history (50,000 events) would keep every one of these 6 MB rounds: memory would grow by
    // some 18 MB a round. Weighed by bytes (12 MiB of cache, 8 MiB of history) they are full
    // after two rounds, and later rounds replace entries instead of adding them.
    let service = production(&[]).await;
    let client = reqwest::Client::new();
    let start = service.footprint();
    round(&service, &client, 0).await;
    round(&service, &client, 1).await;
    let full = service.footprint();
    round(&service, &client, 2).await;
    round(&service, &client, 3).await;
    let after = service.footprint();
    eprintln!("names at the limit: start {start:?}, after two rounds {full:?}, after four {after:?}");
    assert!(
        after.rss < full.rss + (10 << 20),
        "two more rounds (12 MB of names) grew RSS {:.1} -> {:.1} MiB: the budgets do not hold",
        mib(full.rss),
        mib(after.rss)
    );
    assert_within_budget(&service, "6,000 portfolios with 4 KB names, each read and listed");
}
