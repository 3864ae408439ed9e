//! The unpaged v1 list as a stream of batches, so serving every portfolio costs a bounded
//! amount of memory however many there are.
//!
//! A backend reads one batch at a time, in ascending id order, each after the last id of the
//! one before (keyset: an index range, never an offset), and stops a batch at
//! [`BATCH_ROWS`] rows or once it holds [`BATCH_BYTES`] of names and fields, whichever comes
//! first. The next batch is read only when the consumer asks for it, so a slow reader slows the
//! reads instead of piling rows up in memory, and each batch takes a pooled connection only
//! while it is read: a client reading slowly holds no connection and no read transaction (a
//! long SQLite read would keep the WAL from being checkpointed).
//!
//! Batches are separate statements, not one snapshot: a portfolio created or deleted while the
//! list is read may or may not appear, but every portfolio that exists throughout appears
//! exactly once, in order. The original read a MongoDB cursor, which gives no snapshot either.

use crate::StoreResult;
use futures_util::stream::{self, BoxStream, StreamExt};
use pfs_domain::{Portfolio, PortfolioId};
use std::future::Future;

/// Portfolios in ascending id order, one batch per item, read as the stream is polled. An
/// `Err` item ends it: the list read so far is incomplete.
pub type PortfolioBatches = BoxStream<'static, StoreResult<Vec<Portfolio>>>;

/// Most rows one batch asks the database for.
pub const BATCH_ROWS: u32 = 1_000;

/// A batch stops growing once its portfolios weigh this much ([`weight`]); it holds at least
/// one row, so a batch weighs at most this plus one portfolio.
pub const BATCH_BYTES: usize = 64 * 1024;

/// Roughly what a portfolio costs in memory and encoded as JSON: its name plus the fixed-size
/// fields and their keys.
pub fn weight(portfolio: &Portfolio) -> usize {
    portfolio.name.len() + 96
}

/// One batch as a backend reads it.
#[derive(Debug, Default)]
pub struct Batch {
    items: Vec<Portfolio>,
    bytes: usize,
}

impl Batch {
    /// Adds a row; false once the batch is full, and the backend stops reading rows.
    pub fn push(&mut self, portfolio: Portfolio) -> bool {
        self.bytes += weight(&portfolio);
        self.items.push(portfolio);
        !self.is_full()
    }

    fn is_full(&self) -> bool {
        self.bytes >= BATCH_BYTES || self.items.len() >= BATCH_ROWS as usize
    }

    /// Where the next batch starts, if there may be one: only a full batch can have rows after it.
    fn resume_after(&self) -> Option<PortfolioId> {
        self.items.last().filter(|_| self.is_full()).map(|last| last.id)
    }
}

/// What comes next: a batch already read, a batch to read after an id, or nothing.
enum Next {
    Read(Batch),
    After(PortfolioId),
    Done,
}

/// The list as batches read by `read` (`None`: from the start; `Some(id)`: the rows after
/// `id`). The first batch is read before this returns, so a database that cannot answer fails
/// the call itself (a response can still say so); later failures end the stream with an `Err`.
pub async fn batches<F, Fut>(mut read: F) -> StoreResult<PortfolioBatches>
where
    F: FnMut(Option<PortfolioId>) -> Fut + Send + 'static,
    Fut: Future<Output = StoreResult<Batch>> + Send + 'static,
{
    let first = read(None).await?;
    let stream = stream::try_unfold((Next::Read(first), read), |(next, mut read)| async move {
        let batch = match next {
            Next::Done => return Ok(None),
            Next::Read(batch) => batch,
            Next::After(id) => read(Some(id)).await?,
        };
        let next = batch.resume_after().map_or(Next::Done, Next::After);
        Ok((!batch.items.is_empty()).then_some((batch.items, (next, read))))
    });
    // Fused, so a consumer polling past the end gets `None` again instead of a panic.
    Ok(stream.fuse().boxed())
}

/// The whole list in memory: for tests and small stores. The v1 route streams instead.
pub async fn collect(mut batches: PortfolioBatches) -> StoreResult<Vec<Portfolio>> {
    let mut all = Vec::new();
    while let Some(batch) = batches.next().await {
        all.extend(batch?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;
    use pfs_domain::{Timestamp, Version};
    use std::sync::{Arc, Mutex};

    fn portfolio(n: u8, name_len: usize) -> Portfolio {
        let mut id = [0u8; 12];
        id[11] = n;
        Portfolio {
            id: PortfolioId::from_bytes(id),
            name: "x".repeat(name_len),
            date_created: Timestamp::from_millis(0).unwrap(),
            version: Version(1),
        }
    }

    /// A fake backend over `rows`, recording where each read started.
    fn backend(
        rows: Vec<Portfolio>,
        reads: Arc<Mutex<Vec<Option<PortfolioId>>>>,
    ) -> impl FnMut(Option<PortfolioId>) -> std::future::Ready<StoreResult<Batch>> + Send + 'static {
        move |after| {
            reads.lock().unwrap().push(after);
            let mut batch = Batch::default();
            for row in rows.iter().filter(|p| after.is_none_or(|a| p.id > a)) {
                if !batch.push(row.clone()) {
                    break;
                }
            }
            std::future::ready(Ok(batch))
        }
    }

    #[tokio::test]
    async fn batches_stop_by_bytes_and_resume_after_the_last_id() {
        // 10 rows of ~30 KiB: a batch is full after its third row (>= 64 KiB).
        let rows: Vec<_> = (0..10).map(|n| portfolio(n, 30 * 1024)).collect();
        let reads = Arc::new(Mutex::new(Vec::new()));
        let mut stream = batches(backend(rows.clone(), reads.clone())).await.unwrap();
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.unwrap();
            sizes.push(batch.len());
            assert!(batch.iter().map(weight).sum::<usize>() < BATCH_BYTES + 31 * 1024);
            all.extend(batch);
        }
        assert_eq!(sizes, [3, 3, 3, 1]);
        assert_eq!(all, rows);
        let reads = reads.lock().unwrap();
        assert_eq!(*reads, [None, Some(rows[2].id), Some(rows[5].id), Some(rows[8].id)]);
    }

    #[tokio::test]
    async fn a_short_batch_is_the_last_and_an_empty_store_yields_nothing() {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let rows: Vec<_> = (0..5).map(|n| portfolio(n, 3)).collect();
        assert_eq!(collect(batches(backend(rows.clone(), reads.clone())).await.unwrap()).await.unwrap(), rows);
        assert_eq!(reads.lock().unwrap().len(), 1, "five small rows are one read");
        let empty = batches(backend(Vec::new(), reads.clone())).await.unwrap();
        assert_eq!(empty.count().await, 0);
    }

    #[tokio::test]
    async fn the_first_read_fails_the_call_and_a_later_one_ends_the_stream() {
        let failing = |_| std::future::ready(Err::<Batch, _>(StoreError::Unavailable("down".into())));
        assert!(matches!(batches(failing).await, Err(StoreError::Unavailable(_))));

        let mut calls = 0;
        let later = move |_| {
            calls += 1;
            let mut batch = Batch::default();
            for n in 0..BATCH_ROWS {
                batch.push(portfolio(n as u8, 1));
            }
            std::future::ready(if calls == 1 { Ok(batch) } else { Err(StoreError::Backend("gone".into())) })
        };
        let items: Vec<_> = batches(later).await.unwrap().collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok() && items[1].is_err(), "the error ends the stream");
    }
}
