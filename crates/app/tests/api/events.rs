//! The change stream, `GET /api/v2/portfolios/events`: event shapes, resuming, gaps, shutdown,
//! slow consumers, and two replicas sharing Redis. (The 200-subscriber scale test measures
//! the process's memory, so it runs alone, in `tests/events_scale.rs`.)

use crate::helpers::expect_json;
use pfs_test_support::sse::{EVENTS, Stream};
use pfs_test_support::{TestApp, json};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn bulk_create(app: &TestApp, names: &[String]) -> Vec<Value> {
    let body: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    let created = expect_json(app.post_json("/api/v2/portfolios", &json!(body)).await, 201).await;
    created.as_array().expect("array").clone()
}

#[tokio::test]
async fn writes_are_announced_with_the_portfolio_and_its_new_version() {
    let app = TestApp::spawn().await;
    let response = app.get(EVENTS).await;
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut stream = Stream::from_response(response);

    let created = app.create_portfolio("Alpha").await;
    let id = created["portfolioId"].as_str().unwrap().to_owned();
    let put = json!({ "portfolioId": id, "name": "Alpha 2", "version": 1 });
    let updated = expect_json(app.put_json(&format!("/api/v1/portfolio/{id}"), &put).await, 200).await;
    assert_eq!(app.delete(&format!("/api/v1/portfolio/{id}?version=2")).await.status(), 204);
    let names: Vec<String> = (0..3).map(|n| format!("Bulk {n}")).collect();
    let bulk = bulk_create(&app, &names).await;

    let first = stream.expect().await;
    assert_eq!((first.event.as_str(), &first.data), ("created", &json!({ "portfolio": created, "version": 1 })));
    let second = stream.expect().await;
    assert_eq!((second.event.as_str(), &second.data), ("updated", &json!({ "portfolio": updated, "version": 2 })));
    let third = stream.expect().await;
    assert_eq!((third.event.as_str(), &third.data), ("deleted", &json!({ "portfolio": updated, "version": 2 })));
    for expected in &bulk {
        let event = stream.expect().await;
        assert_eq!((event.event.as_str(), &event.data["portfolio"]), ("created", expected), "bulk order");
    }
    let ids: Vec<String> = [first, second, third].into_iter().map(|e| e.id.expect("every event has an id")).collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "{ids:?}");

    // A failed write announces nothing: the next event is the next successful write.
    assert_eq!(app.delete(&format!("/api/v1/portfolio/{id}?version=2")).await.status(), 404);
    let later = app.create_portfolio("Beta").await;
    assert_eq!(stream.expect().await.data["portfolio"], later);
}

#[tokio::test]
async fn a_client_resuming_with_last_event_id_gets_what_it_missed_then_live_events() {
    let app = TestApp::spawn().await;
    let mut stream = Stream::open(&app, None).await;
    app.create_portfolio("One").await;
    let seen = stream.expect().await.id.expect("id");
    drop(stream);

    let missed = [app.create_portfolio("Two").await, app.create_portfolio("Three").await];
    let mut resumed = Stream::open(&app, Some(&seen)).await;
    for expected in &missed {
        assert_eq!(resumed.expect().await.data["portfolio"], *expected);
    }
    let live = app.create_portfolio("Four").await;
    assert_eq!(resumed.expect().await.data["portfolio"], live);
}

#[tokio::test]
async fn a_position_older_than_the_history_gets_an_explicit_reset() {
    let app = TestApp::builder().with_config(|c| c.events.history_size = 100).spawn().await;
    let mut stream = Stream::open(&app, None).await;
    app.create_portfolio("Old").await;
    let old = stream.expect().await.id.expect("id");
    // 300 events: past the history of 100 (with Redis, `MAXLEN ~` trims whole stream nodes of
    // 100 entries, so the oldest is surely gone only well past it).
    let mut newest = None;
    for batch in 0..3 {
        let names: Vec<String> = (0..100).map(|n| format!("New {batch}-{n}")).collect();
        bulk_create(&app, &names).await;
        for _ in 0..100 {
            newest = stream.expect().await.id;
        }
    }

    let mut resumed = Stream::open(&app, Some(&old)).await;
    let reset = resumed.expect().await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.id, newest, "the reset moves the client to the newest event");
    assert!(reset.data["reason"].as_str().unwrap().contains("no longer in the event history"));
    let live = app.create_portfolio("After").await;
    assert_eq!(resumed.expect().await.data["portfolio"], live);

    // An id from an earlier process (its time is before this one started) is a gap too.
    let mut ancient = Stream::open(&app, Some("1000-1")).await;
    assert_eq!(ancient.expect().await.event, "reset");
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_clear_400() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url(EVENTS)).header("last-event-id", "yesterday").send().await.unwrap();
    let body = expect_json(response, 400).await;
    assert_eq!(body, json!({ "detail": "Last-Event-ID must be an event id (<ms>-<seq>)" }));
}

