//! The in-process feed through its public API: order, resume, gaps, slow subscribers, limits.

use pfs_events::{Change, ChangeFeed, EventKind, FeedSettings, Item, Refused, Subscription};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn feed(history_size: usize, client_buffer: usize, max_subscribers: usize) -> std::sync::Arc<ChangeFeed> {
    ChangeFeed::local(&FeedSettings { history_size, history_max_bytes: usize::MAX, client_buffer, max_subscribers })
}

fn changes(range: std::ops::Range<usize>) -> Vec<Change> {
    range.map(|n| Change { kind: EventKind::Created, data: n.to_string() }).collect()
}

async fn next(subscription: &mut Subscription) -> Option<Item> {
    tokio::time::timeout(Duration::from_secs(5), subscription.next()).await.expect("an item within 5 s")
}

async fn data(subscription: &mut Subscription, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        match next(subscription).await {
            Some(Item::Event(event)) => seen.push(event.data.clone()),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn subscribers_see_every_event_in_publish_order() {
    let feed = feed(100, 64, 10);
    let mut a = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    let mut b = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    feed.publish(changes(0..3)).await;
    feed.publish(changes(3..5)).await;
    let expected: Vec<String> = (0..5).map(|n| n.to_string()).collect();
    assert_eq!(data(&mut a, 5).await, expected);
    assert_eq!(data(&mut b, 5).await, expected);
    assert_eq!(feed.stats().subscribers, 2);
}

#[tokio::test]
async fn resuming_replays_the_missed_events_then_continues_live() {
    let feed = feed(100, 64, 10);
    let mut first = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    feed.publish(changes(0..2)).await;
    let Some(Item::Event(seen)) = next(&mut first).await else { panic!("first event") };
    drop(first);
    let mut resumed = feed.subscribe(Some(seen.id), CancellationToken::new()).await.unwrap();
    feed.publish(changes(2..4)).await;
    assert_eq!(data(&mut resumed, 3).await, ["1", "2", "3"]);
}

#[tokio::test]
async fn a_position_older_than_the_history_is_reported_as_a_gap() {
    let feed = feed(3, 64, 10);
    let mut first = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    feed.publish(changes(0..6)).await;
    let Some(Item::Event(oldest)) = next(&mut first).await else { panic!("first event") };
    let newest = loop {
        match next(&mut first).await {
            Some(Item::Event(event)) if event.data == "5" => break event.id,
            Some(Item::Event(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    let mut resumed = feed.subscribe(Some(oldest.id), CancellationToken::new()).await.unwrap();
    assert_eq!(next(&mut resumed).await, Some(Item::Gap { head: Some(newest) }));
    feed.publish(changes(6..7)).await;
    assert_eq!(data(&mut resumed, 1).await, ["6"]);
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped_and_counted_while_others_continue() {
    let feed = feed(10_000, 8, 10);
    let slow = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    let mut fast = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    let mut seen = Vec::new();
    for chunk in 0..125 {
        feed.publish(changes(chunk * 4..chunk * 4 + 4)).await;
        seen.extend(data(&mut fast, 4).await);
    }
    assert_eq!(seen, (0..500).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(feed.stats().dropped, 1);
    // The slow one holds at most its buffer, then learns it was dropped, then ends.
    let mut slow = slow;
    assert!(slow.queued() <= 8, "queued {}", slow.queued());
    let mut items = Vec::new();
    while let Some(item) = next(&mut slow).await {
        items.push(item);
    }
    assert_eq!(items.last(), Some(&Item::Dropped));
    assert!(items.len() <= 9, "{} items", items.len());
    assert_eq!(feed.stats().subscribers, 1, "the fast reader is still subscribed, the slow one is not");
}

#[tokio::test]
async fn subscribers_beyond_the_limit_are_refused_and_slots_are_released() {
    let feed = feed(10, 8, 1);
    let first = feed.subscribe(None, CancellationToken::new()).await.unwrap();
    assert!(matches!(feed.subscribe(None, CancellationToken::new()).await, Err(Refused::TooMany)));
    drop(first);
    // The forwarding task notices the closed queue on its next wake-up.
    feed.publish(changes(0..1)).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while feed.stats().subscribers > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the slot is released");
    assert!(feed.subscribe(None, CancellationToken::new()).await.is_ok());
}

#[tokio::test]
async fn a_stop_token_ends_every_subscription() {
    let feed = feed(10, 8, 10);
    let stop = CancellationToken::new();
    let mut subscription = feed.subscribe(None, stop.clone()).await.unwrap();
    stop.cancel();
    assert_eq!(next(&mut subscription).await, None);
}
