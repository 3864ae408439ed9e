//! The storage conformance suites: every backend runs exactly these checks. The portfolio
//! suite is here; [`idempotency`] and [`queue`] hold the suites of the other stores a backend
//! may have.
//!
//! Each check takes a fresh, empty, migrated store. A backend's test file invokes
//! [`conformance_suite!`] (or [`every_suite!`] for all three) with an async expression that
//! builds one, which expands to one `#[tokio::test]` per check, so failures name the check and
//! the backend.

use futures::future::join_all;
use pfs_domain::{
    Keyset, NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, SearchTerm, Timestamp, Version,
};
use pfs_storage::{ListAll, PortfolioStore, StoreError};
use std::sync::Arc;
use std::time::Duration;

pub mod idempotency;
pub mod queue;

pub type Store = Arc<dyn PortfolioStore>;

/// Every suite over a backend that stores portfolios, idempotency keys and jobs: modules
/// `bare`, `idempotency` and `queue` of one test per check. `$make` is an async expression
/// yielding `(Arc<Backend>, guard)`.
#[macro_export]
macro_rules! every_suite {
    ($make:expr) => {
        mod bare {
            use super::*;
            $crate::conformance_suite!($make);
        }
        mod idempotency {
            use super::*;
            $crate::idempotency_suite!($make);
        }
        mod queue {
            use super::*;
            $crate::queue_suite!($make);
        }
    };
}

/// Expands to one test per check. `$make` is an async expression yielding
/// `(Arc<dyn PortfolioStore>, guard)`; the guard (e.g. a temp dir) lives as long as the test.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            round_trip_keeps_every_field, unknown_ids_are_absent, insert_missing_skips_stored_ids_and_can_be_repeated, list_is_in_creation_order,
            list_streams_in_batches_bounded_by_bytes_and_reads_them_as_asked,
            a_failing_batch_inserts_nothing, update_increments_the_version_and_keeps_the_date,
            update_can_move_the_date, stale_updates_conflict_and_write_nothing, writes_to_unknown_ids_are_not_found,
            delete_checks_the_version, concurrent_updates_with_one_version_have_one_winner,
            an_update_racing_a_delete_never_resurrects, search_orders_newest_first_with_id_tie_break,
            exact_search_ignores_case_but_not_whitespace, substring_search_ignores_case_and_treats_underscore_literally,
            pages_slice_the_ordered_matches_and_count_them_all,
            every_offset_page_holds_the_rows_of_the_ordered_listing, keyset_pages_continue_after_the_cursor_despite_inserts,
            get_many_returns_the_stored_ones_among_the_ids, ping_answers_through_the_pool);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::$name(store).await;
            }
        )*
    };
}

fn portfolio(name: &str, millis: i64) -> Portfolio {
    Portfolio {
        id: PortfolioId::generate(),
        name: name.to_owned(),
        date_created: Timestamp::from_millis(millis).expect("in range"),
        version: Version(1),
    }
}

async fn insert(store: &Store, portfolios: &[Portfolio]) {
    store.insert_many(portfolios).await.expect("insert");
}

fn names(items: &[Portfolio]) -> Vec<&str> {
    items.iter().map(|p| p.name.as_str()).collect()
}

fn term(s: &str) -> SearchTerm {
    SearchTerm::parse(s).expect("valid term")
}

const PAGE: PageRequest = PageRequest { limit: 50, offset: 0 };

pub async fn round_trip_keeps_every_field(store: Store) {
    let mut p = portfolio("  Ünïcödé name with spaces  ", -86_400_123);
    p.version = Version(-7);
    insert(&store, std::slice::from_ref(&p)).await;
    assert_eq!(store.get(p.id).await.unwrap(), Some(p));
}

pub async fn unknown_ids_are_absent(store: Store) {
    assert_eq!(store.get(PortfolioId::generate()).await.unwrap(), None);
}

pub async fn insert_missing_skips_stored_ids_and_can_be_repeated(store: Store) {
    let existing = portfolio("existing", 1);
    insert(&store, std::slice::from_ref(&existing)).await;
    let mut changed = existing.clone();
    changed.name = "imported over it".into();
    let batch: Vec<_> = (0..1500).map(|i| portfolio(&format!("imported {i}"), i)).chain([changed]).collect();
    assert_eq!(store.insert_missing(&batch).await.unwrap(), 1500);
    assert_eq!(store.insert_missing(&batch).await.unwrap(), 0, "a second run inserts nothing");
    assert_eq!(store.get(existing.id).await.unwrap(), Some(existing), "stored rows are not overwritten");
    assert_eq!(store.search(&NameFilter::All, PAGE).await.unwrap().total, 1501);
}

