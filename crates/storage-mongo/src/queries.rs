//! The [`PortfolioStore`] implementation: one command per call, except where noted.

use crate::MongoStore;
use crate::document::{DATE_CREATED, ID, NAME, VERSION, date, from_document, name_filter, object_id, version};
use crate::errors::classify;
use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Cursor};
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Version};
use pfs_storage::listing::{self, Batch};
use pfs_storage::paging::Window;
use pfs_storage::{BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreError, StoreResult};
use std::time::Duration;

async fn collect(mut cursor: Cursor<Document>) -> StoreResult<Vec<Portfolio>> {
    let mut portfolios = Vec::new();
    while cursor.advance().await.map_err(classify)? {
        portfolios.push(from_document(&cursor.deserialize_current().map_err(classify)?)?);
    }
    Ok(portfolios)
}

/// One batch of the v1 list: the documents after `after` in `_id` order (the `_id` index),
/// read document by document until the batch is full. The server answers in replies of at most
/// [`REPLY_DOCUMENTS`] documents (and never more than 16 MiB), and dropping the cursor of a
/// batch cut short kills it on the server.
async fn list_batch(collection: Collection<Document>, after: Option<PortfolioId>) -> StoreResult<Batch> {
    let filter = after.map_or_else(Document::new, |id| doc! { ID: { "$gt": object_id(id) } });
    let mut cursor = collection
        .find(filter)
        .sort(doc! { ID: 1 })
        .limit(i64::from(listing::BATCH_ROWS))
        .batch_size(REPLY_DOCUMENTS)
        .projection(doc! { ID: 1, NAME: 1, DATE_CREATED: 1, VERSION: 1 })
        .await
        .map_err(classify)?;
    let mut batch = Batch::default();
    while cursor.advance().await.map_err(classify)? {
        if !batch.push(from_document(&cursor.deserialize_current().map_err(classify)?)?) {
            break;
        }
    }
    Ok(batch)
}

/// Documents per server reply while listing.
const REPLY_DOCUMENTS: u32 = 200;

impl MongoStore {
    /// One page in search order, after the keyset position and/or past `offset` matches, with
    /// the count of all matches (the keyset narrows the page, not the count).
    ///
    /// The sort walks the `{dateCreated: -1, _id: -1}` index, and the server skips on index
    /// keys before fetching (IXSCAN, SKIP, FETCH: only the page's documents are read), so a
    /// skipped match costs one key. A deep offset page asks for the total first and walks the
    /// index from the nearer end ([`Window`]), so the last page costs what the first does; the
    /// first page and keyset pages need no total to choose, and run both commands at once.
    ///
    /// MongoDB offers no consistent snapshot across the two commands short of a snapshot-read
    /// transaction, so a write landing in between can make `total` disagree with the page by
    /// that write (the SQL backends read both in one snapshot). The original has the same gap.
    async fn page(
        &self,
        filter: &NameFilter,
        after: Option<Keyset>,
        limit: u32,
        offset: u64,
    ) -> StoreResult<SearchPage> {
        let matching = name_filter(filter);
        let mut paged = matching.clone();
        if let Some(after) = after {
            let (at, id) = (date(after.date_created), object_id(after.id));
            paged.insert("$or", [doc! { DATE_CREATED: { "$lt": at } }, doc! { DATE_CREATED: at, ID: { "$lt": id } }]);
        }
        let forward = Window { backwards: false, offset, limit: u64::from(limit) };
        if offset == 0 || after.is_some() {
            let (items, total) = tokio::try_join!(self.window(paged, forward), self.count(matching))?;
            return Ok(SearchPage { items, total });
        }
        let total = self.count(matching).await?;
        let items = self.window(paged, Window::of(offset, u64::from(limit), total)).await?;
        Ok(SearchPage { items, total })
    }

    /// The documents of `window` among those matching `filter`, in search order.
    async fn window(&self, filter: Document, window: Window) -> StoreResult<Vec<Portfolio>> {
        let direction = if window.backwards { 1 } else { -1 };
        let cursor = self
            .collection
            .find(filter)
            .sort(doc! { DATE_CREATED: direction, ID: direction })
            .skip(window.offset)
            .limit(i64::try_from(window.limit).unwrap_or(i64::MAX))
            .projection(doc! { ID: 1, NAME: 1, DATE_CREATED: 1, VERSION: 1 })
            .await
            .map_err(classify)?;
        let mut items = collect(cursor).await?;
        if window.backwards {
            items.reverse();
        }
        Ok(items)
    }

