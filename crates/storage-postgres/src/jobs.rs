//! The job queue on PostgreSQL. A claim locks the chosen row with `FOR UPDATE SKIP LOCKED`
//! and updates it in the same statement: concurrent claimers (on any replica) skip rows
//! another transaction holds instead of waiting for them, and READ COMMITTED re-checks the
//! row's state after the lock, so two claims never get the same job.

use crate::PostgresStore;
use crate::errors::classify;
use async_trait::async_trait;
use pfs_domain::Timestamp;
use pfs_storage::jobs::{
    ClaimedJob, Finish, JobId, JobProgress, JobQueue, JobRecord, JobState, LeaseToken, NewJob, Purged, QueueDepth,
    Retention, cutoff, lease_deadline,
};
use pfs_storage::{StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::time::Duration;

const RECORD_COLUMNS: &str = "id::text AS id, kind, state, priority, attempts, max_attempts, processed, total, report, \
     last_error, created_at, updated_at, started_at, finished_at, run_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("job table holds an invalid {what}").into())
}

fn job_id(row: &PgRow) -> StoreResult<JobId> {
    JobId::parse(row.try_get::<&str, _>("id").map_err(classify)?).ok_or_else(|| corrupt("id"))
}

fn timestamp(millis: i64) -> StoreResult<Timestamp> {
    Timestamp::from_millis(millis).ok_or_else(|| corrupt("timestamp"))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn progress(row: &PgRow) -> StoreResult<JobProgress> {
    Ok(JobProgress {
        processed: count(row.try_get("processed").map_err(classify)?),
        total: count(row.try_get("total").map_err(classify)?),
        report: row.try_get("report").map_err(classify)?,
    })
}

fn record(row: &PgRow) -> StoreResult<JobRecord> {
    let get_i64 = |column: &str| row.try_get::<i64, _>(column).map_err(classify);
    let optional_time = |column: &str| -> StoreResult<Option<Timestamp>> {
        row.try_get::<Option<i64>, _>(column).map_err(classify)?.map(timestamp).transpose()
    };
    Ok(JobRecord {
        id: job_id(row)?,
        kind: row.try_get("kind").map_err(classify)?,
        state: JobState::parse(row.try_get::<&str, _>("state").map_err(classify)?).ok_or_else(|| corrupt("state"))?,
        priority: row.try_get("priority").map_err(classify)?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts").map_err(classify)?).unwrap_or(0),
        max_attempts: u32::try_from(row.try_get::<i32, _>("max_attempts").map_err(classify)?).unwrap_or(1),
        progress: progress(row)?,
        last_error: row.try_get("last_error").map_err(classify)?,
        created_at: timestamp(get_i64("created_at")?)?,
        updated_at: timestamp(get_i64("updated_at")?)?,
        started_at: optional_time("started_at")?,
        finished_at: optional_time("finished_at")?,
        run_at: timestamp(get_i64("run_at")?)?,
    })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl JobQueue for PostgresStore {
    async fn enqueue(&self, job: &NewJob, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO job (id, kind, state, priority, max_attempts, payload, total, run_at, created_at, updated_at) \
             VALUES ($1::uuid, $2, 'queued', $3, $4, $5, $6, $7, $7, $7)",
        )
        .bind(job.id.to_string())
        .bind(&job.kind)
        .bind(job.priority)
        .bind(i32::try_from(job.max_attempts.max(1)).unwrap_or(i32::MAX))
        .bind(&job.payload)
        .bind(to_i64(job.total))
        .bind(now.millis())
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn claim(&self, now: Timestamp, lease: Duration) -> StoreResult<Option<ClaimedJob>> {
        let token = LeaseToken::generate();
        let row = sqlx::query(
            "UPDATE job SET state = 'running', attempts = job.attempts + 1, lease_token = $1::uuid, \
                 lease_expires_at = $2, started_at = COALESCE(job.started_at, $3), updated_at = $3 \
             WHERE seq = (SELECT seq FROM job \
                 WHERE state IN ('queued', 'running') \
                   AND ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_expires_at <= $3)) \
                 ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING job.id::text AS id, job.kind, job.payload, job.attempts, job.max_attempts, \
                 job.processed, job.total, job.report",
        )
        .bind(token.to_string())
        .bind(lease_deadline(now, lease))
        .bind(now.millis())
        .fetch_optional(&self.writer)
        .await
        .map_err(classify)?;
        row.map(|row| {
            Ok(ClaimedJob {
                id: job_id(&row)?,
                kind: row.try_get("kind").map_err(classify)?,
                payload: row.try_get("payload").map_err(classify)?,
                attempt: u32::try_from(row.try_get::<i32, _>("attempts").map_err(classify)?).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(row.try_get::<i32, _>("max_attempts").map_err(classify)?).unwrap_or(1),
                token,
                progress: progress(&row)?,
            })
        })
        .transpose()
    }

    async fn heartbeat(
        &self,
        id: JobId,
        token: LeaseToken,
        progress: &JobProgress,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE job SET lease_expires_at = $1, processed = $2, total = $3, report = $4, updated_at = $5 \
             WHERE id = $6::uuid AND lease_token = $7::uuid AND state = 'running'",
        )
        .bind(lease_deadline(now, lease))
        .bind(to_i64(progress.processed))
        .bind(to_i64(progress.total))
        .bind(&progress.report)
        .bind(now.millis())
        .bind(id.to_string())
        .bind(token.to_string())
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish(
        &self,
        id: JobId,
        token: LeaseToken,
        outcome: &Finish,
        progress: &JobProgress,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let run_at = match outcome {
            Finish::Retry { run_at, .. } => Some(run_at.millis()),
            _ => None,
        };
        let finished_at = outcome.state().is_final().then_some(now.millis());
        let done = sqlx::query(
            "UPDATE job SET state = $1, last_error = $2, run_at = COALESCE($3, run_at), finished_at = $4, \
                 processed = $5, total = $6, report = $7, updated_at = $8, lease_token = NULL, lease_expires_at = NULL, \
                 payload = CASE WHEN $1 IN ('succeeded', 'failed') THEN ''::bytea ELSE payload END \
             WHERE id = $9::uuid AND lease_token = $10::uuid AND state = 'running'",
        )
        .bind(outcome.state().as_str())
        .bind(outcome.error())
        .bind(run_at)
        .bind(finished_at)
        .bind(to_i64(progress.processed))
        .bind(to_i64(progress.total))
        .bind(&progress.report)
        .bind(now.millis())
        .bind(id.to_string())
        .bind(token.to_string())
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        let finished = done.rows_affected() == 1;
        if finished && matches!(outcome, Finish::Succeeded | Finish::Failed { .. }) {
            // Outside the fenced update: if this fails, the purge drops them later.
            self.discard_chunks(id).await?;
        }
        Ok(finished)
    }

    async fn release(&self, id: JobId, token: LeaseToken, now: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE job SET state = 'queued', attempts = attempts - 1, run_at = $1, updated_at = $1, \
                 lease_token = NULL, lease_expires_at = NULL \
             WHERE id = $2::uuid AND lease_token = $3::uuid AND state = 'running'",
        )
        .bind(now.millis())
        .bind(id.to_string())
        .bind(token.to_string())
        .execute(&self.writer)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM job WHERE id = $1::uuid");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(classify)?;
        row.as_ref().map(record).transpose()
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE state = 'queued') AS queued, \
                 count(*) FILTER (WHERE state = 'running') AS running \
             FROM job WHERE state IN ('queued', 'running')",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(classify)?;
        Ok(QueueDepth {
            queued: count(row.try_get("queued").map_err(classify)?),
            running: count(row.try_get("running").map_err(classify)?),
        })
    }

    async fn stage_chunk(&self, id: JobId, seq: u32, payload: &[u8], now: Timestamp) -> StoreResult<()> {
        sqlx::query("INSERT INTO job_chunk (job_id, seq, payload, staged_at) VALUES ($1::uuid, $2, $3, $4)")
            .bind(id.to_string())
            .bind(i32::try_from(seq).unwrap_or(i32::MAX))
            .bind(payload)
            .bind(now.millis())
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn chunk(&self, id: JobId, seq: u32) -> StoreResult<Option<Vec<u8>>> {
        // From the primary: a replica may not have the chunk staged a moment ago yet.
        sqlx::query_scalar("SELECT payload FROM job_chunk WHERE job_id = $1::uuid AND seq = $2")
            .bind(id.to_string())
            .bind(i32::try_from(seq).unwrap_or(i32::MAX))
            .fetch_optional(&self.writer)
            .await
            .map_err(classify)
    }

    async fn discard_chunks(&self, id: JobId) -> StoreResult<()> {
        sqlx::query("DELETE FROM job_chunk WHERE job_id = $1::uuid")
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn purge(&self, retention: &Retention, now: Timestamp) -> StoreResult<Purged> {
        let finished_before = cutoff(now, retention.finished);
        let dead_before = cutoff(now, retention.dead_payload);
        // Three statements, not one transaction: each rule stands alone and is idempotent, and
        // a purge cut off (a process stopping) must not leave a transaction holding locks.
        let jobs = sqlx::query("DELETE FROM job WHERE state IN ('succeeded', 'failed', 'dead') AND finished_at <= $1")
            .bind(finished_before)
            .execute(&self.writer)
            .await
            .map_err(classify)?
            .rows_affected();
        let dead_payloads = sqlx::query(
            "UPDATE job SET payload = ''::bytea WHERE state = 'dead' AND finished_at <= $1 AND length(payload) > 0",
        )
        .bind(dead_before)
        .execute(&self.writer)
        .await
        .map_err(classify)?
        .rows_affected();
        // Chunks whose job is gone (purged, or never enqueued and staged long enough ago), or
        // will never run again and has dropped its input.
        let chunks = sqlx::query(
            "DELETE FROM job_chunk c WHERE NOT EXISTS (SELECT 1 FROM job j WHERE j.id = c.job_id) AND c.staged_at <= $1 \
                 OR EXISTS (SELECT 1 FROM job j WHERE j.id = c.job_id \
                     AND (j.state IN ('succeeded', 'failed') OR (j.state = 'dead' AND j.finished_at <= $2)))",
        )
        .bind(cutoff(now, retention.orphan_chunks))
        .bind(dead_before)
        .execute(&self.writer)
        .await
        .map_err(classify)?
        .rows_affected();
        Ok(Purged { jobs, dead_payloads, chunks })
    }
}
