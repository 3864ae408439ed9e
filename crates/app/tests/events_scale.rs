//! The change stream's scale test, alone in its binary so that the memory it
//! measures (this process's resident set) is the server's and its clients', not other tests'.

use futures::future::join_all;
use pfs_test_support::sse::{EVENTS, Stream};
use pfs_test_support::{TestApp, json, reqwest};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Resident set size of this test process, from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("resident pages");
    pages * 4096
}

/// The change stream at scale: 200 subscribers, 1,000 writes from 8 concurrent writers. Every
/// subscriber sees all 1,000 events (each once) in one identical order, and the process (server
/// and the 200 clients together) grows by less than 48 MiB: events are shared, not copied per
/// client (copied, the 200 x 1,000 events alone would hold about 60 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_see_a_burst_of_a_thousand_writes_in_one_order() {
    const SUBSCRIBERS: usize = 200;
    const WRITES: usize = 1000;
    // Every subscriber comes from one address here: lift the per-client cap to the count.
    let app = TestApp::builder().with_config(|c| c.events.max_subscribers_per_client = SUBSCRIBERS).spawn().await;
    let before = rss_bytes();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = app.url(EVENTS);
    let streams = join_all((0..SUBSCRIBERS).map(|_| Stream::open_url(&client, &url, None))).await;
    // Each reader keeps a hash of the sequence it saw (ids and portfolios), not the events,
    // so the growth measured is the server's and the connections', not the test's own.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let (mut order, mut portfolios) = (DefaultHasher::new(), HashSet::new());
                while portfolios.len() < WRITES {
                    let event = stream.expect().await;
                    let portfolio = event.data["portfolio"]["portfolioId"].as_str().expect("id").to_owned();
                    (event.id.expect("id"), &portfolio).hash(&mut order);
                    assert!(portfolios.insert(portfolio), "an event was delivered twice");
                }
                order.finish()
            })
        })
        .collect();

    let writers = (0..8).map(|writer| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/portfolios"));
        tokio::spawn(async move {
            for n in 0..WRITES / 8 {
                let response = client.post(&url).json(&json!({ "name": format!("w{writer}-{n}") })).send().await;
                assert_eq!(response.expect("POST").status(), 201);
            }
        })
    });
    for writer in join_all(writers).await {
        writer.expect("writer");
    }
    let seen: Vec<_> = join_all(readers).await.into_iter().map(|r| r.expect("reader")).collect();
    let growth = rss_bytes().saturating_sub(before);

    assert!(seen.iter().all(|order| *order == seen[0]), "every subscriber saw the same order");
    assert!(growth < 48 << 20, "RSS grew by {} MiB", growth >> 20);
}
