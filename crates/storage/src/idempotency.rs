//! The idempotency-key port: remembering which keyed writes ran and what they answered, so a
//! client retrying a `POST` gets the original response instead of a second write.
//!
//! A key goes through three states, all held by the database so they survive restarts and
//! are shared by every replica:
//! 1. reserved: [`IdempotencyStore::begin`] inserted it with a lease before the write ran;
//! 2. completed: [`IdempotencyStore::complete`] stored the response to replay;
//! 3. expired: past `expires_at`, gone (purged) and usable again.
//!
//! A reservation whose lease ran out without a response means its request died (crash,
//! timeout, 5xx). The next attempt takes it over with `recovering = true` and the same
//! `seed` and `created_at`, from which the write derives the same portfolio ids, so it can
//! find out whether the lost attempt's (atomic) write happened instead of writing twice.

use crate::StoreResult;
use async_trait::async_trait;

/// Which request a key belongs to: the same key may be used on different routes and by
/// different callers, and each use is its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef<'a> {
    /// Method, route and caller, e.g. `POST /api/v1/portfolios caller:3f2a...`.
    pub scope: &'a str,
    /// The client's `Idempotency-Key`.
    pub key: &'a str,
}

/// What a new attempt asks for. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginRequest {
    /// A digest of the request (method, route, content type, body): same key with another
    /// fingerprint is a client error.
    pub fingerprint: String,
    /// Random, identifies this attempt's lease.
    pub token: String,
    /// Random, kept for the life of the key: what derived ids are made from.
    pub seed: i64,
    pub now_ms: i64,
    /// Until when this attempt holds the key; past it, another attempt may take it over.
    pub lease_until_ms: i64,
    /// When the key (and its response) is forgotten.
    pub expires_at_ms: i64,
}

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The attempt that holds a key and may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub token: String,
    /// The seed of the key's first attempt (not necessarily this one's).
    pub seed: i64,
    /// When the key was first reserved, milliseconds since the epoch.
    pub created_at_ms: i64,
    /// An earlier attempt held the key and ended without a response: its write may have
    /// happened.
    pub recovering: bool,
}

/// What [`IdempotencyStore::begin`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begin {
    /// Run the request, then [`IdempotencyStore::complete`] or [`IdempotencyStore::release`].
    Execute(Reservation),
    /// The key completed before with the same fingerprint: answer this.
    Replay(StoredResponse),
    /// Another attempt with this key holds a live lease.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// Durable idempotency records. Implementations must make `begin` safe under concurrency:
/// of two attempts racing on one key, at most one gets [`Begin::Execute`].
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Reserves `key` for this attempt, or says why not. An expired key counts as absent.
    async fn begin(&self, key: KeyRef<'_>, request: &BeginRequest) -> StoreResult<Begin>;

    /// Stores the response of the attempt holding `token`. Returns false (and stores nothing)
    /// if that attempt no longer holds the key.
    async fn complete(&self, key: KeyRef<'_>, token: &str, response: &StoredResponse) -> StoreResult<bool>;

    /// Ends the lease of the attempt holding `token` without a response, so a retry may take
    /// over at once (in recovery).
    async fn release(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()>;

    /// Deletes the key if the attempt holding `token` still holds it without a response: its
    /// request wrote nothing (a client error), so nothing needs remembering and a retry runs
    /// afresh.
    async fn forget(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()>;

    /// Deletes every key expired at `now_ms`; returns how many.
    async fn purge_expired(&self, now_ms: i64) -> StoreResult<u64>;
}

/// A key as a backend read it, for [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub seed: i64,
    pub created_at_ms: i64,
    pub token: String,
    pub locked_until_ms: i64,
    pub response: Option<StoredResponse>,
}

/// What to do about a key that already exists (and has not expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Answer(Begin),
    /// Replace the lease of `old_token` with the request's, if it is still `old_token`'s
    /// (compare-and-set): [`Begin::Execute`] with `reservation` when that succeeds,
    /// [`Begin::InFlight`] when another attempt won the takeover.
    TakeOver {
        old_token: String,
        reservation: Reservation,
    },
}

/// The one rule every backend applies to an existing key, so they cannot drift apart.
pub fn decide(record: KeyRecord, request: &BeginRequest) -> Decision {
    if record.fingerprint != request.fingerprint {
        return Decision::Answer(Begin::Mismatch);
    }
    if let Some(response) = record.response {
        return Decision::Answer(Begin::Replay(response));
    }
    if record.locked_until_ms > request.now_ms {
        return Decision::Answer(Begin::InFlight);
    }
    Decision::TakeOver {
        old_token: record.token,
        reservation: Reservation {
            token: request.token.clone(),
            seed: record.seed,
            created_at_ms: record.created_at_ms,
            recovering: true,
        },
    }
}

/// The reservation a freshly inserted key gives its attempt.
pub fn first_reservation(request: &BeginRequest) -> Reservation {
    Reservation { token: request.token.clone(), seed: request.seed, created_at_ms: request.now_ms, recovering: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BeginRequest {
        BeginRequest {
            fingerprint: "f".into(),
            token: "new".into(),
            seed: 7,
            now_ms: 1_000,
            lease_until_ms: 2_000,
            expires_at_ms: 10_000,
        }
    }

    fn record() -> KeyRecord {
        KeyRecord {
            fingerprint: "f".into(),
            seed: 3,
            created_at_ms: 500,
            token: "old".into(),
            locked_until_ms: 900,
            response: None,
        }
    }

    #[test]
    fn another_request_under_the_key_is_a_mismatch_even_while_in_flight() {
        let record = KeyRecord { fingerprint: "g".into(), locked_until_ms: 5_000, ..record() };
        assert_eq!(decide(record, &request()), Decision::Answer(Begin::Mismatch));
    }

    #[test]
    fn a_completed_key_replays_its_response() {
        let response = StoredResponse { status: 201, content_type: None, body: b"[]".to_vec() };
        let record = KeyRecord { response: Some(response.clone()), ..record() };
        assert_eq!(decide(record, &request()), Decision::Answer(Begin::Replay(response)));
    }

    #[test]
    fn a_live_lease_is_in_flight() {
        let record = KeyRecord { locked_until_ms: 1_001, ..record() };
        assert_eq!(decide(record, &request()), Decision::Answer(Begin::InFlight));
    }

    #[test]
    fn an_expired_lease_is_taken_over_in_recovery_with_the_first_seed() {
        let Decision::TakeOver { old_token, reservation } = decide(record(), &request()) else { panic!() };
        assert_eq!(old_token, "old");
        assert_eq!(reservation, Reservation { token: "new".into(), seed: 3, created_at_ms: 500, recovering: true });
    }
}
