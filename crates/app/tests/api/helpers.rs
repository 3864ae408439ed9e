//! Shared helpers: response decoding, datetime and id format checks, small request shortcuts.

use pfs_test_support::{TestApp, json, reqwest};
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Status code and JSON body of a response (panics with the raw text if the body is not JSON).
pub async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, value)
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let (actual, body) = status_json(response).await;
    assert_eq!(actual, status, "unexpected status, body: {body}");
    body
}

/// Asserts `{"detail": "<message>"}` with the given status.
pub async fn expect_detail(response: reqwest::Response, status: u16, message: &str) {
    let body = expect_json(response, status).await;
    assert_eq!(body, json!({ "detail": message }));
}

/// True for `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, exactly three fraction digits).
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let fixed = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')];
    digits.iter().all(|&i| b[i].is_ascii_digit()) && fixed.iter().all(|&(i, c)| b[i] == c)
}

pub fn assert_timestamp(value: &Value) {
    let s = value.as_str().unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    assert!(is_timestamp(s), "not an RFC 3339 UTC millisecond timestamp: {s:?}");
}

/// Milliseconds since the Unix epoch of a timestamp accepted by [`is_timestamp`].
pub fn epoch_millis(s: &str) -> i64 {
    assert!(is_timestamp(s), "{s:?}");
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

pub fn now_millis() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after epoch");
    i64::try_from(elapsed.as_millis()).expect("fits")
}

/// Asserts a server-generated "now" timestamp lies within a minute of the test's clock.
pub fn assert_recent(value: &Value) {
    assert_timestamp(value);
    let delta = (epoch_millis(value.as_str().unwrap()) - now_millis()).abs();
    assert!(delta < 60_000, "timestamp {value} is {delta} ms away from now");
}

/// 24 lower-case hex characters.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Asserts the exact `Portfolio` shape: four keys in contract order, well-formed values.
pub fn assert_portfolio(value: &Value) {
    let object = value.as_object().unwrap_or_else(|| panic!("portfolio is not an object: {value}"));
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, ["portfolioId", "name", "dateCreated", "version"], "{value}");
    assert!(is_object_id(value["portfolioId"].as_str().expect("id string")), "{value}");
    assert!(value["name"].is_string(), "{value}");
    assert_timestamp(&value["dateCreated"]);
    assert!(value["version"].is_i64(), "{value}");
}

/// `name` of every element of a JSON array.
pub fn names(list: &Value) -> Vec<String> {
    list.as_array().expect("array").iter().map(|p| p["name"].as_str().expect("name").to_owned()).collect()
}

/// `portfolioId` of every element of a JSON array.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array().expect("array").iter().map(|p| p["portfolioId"].as_str().expect("id").to_owned()).collect()
}

/// Creates a portfolio through v1 with an arbitrary body, expecting 201.
pub async fn create_with(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/v1/portfolios", &body).await;
    expect_json(response, 201).await
}

/// `GET /api/v2/portfolios?<query>`, expecting 200.
pub async fn search(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v2/portfolios?{query}")).await;
    expect_json(response, 200).await
}

/// Every portfolio through v1 (expects 200).
pub async fn list_all(app: &TestApp) -> Value {
    expect_json(app.get("/api/v1/portfolios").await, 200).await
}

/// Number of stored portfolios, checked through both v1 list and v2 search.
pub async fn stored_count(app: &TestApp) -> usize {
    let listed = list_all(app).await.as_array().expect("array").len();
    let searched = search(app, "limit=1").await["pagination"]["totalElements"].as_u64().expect("count");
    assert_eq!(listed as u64, searched, "v1 list and v2 search disagree on the count");
    listed
}

/// A bulk request body with one `{"name": ...}` item per name.
pub fn bulk_body<S: AsRef<str>>(names: &[S]) -> Value {
    Value::Array(names.iter().map(|n| json!({ "name": n.as_ref() })).collect())
}

/// `POST /api/v2/portfolios`.
pub async fn bulk(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post_json("/api/v2/portfolios", body).await
}

/// Sends a request with an arbitrary method.
pub async fn request(app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    app.client.request(method, app.url(path)).send().await.expect("request")
}

#[test]
fn timestamp_helpers_accept_only_the_canonical_form() {
    assert!(is_timestamp("2024-01-15T10:30:00.000Z"));
    assert!(!is_timestamp("2024-01-15T10:30:00Z"));
    assert!(!is_timestamp("2024-01-15T10:30:00.000000Z"));
    assert!(!is_timestamp("2024-01-15T10:30:00.000+00:00"));
    assert_eq!(epoch_millis("2024-01-15T10:30:00.500Z"), 1_705_314_600_500);
    assert_eq!(epoch_millis("1970-01-01T00:00:00.000Z"), 0);
}

/// Percent-encodes every byte that is not an ASCII letter or digit (for query values).
pub fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A response header as text, if present.
pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned())
}

/// The value of one sample on `/metrics` (0 when absent): `name` plus its exact label text,
/// e.g. `counter_value(&app, r#"x_total{reason="a"}"#)`. The recorder is process-wide, so
/// tests compare before and after rather than expect absolute values.
pub async fn metric_value(app: &TestApp, sample: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}
