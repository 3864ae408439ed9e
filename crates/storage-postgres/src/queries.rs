//! The [`PortfolioStore`] implementation: one statement per call (two for a failed write).
//!
//! Timestamps cross the wire as text and epoch millis, not as driver types: writes bind the
//! RFC 3339 form with exactly three fraction digits and cast it (`$n::timestamptz`, a decimal
//! parse into whole microseconds), reads compute `extract(epoch ...)`, which is `numeric` and
//! therefore exact, times 1000. Every millisecond value from year 1 to 9999 round-trips
//! exactly, negative ones included; a `float8` path (`to_timestamp($1 / 1000.0)`) would not.

use crate::{PostgresStore, errors::classify};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use pfs_domain::{Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, Timestamp, Version};
use pfs_storage::listing::{self, Batch};
use pfs_storage::{
    BackendInfo, PoolStats, PortfolioBatches, PortfolioStore, SearchPage, StoreError, StoreResult,
    like_contains_pattern,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use std::time::Duration;

/// The selected columns, with `date_created` read back as epoch milliseconds. A macro so the
/// statements stay `&'static str` literals (`concat!`), which sqlx accepts as trusted SQL.
macro_rules! columns {
    () => {
        "id, name, (extract(epoch FROM date_created) * 1000)::int8 AS millis, version"
    };
}

fn to_portfolio(row: &PgRow) -> StoreResult<Portfolio> {
    let corrupt = |what: &str| StoreError::Backend(format!("corrupt portfolio row: {what}").into());
    let id: &str = row.try_get("id").map_err(classify)?;
    let millis: i64 = row.try_get("millis").map_err(classify)?;
    Ok(Portfolio {
        id: PortfolioId::parse(id).ok_or_else(|| corrupt("id"))?,
        name: row.try_get("name").map_err(classify)?,
        date_created: Timestamp::from_millis(millis).ok_or_else(|| corrupt("date_created"))?,
        version: Version(row.try_get("version").map_err(classify)?),
    })
}

/// Appends the `WHERE` clause of a search, and the keyset position when paging by cursor.
/// Exact matches compare the 200-character prefix the `portfolio_by_lower_name` btree holds,
/// then the whole name; substring matches compare `lower(name)`, which the
/// `portfolio_by_name_trigram` GIN index holds. The keyset row comparison walks
/// `portfolio_by_created` from the cursor on. Returns the word that joins a further condition.
fn push_conditions(query: &mut QueryBuilder<Postgres>, filter: &NameFilter, after: Option<Keyset>) -> &'static str {
    let mut separator = " WHERE ";
    match filter {
        NameFilter::All => {}
        NameFilter::Exact(term) => {
            let term = term.as_str().to_lowercase();
            query
                .push(separator)
                .push("left(lower(name), 200) = ")
                .push_bind(term.clone())
                .push(" AND lower(name) = ")
                .push_bind(term);
            separator = " AND ";
        }
        NameFilter::Contains(term) => {
            query
                .push(separator)
                .push("lower(name) LIKE lower(")
                .push_bind(like_contains_pattern(term.as_str()))
                .push(") ESCAPE '\\'");
            separator = " AND ";
        }
    }
    if let Some(after) = after {
        query
            .push(separator)
            .push("(date_created, id) < (")
            .push_bind(after.date_created.to_rfc3339())
            .push("::timestamptz, ")
            .push_bind(after.id.to_hex())
            .push(")");
        separator = " AND ";
    }
    separator
}

