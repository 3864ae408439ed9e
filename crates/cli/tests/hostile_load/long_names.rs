//! Memory bounded by bytes, not by counts. Before, a name could be as long as the body limit:
//! 30 gzip uploads of 30 KB (each a 1 MB name) added 54 MB that never went away, and
//! `?limit=20` then answered 19 MB. Names are now refused past `limits.max_name_bytes`; and
//! where an operator raises that limit, the read cache and the event history still hold no
//! more than their byte budgets (`cache.max_bytes`, `events.history_max_bytes`).

use crate::support::{MEMORY_BUDGET, assert_within_budget, production};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_long_names_allowed_the_cache_and_history_stay_within_their_byte_budgets() {
    // 200 portfolios of 256 KiB names: 50 MiB of names, each read by id, and every one of them
    // on a cached search page, and in the event history. Counted by entries, the cache (10,000
    // portfolios, 50,000 page items) and the history (50,000 events) would hold all of it,
    // three times over.
    let service = production(&[("PORTFOLIO_LIMITS__MAX_NAME_BYTES", "262144")]).await;
    let client = reqwest::Client::new();
    let before = service.footprint();
    let mut ids = Vec::new();
    for batch in 0..67 {
        let items: Vec<Value> =
            (0..3).map(|i| json!({ "name": format!("{batch}-{i}{}", "m".repeat(262_100)) })).collect();
        let response = client.post(service.url("/api/v2/portfolios")).json(&items).send().await.unwrap();
        assert_eq!(response.status(), 201, "batch {batch}");
        let created: Vec<Value> = response.json().await.unwrap();
        ids.extend(created.iter().map(|p| p["portfolioId"].as_str().unwrap().to_owned()));
    }
    for id in &ids {
        let response = client.get(service.url(&format!("/api/v1/portfolio/{id}"))).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    for page in 0..21 {
        let url = service.url(&format!("/api/v2/portfolios?limit=10&offset={}", page * 10));
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let after = service.footprint();
    eprintln!("long names allowed: before {before:?}, after {after:?}");
    // The budgets: 32 MiB of cache and 16 MiB of history, plus what the allocator keeps.
    assert!(
        after.rss < before.rss + (72 << 20),
        "RSS grew {:.1} -> {:.1} MiB holding 50 MiB of names",
        mib(before.rss),
        mib(after.rss)
    );
    assert!(after.peak_rss < MEMORY_BUDGET, "peak {:.1} MiB", mib(after.peak_rss));
    assert_within_budget(&service, "200 portfolios of 256 KiB names, each read and listed");
}
