//! The unpaged `GET /api/v1/portfolios` over a large table: it streams from the database, so
//! serving every row costs a bounded amount of memory, and nothing stays held afterwards.
//! Before it streamed, 260,000 portfolios (a 137 MB answer) took RSS from 68 to 824 MB.

use crate::support::{assert_within_budget, production};
use pfs_test_support::reqwest;
use sqlx::sqlite::SqlitePoolOptions;

const ROWS: u32 = 260_000;
/// About what each row of the reported answer held (137 MB / 260,000 rows).
const NAME_BYTES: usize = 420;
/// What serving the whole list may add to the peak, and what a second list may add after it.
const LIST_PEAK: u64 = 32 << 20;
const LIST_AFTER: u64 = 4 << 20;

/// Writes `ROWS` portfolios straight into the service's SQLite file (one statement, seconds),
/// with names of `NAME_BYTES`; the count triggers keep the total right.
async fn seed(data_dir: &std::path::Path) {
    let url = format!("sqlite://{}", data_dir.join("portfolio.db").display());
    let pool = SqlitePoolOptions::new().max_connections(1).connect(&url).await.expect("open the service's database");
    let pad = "x".repeat(NAME_BYTES - 20);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO portfolio (id, name, date_created, version) \
         SELECT printf('%024x', i), printf('portfolio %010d ', i) || ?2, 1700000000000 + i, 1 FROM n",
    )
    .bind(i64::from(ROWS))
    .bind(pad)
    .execute(&pool)
    .await
    .expect("seed");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_260k_portfolios_streams_within_32_mib_and_holds_nothing_after() {
    let service = production(&[]).await;
    let seeding = std::time::Instant::now();
    seed(service.data_dir()).await;
    eprintln!("unpaged list: {ROWS} rows seeded in {:?}", seeding.elapsed());
    let client = reqwest::Client::new();
    // One small request first, so the baseline includes what any request brings in.
    assert_eq!(client.get(service.url("/api/v2/portfolios?limit=1")).send().await.unwrap().status(), 200);
    let before = service.footprint();

    let started = std::time::Instant::now();
    let response = client.get(service.url("/api/v1/portfolios")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    // Read as it arrives: the test must not hold 137 MB itself to check it. The array is
    // checked at its ends and by the number of objects in it.
    let (mut bytes, mut objects, mut first, mut last) = (0usize, 0usize, None, Vec::new());
    let mut response = response;
    while let Some(chunk) = response.chunk().await.expect("the body arrives whole") {
        bytes += chunk.len();
        // Names are digits and letters: every `{` opens one portfolio.
        objects += chunk.iter().filter(|&&b| b == b'{').count();
        first.get_or_insert(chunk[0]);
        last = chunk.to_vec();
    }
    assert_eq!(objects, ROWS as usize);
    assert_eq!((first, last.last().copied()), (Some(b'['), Some(b']')));
    assert!(bytes > ROWS as usize * NAME_BYTES, "{bytes} bytes");

    let after = service.footprint();
    let grew = after.peak_rss.saturating_sub(before.peak_rss);
    eprintln!("unpaged list: {bytes} bytes in {:?}; before {before:?}, after {after:?}", started.elapsed());
    assert!(
        grew < LIST_PEAK,
        "serving {bytes} bytes raised peak RSS by {:.1} MiB ({before:?} -> {after:?})",
        grew as f64 / f64::from(1 << 20)
    );
    // What the first list leaves resident is the fixed cost of reading at all (the reader
    // pool's SQLite page caches, the allocator's free pages), not the list: a second one adds
    // nothing more.
    let again = client.get(service.url("/api/v1/portfolios")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(again.len(), bytes);
    drop(again);
    let second = service.footprint();
    eprintln!("unpaged list, second time: {second:?}");
    assert!(second.rss < after.rss + LIST_AFTER, "a second list grew RSS {after:?} -> {second:?}");
    assert!(after.rss < before.rss + LIST_PEAK, "RSS stayed {before:?} -> {after:?}");
    assert_within_budget(&service, "the unpaged list of 260,000 portfolios");
}
