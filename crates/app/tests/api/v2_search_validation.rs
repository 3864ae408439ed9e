//! v2 search parameter validation: 400 messages, their order, and the 422 query errors (§2.4, §4.1).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

const ONLY_ONE: &str = "Only one search parameter allowed: name or name_like";
const EMPTY: &str = "Search parameter cannot be empty";
const FORMAT: &str =
    "Invalid portfolio name format. Name must be 1-200 characters, alphanumeric, spaces, hyphens, and underscores only";

async fn expect_400(app: &TestApp, query: &str, message: &str) {
    let response = app.get(&format!("/api/v2/portfolios?{query}")).await;
    let (status, body) = status_json(response).await;
    assert_eq!((status, body), (400, json!({ "detail": message })), "query {query:?}");
}

async fn expect_422(app: &TestApp, query: &str, errors: Value) {
    let response = app.get(&format!("/api/v2/portfolios?{query}")).await;
    let (status, body) = status_json(response).await;
    assert_eq!((status, body), (422, json!({ "detail": errors })), "query {query:?}");
}

#[tokio::test]
async fn search_rejects_name_and_name_like_together_when_both_are_non_empty() {
    let app = TestApp::spawn().await;
    expect_400(&app, "name=a&name_like=b", ONLY_ONE).await;
    expect_400(&app, "name_like=b&name=a", ONLY_ONE).await;
    expect_400(&app, "name=%20&name_like=x", ONLY_ONE).await;
    expect_400(&app, "name=bad%40&name_like=also%21bad", ONLY_ONE).await;
}

#[tokio::test]
async fn search_reports_empty_or_blank_parameters() {
    let app = TestApp::spawn().await;
    for query in [
        "name=",
        "name=%20%20",
        "name=%09",
        "name=%C2%A0",
        "name=%1C",
        "name_like=",
        "name_like=%20",
        "name=&name_like=x",
        "name=&name_like=bad%40",
        "name_like=bad%40&name=",
        "name=ok&name_like=",
    ] {
        expect_400(&app, query, EMPTY).await;
    }
}

#[tokio::test]
async fn search_checks_the_name_format_before_name_like() {
    let app = TestApp::spawn().await;
    expect_400(&app, "name=bad%40&name_like=", FORMAT).await;
    expect_400(&app, "name_like=&name=bad%40", FORMAT).await;
}

#[tokio::test]
async fn search_rejects_every_character_outside_the_name_alphabet() {
    let app = TestApp::spawn().await;
    let bad = [
        ".", "*", "+", "?", "^", "$", "(", ")", "[", "]", "{", "}", "|", "\\", "/", "@", "!", "#", "%", "&", "'", "\"",
        ",", ";", ":", "=", "<", ">", "~", "`", "é", "™", "🚀", "ß", "١",
    ];
    for c in bad {
        let value = enc(&format!("a{c}b"));
        expect_400(&app, &format!("name={value}"), FORMAT).await;
        expect_400(&app, &format!("name_like={value}"), FORMAT).await;
    }
}

#[tokio::test]
async fn search_accepts_letters_digits_spaces_hyphens_underscores_and_unicode_whitespace() {
    let app = TestApp::spawn().await;
    for value in
        ["Az09", "a-b_c d", "-", "_", " x ", "a\u{a0}b", "a\u{2003}b", "a\u{3000}b", "a\u{85}b", "a\tb", "a\u{1f}b"]
    {
        for param in ["name", "name_like"] {
            let response = app.get(&format!("/api/v2/portfolios?{param}={}", enc(value))).await;
            assert_eq!(response.status(), 200, "{param}={value:?}");
        }
    }
}

#[tokio::test]
async fn search_limits_names_to_200_code_points() {
    let app = TestApp::spawn().await;
    let ok = "a".repeat(200);
    let multibyte_ok = format!("{}\u{3000}", "a".repeat(199));
    let too_long = "a".repeat(201);
    for param in ["name", "name_like"] {
        assert_eq!(app.get(&format!("/api/v2/portfolios?{param}={ok}")).await.status(), 200);
        assert_eq!(app.get(&format!("/api/v2/portfolios?{param}={}", enc(&multibyte_ok))).await.status(), 200);
        expect_400(&app, &format!("{param}={too_long}"), FORMAT).await;
    }
}

#[tokio::test]
async fn search_range_checks_run_before_the_400_checks() {
    let app = TestApp::spawn().await;
    let error = json!([{ "type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": { "ge": 1 } }]);
    expect_422(&app, "name=a&name_like=b&limit=0", error).await;
}

