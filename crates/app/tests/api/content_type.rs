//! How the request `Content-Type` decides whether a body is parsed as JSON (contract §2.4).

use crate::helpers::*;
use pfs_test_support::{TestApp, json, reqwest};

async fn post_with(app: &TestApp, path: &str, content_type: Option<&str>, body: &str) -> reqwest::Response {
    let mut builder = app.client.post(app.url(path)).body(body.to_owned());
    if let Some(value) = content_type {
        builder = builder.header("content-type", value);
    }
    builder.send().await.expect("POST")
}

#[tokio::test]
async fn json_media_types_with_parameters_or_a_json_suffix_are_parsed() {
    let app = TestApp::spawn().await;
    for content_type in ["application/json; charset=utf-8", "application/vnd.api+json", "Application/JSON"] {
        let response = post_with(&app, "/api/v1/portfolios", Some(content_type), r#"{"name": "typed"}"#).await;
        let created = expect_json(response, 201).await;
        assert_eq!(created["name"], "typed", "{content_type}");
    }
    assert_eq!(stored_count(&app).await, 3);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_parsed_as_json() {
    let app = TestApp::spawn().await;
    let created = expect_json(post_with(&app, "/api/v1/portfolios", None, r#"{"name": "untyped"}"#).await, 201).await;
    assert_eq!(created["name"], "untyped");
    let batch = expect_json(post_with(&app, "/api/v2/portfolios", None, r#"[{"name": "b"}]"#).await, 201).await;
    assert_eq!(names(&batch), ["b"]);
}

#[tokio::test]
async fn a_text_plain_body_is_validated_as_the_raw_string() {
    let app = TestApp::spawn().await;
    let raw = r#"{"name": "x"}"#;
    let response = post_with(&app, "/api/v1/portfolios", Some("text/plain"), raw).await;
    let expected = json!({ "detail": [{
        "type": "model_attributes_type", "loc": ["body"],
        "msg": "Input should be a valid dictionary or object to extract fields from", "input": raw
    }] });
    assert_eq!(expect_json(response, 422).await, expected);
    let response = post_with(&app, "/api/v2/portfolios", Some("text/plain"), "[]").await;
    let expected = json!({ "detail": [{ "type": "list_type", "loc": ["body"], "msg": "Input should be a valid list", "input": "[]" }] });
    assert_eq!(expect_json(response, 422).await, expected);
    assert_eq!(stored_count(&app).await, 0);
}
