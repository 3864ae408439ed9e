//! [`IdempotencyStore`] on the `idempotency_keys` collection. A key's `_id` is the document
//! `{scope, key}`, so the always-present unique `_id` index decides which of two racing
//! inserts reserves it; a takeover is a compare-and-set on the lease token (single-document
//! writes are atomic). A TTL index on `expiresAt` lets the server purge expired keys itself;
//! `begin` also ignores them before the TTL monitor's next pass (it runs once a minute).

use crate::MongoStore;
use crate::errors::{DUPLICATE_KEY, classify};
use mongodb::bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use pfs_storage::idempotency::{Decision, KeyRecord, decide, first_reservation};
use pfs_storage::{Begin, BeginRequest, IdempotencyStore, KeyRef, StoreError, StoreResult, StoredResponse};
use std::time::Duration;

pub const IDEMPOTENCY_COLLECTION: &str = "idempotency_keys";
const TTL_INDEX: &str = "pfs_idempotency_expiresAt_ttl";
/// CannotCreateIndex / InvalidIndexSpecificationOption: a server without TTL indexes; lazy
/// and periodic purging still remove expired keys.
const TTL_UNSUPPORTED: [i32; 2] = [67, 197];

fn id(key: KeyRef<'_>) -> Document {
    doc! { "scope": key.scope, "key": key.key }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt idempotency document: {what}").into())
}

fn to_record(doc: &Document) -> StoreResult<KeyRecord> {
    let int = |field: &str| doc.get_i64(field).map_err(|_| corrupt(field));
    let text = |field: &str| doc.get_str(field).map(str::to_owned).map_err(|_| corrupt(field));
    let response = match doc.get("status") {
        None | Some(Bson::Null) => None,
        Some(status) => Some(StoredResponse {
            status: status.as_i32().and_then(|s| u16::try_from(s).ok()).ok_or_else(|| corrupt("status"))?,
            content_type: doc.get_str("contentType").ok().map(str::to_owned),
            body: doc.get_binary_generic("body").map_err(|_| corrupt("body"))?.clone(),
        }),
    };
    Ok(KeyRecord {
        fingerprint: text("fingerprint")?,
        seed: int("seed")?,
        created_at_ms: int("createdAt")?,
        token: text("token")?,
        locked_until_ms: int("lockedUntil")?,
        response,
    })
}

fn is_duplicate(err: &mongodb::error::Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

impl MongoStore {
    fn idempotency(&self) -> Collection<Document> {
        self.database().collection(IDEMPOTENCY_COLLECTION)
    }

    /// The TTL index on `expiresAt` (the `_id` index needs no creating).
    pub(crate) async fn ensure_idempotency_indexes(&self) -> StoreResult<()> {
        let options = IndexOptions::builder().name(TTL_INDEX.to_owned()).expire_after(Duration::ZERO).build();
        let model = IndexModel::builder().keys(doc! { "expiresAt": 1 }).options(options).build();
        match self.idempotency().create_index(model).await {
            Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if TTL_UNSUPPORTED.contains(&c.code)) => Ok(()),
            other => other.map(drop).map_err(classify),
        }
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MongoStore {
    async fn begin(&self, key: KeyRef<'_>, request: &BeginRequest) -> StoreResult<Begin> {
        let keys = self.idempotency();
        keys.delete_one(doc! { "_id": id(key), "expiresAtMs": { "$lte": request.now_ms } }).await.map_err(classify)?;
        let fresh = doc! {
            "_id": id(key),
            "fingerprint": &request.fingerprint,
            "seed": request.seed,
            "createdAt": request.now_ms,
            "token": &request.token,
            "lockedUntil": request.lease_until_ms,
            "expiresAtMs": request.expires_at_ms,
            "expiresAt": DateTime::from_millis(request.expires_at_ms),
            "status": Bson::Null,
        };
        match keys.insert_one(fresh).await {
            Ok(_) => return Ok(Begin::Execute(first_reservation(request))),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(classify(e)),
        }
        // Purged between the insert and this read: the next attempt starts afresh.
        let Some(existing) = keys.find_one(doc! { "_id": id(key) }).await.map_err(classify)? else {
            return Ok(Begin::InFlight);
        };
        match decide(to_record(&existing)?, request) {
            Decision::Answer(answer) => Ok(answer),
            Decision::TakeOver { old_token, reservation } => {
                let taken = keys
                    .update_one(
                        doc! { "_id": id(key), "token": old_token, "status": Bson::Null },
                        doc! { "$set": { "token": &request.token, "lockedUntil": request.lease_until_ms } },
                    )
                    .await
                    .map_err(classify)?;
                Ok(if taken.modified_count == 1 { Begin::Execute(reservation) } else { Begin::InFlight })
            }
        }
    }

    async fn complete(&self, key: KeyRef<'_>, token: &str, response: &StoredResponse) -> StoreResult<bool> {
        let body = Binary { subtype: BinarySubtype::Generic, bytes: response.body.clone() };
        let done = self
            .idempotency()
            .update_one(
                doc! { "_id": id(key), "token": token, "status": Bson::Null },
                doc! { "$set": {
                    "status": i32::from(response.status),
                    "contentType": response.content_type.as_deref(),
                    "body": body,
                    "lockedUntil": 0_i64,
                } },
            )
            .await
            .map_err(classify)?;
        Ok(done.modified_count == 1)
    }

    async fn release(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        self.idempotency()
            .update_one(
                doc! { "_id": id(key), "token": token, "status": Bson::Null },
                doc! { "$set": { "lockedUntil": 0_i64 } },
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn forget(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        self.idempotency()
            .delete_one(doc! { "_id": id(key), "token": token, "status": Bson::Null })
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn purge_expired(&self, now_ms: i64) -> StoreResult<u64> {
        let purged =
            self.idempotency().delete_many(doc! { "expiresAtMs": { "$lte": now_ms } }).await.map_err(classify)?;
        Ok(purged.deleted_count)
    }
}
