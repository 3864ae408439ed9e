//! `Idempotency-Key` records: a keyed request that fails validation stores nothing, so a
//! client cannot fill the disk with large error responses kept for a day.

use crate::support::production;
use flate2::{Compression, write::GzEncoder};
use pfs_test_support::{disk_usage, reqwest};
use std::io::Write;

#[tokio::test]
async fn keyed_requests_answered_with_large_422s_do_not_grow_the_database() {
    let service = production(&[]).await;
    let client = reqwest::Client::new();
    let created = client
        .post(service.url("/api/v1/portfolios"))
        .json(&serde_json::json!({ "name": "warm-up" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let before = disk_usage(service.data_dir());
    // 90 invalid items of 10 KB each: the 422 lists every one with its input (about 1 MB).
    let item = serde_json::json!({ "name": { "nested": "x".repeat(10_000) } });
    let body = serde_json::to_vec(&vec![item; 90]).unwrap();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&body).unwrap();
    let body = encoder.finish().unwrap();
    let mut answered = 0;
    for i in 0..40 {
        let response = client
            .post(service.url("/api/v2/portfolios"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("idempotency-key", format!("hostile-{i}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
        answered += response.bytes().await.unwrap().len();
    }
    let grown = disk_usage(service.data_dir()).saturating_sub(before);
    eprintln!("40 keyed 422s ({answered} bytes answered): the database grew by {grown} bytes");
    assert!(answered > 20 << 20, "the answers were large: {answered} bytes");
    assert!(grown < 1 << 20, "40 refused keyed requests grew the database by {grown} bytes");
}