    /// The number of documents matching `filter`, by the `count` command rather than
    /// `countDocuments` (an aggregation that fetches every matching document): unfiltered,
    /// the server answers from the collection's metadata (RECORD_STORE_FAST_COUNT); with a
    /// name regex it counts on the keys of the `{name: 1, dateCreated: -1}` index (COUNT over
    /// IXSCAN, no document read). The metadata count is exact on a standalone server and a
    /// replica set; it can be off after an unclean shutdown until the collection is validated,
    /// and on a sharded cluster while orphaned documents exist (docs/MONGODB.md).
    async fn count(&self, filter: Document) -> StoreResult<u64> {
        if filter.is_empty() {
            return self.collection.estimated_document_count().await.map_err(classify);
        }
        let command = doc! { "count": self.collection.name(), "query": filter };
        let reply = self.database().run_command(command).await.map_err(classify)?;
        match reply.get("n") {
            Some(Bson::Int32(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            Some(Bson::Int64(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            Some(Bson::Double(n)) if *n >= 0.0 => Ok(*n as u64),
            other => Err(StoreError::Backend(format!("count answered without a count: {other:?}").into())),
        }
    }

    /// Tells `NotFound` from `Conflict` after a version-checked write matched nothing. Like
    /// the SQL backends, a write racing in between can make this report the later state.
    async fn missing_or_conflict(&self, id: PortfolioId) -> StoreError {
        let exists = self.collection.find_one(doc! { ID: object_id(id) }).projection(doc! { ID: 1 }).await;
        exists.map_or_else(classify, |found| StoreError::unmatched_write(found.is_some()))
    }
}

#[async_trait]
impl PortfolioStore for MongoStore {
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        let collection = self.collection.clone();
        listing::batches(move |after| list_batch(collection.clone(), after)).await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        let found = self.collection.find_one(doc! { ID: object_id(id) }).await.map_err(classify)?;
        found.as_ref().map(from_document).transpose()
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = ids.iter().copied().map(object_id).collect();
        collect(self.collection.find(doc! { ID: { "$in": ids } }).await.map_err(classify)?).await
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.insert_all(portfolios).await
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.insert_new(portfolios).await
    }

    /// One `findOneAndUpdate` filtered on `_id` and the expected version: the server applies
    /// it to one document atomically, so of several racing updates exactly one matches.
    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        let next = expected.next().ok_or_else(|| StoreError::Backend("version counter overflow".into()))?;
        let mut set = doc! { NAME: changes.name.as_str(), VERSION: version(next) };
        if let Some(at) = changes.date_created {
            set.insert(DATE_CREATED, date(at));
        }
        let updated = self
            .collection
            .find_one_and_update(doc! { ID: object_id(id), VERSION: version(expected) }, doc! { "$set": set })
            .return_document(ReturnDocument::After)
            .await
            .map_err(classify)?;
        match updated {
            Some(doc) => from_document(&doc),
            None => Err(self.missing_or_conflict(id).await),
        }
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        let done = self
            .collection
            .delete_one(doc! { ID: object_id(id), VERSION: version(expected) })
            .await
            .map_err(classify)?;
        if done.deleted_count == 1 { Ok(()) } else { Err(self.missing_or_conflict(id).await) }
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.page(filter, None, page.limit, page.offset).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.page(filter, after, limit, 0).await
    }

    /// `{ping: 1}` on a pooled connection; fails as unavailable after `timeout`, which also
    /// bounds the wait for server selection.
    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        let database = self.database();
        match tokio::time::timeout(timeout, database.run_command(doc! { "ping": 1 })).await {
            Ok(result) => result.map(drop).map_err(classify),
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        let build = self.database().run_command(doc! { "buildInfo": 1 }).await.map_err(classify)?;
        let version = build.get_str("version").map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(BackendInfo { kind: "mongodb", server_version: version.to_owned() })
    }

    /// Ends the client's sessions and closes its pools, waiting for in-flight operations.
    async fn close(&self) {
        self.client.clone().shutdown().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools.stats()
    }
}