#[tokio::test]
async fn the_stream_can_be_disabled() {
    let app = TestApp::builder().with_config(|c| c.events.enabled = false).spawn().await;
    assert_eq!(app.get(EVENTS).await.status(), 404);
    app.create_portfolio("Still writable").await;
}

#[tokio::test]
async fn subscribers_beyond_the_limit_get_503_with_retry_after() {
    let app = TestApp::builder().with_config(|c| c.events.max_subscribers = 1).spawn().await;
    let _first = Stream::open(&app, None).await;
    let refused = app.get(EVENTS).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
}

#[tokio::test]
async fn open_streams_end_when_the_server_shuts_down() {
    let app = TestApp::spawn().await;
    let mut stream = Stream::open(&app, None).await;
    app.create_portfolio("Before").await;
    stream.expect().await;
    app.begin_shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("the stream ends");
    assert_eq!(ended, None);
    app.stop().await.expect("clean stop");
}

/// A client that stops reading is cut off once its buffer (200 events here) and the socket
/// buffers are full, and is told so; another client keeps receiving everything.
#[tokio::test]
async fn a_slow_consumer_is_dropped_while_others_continue() {
    let app = TestApp::builder().with_config(|c| c.events.client_buffer = 200).spawn().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(app.address).await.unwrap();
    let request = format!("GET {EVENTS} HTTP/1.1\r\nhost: {}\r\n\r\n", app.address);
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let read = slow.read(&mut head).await.unwrap();
    assert!(head[..read].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&head[..read]));
    let mut fast = Stream::open(&app, None).await;

    // About 12 MB of events: far more than the slow client's socket buffers can absorb.
    let big = "x".repeat(4000);
    let (mut written, mut received) = (Vec::new(), Vec::new());
    for batch in 0..30 {
        let names: Vec<String> = (0..100).map(|n| format!("{batch}-{n} {big}")).collect();
        written.extend(bulk_create(&app, &names).await.into_iter().map(|p| p["portfolioId"].clone()));
        while received.len() < written.len() {
            received.push(fast.expect().await.data["portfolio"]["portfolioId"].clone());
        }
    }
    assert_eq!(received, written, "the fast client saw every event in order");

    // Now the slow client reads: what was buffered for it, then `dropped`, then the end.
    let mut rest = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = vec![0u8; 1 << 16];
        while !rest.ends_with(b"\r\n0\r\n\r\n") {
            let n = slow.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the end of the stream");
            rest.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(drained.is_ok(), "the slow client's stream did not end");
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("event: dropped"), "no dropped event");
    let delivered = text.matches("event: created").count();
    assert!(delivered < written.len() / 2, "the slow client got {delivered} of {} events", written.len());
}

/// Two replicas sharing PostgreSQL and a private Redis: a write through either reaches the
/// subscribers of both, in the same order, and a client can resume on the other replica.
#[tokio::test]
async fn writes_on_one_replica_reach_the_other_replicas_stream_in_order() {
    let redis = pfs_redis::testing::RedisProcess::start();
    let schema = pfs_storage_postgres::testing::TestSchema::create().await;
    let replica = || {
        let (database, redis) = (schema.url(), redis.url());
        TestApp::builder()
            .with_config(move |c| {
                c.database.url = database;
                c.redis.url = redis;
            })
            .spawn()
    };
    let a = replica().await;
    let b = replica().await;
    let mut on_a = Stream::open(&a, None).await;
    let mut on_b = Stream::open(&b, None).await;

    let first = a.create_portfolio("From A").await;
    let second = b.create_portfolio("From B").await;
    let id = first["portfolioId"].as_str().unwrap();
    let put = json!({ "portfolioId": id, "name": "From A, renamed on B", "version": 1 });
    let third = expect_json(b.put_json(&format!("/api/v1/portfolio/{id}"), &put).await, 200).await;

    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..3 {
        seen.0.push(on_a.expect().await);
        seen.1.push(on_b.expect().await);
    }
    assert_eq!(seen.0, seen.1, "both replicas deliver the same events, ids and order");
    let portfolios: Vec<&Value> = seen.0.iter().map(|e| &e.data["portfolio"]).collect();
    assert_eq!(portfolios, [&first, &second, &third]);

    // Resuming on B from an id first seen on A.
    let after_first = seen.0[0].id.clone().expect("id");
    let mut resumed = Stream::open(&b, Some(&after_first)).await;
    assert_eq!(resumed.expect().await, seen.0[1]);
    assert_eq!(resumed.expect().await, seen.0[2]);
}
