//! Three `portfolio-service serve` processes on loopback ports, sharing one PostgreSQL schema
//! and one Redis: writes through any replica are seen through the others (caches included),
//! optimistic locking holds across replicas, and every replica stops cleanly on SIGTERM.

use futures::future::join_all;
use pfs_redis::testing::RedisProcess;
use pfs_storage_postgres::testing::TestSchema;
use pfs_test_support::{ServiceCommand, ServiceProcess, eventually};
use serde_json::{Value, json};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_portfolio-service");

/// One replica on the shared schema and Redis, not yet waited on.
fn replica(database_url: &str, redis_url: &str) -> ServiceProcess {
    ServiceCommand::new(BIN)
        .arg("serve")
        .env("PORTFOLIO_DATABASE_URL", database_url)
        .env("PORTFOLIO_REDIS_URL", redis_url)
        .env("PORTFOLIO_DATABASE__MIGRATE_ON_START", "false")
        .env("PORTFOLIO_LOG_LEVEL", "warn")
        .spawn()
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_writes_locks_and_shut_down_cleanly() {
    let schema = TestSchema::create().await;
    let redis = RedisProcess::start();
    let migrated = ServiceCommand::new(BIN).args(["migrate", "up"]).env("PORTFOLIO_DATABASE_URL", schema.url()).run();
    let migrated = migrated.await;
    assert!(migrated.status.success(), "migrate up: {migrated:?}");

    let mut replicas: Vec<ServiceProcess> = (0..3).map(|_| replica(&schema.url(), &redis.url())).collect();
    let client = reqwest::Client::new();
    for replica in &replicas {
        eventually(Duration::from_secs(20), "replica ready with Redis connected", async || {
            let Ok(response) = client.get(replica.url("/health/detailed")).send().await else { return false };
            let body: Value = response.json().await.unwrap_or_default();
            body["checks"]["redis"]["status"] == "connected"
        })
        .await;
    }
    let (a, b, c) = (&replicas[0], &replicas[1], &replicas[2]);

    // A write through one replica is visible through the others, even with warm caches.
    let created: Value = client
        .post(a.url("/api/v1/portfolios"))
        .json(&json!({"name": "Shared"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["portfolioId"].as_str().unwrap().to_owned();
    for replica in [b, c] {
        assert_eq!(get(&client, replica.url(&format!("/api/v1/portfolio/{id}"))).await, (200, created.clone()));
        assert_eq!(
            get(&client, replica.url("/api/v2/portfolios?name=shared")).await.1["pagination"]["totalElements"],
            1
        );
    }
    let put = json!({"portfolioId": id, "name": "Renamed", "version": 1});
    assert_eq!(client.put(a.url(&format!("/api/v1/portfolio/{id}"))).json(&put).send().await.unwrap().status(), 200);
    let mut slowest = Duration::ZERO;
    for replica in [b, c] {
        let took = eventually(Duration::from_secs(1), "update visible on another replica", async || {
            get(&client, replica.url(&format!("/api/v1/portfolio/{id}"))).await.1["version"] == 2
        })
        .await;
        slowest = slowest.max(took);
        let found = get(&client, replica.url("/api/v2/portfolios?name=renamed")).await.1;
        assert_eq!(found["pagination"]["totalElements"], 1, "search pages were invalidated too");
    }
    println!("slowest cross-replica visibility: {slowest:?}");

    // Bulk through one replica, counted through the others.
    let batch: Vec<Value> = (0..20).map(|i| json!({"name": format!("bulk {i}")})).collect();
    assert_eq!(client.post(b.url("/api/v2/portfolios")).json(&batch).send().await.unwrap().status(), 201);
    for replica in [a, c] {
        eventually(Duration::from_secs(1), "bulk visible", async || {
            get(&client, replica.url("/api/v2/portfolios?name_like=bulk")).await.1["pagination"]["totalElements"] == 20
        })
        .await;
    }

    // Optimistic locking across replicas: of three concurrent writers, exactly one wins.
    for round in 0..10 {
        let p: Value = client
            .post(a.url("/api/v1/portfolios"))
            .json(&json!({"name": format!("race {round}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pid = p["portfolioId"].as_str().unwrap().to_owned();
        let attempts = [a, b, c].map(|replica| {
            let body = json!({"portfolioId": pid, "name": replica.url(""), "version": 1});
            client.put(replica.url(&format!("/api/v1/portfolio/{pid}"))).json(&body).send()
        });
        let mut statuses: Vec<u16> =
            join_all(attempts).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409, 409], "round {round}");
    }

    // Delete through one replica: gone everywhere.
    let deleted = client.delete(c.url(&format!("/api/v1/portfolio/{id}?version=2"))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    for replica in [a, b] {
        eventually(Duration::from_secs(1), "delete visible", async || {
            get(&client, replica.url(&format!("/api/v1/portfolio/{id}"))).await.0 == 404
        })
        .await;
    }

    // The contract's error answers are the same through every replica.
    for replica in &replicas {
        assert_eq!(
            get(&client, replica.url("/api/v1/portfolio/nope")).await,
            (404, json!({"detail": "Portfolio not found"}))
        );
        let both = get(&client, replica.url("/api/v2/portfolios?name=a&name_like=b")).await;
        assert_eq!(both, (400, json!({"detail": "Only one search parameter allowed: name or name_like"})));
    }

    for replica in &mut replicas {
        assert!(replica.terminate().await.success(), "clean exit on SIGTERM");
    }
}
