//! Reads by primary key run on the calling thread, on their own read-only connections: they
//! must see every write the sqlx writer committed before them, on either runtime flavour, and
//! a batch too long to read there must give the same answer through sqlx.

use pfs_domain::{Portfolio, PortfolioChanges, PortfolioId, Timestamp, Version};
use pfs_storage::PortfolioStore;
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_file(&dir.path().join("db"), &SqliteSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

fn portfolio(name: &str) -> Portfolio {
    Portfolio::new(name.to_owned(), Some(Timestamp::from_millis(1_700_000_000_000).unwrap()), Version(1))
}

/// Each write is read back at once: a snapshot kept open between reads would answer with the
/// row as it was (or without it).
async fn every_write_is_seen_by_the_next_read(store: &SqliteStore) {
    let p = portfolio("first");
    assert_eq!(store.get(p.id).await.unwrap(), None);
    store.insert_many(std::slice::from_ref(&p)).await.unwrap();
    assert_eq!(store.get(p.id).await.unwrap(), Some(p.clone()));

    let changes = PortfolioChanges { name: "second".into(), date_created: None };
    let updated = store.update(p.id, p.version, &changes).await.unwrap();
    assert_eq!(store.get(p.id).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.get_many(&[p.id]).await.unwrap(), vec![updated.clone()]);

    store.delete(p.id, updated.version).await.unwrap();
    assert_eq!(store.get(p.id).await.unwrap(), None);
    assert!(store.get_many(&[p.id]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_visible_to_the_next_read_on_a_multi_thread_runtime() {
    let (store, _dir) = fresh().await;
    every_write_is_seen_by_the_next_read(&store).await;
}

#[tokio::test]
async fn writes_are_visible_to_the_next_read_on_a_current_thread_runtime() {
    let (store, _dir) = fresh().await;
    every_write_is_seen_by_the_next_read(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_and_long_batches_find_the_same_rows() {
    let (store, _dir) = fresh().await;
    let stored: Vec<_> = (0..200).map(|i| portfolio(&format!("p{i}"))).collect();
    store.insert_many(&stored).await.unwrap();
    let sorted = |mut v: Vec<Portfolio>| {
        v.sort_by_key(|p| p.id);
        v
    };
    // Stored and unknown ids mixed, one repeated: each stored row comes back once.
    for len in [1, 10, 64, 65, 200] {
        let mut ids: Vec<_> = stored[..len].iter().map(|p| p.id).collect();
        ids.push(PortfolioId::generate());
        ids.push(ids[0]);
        let found = store.get_many(&ids).await.unwrap();
        assert_eq!(sorted(found), sorted(stored[..len].to_vec()), "{len} ids");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fail_as_unavailable_once_the_store_is_closed() {
    let (store, _dir) = fresh().await;
    let p = portfolio("kept");
    store.insert_many(std::slice::from_ref(&p)).await.unwrap();
    assert!(store.get(p.id).await.unwrap().is_some());
    store.close().await;
    let err = store.get(p.id).await.unwrap_err();
    assert!(err.is_transient(), "a closed pool is reported as unavailable, as sqlx's is: {err:?}");
    assert!(store.get_many(&[p.id]).await.unwrap_err().is_transient());
}
