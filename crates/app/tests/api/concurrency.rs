//! Atomic version-checked writes under concurrency, and bulk all-or-nothing (decisions on §3.4, §4.2).

use crate::helpers::*;
use futures::future::join_all;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_with_the_same_version_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("contended").await["portfolioId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/portfolio/{id}");
    let attempts = (0..12).map(|i| {
        let body = json!({ "portfolioId": id, "name": format!("writer {i}"), "version": 1 });
        let (app, path) = (&app, &path);
        async move { status_json(app.put_json(path, &body).await).await }
    });
    let results = join_all(attempts).await;
    let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*status, body), (409, &json!({ "detail": "Version conflict" })));
    }
    let stored = expect_json(app.get(&path).await, 200).await;
    assert_eq!(stored["version"], 2);
    assert_eq!(&stored, winners[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_write_loops_lose_no_update() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("counter").await["portfolioId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/portfolio/{id}");
    let writers = (0..8).map(|i| {
        let (app, path, id) = (&app, &path, &id);
        async move {
            loop {
                let current = expect_json(app.get(path).await, 200).await;
                let body = json!({ "portfolioId": id, "name": format!("w{i}"), "version": current["version"] });
                match status_json(app.put_json(path, &body).await).await {
                    (200, _) => return,
                    (409, _) => continue,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    });
    join_all(writers).await;
    assert_eq!(expect_json(app.get(&path).await, 200).await["version"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_remove_the_portfolio_exactly_once() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("once").await["portfolioId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/portfolio/{id}?version=1");
    let statuses: Vec<u16> = join_all((0..8).map(|_| async { app.delete(&path).await.status().as_u16() })).await;
    assert_eq!(statuses.iter().filter(|&&s| s == 204).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 204 || s == 404 || s == 409), "{statuses:?}");
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_put_racing_a_delete_never_resurrects_the_portfolio() {
    let app = TestApp::spawn().await;
    for round in 0..15 {
        let id = app.create_portfolio(&format!("race {round}")).await["portfolioId"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/portfolio/{id}");
        let body = json!({ "portfolioId": id, "name": "updated", "version": 1 });
        let delete_path = format!("{path}?version=1");
        let (put, delete) = tokio::join!(app.put_json(&path, &body), app.delete(&delete_path));
        let (put, delete) = (put.status().as_u16(), delete.status().as_u16());
        let after = app.get(&path).await.status().as_u16();
        match (put, delete) {
            (200, 409) => assert_eq!(after, 200, "round {round}"),
            (404 | 409, 204) => assert_eq!(after, 404, "round {round}: resurrected"),
            other => panic!("round {round}: impossible outcome {other:?}"),
        }
        if after == 200 {
            assert_eq!(app.delete(&format!("{path}?version=2")).await.status(), 204);
        }
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_land_with_distinct_ids() {
    let app = TestApp::spawn().await;
    let single = join_all((0..30).map(|i| {
        let app = &app;
        async move { app.post_json("/api/v1/portfolios", &json!({ "name": format!("s{i}") })).await }
    }))
    .await;
    let batches = join_all((0..5).map(|b| {
        let names: Vec<String> = (0..20).map(|i| format!("b{b}-{i}")).collect();
        let body = bulk_body(&names);
        let app = &app;
        async move { bulk(app, &body).await }
    }))
    .await;
    assert!(single.iter().chain(batches.iter()).all(|r| r.status() == 201));
    let mut all = ids(&list_all(&app).await);
    assert_eq!(all.len(), 130);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 130, "ids must be unique");
}

#[tokio::test]
async fn rejected_bulk_requests_insert_nothing() {
    let app = TestApp::spawn().await;
    let existing = app.create_portfolio("pre-existing").await;
    let many: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    let mut bad_item: Vec<Value> = (0..5).map(|i| json!({ "name": format!("v{i}") })).collect();
    bad_item.push(json!({ "name": "late", "version": "x" }));
    let rejected = [
        (json!([]), 400),
        (bulk_body(&many), 400),
        (bulk_body(&["new one", "other", "NEW ONE "]), 400),
        (Value::Array(bad_item), 422),
        (json!([{ "name": "fine" }, { "name": "bad", "dateCreated": "yesterday" }]), 422),
        (json!({ "name": "object" }), 422),
    ];
    for (body, status) in rejected {
        let (actual, response) = status_json(bulk(&app, &body).await).await;
        assert_eq!(actual, status, "{response}");
        assert_eq!(list_all(&app).await, json!([existing]), "after a {status}");
        assert_eq!(search(&app, "").await["pagination"]["totalElements"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_during_bulk_inserts_see_whole_batches_only() {
    let app = TestApp::spawn().await;
    let writer = async {
        for b in 0..10 {
            let names: Vec<String> = (0..50).map(|i| format!("batch{b} {i}")).collect();
            assert_eq!(bulk(&app, &bulk_body(&names)).await.status(), 201);
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        for _ in 0..40 {
            let total = search(&app, "limit=1").await["pagination"]["totalElements"].as_u64().unwrap();
            seen.push(total);
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    assert!(seen.iter().all(|total| total % 50 == 0), "partial batch visible: {seen:?}");
    assert_eq!(stored_count(&app).await, 500);
}