/// Count and page in one statement: a statement reads one snapshot, so the total describes
/// exactly the rows paged, in one round trip instead of the four of BEGIN, count, page,
/// COMMIT. The single count row is left-joined to the page, so an empty page (an offset past
/// the end) still yields the total, on a row whose page columns are NULL.
///
/// The page's ids come from an index-only scan of the search order, and only those rows are
/// read (`id = ANY(ARRAY(...))`, one primary-key probe each): a skipped entry costs an index
/// step instead of a heap fetch. With the total in hand the scan starts from the nearer end
/// (`pfs_storage::paging::Window`, computed here in SQL as `w`): of the two branches, a
/// one-time filter runs only the one `w.forward` picks, so the last page costs what the first
/// does. The outer ORDER BY sorts at most `limit` rows.
fn search_query(filter: &NameFilter, after: Option<Keyset>, limit: u32, offset: u64) -> QueryBuilder<Postgres> {
    // Past any real count, and far enough from i64::MAX that `offset + limit` cannot overflow.
    let offset = i64::try_from(offset.min(1 << 62)).unwrap_or(i64::MAX);
    let limit = i64::from(limit);
    let mut query = QueryBuilder::new("WITH c AS MATERIALIZED (SELECT count(*) AS total FROM portfolio");
    push_conditions(&mut query, filter, None);
    if after.is_some() {
        // The keyset narrows the page but not the count: only an offset page can be counted
        // from the other end.
        query.push("), w AS MATERIALIZED (SELECT total, true AS forward, 0::int8 AS back_offset, 0::int8 AS back_limit FROM c)");
    } else {
        query
            .push(
                "), w AS MATERIALIZED (SELECT total, (page_start >= total OR total - least(page_end, total) >= page_start) AS forward, \
                 greatest(total - page_end, 0) AS back_offset, greatest(least(page_end, total) - page_start, 0) AS back_limit \
                 FROM c, (SELECT ",
            )
            .push_bind(offset)
            .push("::int8 AS page_start, ")
            .push_bind(offset + limit)
            .push("::int8 AS page_end) page)");
    }
    query.push(
        " SELECT w.total, p.id, p.name, (extract(epoch FROM p.date_created) * 1000)::int8 AS millis, p.version \
         FROM w LEFT JOIN portfolio p ON p.id = ANY(ARRAY((SELECT id FROM portfolio",
    );
    let joiner = push_conditions(&mut query, filter, after);
    query
        .push(joiner)
        .push("(SELECT forward FROM w) ORDER BY date_created DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset)
        .push(") UNION ALL (SELECT id FROM portfolio");
    let joiner = push_conditions(&mut query, filter, None);
    query.push(joiner).push(
        "NOT (SELECT forward FROM w) ORDER BY date_created, id \
             LIMIT (SELECT back_limit FROM w) OFFSET (SELECT back_offset FROM w)))) \
             ORDER BY p.date_created DESC, p.id DESC",
    );
    query
}

impl PostgresStore {
    async fn write(&self) -> StoreResult<PoolConnection<Postgres>> {
        pfs_storage::pool::acquire(&self.writer, "writer").await.map_err(classify)
    }

    /// Without a replica the reads share the writer pool, and are measured as its waits.
    async fn read(&self) -> StoreResult<PoolConnection<Postgres>> {
        pfs_storage::pool::acquire(&self.reader, self.reader_name()).await.map_err(classify)
    }

    fn reader_name(&self) -> &'static str {
        if self.replica { "reader" } else { "writer" }
    }

    /// One statement is one transaction: all rows or none. Four array parameters keep the
    /// statement text (and its cached plan) the same whatever the batch size.
    async fn insert(&self, portfolios: &[Portfolio], on_conflict: &'static str) -> StoreResult<u64> {
        if portfolios.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = portfolios.iter().map(|p| p.id.to_hex()).collect();
        let names: Vec<&str> = portfolios.iter().map(|p| p.name.as_str()).collect();
        let dates: Vec<String> = portfolios.iter().map(|p| p.date_created.to_rfc3339()).collect();
        let versions: Vec<i64> = portfolios.iter().map(|p| p.version.0).collect();
        let mut query = QueryBuilder::<Postgres>::new(
            "INSERT INTO portfolio (id, name, date_created, version) \
             SELECT id, name, created::timestamptz, version \
             FROM UNNEST(",
        );
        query.push_bind(ids).push("::text[], ").push_bind(names).push("::text[], ").push_bind(dates);
        query.push("::text[], ").push_bind(versions).push("::int8[]) AS batch (id, name, created, version)");
        query.push(on_conflict);
        let mut conn = self.write().await?;
        let done = query.build().execute(&mut *conn).await.map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn page(
        &self,
        filter: &NameFilter,
        after: Option<Keyset>,
        limit: u32,
        offset: u64,
    ) -> StoreResult<SearchPage> {
        // Not a cached prepared statement: after five runs Postgres may switch a prepared
        // statement to a generic plan that ignores the term, and the best plan for a rare
        // term (trigram index) is the worst for a common one (walk the date index).
        let mut conn = self.read().await?;
        let rows = search_query(filter, after, limit, offset)
            .build()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
        let mut total = 0_i64;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            total = row.try_get("total").map_err(classify)?;
            if row.try_get::<Option<&str>, _>("id").map_err(classify)?.is_some() {
                items.push(to_portfolio(row)?);
            }
        }
        Ok(SearchPage { items, total: total.max(0) as u64 })
    }

    /// Tells `NotFound` from `Conflict` after a version-checked write matched no row. Asks the
    /// primary, on the write's own connection: a lagging replica could still show a row that
    /// was just deleted, and a second checkout could wait on a busy pool.
    async fn missing_or_conflict(conn: &mut PgConnection, id: PortfolioId) -> StoreError {
        let exists = sqlx::query("SELECT 1 FROM portfolio WHERE id = $1").bind(id.to_hex()).fetch_optional(conn).await;
        exists.map_or_else(classify, |row| StoreError::unmatched_write(row.is_some()))
    }
}

