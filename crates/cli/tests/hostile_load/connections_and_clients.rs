//! Connections and per-client bounds: idle HTTP/2 connections, the connection cap, change
//! streams per client, junk `X-Forwarded-For` entries, key guessing, and the paths that used to
//! be exempt from every limit. Sockets are counted from `/proc`, as the kernel sees them.

use crate::support::production;
use futures::StreamExt;
use hyper::body::Bytes;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pfs_test_support::{ServiceProcess, eventually, reqwest};
use sha2::Digest;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

type H2 = http2::SendRequest<http_body_util::Empty<Bytes>>;

fn address(service: &ServiceProcess) -> String {
    service.url("").trim_start_matches("http://").trim_end_matches('/').to_owned()
}

/// An h2c (prior knowledge) connection to the service.
async fn h2c(service: &ServiceProcess) -> H2 {
    let tcp = TcpStream::connect(address(service)).await.unwrap();
    let (send, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    send
}

async fn h2_get(send: &mut H2, service: &ServiceProcess, path: &str) -> hyper::Response<hyper::body::Incoming> {
    let request = hyper::Request::get(service.url(path)).body(http_body_util::Empty::new()).unwrap();
    send.ready().await.unwrap();
    send.send_request(request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_after_the_idle_timeout() {
    let service = production(&[("PORTFOLIO_SERVER__IDLE_TIMEOUT", "3s")]).await;
    let at_rest = service.footprint().sockets;
    let connections = futures::future::join_all((0..100).map(|_| async {
        let mut send = h2c(&service).await;
        assert_eq!(h2_get(&mut send, &service, "/health/live").await.status(), 200);
        send
    }))
    .await;
    let open = service.footprint().sockets;
    assert!(open >= at_rest + 100, "the 100 connections are open: {open} sockets, {at_rest} at rest");
    // Before the change, 400 such connections were all still open after 25 s.
    let took = eventually(Duration::from_secs(10), "idle h2c connections closed by the server", async || {
        service.footprint().sockets <= at_rest
    })
    .await;
    println!("100 idle h2c connections (idle_timeout 3s) all closed {took:?} after their request");
    assert!(took >= Duration::from_secs(1), "closed for being idle, not at once ({took:?})");
    // The server's close reaches each client's connection task a moment later.
    eventually(Duration::from_secs(5), "the clients saw their connections end", async || {
        connections.iter().all(H2::is_closed)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_stream_keeps_its_connection_open_past_the_idle_timeout() {
    let service = production(&[("PORTFOLIO_SERVER__IDLE_TIMEOUT", "1s")]).await;
    let mut send = h2c(&service).await;
    let stream = h2_get(&mut send, &service, "/api/v2/portfolios/events").await;
    assert_eq!(stream.status(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!send.is_closed(), "a connection with a stream in progress is not idle");
    drop(stream);
    eventually(Duration::from_secs(5), "closed once the stream ended and the timeout passed", async || {
        send.is_closed()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once_and_service_goes_on() {
    let service = production(&[("PORTFOLIO_SERVER__MAX_CONNECTIONS", "20")]).await;
    let at_rest = service.footprint().sockets;
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(address(&service)).await.unwrap());
    }
    // Each refused connection is read to its end: the server closed it without a request.
    let mut refused = 0;
    for stream in &mut held[20..] {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => refused += 1,
            other => panic!("a connection past the cap was not closed: {other:?}"),
        }
    }
    assert_eq!(refused, 80);
    let open = service.footprint().sockets;
    assert!(open <= at_rest + 20, "{open} sockets open with a cap of 20 (at rest: {at_rest})");
    drop(held);
    eventually(Duration::from_secs(5), "served again once connections are free", async || {
        reqwest::get(service.url("/api/v2/portfolios")).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_holds_at_most_its_share_of_change_streams_even_on_one_connection() {
    // The default events.max_subscribers_per_client: 8.
    let service = production(&[]).await;
    let mut send = h2c(&service).await;
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..30 {
        let response = h2_get(&mut send, &service, "/api/v2/portfolios/events").await;
        match response.status().as_u16() {
            200 => open.push(response),
            429 => refused.push(response),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((open.len(), refused.len()), (8, 22), "one h2 connection used to hold every stream it asked for");
    assert!(refused.iter().all(|r| r.headers().contains_key("retry-after")));
    drop(open.pop());
    eventually(Duration::from_secs(5), "a closed stream gives its slot back", async || {
        h2_get(&mut send, &service, "/api/v2/portfolios/events").await.status() == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_forwarded_for_entries_neither_become_clients_nor_grow_memory() {
    let service = production(&[
        ("PORTFOLIO_RATE_LIMIT__ENABLED", "true"),
        ("PORTFOLIO_RATE_LIMIT__TRUST_FORWARDED_FOR", "true"),
        ("PORTFOLIO_RATE_LIMIT__PER_SECOND", "1000000"),
        ("PORTFOLIO_RATE_LIMIT__BURST", "1000000"),
    ])
    .await;
    let client = reqwest::Client::new();
    // Warm up: allocator arenas and pools, so that growth below is retention, not first use.
    for _ in 0..50 {
        client.get(service.url("/api/v2/portfolios")).send().await.unwrap();
    }
    let before = service.footprint();
    // 1,000 distinct 60 KB entries on a first header line, the proxy's entry on a second:
    // before the change only the first line was read and each junk entry became a bucket key
    // (60 MB held); now the right-most entry of the last line is the client.
    let statuses: Vec<u16> = futures::stream::iter(0..1_000)
        .map(|n| {
            let junk = format!("{n}-{}", "x".repeat(60_000));
            client
                .get(service.url("/api/v2/portfolios"))
                .header("x-forwarded-for", junk)
                .header("x-forwarded-for", "203.0.113.9")
                .send()
        })
        .buffer_unordered(8)
        .map(|response| response.unwrap().status().as_u16())
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 200));
    let after = service.footprint();
    println!("1,000 junk X-Forwarded-For entries: RSS {:.1} -> {:.1} MiB", before.rss_mib(), after.rss_mib());
    assert!(
        after.rss < before.rss + (12 << 20),
        "1,000 junk X-Forwarded-For entries grew RSS from {:.1} to {:.1} MiB",
        before.rss_mib(),
        after.rss_mib()
    );
    crate::support::assert_within_budget(&service, "junk X-Forwarded-For entries");
}

fn digest(key: &str) -> String {
    format!("{:x}", sha2::Sha256::digest(key.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_guessing_is_throttled_per_address_after_ten_failures() {
    let admin = format!("admin:ops:{}", digest("the-admin-key"));
    let service =
        production(&[("PORTFOLIO_AUTH__ENABLED", "true"), ("PORTFOLIO_AUTH__API_KEYS", admin.as_str())]).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for guess in 0..30 {
        let response = client
            .post(service.url("/api/v1/portfolios"))
            .header("x-api-key", format!("guess-{guess}"))
            .json(&serde_json::json!({"name": "guessed"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "the default auth.max_failures is 10: {statuses:?}");
    assert_eq!(statuses[10..], [429; 20], "then the address waits, whatever it guesses: {statuses:?}");
    let right_key = client.get(service.url("/admin/flags")).header("x-api-key", "the-admin-key").send().await.unwrap();
    assert_eq!(right_key.status(), 429, "even a right guess is not checked until the window ends");
    let wait: u64 = right_key.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let anonymous = client.get(service.url("/api/v2/portfolios")).send().await.unwrap();
    assert_eq!(anonymous.status(), 200, "reads without a credential are not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_keys_share_their_addresss_rate_limit_bucket() {
    let admin = format!("admin:ops:{}", digest("the-admin-key"));
    let service = production(&[
        ("PORTFOLIO_AUTH__ENABLED", "true"),
        ("PORTFOLIO_AUTH__API_KEYS", admin.as_str()),
        ("PORTFOLIO_AUTH__MAX_FAILURES", "0"),
        ("PORTFOLIO_RATE_LIMIT__ENABLED", "true"),
        ("PORTFOLIO_RATE_LIMIT__BY", "api_key_or_ip"),
        ("PORTFOLIO_RATE_LIMIT__PER_SECOND", "1"),
        ("PORTFOLIO_RATE_LIMIT__BURST", "5"),
    ])
    .await;
    let client = reqwest::Client::new();
    let mut allowed = 0;
    for guess in 0..20 {
        let response =
            client.get(service.url("/api/v2/portfolios")).header("x-api-key", format!("guess-{guess}")).send().await;
        allowed += usize::from(response.unwrap().status() == 200);
    }
    assert!(allowed <= 7, "{allowed} of 20 guesses passed: each invalid key used to get a bucket of its own");
    let verified = client.get(service.url("/api/v2/portfolios")).header("x-api-key", "the-admin-key").send().await;
    assert_eq!(verified.unwrap().status(), 200, "a verified key has its own bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_detailed_needs_admin_with_auth_on_and_is_rate_limited_while_probes_are_not() {
    let admin = format!("admin:ops:{}", digest("the-admin-key"));
    let service = production(&[
        ("PORTFOLIO_AUTH__ENABLED", "true"),
        ("PORTFOLIO_AUTH__API_KEYS", admin.as_str()),
        ("PORTFOLIO_RATE_LIMIT__ENABLED", "true"),
        ("PORTFOLIO_RATE_LIMIT__PER_SECOND", "1"),
        ("PORTFOLIO_RATE_LIMIT__BURST", "3"),
    ])
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let request = client.get(service.url(path));
        let request = match key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/health/detailed", None).await, 401, "it names the backend and costs database round trips");
    assert_eq!(get("/health/detailed", Some("the-admin-key")).await, 200);
    let mut detailed = Vec::new();
    for _ in 0..5 {
        detailed.push(get("/health/detailed", Some("the-admin-key")).await);
    }
    assert!(detailed.contains(&429), "no longer exempt from the rate limit: {detailed:?}");
    for probe in ["/health", "/health/live", "/health/ready", "/health/startup"] {
        for _ in 0..5 {
            assert_eq!(get(probe, None).await, 200, "{probe} stays open and unlimited");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_connection_cap_fits_the_memory_budget() {
    let service = production(&[]).await;
    let before = service.footprint();
    // Nearly the default server.max_connections (512; the readiness probe's connection may
    // hold one more), each an h2c connection that made one request.
    let connections = futures::stream::iter(0..508)
        .map(|_| async {
            let mut send = h2c(&service).await;
            assert_eq!(h2_get(&mut send, &service, "/health/live").await.status(), 200);
            send
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let full = service.footprint();
    println!(
        "508 idle h2c connections: RSS {:.1} -> {:.1} MiB ({} bytes each)",
        before.rss_mib(),
        full.rss_mib(),
        full.rss.saturating_sub(before.rss) / 508
    );
    let per_connection = full.rss.saturating_sub(before.rss) / 508;
    assert!(
        per_connection < 64 << 10,
        "an idle h2c connection holds {per_connection} bytes (documented: about 42 KiB)"
    );
    crate::support::assert_within_budget(&service, "508 idle h2c connections");
    // Held together (a dropped one would give its slot to the next): at most 4 fit.
    let mut more = Vec::new();
    for _ in 0..10 {
        more.push(TcpStream::connect(address(&service)).await.unwrap());
    }
    let mut closed = 0;
    for stream in &mut more {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
        closed += usize::from(matches!(read, Ok(Ok(0) | Err(_))));
    }
    assert!(closed >= 6, "past the cap, new connections are closed at once ({closed} of 10)");
    drop(connections);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_is_told_its_stream_limit() {
    let service = production(&[("PORTFOLIO_SERVER__HTTP2_MAX_CONCURRENT_STREAMS", "7")]).await;
    let tcp = TcpStream::connect(address(&service)).await.unwrap();
    let (mut client, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let request = hyper::Request::get(service.url("/health/live")).body(()).unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    // The connection is driven until the answer arrives, by then with the server's SETTINGS.
    let response = tokio::select! {
        response = response => response.unwrap(),
        ended = &mut connection => panic!("connection ended first: {ended:?}"),
    };
    assert_eq!(response.status(), 200);
    assert_eq!(connection.max_concurrent_send_streams(), 7, "hyper's default was 200");
}
