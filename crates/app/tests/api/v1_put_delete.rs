//! v1 update and delete with optimistic locking (contract §3.4–3.5).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

async fn get_one(app: &TestApp, id: &str) -> Value {
    expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await
}

fn id_of(portfolio: &Value) -> String {
    portfolio["portfolioId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn put_renames_increments_the_version_and_keeps_the_date_when_none_is_sent() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Before").await;
    let id = id_of(&created);
    for body in [
        json!({ "portfolioId": id, "name": "After", "version": 1 }),
        json!({ "portfolioId": id, "name": "After Again", "dateCreated": null, "version": 2 }),
    ] {
        let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 200).await;
        assert_portfolio(&updated);
        assert_eq!(updated["portfolioId"], id.as_str());
        assert_eq!(updated["name"], body["name"]);
        assert_eq!(updated["version"], body["version"].as_i64().unwrap() + 1);
        assert_eq!(updated["dateCreated"], created["dateCreated"]);
        assert_eq!(get_one(&app, &id).await, updated);
    }
}

#[tokio::test]
async fn put_can_change_the_date_which_is_normalised_to_utc_milliseconds() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("Dated").await);
    let body =
        json!({ "portfolioId": id, "name": "Dated", "dateCreated": "2023-05-06T07:08:09.123456+02:00", "version": 1 });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 200).await;
    assert_eq!(updated["dateCreated"], "2023-05-06T05:08:09.123Z");
    assert_eq!(get_one(&app, &id).await, updated);
}

#[tokio::test]
async fn put_accepts_any_name_and_ignores_a_mismatched_body_id() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("Original").await);
    let other = id_of(&app.create_portfolio("Other").await);
    let body = json!({ "portfolioId": other, "name": "", "version": 1, "unknown": true });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 200).await;
    assert_eq!(updated["portfolioId"], id.as_str());
    assert_eq!(updated["name"], "");
    assert_eq!(get_one(&app, &other).await["name"], "Other");
}

#[tokio::test]
async fn put_with_a_stale_version_is_a_conflict_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Locked").await;
    let id = id_of(&created);
    for version in [0, 2, -1, 1_000_000] {
        let body = json!({ "portfolioId": id, "name": "Changed", "version": version });
        expect_detail(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 409, "Version conflict").await;
    }
    assert_eq!(get_one(&app, &id).await, created);
}

#[tokio::test]
async fn put_on_an_unknown_or_malformed_id_is_404() {
    let app = TestApp::spawn().await;
    for id in ["ffffffffffffffffffffffff", "abc", "zzzzzzzzzzzzzzzzzzzzzzzz"] {
        let body = json!({ "portfolioId": id, "name": "x", "version": 1 });
        let response = app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await;
        expect_detail(response, 404, "Portfolio not found").await;
    }
}

#[tokio::test]
async fn put_validates_the_body_before_looking_up_the_id() {
    let app = TestApp::spawn().await;
    let response = app.put_json("/api/v1/portfolio/abc", &json!({})).await;
    let body = expect_json(response, 422).await;
    assert_eq!(
        body,
        json!({ "detail": [
            { "type": "missing", "loc": ["body", "portfolioId"], "msg": "Field required", "input": {} },
            { "type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": {} },
            { "type": "missing", "loc": ["body", "version"], "msg": "Field required", "input": {} },
        ] })
    );
}

#[tokio::test]
async fn put_with_a_null_version_is_422_not_a_default() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("x").await);
    let body = json!({ "portfolioId": id, "name": "y", "version": null });
    let errors = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 422).await;
    assert_eq!(errors["detail"][0]["loc"], json!(["body", "version"]));
    assert_eq!(errors["detail"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn put_cannot_increment_past_the_largest_version_and_leaves_it_stored() {
    let app = TestApp::spawn().await;
    let max = i64::MAX;
    let created = create_with(&app, json!({ "name": "Max", "version": max })).await;
    assert_eq!(created["version"], max);
    let id = id_of(&created);
    let body = json!({ "portfolioId": id, "name": "Overflow", "version": max });
    let (status, _) = status_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await).await;
    assert_eq!(status, 422);
    assert_eq!(get_one(&app, &id).await, created);
}

#[tokio::test]
async fn put_with_the_largest_version_against_an_older_stored_version_is_a_conflict() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Small").await;
    let id = id_of(&created);
    let body = json!({ "portfolioId": id, "name": "Huge", "version": i64::MAX });
    let response = app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await;
    expect_detail(response, 409, "Version conflict").await;
    assert_eq!(get_one(&app, &id).await, created);
}

#[tokio::test]
async fn delete_with_the_current_version_answers_204_with_an_empty_body() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("Doomed").await);
    let response = app.delete(&format!("/api/v1/portfolio/{id}?version=1")).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    expect_detail(app.get(&format!("/api/v1/portfolio/{id}")).await, 404, "Portfolio not found").await;
    expect_detail(app.delete(&format!("/api/v1/portfolio/{id}?version=1")).await, 404, "Portfolio not found").await;
    assert_eq!(list_all(&app).await, json!([]));
}

#[tokio::test]
async fn delete_with_a_wrong_version_is_a_conflict_and_keeps_the_portfolio() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Kept").await;
    let id = id_of(&created);
    for version in ["0", "2", "-1"] {
        let response = app.delete(&format!("/api/v1/portfolio/{id}?version={version}")).await;
        expect_detail(response, 409, "Version conflict").await;
    }
    assert_eq!(get_one(&app, &id).await, created);
}

#[tokio::test]
async fn delete_after_an_update_needs_the_incremented_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("Versioned").await);
    let body = json!({ "portfolioId": id, "name": "Versioned", "version": 1 });
    expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &body).await, 200).await;
    expect_detail(app.delete(&format!("/api/v1/portfolio/{id}?version=1")).await, 409, "Version conflict").await;
    let response = app.delete(&format!("/api/v1/portfolio/{id}?version=2")).await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn delete_on_unknown_or_malformed_ids_is_404_and_other_portfolios_survive() {
    let app = TestApp::spawn().await;
    let survivor = app.create_portfolio("Survivor").await;
    for id in ["ffffffffffffffffffffffff", "abc", "123"] {
        let response = app.delete(&format!("/api/v1/portfolio/{id}?version=1")).await;
        expect_detail(response, 404, "Portfolio not found").await;
    }
    assert_eq!(list_all(&app).await, json!([survivor]));
}

#[tokio::test]
async fn delete_accepts_an_upper_case_id_and_a_plus_signed_version() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("Upper").await).to_ascii_uppercase();
    let response = app.delete(&format!("/api/v1/portfolio/{id}?version=%2B1")).await;
    assert_eq!(response.status(), 204);
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn put_through_an_upper_case_id_updates_the_same_portfolio() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_portfolio("lower").await);
    let upper = id.to_ascii_uppercase();
    let body = json!({ "portfolioId": upper, "name": "via upper", "version": 1 });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{upper}"), &body).await, 200).await;
    assert_eq!(updated["portfolioId"], id.as_str());
    assert_eq!(get_one(&app, &id).await, updated);
    assert_eq!(stored_count(&app).await, 1);
}
