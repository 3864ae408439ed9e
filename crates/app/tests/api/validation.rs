//! Request-body validation errors: the exact 422 list shape (contract §2.4).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

async fn expect_errors(response: pfs_test_support::reqwest::Response, errors: Value) {
    let (status, body) = status_json(response).await;
    assert_eq!((status, body), (422, json!({ "detail": errors })));
}

fn missing_body() -> Value {
    json!([{ "type": "missing", "loc": ["body"], "msg": "Field required", "input": null }])
}

#[tokio::test]
async fn a_post_without_a_body_or_with_json_null_reports_the_missing_body() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/portfolios", "/api/v2/portfolios"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        expect_errors(response, missing_body()).await;
        expect_errors(app.post_raw(path, "").await, missing_body()).await;
        expect_errors(app.post_raw(path, "null").await, missing_body()).await;
    }
    let id = app.create_portfolio("x").await["portfolioId"].as_str().unwrap().to_owned();
    let response = app.client.put(app.url(&format!("/api/v1/portfolio/{id}"))).send().await.unwrap();
    expect_errors(response, missing_body()).await;
}

#[tokio::test]
async fn malformed_json_reports_the_character_offset_like_python() {
    let app = TestApp::spawn().await;
    let cases = [
        (r#"{"name": }"#, 9),
        ("not json", 0),
        (r#"{"name": "x""#, 12),
        (r#"{"name": "é" "x"}"#, 13),
        (r#"{"name": "🚀🚀" 1}"#, 14),
        ("[{\"name\": \"a\"},\n  oops]", 18),
    ];
    for (raw, offset) in cases {
        for path in ["/api/v1/portfolios", "/api/v2/portfolios"] {
            let body = expect_json(app.post_raw(path, raw).await, 422).await;
            let errors = body["detail"].as_array().unwrap_or_else(|| panic!("{raw}: {body}"));
            assert_eq!(errors.len(), 1, "{raw}: {body}");
            let error = &errors[0];
            let keys: Vec<&String> = error.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["type", "loc", "msg", "input", "ctx"], "{raw}");
            assert_eq!(error["type"], "json_invalid", "{raw}");
            assert_eq!(error["loc"], json!(["body", offset]), "{raw}");
            assert_eq!(error["msg"], "JSON decode error", "{raw}");
            assert_eq!(error["input"], json!({}), "{raw}");
            assert!(error["ctx"]["error"].is_string(), "{raw}: {error}");
        }
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn an_array_body_on_v1_is_not_a_dictionary() {
    let app = TestApp::spawn().await;
    let input = json!([{ "name": "x" }]);
    let error = json!([{ "type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": input }]);
    expect_errors(app.post_json("/api/v1/portfolios", &input).await, error).await;
}

#[tokio::test]
async fn an_object_body_on_bulk_is_not_a_list() {
    let app = TestApp::spawn().await;
    let input = json!({ "name": "x" });
    let error =
        json!([{ "type": "list_type", "loc": ["body"], "msg": "Input should be a valid list", "input": input }]);
    expect_errors(bulk(&app, &input).await, error).await;
}

#[tokio::test]
async fn a_non_json_content_type_is_validated_as_raw_text() {
    let app = TestApp::spawn().await;
    for (path, kind) in [("/api/v1/portfolios", "model_attributes_type"), ("/api/v2/portfolios", "list_type")] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "text/plain")
            .body(r#"{"name": "x"}"#)
            .send()
            .await
            .unwrap();
        let body = expect_json(response, 422).await;
        assert_eq!(body["detail"][0]["type"], kind, "{path}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body"]), "{path}: {body}");
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn v1_create_reports_a_missing_name_with_the_whole_body_as_input() {
    let app = TestApp::spawn().await;
    let input = json!({ "version": 2 });
    let error = json!([{ "type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": input }]);
    expect_errors(app.post_json("/api/v1/portfolios", &input).await, error).await;
}

#[tokio::test]
async fn v1_create_rejects_non_string_names() {
    let app = TestApp::spawn().await;
    for name in [json!(5), json!(true), json!(["a"]), json!({ "a": 1 }), json!(null)] {
        let response = app.post_json("/api/v1/portfolios", &json!({ "name": name })).await;
        let body = expect_json(response, 422).await;
        assert_eq!(body["detail"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["detail"][0]["type"], "string_type", "{body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]), "{body}");
        assert_eq!(body["detail"][0]["msg"], "Input should be a valid string", "{body}");
        assert_eq!(body["detail"][0]["input"], name, "{body}");
    }
}

#[tokio::test]
async fn v1_create_rejects_a_fractional_version() {
    let app = TestApp::spawn().await;
    let error = json!([{ "type": "int_from_float", "loc": ["body", "version"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 1.5 }]);
    expect_errors(app.post_json("/api/v1/portfolios", &json!({ "name": "x", "version": 1.5 })).await, error).await;
}

#[tokio::test]
async fn v1_create_reports_every_failing_field_in_field_order() {
    let app = TestApp::spawn().await;
    let body = json!({ "version": 1.5, "dateCreated": "garbage", "name": 5 });
    let response = expect_json(app.post_json("/api/v1/portfolios", &body).await, 422).await;
    let locs: Vec<&Value> = response["detail"].as_array().unwrap().iter().map(|e| &e["loc"]).collect();
    assert_eq!(locs, [&json!(["body", "name"]), &json!(["body", "dateCreated"]), &json!(["body", "version"])]);
    assert_eq!(response["detail"][0]["type"], "string_type");
    assert_eq!(response["detail"][2]["type"], "int_from_float");
}

#[tokio::test]
async fn bulk_reports_each_bad_item_with_its_index() {
    let app = TestApp::spawn().await;
    let body = json!([{ "name": "ok" }, { "name": 5 }, { "name": "z", "version": 1.5 }, {}, "text"]);
    let expected = json!([
        { "type": "string_type", "loc": ["body", 1, "name"], "msg": "Input should be a valid string", "input": 5 },
        { "type": "int_from_float", "loc": ["body", 2, "version"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 1.5 },
        { "type": "missing", "loc": ["body", 3, "name"], "msg": "Field required", "input": {} },
        { "type": "model_attributes_type", "loc": ["body", 4], "msg": "Input should be a valid dictionary or object to extract fields from", "input": "text" },
    ]);
    expect_errors(bulk(&app, &body).await, expected).await;
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn delete_without_a_version_reports_the_missing_query_parameter() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("x").await["portfolioId"].as_str().unwrap().to_owned();
    let error = json!([{ "type": "missing", "loc": ["query", "version"], "msg": "Field required", "input": null }]);
    expect_errors(app.delete(&format!("/api/v1/portfolio/{id}")).await, error).await;
    let error = json!([{ "type": "int_parsing", "loc": ["query", "version"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "one" }]);
    expect_errors(app.delete(&format!("/api/v1/portfolio/{id}?version=one")).await, error).await;
    expect_errors(
        app.delete("/api/v1/portfolio/abc").await,
        json!([{ "type": "missing", "loc": ["query", "version"], "msg": "Field required", "input": null }]),
    )
    .await;
    assert_eq!(stored_count(&app).await, 1);
}

#[tokio::test]
async fn a_repeated_json_key_uses_the_last_value() {
    let app = TestApp::spawn().await;
    let created =
        expect_json(app.post_raw("/api/v1/portfolios", r#"{"name": "first", "name": "second"}"#).await, 201).await;
    assert_eq!(created["name"], "second");
    let batch =
        expect_json(app.post_raw("/api/v2/portfolios", r#"[{"name": "a", "version": 3, "version": 4}]"#).await, 201)
            .await;
    assert_eq!(batch[0]["version"], 4);
}

async fn version_failures(app: &TestApp, cases: &[(&str, i64)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (raw, expected) in cases {
        let body = format!(r#"{{"name": "v", "version": {raw}}}"#);
        for (path, request) in [("/api/v1/portfolios", body.clone()), ("/api/v2/portfolios", format!("[{body}]"))] {
            let (status, response) = status_json(app.post_raw(path, &request).await).await;
            let version = if response.is_array() { &response[0]["version"] } else { &response["version"] };
            if status != 201 || version != expected {
                failures.push(format!("{path} version {raw}: {status} {response}"));
            }
        }
    }
    failures
}

#[tokio::test]
async fn numeric_strings_are_accepted_as_versions() {
    let app = TestApp::spawn().await;
    let failures = version_failures(&app, &[(r#""3""#, 3), (r#""-4""#, -4)]).await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn integral_floats_are_accepted_as_versions() {
    let app = TestApp::spawn().await;
    let failures = version_failures(&app, &[("2.0", 2), ("1e2", 100), ("-3.0", -3)]).await;
    assert!(failures.is_empty(), "{failures:#?}");
}
