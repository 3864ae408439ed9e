//! v2 bulk create (contract §4.2).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

#[tokio::test]
async fn bulk_creates_every_item_in_request_order_with_fresh_ids() {
    let app = TestApp::spawn().await;
    let wanted = ["Zulu", "alpha", "Mike"];
    let created = expect_json(bulk(&app, &bulk_body(&wanted)).await, 201).await;
    assert_eq!(names(&created), wanted);
    for item in created.as_array().unwrap() {
        assert_portfolio(item);
        assert_eq!(item["version"], 1);
        assert_recent(&item["dateCreated"]);
        let id = item["portfolioId"].as_str().unwrap();
        assert_eq!(&expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await, item);
    }
    let mut unique = ids(&created);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3);
    assert_eq!(stored_count(&app).await, 3);
}

#[tokio::test]
async fn bulk_keeps_a_zero_version_and_defaults_only_missing_or_null() {
    let app = TestApp::spawn().await;
    let body = json!([
        { "name": "zero", "version": 0 },
        { "name": "null", "version": null },
        { "name": "missing" },
        { "name": "seven", "version": 7 },
        { "name": "negative", "version": -2 },
    ]);
    let created = expect_json(bulk(&app, &body).await, 201).await;
    let versions: Vec<i64> = created.as_array().unwrap().iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [0, 1, 1, 7, -2]);
    let listed = list_all(&app).await;
    let stored: Vec<i64> = listed.as_array().unwrap().iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(stored, [0, 1, 1, 7, -2]);
}

#[tokio::test]
async fn bulk_normalises_supplied_dates_like_v1() {
    let app = TestApp::spawn().await;
    let body = json!([
        { "name": "offset", "dateCreated": "2024-01-15T10:30:00+05:00" },
        { "name": "naive", "dateCreated": "2024-01-15T10:30:00" },
        { "name": "date", "dateCreated": "2024-01-15" },
        { "name": "unix", "dateCreated": 1705314600 },
        { "name": "micros", "dateCreated": "2024-01-15T10:30:00.123999Z" },
        { "name": "null", "dateCreated": null },
    ]);
    let created = expect_json(bulk(&app, &body).await, 201).await;
    let dates: Vec<&Value> = created.as_array().unwrap().iter().map(|p| &p["dateCreated"]).collect();
    assert_eq!(
        dates[..5],
        [
            "2024-01-15T05:30:00.000Z",
            "2024-01-15T10:30:00.000Z",
            "2024-01-15T00:00:00.000Z",
            "2024-01-15T10:30:00.000Z",
            "2024-01-15T10:30:00.123Z",
        ]
    );
    assert_recent(dates[5]);
    assert_eq!(list_all(&app).await, created);
}

#[tokio::test]
async fn bulk_accepts_names_the_search_would_reject_and_names_already_stored() {
    let app = TestApp::spawn().await;
    app.create_portfolio("Existing").await;
    let long = "n".repeat(500);
    let wanted = ["Bad@Name!", "", long.as_str(), "EXISTING", "  spaced  "];
    let created = expect_json(bulk(&app, &bulk_body(&wanted)).await, 201).await;
    assert_eq!(names(&created), wanted);
    assert_eq!(search(&app, "name=existing").await["pagination"]["totalElements"], 2);
    assert_eq!(stored_count(&app).await, 6);
}

#[tokio::test]
async fn bulk_accepts_exactly_one_hundred_items_in_request_order() {
    let app = TestApp::spawn().await;
    let wanted: Vec<String> = (0..100).map(|i| format!("item {i:03}")).collect();
    let created = expect_json(bulk(&app, &bulk_body(&wanted)).await, 201).await;
    assert_eq!(names(&created), wanted);
    assert_eq!(stored_count(&app).await, 100);
}

#[tokio::test]
async fn bulk_with_no_items_is_400() {
    let app = TestApp::spawn().await;
    expect_detail(bulk(&app, &json!([])).await, 400, "Request must contain at least 1 portfolio").await;
}

#[tokio::test]
async fn bulk_with_more_than_one_hundred_items_is_400() {
    let app = TestApp::spawn().await;
    let wanted: Vec<String> = (0..101).map(|i| format!("item {i}")).collect();
    let response = bulk(&app, &bulk_body(&wanted)).await;
    expect_detail(response, 400, "Request cannot contain more than 100 portfolios").await;
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn bulk_validates_every_item_before_counting_them() {
    let app = TestApp::spawn().await;
    let mut items: Vec<Value> = (0..101).map(|i| json!({ "name": format!("item {i}") })).collect();
    items[50] = json!({ "name": 50 });
    let body = expect_json(bulk(&app, &Value::Array(items)).await, 422).await;
    let expected = json!({ "detail": [
        { "type": "string_type", "loc": ["body", 50, "name"], "msg": "Input should be a valid string", "input": 50 }
    ] });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn bulk_lists_each_duplicated_group_once_by_its_first_repeat() {
    let app = TestApp::spawn().await;
    let cases: &[(&[&str], &str)] = &[
        (&["A x", "a x", "B", "b", "A X"], "a x, b"),
        (&["x", "y", "Y", "X"], "Y, X"),
        (&["Alpha", " alpha "], " alpha "),
        (&["same", "other", "same"], "same"),
        (&["", "  "], "  "),
        (&["x", "\u{1c}X\u{a0}"], "\u{1c}X\u{a0}"),
        (&["Äpfel", "äPFEL"], "äPFEL"),
    ];
    for (wanted, listed) in cases {
        let response = bulk(&app, &bulk_body(wanted)).await;
        let message = format!("Duplicate portfolio names found in request: {listed}");
        expect_detail(response, 400, &message).await;
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn bulk_counts_before_looking_for_duplicates() {
    let app = TestApp::spawn().await;
    let wanted = vec!["dup"; 101];
    let response = bulk(&app, &bulk_body(&wanted)).await;
    expect_detail(response, 400, "Request cannot contain more than 100 portfolios").await;
}

#[tokio::test]
async fn bulk_ignores_client_ids_and_unknown_fields() {
    let app = TestApp::spawn().await;
    let forced = "aaaaaaaaaaaaaaaaaaaaaaaa";
    let body = json!([{ "portfolioId": forced, "name": "a", "colour": "red" }, { "portfolioId": forced, "name": "b" }]);
    let created = expect_json(bulk(&app, &body).await, 201).await;
    let got = ids(&created);
    assert!(got.iter().all(|id| id != forced), "{got:?}");
    assert_ne!(got[0], got[1]);
}

#[tokio::test]
async fn v1_list_returns_every_portfolio_without_paging() {
    let app = TestApp::spawn().await;
    for chunk in 0..2 {
        let wanted: Vec<String> = (0..100).map(|i| format!("c{chunk} {i}")).collect();
        expect_json(bulk(&app, &bulk_body(&wanted)).await, 201).await;
    }
    app.create_portfolio("last").await;
    let listed = list_all(&app).await;
    assert_eq!(listed.as_array().unwrap().len(), 201);
    assert_eq!(names(&listed).last().map(String::as_str), Some("last"));
}
