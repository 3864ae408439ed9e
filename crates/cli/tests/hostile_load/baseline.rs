//! The yardstick the other findings are read against: ordinary traffic in the production
//! profile holds few megabytes and returns its connections.

use crate::support::{assert_within_budget, production};
use pfs_test_support::reqwest;

#[tokio::test]
async fn ordinary_traffic_stays_far_under_the_budget_and_closes_its_connections() {
    let service = production(&[]).await;
    let at_rest = service.footprint();
    let client = reqwest::Client::new();
    for i in 0..500 {
        let created = client
            .post(service.url("/api/v1/portfolios"))
            .json(&serde_json::json!({ "name": format!("portfolio {i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    assert_eq!(client.get(service.url("/api/v1/portfolios")).send().await.unwrap().status(), 200);
    drop(client);
    assert_within_budget(&service, "500 creates and a list");
    let after = service.footprint();
    assert!(after.rss < at_rest.rss + (16 << 20), "500 small portfolios grew RSS by more than 16 MiB: {at_rest:?} -> {after:?}");
    pfs_test_support::eventually(std::time::Duration::from_secs(5), "client sockets closed", async || {
        service.footprint().sockets <= at_rest.sockets
    })
    .await;
}