pub async fn list_is_in_creation_order(store: Store) {
    let batch: Vec<_> = (0..5).map(|i| portfolio(&format!("p{i}"), 1_000 - i)).collect();
    insert(&store, &batch[..2]).await;
    insert(&store, &batch[2..]).await;
    assert_eq!(names(&store.list_all().await.unwrap()), ["p0", "p1", "p2", "p3", "p4"]);
}

/// The v1 list as the route reads it: batches in id order, each within the byte budget, the
/// next one read only when asked for (a portfolio deleted before its batch is read is not in
/// it; one existing throughout appears exactly once).
pub async fn list_streams_in_batches_bounded_by_bytes_and_reads_them_as_asked(store: Store) {
    use futures::StreamExt;
    use pfs_storage::listing::{BATCH_BYTES, weight};
    let big = "b".repeat(20 * 1024);
    let mut all: Vec<_> =
        (0..2_500).map(|i| portfolio(&if i % 100 == 7 { big.clone() } else { format!("p{i}") }, i)).collect();
    for chunk in all.chunks(500) {
        insert(&store, chunk).await;
    }
    all.sort_by_key(|p| p.id);
    let mut batches = store.list_stream().await.unwrap();
    let first = batches.next().await.unwrap().unwrap();
    // Delete the last portfolio before its batch is read: the list, read on, never shows it.
    let last = all.pop().unwrap();
    store.delete(last.id, Version(1)).await.unwrap();
    let mut listed = first.clone();
    let mut sizes = vec![first.len()];
    while let Some(batch) = batches.next().await {
        let batch = batch.unwrap();
        assert!(batch.iter().map(weight).sum::<usize>() < BATCH_BYTES + weight(&all[7]), "a batch within its budget");
        sizes.push(batch.len());
        listed.extend(batch);
    }
    assert!(sizes.len() >= 3, "2,500 portfolios come in several batches: {sizes:?}");
    assert_eq!(listed.len(), all.len());
    assert!(listed == all, "every portfolio once, in id order");
    assert_eq!(store.list_all().await.unwrap(), all);
}

pub async fn a_failing_batch_inserts_nothing(store: Store) {
    let existing = portfolio("existing", 1);
    insert(&store, std::slice::from_ref(&existing)).await;
    let mut batch: Vec<_> = (0..5).map(|i| portfolio(&format!("new{i}"), 2)).collect();
    batch[3].id = existing.id;
    assert!(store.insert_many(&batch).await.is_err(), "a duplicate id must fail the batch");
    assert_eq!(names(&store.list_all().await.unwrap()), ["existing"]);
}

pub async fn update_increments_the_version_and_keeps_the_date(store: Store) {
    let p = portfolio("before", 5_000);
    insert(&store, std::slice::from_ref(&p)).await;
    let changes = PortfolioChanges { name: "after".into(), date_created: None };
    let updated = store.update(p.id, Version(1), &changes).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.version, updated.date_created), ("after", Version(2), p.date_created));
    assert_eq!(store.get(p.id).await.unwrap(), Some(updated));
}

pub async fn update_can_move_the_date(store: Store) {
    let p = portfolio("dated", 5_000);
    insert(&store, std::slice::from_ref(&p)).await;
    let moved = Timestamp::from_millis(1_700_000_000_123).unwrap();
    let changes = PortfolioChanges { name: "dated".into(), date_created: Some(moved) };
    assert_eq!(store.update(p.id, Version(1), &changes).await.unwrap().date_created, moved);
}

pub async fn stale_updates_conflict_and_write_nothing(store: Store) {
    let p = portfolio("original", 1);
    insert(&store, std::slice::from_ref(&p)).await;
    let changes = PortfolioChanges { name: "stale".into(), date_created: None };
    assert!(matches!(store.update(p.id, Version(2), &changes).await, Err(StoreError::Conflict)));
    assert_eq!(store.get(p.id).await.unwrap(), Some(p));
}

pub async fn writes_to_unknown_ids_are_not_found(store: Store) {
    let changes = PortfolioChanges { name: "x".into(), date_created: None };
    let id = PortfolioId::generate();
    assert!(matches!(store.update(id, Version(1), &changes).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete(id, Version(1)).await, Err(StoreError::NotFound)));
}