#[tokio::test]
async fn search_reports_out_of_range_limits_and_offsets_exactly() {
    let app = TestApp::spawn().await;
    expect_422(&app, "limit=0", json!([{ "type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": { "ge": 1 } }])).await;
    expect_422(&app, "limit=1001", json!([{ "type": "less_than_equal", "loc": ["query", "limit"], "msg": "Input should be less than or equal to 1000", "input": "1001", "ctx": { "le": 1000 } }])).await;
    expect_422(&app, "offset=-1", json!([{ "type": "greater_than_equal", "loc": ["query", "offset"], "msg": "Input should be greater than or equal to 0", "input": "-1", "ctx": { "ge": 0 } }])).await;
}

#[tokio::test]
async fn search_reports_unparseable_integers_exactly() {
    let app = TestApp::spawn().await;
    for raw in ["abc", "10.5", "", "1e3", "0x10"] {
        let error = json!([{ "type": "int_parsing", "loc": ["query", "limit"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": raw }]);
        expect_422(&app, &format!("limit={}", enc(raw)), error).await;
    }
}

#[tokio::test]
async fn search_reports_limit_and_offset_errors_together_in_parameter_order() {
    let app = TestApp::spawn().await;
    let both = json!([
        { "type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": { "ge": 1 } },
        { "type": "int_parsing", "loc": ["query", "offset"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x" },
    ]);
    expect_422(&app, "offset=x&limit=0", both).await;
}

#[tokio::test]
async fn search_accepts_signed_and_whole_float_integers() {
    let app = TestApp::spawn().await;
    for (query, size, page) in [
        ("limit=%2B3", 3, 0),
        ("limit=1.0", 1, 0),
        ("limit=2&offset=%2B4", 2, 2),
        ("limit=3&offset=6.0", 3, 2),
        ("limit=1000", 1000, 0),
    ] {
        let body = search(&app, query).await;
        assert_eq!(body["pagination"]["pageSize"], size, "{query}");
        assert_eq!(body["pagination"]["currentPage"], page, "{query}");
    }
}

#[tokio::test]
async fn search_uses_the_last_value_of_a_repeated_parameter() {
    let app = TestApp::spawn().await;
    app.create_portfolio("first").await;
    app.create_portfolio("second").await;
    assert_eq!(search(&app, "limit=2&limit=3").await["pagination"]["pageSize"], 3);
    assert_eq!(search(&app, "limit=0&limit=5").await["pagination"]["pageSize"], 5);
    assert_eq!(names(&search(&app, "name=first&name=second").await["portfolios"]), ["second"]);
    let error = json!([{ "type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": { "ge": 1 } }]);
    expect_422(&app, "limit=5&limit=0", error).await;
}

#[tokio::test]
async fn search_allows_an_unbounded_offset() {
    let app = TestApp::spawn().await;
    app.create_portfolio("only").await;
    let body = search(&app, "offset=1000000").await;
    let expected = json!({ "totalElements": 1, "totalPages": 1, "currentPage": 20000, "pageSize": 50, "hasNext": false, "hasPrevious": true });
    assert_eq!(body["pagination"], expected);
    assert_eq!(body["portfolios"], json!([]));
}

#[tokio::test]
async fn search_decodes_plus_as_a_space_in_query_values() {
    let app = TestApp::spawn().await;
    app.create_portfolio("Tech Growth").await;
    assert_eq!(names(&search(&app, "name=tech+growth").await["portfolios"]), ["Tech Growth"]);
    assert_eq!(names(&search(&app, "name_like=h+g").await["portfolios"]), ["Tech Growth"]);
}

#[tokio::test]
async fn search_keeps_undecodable_escapes_and_rejects_them_by_format() {
    let app = TestApp::spawn().await;
    expect_400(&app, "name=a%ZZb", FORMAT).await;
    expect_400(&app, "name=a%FFb", FORMAT).await;
    expect_400(&app, "name_like=100%", FORMAT).await;
}

#[tokio::test]
async fn a_parameter_without_an_equals_sign_is_an_empty_value() {
    let app = TestApp::spawn().await;
    expect_400(&app, "name", EMPTY).await;
    let error = json!([{ "type": "int_parsing", "loc": ["query", "limit"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "" }]);
    expect_422(&app, "limit", error).await;
}

#[tokio::test]
async fn search_accepts_the_largest_64_bit_offset() {
    let app = TestApp::spawn().await;
    app.create_portfolio("only").await;
    let body = search(&app, "offset=9223372036854775807&limit=50").await;
    assert_eq!(body["pagination"]["currentPage"], i64::MAX / 50);
    assert_eq!(body["pagination"]["hasPrevious"], true);
    assert_eq!(body["portfolios"], json!([]));
}
