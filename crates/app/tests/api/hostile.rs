//! Hostile input: bodies too large however they arrive, JSON nested far too deep, malformed
//! JSON and invalid UTF-8 all get a 4xx (never a 5xx or a dropped connection), and Unicode
//! edge cases in names behave as the contract says: any JSON string is a valid v1 name and
//! comes back exactly (except NUL, refused on every backend); search terms are ASCII letters, digits, `-`, `_` and whitespace only.

use crate::helpers::{expect_json, status_json};
use http_body_util::StreamBody;
use hyper::body::{Bytes, Frame};
use pfs_test_support::{TestApp, json, reqwest};
use std::io::Write;

const V1: &str = "/api/v1/portfolios";
const V2: &str = "/api/v2/portfolios";

async fn post_bytes(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client.post(app.url(path)).header("content-type", "application/json").body(body).send().await.expect("POST")
}

async fn assert_still_serving(app: &TestApp) {
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get(V1).await.status(), 200);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_decompression_bomb_is_413() {
    let app = TestApp::spawn().await;
    // 16 MiB of JSON that compresses to about 16 KiB.
    let inflated = format!(r#"{{"name":"{}"}}"#, "a".repeat(16 << 20));
    let bomb = gzip(inflated.as_bytes());
    assert!(bomb.len() < 100_000);
    for path in [V1, V2] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn an_oversized_chunked_body_without_a_length_is_413() {
    let app = TestApp::spawn().await;
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b' '; 64 * 1024]))));
    let body = reqwest::Body::wrap(StreamBody::new(futures::stream::iter(chunks)));
    let response = app.client.post(app.url(V1)).header("content-type", "application/json").body(body).send().await;
    // The server may answer before reading everything and close; a reset is not a 5xx either.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn an_oversized_keyed_body_is_413_and_reserves_nothing() {
    let app = TestApp::spawn().await;
    let big = format!(r#"{{"name":"{}"}}"#, "b".repeat(1 << 21));
    let keyed = |body: String| {
        app.client
            .post(app.url(V1))
            .header("idempotency-key", "big")
            .header("content-type", "application/json")
            .body(body)
    };
    assert_eq!(keyed(big).send().await.unwrap().status(), 413);
    // The key was never reserved: a proper request under it executes.
    expect_json(keyed(r#"{"name":"small"}"#.into()).send().await.unwrap(), 201).await;
}

#[tokio::test]
async fn json_nested_ten_thousand_levels_deep_is_422() {
    let app = TestApp::spawn().await;
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let bodies = [
        arrays.clone(),
        objects.clone(),
        format!(r#"{{"name":{arrays}}}"#),
        format!(r#"{{"name":"x","dateCreated":{objects}}}"#),
        // Unterminated: a parser that recursed would also have to unwind this.
        "[".repeat(depth),
    ];
    for body in bodies {
        for path in [V1, V2] {
            let (status, detail) = status_json(post_bytes(&app, path, body.clone().into_bytes()).await).await;
            assert_eq!(status, 422, "{path}: {detail}");
        }
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn malformed_json_is_422_everywhere() {
    let app = TestApp::spawn().await;
    let id = app.create_portfolio("target").await["portfolioId"].as_str().unwrap().to_owned();
    let put = format!("/api/v1/portfolio/{id}");
    let bodies = [
        r#"{"name": "x""#,
        r#"{"name": "x",}"#,
        r#"{'name': 'x'}"#,
        r#"{"name": "x"} trailing"#,
        r#"{"name": "\x"}"#,
        r#"{"name": "x", "version": NaN}"#,
        r#"{"name": "x", "version": 1e999999}"#,
        r#"{"name": "x", "version": 123456789012345678901234567890}"#,
        "\u{feff}\u{feff}{}",
        "{\"name\": \"tab\tinside\"}",
        r#"[{"name": "x"}, ]"#,
        "nul",
    ];
    for body in bodies {
        for (method, path) in [("POST", V1), ("POST", V2), ("PUT", put.as_str())] {
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "{method} {path} {body:?}: {status}");
        }
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn invalid_utf8_is_a_client_error_in_bodies_queries_and_paths() {
    let app = TestApp::spawn().await;
    for body in [b"{\"name\": \"\xff\xfe\"}".to_vec(), b"\xc3\x28".to_vec(), b"[{\"name\": \"\xed\xa0\x80\"}]".to_vec()]
    {
        for path in [V1, V2] {
            let status = post_bytes(&app, path, body.clone()).await.status().as_u16();
            assert!((400..500).contains(&status), "{path} {body:?}: {status}");
        }
    }
    for path in ["/api/v2/portfolios?name=%FF", "/api/v2/portfolios?name_like=%C3%28", "/api/v2/portfolios?limit=%FF"] {
        let status = app.get(path).await.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    assert_eq!(app.get("/api/v1/portfolio/%FF%FE%FD").await.status(), 404);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn unicode_names_are_stored_and_returned_exactly() {
    let app = TestApp::spawn().await;
    let names = [
        "e\u{301}\u{301}\u{301}",                     // stacked combining marks
        "\u{202e}txt.exe\u{202c}",                    // right-to-left override
        "\u{5e9}\u{5dc}\u{5d5}\u{5dd} 1",             // Hebrew (RTL) with digits
        "👨\u{200d}👩\u{200d}👧 🏳\u{fe0f}\u{200d}🌈", // emoji ZWJ sequences
        "\u{fffd}\u{feff}\u{200b}",                   // replacement char, BOM, zero-width space
        "İstanbul ß ǅ",                               // case-mapping oddities
        "",                                           // empty: any string is a name in v1
    ];
    for name in names {
        let created = expect_json(app.post_json(V1, &json!({ "name": name })).await, 201).await;
        assert_eq!(created["name"], name);
        let id = created["portfolioId"].as_str().unwrap();
        let fetched = expect_json(app.get(&format!("/api/v1/portfolio/{id}")).await, 200).await;
        assert_eq!(fetched["name"], name, "{name:?} round-trips");
    }
    let bulk = json!([{ "name": "😀" }, { "name": "e\u{301}" }]);
    expect_json(app.post_json(V2, &bulk).await, 201).await;
}

#[tokio::test]
async fn nul_in_a_name_is_422_on_every_backend() {
    // PostgreSQL text cannot hold U+0000, so the service refuses it everywhere alike.
    let app = TestApp::spawn().await;
    for (path, body) in [(V1, json!({ "name": "a\u{0}b" })), (V2, json!([{ "name": "\u{0}" }]))] {
        let (status, body) = status_json(app.post_json(path, &body).await).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(body.to_string().contains("NUL"), "{body}");
    }
    assert_eq!(expect_json(app.get(V1).await, 200).await, json!([]));
}

#[tokio::test]
async fn escaped_surrogates_decode_as_pairs_and_lone_ones_are_refused() {
    let app = TestApp::spawn().await;
    let pair = expect_json(post_bytes(&app, V1, br#"{"name": "\ud83d\ude00"}"#.to_vec()).await, 201).await;
    assert_eq!(pair["name"], "😀");
    for lone in [r#"{"name": "\ud800"}"#, r#"{"name": "\udc00x"}"#, r#"[{"name": "\ud83d"}]"#] {
        let path = if lone.starts_with('[') { V2 } else { V1 };
        let (status, body) = status_json(post_bytes(&app, path, lone.as_bytes().to_vec()).await).await;
        assert_eq!(status, 422, "{lone}: {body}");
    }
}

#[tokio::test]
async fn search_terms_outside_ascii_are_400_as_the_contract_says() {
    let app = TestApp::spawn().await;
    let invalid = "Invalid portfolio name format. Name must be 1-200 characters, alphanumeric, spaces, hyphens, and underscores only";
    for term in ["%C3%A9", "%F0%9F%98%80", "e%CC%81", "%E2%80%AE", "a%00b", "%EF%BC%A1"] {
        for param in ["name", "name_like"] {
            let body = expect_json(app.get(&format!("{V2}?{param}={term}")).await, 400).await;
            assert_eq!(body["detail"], invalid, "{param}={term}");
        }
    }
    // Unicode whitespace is whitespace to the contract: a term of only that is empty.
    let body = expect_json(app.get(&format!("{V2}?name=%E3%80%80%C2%A0")).await, 400).await;
    assert_eq!(body["detail"], "Search parameter cannot be empty");
}
