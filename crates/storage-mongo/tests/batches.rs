//! The all-or-nothing inserts, in both modes: a transaction where the server has them, and
//! an ordered insert with compensation where it does not (forced here with
//! `TransactionMode::Never`, since the test server is a replica set).

use pfs_domain::{Portfolio, Version};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_mongo::testing::fresh_store_with;
use pfs_storage_mongo::{MongoSettings, TransactionMode};

fn settings(transactions: TransactionMode) -> MongoSettings {
    MongoSettings { transactions, ..MongoSettings::default() }
}

fn portfolio(name: &str) -> Portfolio {
    Portfolio::new(name.to_owned(), None, Version(1))
}

async fn a_failed_batch_removes_its_own_documents_only(mode: TransactionMode) {
    let (store, _db) = fresh_store_with(&settings(mode)).await;
    let existing = portfolio("existing");
    store.insert_many(std::slice::from_ref(&existing)).await.unwrap();
    // The duplicate is an identical copy: compensation must not mistake it for its own.
    let batch = [portfolio("first"), portfolio("second"), existing.clone(), portfolio("after")];
    assert!(store.insert_many(&batch).await.is_err());
    assert_eq!(store.list_all().await.unwrap(), vec![existing.clone()]);

    let counted = store.insert_missing(&batch).await.unwrap();
    assert_eq!(counted, 3);
    assert_eq!(store.list_all().await.unwrap().len(), 4);
    assert_eq!(store.insert_missing(&batch).await.unwrap(), 0);
}

#[tokio::test]
async fn with_transactions_a_failed_batch_leaves_nothing() {
    a_failed_batch_removes_its_own_documents_only(TransactionMode::Auto).await;
}

#[tokio::test]
async fn with_compensation_a_failed_batch_leaves_nothing() {
    a_failed_batch_removes_its_own_documents_only(TransactionMode::Never).await;
}

#[tokio::test]
async fn the_mode_follows_the_setting_and_the_server() {
    let (forced, _db) = fresh_store_with(&settings(TransactionMode::Never)).await;
    assert!(!forced.uses_transactions());
    let (auto, _db) = fresh_store_with(&settings(TransactionMode::Auto)).await;
    let hello = auto.database().run_command(mongodb::bson::doc! { "hello": 1 }).await.unwrap();
    assert_eq!(auto.uses_transactions(), hello.contains_key("setName"), "{hello}");
    eprintln!("server hello: {hello}; transactions: {}", auto.uses_transactions());
}

#[tokio::test]
async fn racing_imports_of_one_batch_insert_each_document_once() {
    for mode in [TransactionMode::Auto, TransactionMode::Never] {
        let (store, _db) = fresh_store_with(&settings(mode)).await;
        let batch: Vec<_> = (0..200).map(|i| portfolio(&format!("p{i}"))).collect();
        let (a, b) = tokio::join!(store.insert_missing(&batch), store.insert_missing(&batch));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a + b, 200, "{mode:?}: {a} + {b}");
        assert_eq!(store.list_all().await.unwrap().len(), 200, "{mode:?}");
    }
}
