//! v2 search results: filtering, ordering and pagination arithmetic (contract §4.1).

use crate::helpers::*;
use pfs_test_support::{TestApp, json};
use serde_json::Value;

/// Creates portfolios whose `dateCreated` increases with their position (day i+1 of January 2024).
async fn create_dated(app: &TestApp, names_in: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, name) in names_in.iter().enumerate() {
        let date = format!("2024-01-{:02}T00:00:00Z", i + 1);
        out.push(create_with(app, json!({ "name": name, "dateCreated": date })).await);
    }
    out
}

#[tokio::test]
async fn search_on_an_empty_database_returns_the_exact_empty_page() {
    let app = TestApp::spawn().await;
    let body = search(&app, "").await;
    let expected = json!({
        "portfolios": [],
        "pagination": { "totalElements": 0, "totalPages": 0, "currentPage": 0, "pageSize": 50, "hasNext": false, "hasPrevious": false }
    });
    assert_eq!(body, expected);
    let keys: Vec<&String> = body["pagination"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["totalElements", "totalPages", "currentPage", "pageSize", "hasNext", "hasPrevious"]);
    let top: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(top, ["portfolios", "pagination"]);
}

#[tokio::test]
async fn search_without_a_filter_on_an_empty_database_still_reports_offset_pages() {
    let app = TestApp::spawn().await;
    let body = search(&app, "limit=10&offset=30").await;
    let expected = json!({ "totalElements": 0, "totalPages": 0, "currentPage": 3, "pageSize": 10, "hasNext": false, "hasPrevious": true });
    assert_eq!(body["pagination"], expected);
    assert_eq!(body["portfolios"], json!([]));
}

/// (limit, offset, names returned, totalPages, currentPage, hasNext, hasPrevious)
type Row = (u32, u32, &'static [&'static str], u32, u32, bool, bool);

#[tokio::test]
async fn search_pagination_follows_the_contract_table_for_five_portfolios() {
    let app = TestApp::spawn().await;
    create_dated(&app, &["p1", "p2", "p3", "p4", "p5"]).await;
    let rows: &[Row] = &[
        (2, 0, &["p5", "p4"], 3, 0, true, false),
        (2, 2, &["p3", "p2"], 3, 1, true, true),
        (2, 4, &["p1"], 3, 2, false, true),
        (2, 3, &["p2", "p1"], 3, 1, true, true),
        (2, 10, &[], 3, 5, false, true),
        (50, 0, &["p5", "p4", "p3", "p2", "p1"], 1, 0, false, false),
        (5, 0, &["p5", "p4", "p3", "p2", "p1"], 1, 0, false, false),
        (4, 4, &["p1"], 2, 1, false, true),
        (1, 2, &["p3"], 5, 2, true, true),
        (3, 5, &[], 2, 1, false, true),
    ];
    for &(limit, offset, want, pages, current, next, previous) in rows {
        let body = search(&app, &format!("limit={limit}&offset={offset}")).await;
        let context = format!("limit={limit} offset={offset}: {body}");
        assert_eq!(names(&body["portfolios"]), want, "{context}");
        let expected = json!({ "totalElements": 5, "totalPages": pages, "currentPage": current, "pageSize": limit, "hasNext": next, "hasPrevious": previous });
        assert_eq!(body["pagination"], expected, "{context}");
    }
}

#[tokio::test]
async fn search_with_offset_three_of_ten_returns_the_remaining_seven() {
    let app = TestApp::spawn().await;
    let names_in: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names_in.iter().map(String::as_str).collect();
    create_dated(&app, &refs).await;
    let body = search(&app, "offset=3").await;
    assert_eq!(names(&body["portfolios"]), ["n6", "n5", "n4", "n3", "n2", "n1", "n0"]);
    let expected = json!({ "totalElements": 10, "totalPages": 1, "currentPage": 0, "pageSize": 50, "hasNext": false, "hasPrevious": false });
    assert_eq!(body["pagination"], expected);
    body["portfolios"].as_array().unwrap().iter().for_each(assert_portfolio);
}

