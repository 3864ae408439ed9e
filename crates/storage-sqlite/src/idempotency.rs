//! [`IdempotencyStore`] on the `idempotency_keys` table, through the single writer connection
//! (so every step is serialized with the portfolio writes).

use crate::{SqliteStore, errors::classify};
use async_trait::async_trait;
use pfs_storage::idempotency::{Decision, KeyRecord, decide, first_reservation};
use pfs_storage::{Begin, BeginRequest, IdempotencyStore, KeyRef, StoreResult, StoredResponse};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

fn to_record(row: &SqliteRow) -> StoreResult<KeyRecord> {
    let status: Option<i64> = row.try_get("response_status").map_err(classify)?;
    let response = match status {
        None => None,
        Some(status) => Some(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            content_type: row.try_get("response_type").map_err(classify)?,
            body: row.try_get::<Option<Vec<u8>>, _>("response_body").map_err(classify)?.unwrap_or_default(),
        }),
    };
    Ok(KeyRecord {
        fingerprint: row.try_get("fingerprint").map_err(classify)?,
        seed: row.try_get("seed").map_err(classify)?,
        created_at_ms: row.try_get("created_at").map_err(classify)?,
        token: row.try_get("token").map_err(classify)?,
        locked_until_ms: row.try_get("locked_until").map_err(classify)?,
        response,
    })
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin(&self, key: KeyRef<'_>, request: &BeginRequest) -> StoreResult<Begin> {
        // One transaction on the one writer: nothing else can run between the steps.
        let mut tx = self.writer.begin().await.map_err(classify)?;
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at <= ?")
            .bind(key.scope)
            .bind(key.key)
            .bind(request.now_ms)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, seed, created_at, token, locked_until, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(key.scope)
        .bind(key.key)
        .bind(&request.fingerprint)
        .bind(request.seed)
        .bind(request.now_ms)
        .bind(&request.token)
        .bind(request.lease_until_ms)
        .bind(request.expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        let outcome = if inserted == 1 {
            Begin::Execute(first_reservation(request))
        } else {
            let row = sqlx::query("SELECT * FROM idempotency_keys WHERE scope = ? AND key = ?")
                .bind(key.scope)
                .bind(key.key)
                .fetch_one(&mut *tx)
                .await
                .map_err(classify)?;
            match decide(to_record(&row)?, request) {
                Decision::Answer(answer) => answer,
                Decision::TakeOver { old_token, reservation } => {
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET token = ?, locked_until = ?
                         WHERE scope = ? AND key = ? AND token = ? AND response_status IS NULL",
                    )
                    .bind(&request.token)
                    .bind(request.lease_until_ms)
                    .bind(key.scope)
                    .bind(key.key)
                    .bind(&old_token)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                    if taken == 1 { Begin::Execute(reservation) } else { Begin::InFlight }
                }
            }
        };
        tx.commit().await.map_err(classify)?;
        Ok(outcome)
    }

    async fn complete(&self, key: KeyRef<'_>, token: &str, response: &StoredResponse) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET response_status = ?, response_type = ?, response_body = ?, locked_until = 0
             WHERE scope = ? AND key = ? AND token = ? AND response_status IS NULL",
        )
        .bind(i64::from(response.status))
        .bind(response.content_type.as_deref())
        .bind(&response.body)
        .bind(key.scope)
        .bind(key.key)
        .bind(token)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET locked_until = 0
             WHERE scope = ? AND key = ? AND token = ? AND response_status IS NULL",
        )
        .bind(key.scope)
        .bind(key.key)
        .bind(token)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn forget(&self, key: KeyRef<'_>, token: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND token = ? AND response_status IS NULL",
        )
        .bind(key.scope)
        .bind(key.key)
        .bind(token)
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn purge_expired(&self, now_ms: i64) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?")
            .bind(now_ms)
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(purged.rows_affected())
    }
}
