//! The [`PortfolioStore`] implementation: one statement (or one transaction) per call.

use crate::{SqliteStore, errors::classify, point};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Timestamp, Version};
use pfs_storage::listing::{self, Batch};
use pfs_storage::paging::Window;
use pfs_storage::{
    BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreError, StoreResult,
    like_contains_pattern,
};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use std::time::Duration;

const COLUMNS: &str = "id, name, date_created, version";

fn to_portfolio(row: &SqliteRow) -> StoreResult<Portfolio> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt portfolio row: {what}").into());
    let id: &str = row.try_get("id").map_err(classify)?;
    let millis: i64 = row.try_get("date_created").map_err(classify)?;
    Ok(Portfolio {
        id: PortfolioId::parse(id).ok_or_else(|| corrupt("id"))?,
        name: row.try_get("name").map_err(classify)?,
        date_created: Timestamp::from_millis(millis).ok_or_else(|| corrupt("date_created"))?,
        version: Version(row.try_get("version").map_err(classify)?),
    })
}

fn to_portfolios(rows: &[SqliteRow]) -> StoreResult<Vec<Portfolio>> {
    rows.iter().map(to_portfolio).collect()
}

/// Appends the `WHERE` clause of a search, and the keyset position when paging by cursor.
/// Exact matches use `COLLATE NOCASE`, served by the `portfolio_by_name_nocase` index; `LIKE`
/// is ASCII-case-insensitive in SQLite by default.
fn push_conditions(query: &mut QueryBuilder<Sqlite>, filter: &NameFilter, after: Option<Keyset>) {
    let mut separator = " WHERE ";
    match filter {
        NameFilter::All => {}
        NameFilter::Exact(term) => {
            query.push(separator).push("name = ").push_bind(term.as_str().to_owned()).push(" COLLATE NOCASE");
            separator = " AND ";
        }
        NameFilter::Contains(term) => {
            query
                .push(separator)
                .push("name LIKE ")
                .push_bind(like_contains_pattern(term.as_str()))
                .push(" ESCAPE '\\'");
            separator = " AND ";
        }
    }
    if let Some(after) = after {
        query
            .push(separator)
            .push("(date_created, id) < (")
            .push_bind(after.date_created.millis())
            .push(", ")
            .push_bind(after.id.to_hex())
            .push(")");
    }
}

/// The page's ids are found on an index alone, then only those rows are read: a skipped entry
/// costs an index step instead of a table lookup. Both orderings index `(date_created, id)`
/// and, the table being WITHOUT ROWID, every index entry carries the `id`, so the subquery is
/// answered from `portfolio_by_created` (unfiltered, keyset) or `portfolio_by_name_nocase`
/// (exact name) without touching the table. A backwards [`Window`] walks the same index from
/// the oldest end. The outer ORDER BY sorts at most `limit` rows into the search order, which
/// a join does not promise to keep.
fn page_query(filter: &NameFilter, after: Option<Keyset>, window: Window) -> QueryBuilder<Sqlite> {
    let mut query =
        QueryBuilder::<Sqlite>::new("SELECT p.id, p.name, p.date_created, p.version FROM (SELECT id FROM portfolio");
    push_conditions(&mut query, filter, after);
    let order = if window.backwards {
        " ORDER BY date_created, id LIMIT "
    } else {
        " ORDER BY date_created DESC, id DESC LIMIT "
    };
    query
        .push(order)
        .push_bind(i64::try_from(window.limit).unwrap_or(i64::MAX))
        .push(" OFFSET ")
        .push_bind(i64::try_from(window.offset).unwrap_or(i64::MAX))
        .push(") page JOIN portfolio p ON p.id = page.id ORDER BY p.date_created DESC, p.id DESC");
    query
}

