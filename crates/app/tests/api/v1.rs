//! v1 list, get and create (contract §3.1–3.3, §2.2–2.3).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};

#[tokio::test]
async fn list_on_a_fresh_database_is_an_empty_array() {
    let app = TestApp::spawn().await;
    assert_eq!(list_all(&app).await, json!([]));
}

#[tokio::test]
async fn create_returns_201_with_the_four_portfolio_keys_and_server_defaults() {
    let app = TestApp::spawn().await;
    let created = create_with(&app, json!({ "name": "Tech Growth" })).await;
    assert_portfolio(&created);
    assert_eq!(created["name"], "Tech Growth");
    assert_eq!(created["version"], 1);
    assert_recent(&created["dateCreated"]);
}

#[tokio::test]
async fn a_created_portfolio_reads_back_identically_through_get_and_list() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Read Back").await;
    let id = created["portfolioId"].as_str().unwrap();
    let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
    assert_eq!(fetched, created);
    assert_eq!(list_all(&app).await, json!([created]));
}

#[tokio::test]
async fn list_returns_portfolios_in_creation_order_with_ascending_ids() {
    let app = TestApp::spawn().await;
    let wanted = ["zeta", "Alpha", "mid", "alpha"];
    for name in wanted {
        app.create_portfolio(name).await;
    }
    let listed = list_all(&app).await;
    assert_eq!(names(&listed), wanted);
    let ids = ids(&listed);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not ascending: {ids:?}");
    listed.as_array().unwrap().iter().for_each(assert_portfolio);
}

#[tokio::test]
async fn list_ignores_query_parameters() {
    let app = TestApp::spawn().await;
    for name in ["a", "b", "c"] {
        app.create_portfolio(name).await;
    }
    let listed = expect_json(app.get("/api/v1/portfolios?limit=1&offset=2&name=a").await, 200).await;
    assert_eq!(names(&listed), ["a", "b", "c"]);
}

#[tokio::test]
async fn create_defaults_missing_null_and_zero_versions_to_one_and_keeps_others() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "name": "missing" }), 1),
        (json!({ "name": "null", "version": null }), 1),
        (json!({ "name": "zero", "version": 0 }), 1),
        (json!({ "name": "five", "version": 5 }), 5),
        (json!({ "name": "negative", "version": -3 }), -3),
    ];
    for (body, expected) in cases {
        let created = create_with(&app, body.clone()).await;
        assert_eq!(created["version"], expected, "for {body}");
        let id = created["portfolioId"].as_str().unwrap();
        let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
        assert_eq!(fetched["version"], expected, "stored version for {body}");
    }
}

#[tokio::test]
async fn create_stores_any_string_name_verbatim_including_duplicates() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(500);
    let names_in = ["", "   ", "  padded  ", "Test@Portfolio!", "Ünïcødé 🚀 ™", long.as_str(), "Dup", "dup", "Dup"];
    let mut seen = Vec::new();
    for name in names_in {
        let created = app.create_portfolio(name).await;
        assert_eq!(created["name"], name);
        seen.push(created["portfolioId"].as_str().unwrap().to_owned());
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "ids must be distinct");
    assert_eq!(names(&list_all(&app).await), names_in);
}

#[tokio::test]
async fn names_with_control_characters_round_trip_exactly() {
    let app = TestApp::spawn().await;
    for name in ["tab\tnew\nline", "\u{7f}\u{1b}[0m", "quote\"back\\slash", "\u{1}start"] {
        let created = app.create_portfolio(name).await;
        let id = created["portfolioId"].as_str().unwrap();
        let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
        assert_eq!(fetched["name"], name);
    }
}

/// The one deliberate narrowing of what the original accepted: PostgreSQL text cannot hold
/// U+0000, so every backend refuses it the same way instead of one of them answering 500.
#[tokio::test]
async fn names_with_a_nul_character_are_rejected_on_create_update_and_bulk() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/api/v1/portfolios", &json!({"name": "nul\u{0}byte"})).await;
    let body = expect_json(response, 422).await;
    assert_eq!(body["detail"][0]["type"], "value_error");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let bulk = app.post_json("/api/v2/portfolios", &json!([{"name": "ok"}, {"name": "\u{0}"}])).await;
    assert_eq!(expect_json(bulk, 422).await["detail"][0]["loc"], json!(["body", 1, "name"]));
    let created = app.create_portfolio("fine").await;
    let id = created["portfolioId"].as_str().unwrap();
    let put = json!({"portfolioId": id, "name": "x\u{0}", "version": 1});
    expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &put).await, 422).await;
    assert_eq!(
        app.get("/api/v1/portfolios").await.json::<serde_json::Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn create_ignores_a_client_supplied_id_and_unknown_fields() {
    let app = TestApp::spawn().await;
    let forced = "aaaaaaaaaaaaaaaaaaaaaaaa";
    let body = json!({ "portfolioId": forced, "name": "Mine", "colour": "blue", "extra": [1, 2] });
    let created = create_with(&app, body).await;
    assert_portfolio(&created);
    assert_ne!(created["portfolioId"], forced);
    let response = app.get(&format!("/api/v1/portfolio/{forced}")).await;
    expect_detail(response, 404, "Portfolio not found").await;
}

#[tokio::test]
async fn get_finds_a_portfolio_by_its_upper_case_id_and_answers_lower_case() {
    let app = TestApp::spawn().await;
    let created = app.create_portfolio("Case").await;
    let id = created["portfolioId"].as_str().unwrap();
    let upper = id.to_ascii_uppercase();
    let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{upper}")).await, 200).await;
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn get_answers_404_for_unknown_and_malformed_ids() {
    let app = TestApp::spawn().await;
    app.create_portfolio("exists").await;
    let bad = [
        "ffffffffffffffffffffffff",
        "000000000000000000000000",
        "abc",
        "123",
        "aaaaaaaaaaaaaaaaaaaaaaaaa",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "aaaaaaaaaaaaaaaaaaaaaaa",
        "%20",
    ];
    for id in bad {
        expect_detail(app.get(&format!("/api/v1/portfolio/{id}")).await, 404, "Portfolio not found").await;
    }
}