#[tokio::test]
async fn search_orders_by_date_created_newest_first_not_by_insertion() {
    let app = TestApp::spawn().await;
    for (name, date) in
        [("mid", "2024-02-01T00:00:00Z"), ("new", "2024-03-01T00:00:00Z"), ("old", "2023-12-31T23:59:59.999Z")]
    {
        create_with(&app, json!({ "name": name, "dateCreated": date })).await;
    }
    let body = search(&app, "").await;
    assert_eq!(names(&body["portfolios"]), ["new", "mid", "old"]);
    let dates: Vec<&str> =
        body["portfolios"].as_array().unwrap().iter().map(|p| p["dateCreated"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2024-03-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z", "2023-12-31T23:59:59.999Z"]);
}

#[tokio::test]
async fn search_breaks_date_ties_by_descending_id_across_pages() {
    let app = TestApp::spawn().await;
    let same = "2024-06-01T12:00:00Z";
    let items: Vec<Value> = (0..7).map(|i| json!({ "name": format!("tie{i}"), "dateCreated": same })).collect();
    let created = expect_json(bulk(&app, &Value::Array(items)).await, 201).await;
    create_with(&app, json!({ "name": "newest", "dateCreated": "2024-06-01T12:00:00.001Z" })).await;
    let mut expected = ids(&created);
    expected.sort_by(|a, b| b.cmp(a));
    let mut paged = Vec::new();
    for offset in [1, 3, 5, 7] {
        paged.extend(ids(&search(&app, &format!("limit=2&offset={offset}")).await["portfolios"]));
    }
    assert_eq!(paged, expected);
    assert_eq!(names(&search(&app, "limit=1").await["portfolios"]), ["newest"]);
}

#[tokio::test]
async fn search_by_name_is_exact_and_case_insensitive() {
    let app = TestApp::spawn().await;
    create_dated(
        &app,
        &["Tech Growth", "tech growth", "Tech Growth Fund", "My Tech Growth", "Tech  Growth", "TECH GROWTH"],
    )
    .await;
    let body = search(&app, "name=tEcH%20gRoWtH").await;
    assert_eq!(names(&body["portfolios"]), ["TECH GROWTH", "tech growth", "Tech Growth"]);
    assert_eq!(body["pagination"]["totalElements"], 3);
    let paged = search(&app, "name=tech%20growth&limit=2&offset=2").await;
    assert_eq!(names(&paged["portfolios"]), ["Tech Growth"]);
    let expected = json!({ "totalElements": 3, "totalPages": 2, "currentPage": 1, "pageSize": 2, "hasNext": false, "hasPrevious": true });
    assert_eq!(paged["pagination"], expected);
}

#[tokio::test]
async fn search_by_name_like_matches_prefix_infix_suffix_and_whole_case_insensitively() {
    let app = TestApp::spawn().await;
    create_dated(&app, &["Growth Alpha", "Alpha GROWTH Beta", "Beta growth", "growth", "Grow th", "Other"]).await;
    let body = search(&app, "name_like=Growth").await;
    assert_eq!(names(&body["portfolios"]), ["growth", "Beta growth", "Alpha GROWTH Beta", "Growth Alpha"]);
    assert_eq!(body["pagination"]["totalElements"], 4);
    assert_eq!(names(&search(&app, "name_like=xyz").await["portfolios"]), Vec::<String>::new());
}

#[tokio::test]
async fn search_does_not_trim_surrounding_whitespace() {
    let app = TestApp::spawn().await;
    create_dated(&app, &[" Foo ", "Foo", "xFoox"]).await;
    assert_eq!(names(&search(&app, "name=%20Foo%20").await["portfolios"]), [" Foo "]);
    assert_eq!(names(&search(&app, "name=foo").await["portfolios"]), ["Foo"]);
    assert_eq!(names(&search(&app, "name_like=%20foo").await["portfolios"]), [" Foo "]);
}

#[tokio::test]
async fn search_treats_underscore_and_hyphen_literally() {
    let app = TestApp::spawn().await;
    create_dated(&app, &["a_b", "axb", "a%b", "a-b", "ab", "a b", "A_B_C"]).await;
    assert_eq!(names(&search(&app, "name_like=a_b").await["portfolios"]), ["A_B_C", "a_b"]);
    assert_eq!(names(&search(&app, "name=a_b").await["portfolios"]), ["a_b"]);
    assert_eq!(names(&search(&app, "name_like=a-b").await["portfolios"]), ["a-b"]);
    assert_eq!(names(&search(&app, "name_like=_").await["portfolios"]), ["A_B_C", "a_b"]);
}

#[tokio::test]
async fn search_accepts_and_matches_unicode_whitespace_literally() {
    let app = TestApp::spawn().await;
    create_dated(&app, &["a\u{a0}b", "a b", "x\u{3000}y", "p\u{1c}q"]).await;
    assert_eq!(names(&search(&app, "name=A%C2%A0B").await["portfolios"]), ["a\u{a0}b"]);
    assert_eq!(names(&search(&app, "name_like=X%E3%80%80").await["portfolios"]), ["x\u{3000}y"]);
    assert_eq!(names(&search(&app, "name=p%1Cq").await["portfolios"]), ["p\u{1c}q"]);
    assert_eq!(names(&search(&app, "name=a%09b").await["portfolios"]), Vec::<String>::new());
}

#[tokio::test]
async fn search_ignores_unknown_parameters_and_returns_canonical_portfolios() {
    let app = TestApp::spawn().await;
    let created = create_dated(&app, &["one"]).await;
    let body = search(&app, "sort=name&page=3&foo=bar").await;
    assert_eq!(body["portfolios"], json!(created));
}