pub async fn delete_checks_the_version(store: Store) {
    let p = portfolio("doomed", 1);
    insert(&store, std::slice::from_ref(&p)).await;
    assert!(matches!(store.delete(p.id, Version(9)).await, Err(StoreError::Conflict)));
    assert!(store.get(p.id).await.unwrap().is_some(), "a conflicting delete keeps the row");
    store.delete(p.id, Version(1)).await.unwrap();
    assert_eq!(store.get(p.id).await.unwrap(), None);
    assert!(matches!(store.delete(p.id, Version(1)).await, Err(StoreError::NotFound)));
}

pub async fn concurrent_updates_with_one_version_have_one_winner(store: Store) {
    let p = portfolio("contended", 1);
    insert(&store, std::slice::from_ref(&p)).await;
    let attempts = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let changes = PortfolioChanges { name: format!("writer {i}"), date_created: None };
            store.update(p.id, Version(1), &changes).await
        })
    });
    let results: Vec<_> = join_all(attempts).await.into_iter().map(|r| r.expect("task")).collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::Conflict))));
    let stored = store.get(p.id).await.unwrap().unwrap();
    assert_eq!((&stored.name, stored.version), (&winners[0].name, Version(2)));
}

pub async fn an_update_racing_a_delete_never_resurrects(store: Store) {
    for round in 0..10 {
        let p = portfolio(&format!("race {round}"), 1);
        insert(&store, std::slice::from_ref(&p)).await;
        let (s1, s2) = (store.clone(), store.clone());
        let changes = PortfolioChanges { name: "updated".into(), date_created: None };
        let update = tokio::spawn(async move { s1.update(p.id, Version(1), &changes).await.is_ok() });
        let delete = tokio::spawn(async move { s2.delete(p.id, Version(1)).await.is_ok() });
        let (updated, deleted) = (update.await.unwrap(), delete.await.unwrap());
        assert!(updated ^ deleted, "exactly one of update and delete wins");
        assert_eq!(store.get(p.id).await.unwrap().is_some(), updated);
    }
}

pub async fn search_orders_newest_first_with_id_tie_break(store: Store) {
    let batch =
        vec![portfolio("old", 1_000), portfolio("tie a", 2_000), portfolio("tie b", 2_000), portfolio("new", 3_000)];
    insert(&store, &batch).await;
    let found = store.search(&NameFilter::All, PAGE).await.unwrap();
    let mut ties = [&batch[1], &batch[2]];
    ties.sort_by_key(|p| std::cmp::Reverse(p.id));
    assert_eq!(names(&found.items), ["new", &ties[0].name, &ties[1].name, "old"]);
    assert_eq!(found.total, 4);
}

pub async fn exact_search_ignores_case_but_not_whitespace(store: Store) {
    insert(
        &store,
        &[
            portfolio("Tech Growth", 1),
            portfolio("TECH GROWTH", 2),
            portfolio(" Tech Growth ", 3),
            portfolio("Tech Growth Fund", 4),
        ],
    )
    .await;
    let found = store.search(&NameFilter::Exact(term("tech growth")), PAGE).await.unwrap();
    assert_eq!(names(&found.items), ["TECH GROWTH", "Tech Growth"]);
    let found = store.search(&NameFilter::Exact(term(" Tech Growth ")), PAGE).await.unwrap();
    assert_eq!(names(&found.items), [" Tech Growth "]);
}

pub async fn substring_search_ignores_case_and_treats_underscore_literally(store: Store) {
    insert(
        &store,
        &[portfolio("alpha_beta", 1), portfolio("alphaXbeta", 2), portfolio("ALPHA", 3), portfolio("gamma", 4)],
    )
    .await;
    let found = store.search(&NameFilter::Contains(term("Alpha")), PAGE).await.unwrap();
    assert_eq!(names(&found.items), ["ALPHA", "alphaXbeta", "alpha_beta"]);
    let found = store.search(&NameFilter::Contains(term("a_b")), PAGE).await.unwrap();
    assert_eq!(names(&found.items), ["alpha_beta"]);
    assert_eq!(found.total, 1);
}

pub async fn pages_slice_the_ordered_matches_and_count_them_all(store: Store) {
    let batch: Vec<_> = (0..7).map(|i| portfolio(&format!("item {i}"), 10_000 + i)).collect();
    insert(&store, &batch).await;
    let page = store.search(&NameFilter::All, PageRequest { limit: 3, offset: 2 }).await.unwrap();
    assert_eq!(names(&page.items), ["item 4", "item 3", "item 2"]);
    assert_eq!(page.total, 7);
    let past_end = store.search(&NameFilter::All, PageRequest { limit: 3, offset: 100 }).await.unwrap();
    assert!(past_end.items.is_empty());
    assert_eq!(past_end.total, 7);
    let filtered =
        store.search(&NameFilter::Contains(term("item 6")), PageRequest { limit: 1, offset: 0 }).await.unwrap();
    assert_eq!((names(&filtered.items), filtered.total), (vec!["item 6"], 1));
}