/// One batch of the v1 list: the rows after `after` in id order (a range of the primary key),
/// read row by row until the batch is full, on a connection held only for this batch.
async fn list_batch(reader: PgPool, pool_name: &'static str, after: Option<PortfolioId>) -> StoreResult<Batch> {
    let mut conn = pfs_storage::pool::acquire(&reader, pool_name).await.map_err(classify)?;
    // Every id is 24 hex characters, so the empty string sorts before all of them.
    let after = after.map_or_else(String::new, |id| id.to_hex());
    let mut rows = sqlx::query(concat!("SELECT ", columns!(), " FROM portfolio WHERE id > $1 ORDER BY id LIMIT $2"))
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

#[async_trait]
impl PortfolioStore for PostgresStore {
    async fn list_stream(&self) -> StoreResult<PortfolioBatches> {
        let (reader, name) = (self.reader.clone(), self.reader_name());
        listing::batches(move |after| list_batch(reader.clone(), name, after)).await
    }

    async fn get(&self, id: PortfolioId) -> StoreResult<Option<Portfolio>> {
        if let Some(pipelined) = &self.pipelined {
            return pipelined.get(id).await;
        }
        let mut conn = self.read().await?;
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM portfolio WHERE id = $1"))
            .bind(id.to_hex())
            .fetch_optional(&mut *conn)
            .await
            .map_err(classify)?;
        row.as_ref().map(to_portfolio).transpose()
    }

    async fn get_many(&self, ids: &[PortfolioId]) -> StoreResult<Vec<Portfolio>> {
        if let Some(pipelined) = &self.pipelined {
            return pipelined.get_many(ids).await;
        }
        let ids: Vec<String> = ids.iter().map(PortfolioId::to_hex).collect();
        let mut conn = self.read().await?;
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM portfolio WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
        rows.iter().map(to_portfolio).collect()
    }

    async fn insert_many(&self, portfolios: &[Portfolio]) -> StoreResult<()> {
        self.insert(portfolios, "").await.map(drop)
    }

    async fn insert_missing(&self, portfolios: &[Portfolio]) -> StoreResult<u64> {
        self.insert(portfolios, " ON CONFLICT (id) DO NOTHING").await
    }

    async fn update(&self, id: PortfolioId, expected: Version, changes: &PortfolioChanges) -> StoreResult<Portfolio> {
        let next = expected.next().ok_or_else(|| StoreError::Backend("version counter overflow".into()))?;
        // The row lock makes a concurrent writer wait, then re-check `version` against the
        // committed row (READ COMMITTED), so exactly one of several racing updates matches.
        let mut conn = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE portfolio SET name = $1, date_created = COALESCE($2::timestamptz, date_created), version = $3 \
             WHERE id = $4 AND version = $5 RETURNING ",
            columns!()
        ))
        .bind(&changes.name)
        .bind(changes.date_created.map(Timestamp::to_rfc3339))
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
        let done = sqlx::query("DELETE FROM portfolio WHERE id = $1 AND version = $2")
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
            let mut conn = self.write().await?;
            sqlx::query("SELECT 1").execute(&mut *conn).await.map(drop).map_err(classify)
        };
        match tokio::time::timeout(timeout, ping).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }

    async fn info(&self) -> StoreResult<BackendInfo> {
        let mut conn = self.write().await?;
        let version: String =
            sqlx::query_scalar("SHOW server_version").fetch_one(&mut *conn).await.map_err(classify)?;
        Ok(BackendInfo { kind: "postgres", server_version: version })
    }

    async fn close(&self) {
        if let Some(pipelined) = &self.pipelined {
            pipelined.close();
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The pipelined read connections count in the pool of their server: `max` stays the
    /// configured budget, and what the dashboards show is every connection to that server.
    fn pool_stats(&self) -> Vec<PoolStats> {
        let with_pipelined = |mut stats: PoolStats| {
            if let Some(pipelined) = self.pipelined.as_ref().map(|p| p.stats()) {
                stats.used += pipelined.used;
                stats.idle += pipelined.idle;
                stats.max += pipelined.max;
            }
            stats
        };
        let writer = pfs_storage::pool::sqlx_stats(&self.writer, "writer");
        if self.replica {
            vec![writer, with_pipelined(pfs_storage::pool::sqlx_stats(&self.reader, "reader"))]
        } else {
            vec![with_pipelined(writer)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_binds_the_term_in_both_the_count_and_the_page() {
        let term = pfs_domain::SearchTerm::parse("tech").unwrap();
        let sql = search_query(&NameFilter::Exact(term), None, 10, 0).into_sql();
        let sql = sql.as_str();
        assert_eq!(sql.matches("left(lower(name), 200) = $").count(), 3, "{sql}");
        assert!(sql.contains("LIMIT $7 OFFSET $8"), "{sql}");
    }
}
