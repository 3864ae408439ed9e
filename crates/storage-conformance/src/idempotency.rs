//! The idempotency-key checks every backend must pass, expanded per backend by
//! [`idempotency_suite!`](crate::idempotency_suite) like the portfolio suite.

use futures::future::join_all;
use pfs_storage::{Begin, BeginRequest, IdempotencyStore, KeyRef, StoredResponse};
use std::sync::Arc;

pub type Keys = Arc<dyn IdempotencyStore>;

/// Expands to one test per check. `$make` is an async expression yielding
/// `(Arc<dyn IdempotencyStore>, guard)`.
#[macro_export]
macro_rules! idempotency_suite {
    ($make:expr) => {
        $crate::idempotency_suite!(@tests $make;
            a_new_key_executes_and_replays_once_completed, another_fingerprint_is_a_mismatch,
            a_live_lease_is_in_flight_until_it_expires_then_recovers_with_the_first_seed,
            a_released_key_is_recovered_at_once, a_taken_over_attempt_cannot_complete,
            concurrent_begins_have_exactly_one_executor, an_expired_key_starts_afresh,
            purge_removes_only_expired_keys, keys_are_scoped_by_route,
            a_forgotten_key_starts_afresh_and_a_stale_forget_changes_nothing);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::idempotency::$name(store).await;
            }
        )*
    };
}

const KEY: KeyRef<'static> = KeyRef { scope: "POST /api/v2/portfolios", key: "k-1" };

fn request(token: &str, now_ms: i64) -> BeginRequest {
    BeginRequest {
        fingerprint: "fp".into(),
        token: token.into(),
        seed: now_ms * 7 + 1,
        now_ms,
        lease_until_ms: now_ms + 1_000,
        expires_at_ms: now_ms + 10_000,
    }
}

fn response() -> StoredResponse {
    // Not UTF-8: bodies are stored as bytes.
    StoredResponse { status: 201, content_type: Some("application/json".into()), body: vec![0xff, 0, b'[', b']'] }
}

async fn begin(keys: &Keys, request: &BeginRequest) -> Begin {
    keys.begin(KEY, request).await.expect("begin")
}

async fn execute(keys: &Keys, request: &BeginRequest) -> pfs_storage::Reservation {
    match begin(keys, request).await {
        Begin::Execute(reservation) => reservation,
        other => panic!("expected Execute, got {other:?}"),
    }
}

pub async fn a_new_key_executes_and_replays_once_completed(keys: Keys) {
    let first = execute(&keys, &request("a", 1_000)).await;
    assert!(!first.recovering);
    assert_eq!((first.seed, first.created_at_ms), (7_001, 1_000));
    assert!(keys.complete(KEY, "a", &response()).await.unwrap());
    assert_eq!(begin(&keys, &request("b", 1_100)).await, Begin::Replay(response()));
    // Also past the lease: a completed key replays until it expires.
    assert_eq!(begin(&keys, &request("c", 9_000)).await, Begin::Replay(response()));
}

pub async fn another_fingerprint_is_a_mismatch(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    let other = BeginRequest { fingerprint: "other".into(), ..request("b", 1_100) };
    assert_eq!(begin(&keys, &other).await, Begin::Mismatch);
    keys.complete(KEY, "a", &response()).await.unwrap();
    assert_eq!(begin(&keys, &other).await, Begin::Mismatch);
}

pub async fn a_live_lease_is_in_flight_until_it_expires_then_recovers_with_the_first_seed(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    assert_eq!(begin(&keys, &request("b", 1_999)).await, Begin::InFlight);
    let taken = execute(&keys, &request("c", 2_000)).await;
    assert!(taken.recovering);
    assert_eq!((taken.token.as_str(), taken.seed, taken.created_at_ms), ("c", 7_001, 1_000));
    assert_eq!(begin(&keys, &request("d", 2_500)).await, Begin::InFlight, "the new lease holds");
}

pub async fn a_released_key_is_recovered_at_once(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    keys.release(KEY, "a").await.unwrap();
    let taken = execute(&keys, &request("b", 1_001)).await;
    assert!(taken.recovering);
    assert_eq!(taken.seed, 7_001);
}

pub async fn a_taken_over_attempt_cannot_complete(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    execute(&keys, &request("b", 3_000)).await;
    assert!(!keys.complete(KEY, "a", &response()).await.unwrap());
    keys.release(KEY, "a").await.unwrap();
    assert_eq!(begin(&keys, &request("c", 3_001)).await, Begin::InFlight, "a stale release changes nothing");
    assert!(keys.complete(KEY, "b", &response()).await.unwrap());
    assert!(!keys.complete(KEY, "b", &response()).await.unwrap(), "completes once");
}

pub async fn concurrent_begins_have_exactly_one_executor(keys: Keys) {
    let attempts = (0..16).map(|i| {
        let keys = keys.clone();
        async move { keys.begin(KEY, &request(&format!("t{i}"), 1_000)).await.expect("begin") }
    });
    let outcomes = join_all(attempts).await;
    let executed = outcomes.iter().filter(|o| matches!(o, Begin::Execute(_))).count();
    assert_eq!(executed, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Begin::Execute(_) | Begin::InFlight)));
}

pub async fn an_expired_key_starts_afresh(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    keys.complete(KEY, "a", &response()).await.unwrap();
    let other = BeginRequest { fingerprint: "other".into(), ..request("b", 11_000) };
    let fresh = execute(&keys, &other).await;
    assert!(!fresh.recovering);
    assert_eq!((fresh.seed, fresh.created_at_ms), (77_001, 11_000));
}

pub async fn purge_removes_only_expired_keys(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    let later = KeyRef { key: "k-2", ..KEY };
    keys.begin(later, &request("b", 5_000)).await.unwrap();
    assert_eq!(keys.purge_expired(11_000).await.unwrap(), 1);
    assert_eq!(keys.purge_expired(11_000).await.unwrap(), 0);
    assert_eq!(keys.begin(later, &request("c", 5_500)).await.unwrap(), Begin::InFlight, "the live key stays");
}

pub async fn keys_are_scoped_by_route(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    let v1 = KeyRef { scope: "POST /api/v1/portfolios", ..KEY };
    assert!(matches!(keys.begin(v1, &request("b", 1_000)).await.unwrap(), Begin::Execute(_)));
}

pub async fn a_forgotten_key_starts_afresh_and_a_stale_forget_changes_nothing(keys: Keys) {
    execute(&keys, &request("a", 1_000)).await;
    keys.forget(KEY, "a").await.unwrap();
    let other = BeginRequest { fingerprint: "corrected".into(), ..request("b", 1_100) };
    let fresh = execute(&keys, &other).await;
    assert!(!fresh.recovering, "nothing was written under a forgotten key");
    keys.forget(KEY, "a").await.unwrap();
    assert_eq!(begin(&keys, &request("c", 1_200)).await, Begin::Mismatch, "another attempt's key stays");
    keys.complete(KEY, "b", &response()).await.unwrap();
    keys.forget(KEY, "b").await.unwrap();
    let replay = keys.begin(KEY, &other).await.unwrap();
    assert_eq!(replay, Begin::Replay(response()), "a completed key is never forgotten");
}