/// One batch of the v1 list: the rows after `after` in id order (a range of the primary key),
/// read row by row until the batch is full, on a connection held only for this batch.
async fn list_batch(reader: SqlitePool, after: Option<PortfolioId>) -> StoreResult<Batch> {
    let mut conn = pfs_storage::pool::acquire(&reader, "reader").await.map_err(classify)?;
    // Every id is 24 hex characters, so the empty string sorts before all of them.
    let after = after.map_or_else(String::new, |id| id.to_hex());
    let mut rows =
        sqlx::query("SELECT id, name, date_created, version FROM portfolio WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(i64::from(listing::BATCH_ROWS))
            .fetch(&mut *conn);
    let mut batch = Batch::default();
    while let Some(row) = rows.try_next().await.map_err(classify)? {
        if !batch.push(to_portfolio(&row)?) {
            break;
        }
    }
    Ok(batch)
}

impl SqliteStore {
    /// A connection of the single-connection writer pool. Hold it no longer than one call:
    /// every other write waits for it.
    async fn write(&self) -> StoreResult<PoolConnection<Sqlite>> {
        pfs_storage::pool::acquire(&self.writer, "writer").await.map_err(classify)
    }

    /// `read` on this thread, on a point-read connection. `None` means read through sqlx
    /// instead: no connection was free, or SQLite refused the read for a moment (a lock that
    /// sqlx's connection thread can wait out without holding up this one).
    fn point_read<T>(&self, read: impl FnOnce(&point::Lease<'_>) -> StoreResult<T>) -> Option<StoreResult<T>> {
        match self.point.as_deref()?.checkout()? {
            Ok(lease) => match read(&lease) {
                Err(err) if err.is_transient() => None,
                done => Some(done),
            },
            Err(err) => Some(Err(err)),
        }
    }

    async fn read(&self) -> StoreResult<PoolConnection<Sqlite>> {
        pfs_storage::pool::acquire(&self.reader, "reader").await.map_err(classify)
    }

    /// One multi-row INSERT per chunk, all chunks in one transaction: all rows or none.
    /// A chunk of 1000 rows x 4 parameters stays below SQLite's 32766-parameter limit.
    async fn insert(&self, portfolios: &[Portfolio], on_conflict: &'static str) -> StoreResult<u64> {
        if portfolios.is_empty() {
            return Ok(0);
        }
        let mut conn = self.write().await?;
        let mut tx = conn.begin().await.map_err(classify)?;
        let mut inserted = 0;
        for chunk in portfolios.chunks(1000) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO portfolio (id, name, date_created, version) ");
            query.push_values(chunk, |mut row, p| {
                row.push_bind(p.id.to_hex())
                    .push_bind(p.name.clone())
                    .push_bind(p.date_created.millis())
                    .push_bind(p.version.0);
            });
            query.push(on_conflict);
            inserted += query.build().execute(&mut *tx).await.map_err(classify)?.rows_affected();
        }
        tx.commit().await.map_err(classify)?;
        Ok(inserted)
    }

    /// Count and page in one read transaction, so the total describes the same snapshot.
    async fn page(
        &self,
        filter: &NameFilter,
        after: Option<Keyset>,
        limit: u32,
        offset: u64,
    ) -> StoreResult<SearchPage> {
        let mut conn = self.read().await?;
        let mut tx = conn.begin().await.map_err(classify)?;
        let total: i64 = if *filter == NameFilter::All {
            // Kept by triggers (migration 2), so an unfiltered page never scans the table.
            sqlx::query_scalar("SELECT total FROM portfolio_count WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(classify)?
        } else {
            let mut count = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM portfolio");
            push_conditions(&mut count, filter, None);
            count.build_query_scalar().fetch_one(&mut *tx).await.map_err(classify)?
        };

        let total = total.max(0) as u64;
        // The keyset narrows the page but not the count, so only an offset page can be
        // counted from the other end.
        let window = match after {
            None => Window::of(offset, u64::from(limit), total),
            Some(_) => Window { backwards: false, offset, limit: u64::from(limit) },
        };
        let rows = page_query(filter, after, window).build().fetch_all(&mut *tx).await.map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(SearchPage { items: to_portfolios(&rows)?, total })
    }

    /// Tells `NotFound` from `Conflict` after a version-checked write matched no row, on the
    /// write's own connection: asking the one-connection writer pool again would wait for it.
    async fn missing_or_conflict(conn: &mut SqliteConnection, id: PortfolioId) -> StoreError {
        let exists = sqlx::query("SELECT 1 FROM portfolio WHERE id = ?").bind(id.to_hex()).fetch_optional(conn).await;
        exists.map_or_else(classify, |row| StoreError::unmatched_write(row.is_some()))
    }
}

#[async_trait]
impl PortfolioStore for SqliteStore {
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        let reader = self.reader.clone();
        listing::batches(move |after| list_batch(reader.clone(), after)).await
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() <= point::MAX_MANY
            && let Some(found) = self.point_read(|lease| lease.get_many(ids))
        {
            return found;
        }
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM portfolio WHERE id IN ("));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.to_hex());
        }
        query.push(")");
        let mut conn = self.read().await?;
        let rows = query.build().fetch_all(&mut *conn).await.map_err(classify)?;
        to_portfolios(&rows)
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        if let Some(found) = self.point_read(|lease| lease.get(id)) {
            return found;
        }
        let mut conn = self.read().await?;
        let row = sqlx::query("SELECT id, name, date_created, version FROM portfolio WHERE id = ?")
            .bind(id.to_hex())
            .fetch_optional(&mut *conn)
            .await
            .map_err(classify)?;
        row.as_ref().map(to_portfolio).transpose()
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.insert(portfolios, "").await.map(drop)
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.insert(portfolios, " ON CONFLICT (id) DO NOTHING").await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        let next = expected.next().ok_or_else(|| StoreError::Backend("version counter overflow".into()))?;
        let mut conn = self.write().await?;
        let row = sqlx::query(
            "UPDATE portfolio SET name = ?1, date_created = COALESCE(?2, date_created), version = ?3 \
             WHERE id = ?4 AND version = ?5 RETURNING id, name, date_created, version",
        )
        .bind(&changes.name)
        .bind(changes.date_created.map(Timestamp::millis))
        .bind(next.0)
        .bind(id.to_hex())
        .bind(expected.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(classify)?;
        match row {
            Some(row) => to_portfolio(&row),
            None => Err(Self::missing_or_conflict(&mut conn, id).await),
        }
    }

    async fn delete(&self, id: PortfolioId, expected: Version) -> StoreResult<()> {
        let mut conn = self.write().await?;
        let done = sqlx::query("DELETE FROM portfolio WHERE id = ?1 AND version = ?2")
            .bind(id.to_hex())
            .bind(expected.0)
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(Self::missing_or_conflict(&mut conn, id).await) }
    }

    async fn search(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<SearchPage> {
        self.page(filter, None, page.limit, page.offset).await
    }

    async fn search_after(&self, filter: &NameFilter, after: Option<Keyset>, limit: u32) -> StoreResult<SearchPage> {
        self.page(filter, after, limit, 0).await
    }

    async fn ping(&self, timeout: Duration) -> StoreResult<()> {
        let ping = async {
            let mut conn = self.read().await?;
            sqlx::query("SELECT 1").execute(&mut *conn).await.map(drop).map_err(classify)
        };
        match tokio::time::timeout(timeout, ping).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        let mut conn = self.read().await?;
        let version: String =
            sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&mut *conn).await.map_err(classify)?;
        Ok(BackendInfo { kind: "sqlite", server_version: version })
    }

    async fn close(&self) {
        if let Some(point) = &self.point {
            point.close();
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        // Both reader pools are one to the dashboard and the exhaustion alert: together they
        // are the read connections configured.
        let mut reader = pfs_storage::pool::sqlx_stats(&self.reader, "reader");
        if let Some(point) = &self.point {
            let (used, idle, max) = point.stats();
            reader.used += used;
            reader.idle += idle;
            reader.max += max;
        }
        vec![pfs_storage::pool::sqlx_stats(&self.writer, "writer"), reader]
    }
}
