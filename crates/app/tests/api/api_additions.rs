//! Opt-in additions to the original API: `fields=`, keyset `cursor=` and `ids=` batch get.
//! Requests without them are answered exactly as before (covered by the contract suites).

use pfs_test_support::{TestApp, json};
use serde_json::Value;

async fn body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

async fn seed(app: &TestApp, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(app.create_portfolio(name).await["portfolioId"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn fields_project_v1_gets_and_v2_searches_in_canonical_key_order() {
    let app = TestApp::spawn().await;
    let ids = seed(&app, &["Alpha"]).await;
    let one = body(app.get(&format!("/api/v1/portfolio/{}?fields=version,name", ids[0])).await, 200).await;
    assert_eq!(serde_json::to_string(&one).unwrap(), r#"{"name":"Alpha","version":1}"#);
    let found = body(app.get("/api/v2/portfolios?name=alpha&fields=portfolioId").await, 200).await;
    assert_eq!(found["portfolios"], json!([{"portfolioId": ids[0]}]));
    assert_eq!(found["pagination"]["totalElements"], 1);
    assert!(found.get("nextCursor").is_none(), "offset responses keep the original shape");
}

#[tokio::test]
async fn unknown_fields_are_a_400_listing_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let expected = "Unknown field(s) in fields: owner. Allowed fields: portfolioId, name, dateCreated, version";
    for path in ["/api/v2/portfolios?fields=name,owner", "/api/v1/portfolio/6740f1c2a1b2c3d4e5f60718?fields=owner"] {
        assert_eq!(body(app.get(path).await, 400).await["detail"], expected, "{path}");
    }
}

#[tokio::test]
async fn cursor_pages_visit_every_portfolio_once_even_while_new_ones_arrive() {
    let app = TestApp::spawn().await;
    seed(&app, &["p1", "p2", "p3", "p4", "p5"]).await;
    let mut seen = Vec::new();
    let mut path = "/api/v2/portfolios?limit=2&cursor=".to_owned();
    loop {
        let page = body(app.get(&path).await, 200).await;
        if seen.is_empty() {
            assert_eq!(page["pagination"]["hasPrevious"], false);
            assert_eq!(page["pagination"]["currentPage"], Value::Null);
            seed(&app, &["arrived later"]).await;
        }
        seen.extend(page["portfolios"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(page["pagination"]["hasNext"], true);
                path = format!("/api/v2/portfolios?limit=2&cursor={next}");
            }
            None => {
                assert!(page.get("nextCursor").is_some(), "cursor responses always carry nextCursor");
                assert_eq!(page["pagination"]["hasNext"], false);
                break;
            }
        }
    }
    // Creation order is newest first; each name once, the late arrival not pushed in.
    assert_eq!(seen, ["p5", "p4", "p3", "p2", "p1"]);
}

#[tokio::test]
async fn cursors_must_be_ours_and_cannot_be_combined_with_offset() {
    let app = TestApp::spawn().await;
    assert_eq!(body(app.get("/api/v2/portfolios?cursor=abc").await, 400).await["detail"], "Invalid cursor");
    let both = body(app.get("/api/v2/portfolios?cursor=&offset=5").await, 400).await;
    assert_eq!(both["detail"], "cursor cannot be combined with offset");
    // The original's checks still come first.
    assert_eq!(app.get("/api/v2/portfolios?cursor=abc&limit=0").await.status(), 422);
}

#[tokio::test]
async fn ids_fetch_in_the_order_asked_and_report_the_missing() {
    let app = TestApp::spawn().await;
    let ids = seed(&app, &["first", "second"]).await;
    let unknown = "6740f1c2a1b2c3d4e5f60718";
    let path = format!("/api/v2/portfolios?ids={},{unknown},{},not-an-id,{}", ids[1], ids[0].to_uppercase(), ids[1]);
    let found = body(app.get(&path).await, 200).await;
    let names: Vec<_> = found["portfolios"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("second"), json!("first")]);
    assert_eq!(found["missing"], json!([unknown, "not-an-id"]));
    let projected = body(app.get(&format!("/api/v2/portfolios?ids={}&fields=name", ids[0])).await, 200).await;
    assert_eq!(projected["portfolios"], json!([{"name": "first"}]));
}

#[tokio::test]
async fn ids_are_bounded_and_exclusive_of_other_search_modes() {
    let app = TestApp::spawn().await;
    let many: Vec<String> = (0..101).map(|i| format!("{i:024x}")).collect();
    let detail = |r| async { body(r, 400).await["detail"].as_str().unwrap().to_owned() };
    assert_eq!(
        detail(app.get(&format!("/api/v2/portfolios?ids={}", many.join(","))).await).await,
        "ids cannot list more than 100 portfolio ids"
    );
    assert_eq!(detail(app.get("/api/v2/portfolios?ids=").await).await, "ids must list at least one portfolio id");
    assert!(detail(app.get("/api/v2/portfolios?ids=a&name=b").await).await.starts_with("ids cannot be combined"));
    assert_eq!(
        body(app.get(&format!("/api/v2/portfolios?ids={}", many[..100].join(","))).await, 200).await["missing"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
}