/// Deep pages may be read from the other end of the order (see `pfs_storage::paging`): every
/// page, the deepest ones included, must hold exactly the rows of the ordered listing at its
/// offset, ties on `date_created` broken by id in both directions, with or without a filter.
pub async fn every_offset_page_holds_the_rows_of_the_ordered_listing(store: Store) {
    // Three portfolios per millisecond; every third one is named "Deep" in either case.
    let batch: Vec<_> = (0..120)
        .map(|i| {
            let name = match i % 6 {
                0 => "Deep".to_owned(),
                3 => "DEEP".to_owned(),
                _ => format!("shallow {i}"),
            };
            portfolio(&name, 1_000 + i / 3)
        })
        .collect();
    insert(&store, &batch).await;
    let mut listing = batch.clone();
    listing.sort_by_key(|p| std::cmp::Reverse((p.date_created, p.id)));
    type Matches = fn(&str) -> bool;
    let filters: [(NameFilter, Matches); 3] = [
        (NameFilter::All, |_| true),
        (NameFilter::Exact(term("deep")), |name| name.eq_ignore_ascii_case("deep")),
        (NameFilter::Contains(term("ALLO")), |name| name.to_ascii_lowercase().contains("allo")),
    ];
    for (filter, matching) in filters {
        let matches: Vec<&Portfolio> = listing.iter().filter(|p| matching(&p.name)).collect();
        let total = matches.len() as u64;
        for limit in [7_u32, 50] {
            let last = total.saturating_sub(u64::from(limit));
            for offset in
                [0, total / 2 - 1, total / 2, last.saturating_sub(1), last, last + 3, total - 1, total, total + 5]
            {
                let page = store.search(&filter, PageRequest { limit, offset }).await.unwrap();
                let expected: Vec<&Portfolio> =
                    matches.iter().copied().skip(offset as usize).take(limit as usize).collect();
                let got: Vec<&Portfolio> = page.items.iter().collect();
                assert_eq!(got, expected, "{filter:?}, limit {limit}, offset {offset}");
                assert_eq!(page.total, total, "{filter:?}, limit {limit}, offset {offset}");
            }
        }
    }
}

pub async fn keyset_pages_continue_after_the_cursor_despite_inserts(store: Store) {
    let mut batch: Vec<_> = (0..6).map(|i| portfolio(&format!("item {i}"), 10_000 + i)).collect();
    batch.push(portfolio("tie x", 10_003));
    insert(&store, &batch).await;
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.search_after(&NameFilter::All, after, 3).await.unwrap();
        assert_eq!(page.total, 7 + u64::from(!seen.is_empty()), "the count covers all matches");
        if seen.is_empty() {
            // A newer portfolio arrives after the first page: it must not shift later pages.
            insert(&store, &[portfolio("newest", 99_999)]).await;
        }
        seen.extend(page.items.iter().map(|p| p.name.clone()));
        match page.items.last() {
            Some(last) if page.items.len() == 3 => after = Some(Keyset::of(last)),
            _ => break,
        }
    }
    let all = store.search(&NameFilter::All, PageRequest { limit: 50, offset: 0 }).await.unwrap();
    let expected: Vec<_> = all.items.iter().map(|p| p.name.clone()).filter(|n| n != "newest").collect();
    assert_eq!(seen, expected, "every portfolio once, in order, none skipped or repeated");
    let filtered =
        store.search_after(&NameFilter::Contains(term("item")), Some(Keyset::of(&batch[4])), 10).await.unwrap();
    assert_eq!((names(&filtered.items), filtered.total), (vec!["item 3", "item 2", "item 1", "item 0"], 6));
}

pub async fn get_many_returns_the_stored_ones_among_the_ids(store: Store) {
    let batch: Vec<_> = (0..3).map(|i| portfolio(&format!("p{i}"), i)).collect();
    insert(&store, &batch).await;
    let mut found = store.get_many(&[batch[2].id, PortfolioId::generate(), batch[0].id]).await.unwrap();
    found.sort_by_key(|p| p.name.clone());
    assert_eq!(names(&found), ["p0", "p2"]);
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

pub async fn ping_answers_through_the_pool(store: Store) {
    store.ping(Duration::from_secs(2)).await.unwrap();
    assert!(!store.info().await.unwrap().server_version.is_empty());
}
