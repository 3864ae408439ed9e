//! [`JobService`]: the queue plus this process's doorbell, shared by the API and the workers.

use pfs_domain::Timestamp;
use pfs_storage::StoreResult;
use pfs_storage::jobs::{JobId, JobQueue, JobRecord, NewJob};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct JobService {
    pub queue: Arc<dyn JobQueue>,
    /// Rung on every enqueue so an idle worker in this process starts at once instead of at
    /// its next poll; workers in other processes find the job when they poll.
    pub doorbell: Arc<Notify>,
    /// Attempts a new job gets before it is dead.
    pub max_attempts: u32,
}

impl JobService {
    pub fn new(queue: Arc<dyn JobQueue>, max_attempts: u32) -> Self {
        Self { queue, doorbell: Arc::new(Notify::new()), max_attempts }
    }

    /// Stores a new job, queued now, and wakes a local worker.
    pub async fn enqueue(&self, kind: &str, payload: Vec<u8>, priority: i32, total: u64) -> StoreResult<JobId> {
        self.enqueue_as(JobId::generate(), kind, payload, priority, total).await
    }

    /// As [`Self::enqueue`], under an id chosen before (its input chunks are staged under it).
    pub async fn enqueue_as(
        &self,
        id: JobId,
        kind: &str,
        payload: Vec<u8>,
        priority: i32,
        total: u64,
    ) -> StoreResult<JobId> {
        let job =
            NewJob { id, kind: kind.to_owned(), payload, priority, max_attempts: self.max_attempts.max(1), total };
        self.queue.enqueue(&job, Timestamp::now()).await?;
        self.doorbell.notify_one();
        Ok(job.id)
    }

    pub async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        self.queue.get(id).await
    }
}
