//! Client-supplied `dateCreated` parsing and its canonical rendering (contract §2.3, decisions).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

/// Client-supplied `dateCreated` inputs and their canonical UTC millisecond rendering.
const DATE_CASES: &[(&str, &str)] = &[
    (r#""2024-01-15T10:30:00Z""#, "2024-01-15T10:30:00.000Z"),
    (r#""2024-01-15T10:30:00+05:00""#, "2024-01-15T05:30:00.000Z"),
    (r#""2024-01-15T01:30:00-03:00""#, "2024-01-15T04:30:00.000Z"),
    (r#""2024-01-15T02:00:00+05:00""#, "2024-01-14T21:00:00.000Z"),
    (r#""2024-02-29T23:59:59.999-00:30""#, "2024-03-01T00:29:59.999Z"),
    (r#""2024-01-15T10:30:00""#, "2024-01-15T10:30:00.000Z"),
    (r#""2024-01-15 10:30:00Z""#, "2024-01-15T10:30:00.000Z"),
    (r#""2024-01-15""#, "2024-01-15T00:00:00.000Z"),
    (r#"1705314600"#, "2024-01-15T10:30:00.000Z"),
    (r#""1705314600""#, "2024-01-15T10:30:00.000Z"),
    (r#"1705314600.5"#, "2024-01-15T10:30:00.500Z"),
    (r#""1705314600.5""#, "2024-01-15T10:30:00.500Z"),
    (r#"0"#, "1970-01-01T00:00:00.000Z"),
    (r#"-1"#, "1969-12-31T23:59:59.000Z"),
    (r#""2024-01-15T10:30:00.5Z""#, "2024-01-15T10:30:00.500Z"),
    (r#""9999-12-31T23:59:59.999Z""#, "9999-12-31T23:59:59.999Z"),
    (r#""0001-01-01T00:00:00Z""#, "0001-01-01T00:00:00.000Z"),
    (r#""2024-01-15T10:30:00.123456Z""#, "2024-01-15T10:30:00.123Z"),
    (r#""2024-01-15T10:30:00.999999Z""#, "2024-01-15T10:30:00.999Z"),
    (r#""2024-01-15T10:30:00.123456+02:00""#, "2024-01-15T08:30:00.123Z"),
];

#[tokio::test]
async fn create_normalises_client_dates_to_utc_milliseconds_in_post_and_get() {
    let app = TestApp::spawn().await;
    for (input, expected) in DATE_CASES {
        let date: Value = serde_json::from_str(input).unwrap();
        let response = app.post_json("/api/v1/portfolios", &json!({ "name": "dated", "dateCreated": date })).await;
        let (status, created) = status_json(response).await;
        assert_eq!(status, 201, "input {input}: {created}");
        assert_eq!(created["dateCreated"], *expected, "POST response for input {input}");
        let id = created["portfolioId"].as_str().unwrap();
        let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
        assert_eq!(fetched, created, "GET after POST for input {input}");
    }
}

#[tokio::test]
async fn create_with_null_date_uses_the_current_time() {
    let app = TestApp::spawn().await;
    let created = create_with(&app, json!({ "name": "now", "dateCreated": null })).await;
    assert_recent(&created["dateCreated"]);
}

#[tokio::test]
async fn create_rejects_unparseable_dates_with_422_on_the_date_field() {
    let app = TestApp::spawn().await;
    for date in [json!("not a date"), json!("2024-13-45T00:00:00Z"), json!("2024-02-30"), json!([]), json!({})] {
        let response = app.post_json("/api/v1/portfolios", &json!({ "name": "x", "dateCreated": date })).await;
        let body = expect_json(response, 422).await;
        let errors = body["detail"].as_array().expect("detail list");
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["loc"], json!(["body", "dateCreated"]), "{body}");
        assert_eq!(errors[0]["input"], date, "{body}");
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn a_date_changed_by_put_moves_the_portfolio_in_search_order() {
    let app = TestApp::spawn().await;
    let old = create_with(&app, json!({ "name": "old", "dateCreated": "2020-01-01" })).await;
    create_with(&app, json!({ "name": "new", "dateCreated": "2021-01-01" })).await;
    assert_eq!(names(&search(&app, "").await["portfolios"]), ["new", "old"]);
    let id = old["portfolioId"].as_str().unwrap();
    let body = json!({ "portfolioId": id, "name": "old", "dateCreated": "2022-01-01T00:00:00Z", "version": 1 });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 200).await;
    assert_eq!(updated["dateCreated"], "2022-01-01T00:00:00.000Z");
    assert_eq!(names(&search(&app, "").await["portfolios"]), ["old", "new"]);
    assert_eq!(names(&list_all(&app).await), ["old", "new"], "v1 list keeps creation order");
}

#[tokio::test]
async fn every_datetime_in_search_results_is_canonical() {
    let app = TestApp::spawn().await;
    for date in [json!("2024-01-15T10:30:00.1+01:00"), json!(1705314600), json!(null)] {
        create_with(&app, json!({ "name": "d", "dateCreated": date })).await;
    }
    let body = search(&app, "").await;
    let portfolios = body["portfolios"].as_array().unwrap();
    portfolios.iter().for_each(assert_portfolio);
    assert_recent(&portfolios[0]["dateCreated"]);
    let dates: Vec<&str> = portfolios[1..].iter().map(|p| p["dateCreated"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2024-01-15T10:30:00.000Z", "2024-01-15T09:30:00.100Z"]);
}
