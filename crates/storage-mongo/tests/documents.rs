//! The documents are the original's, both ways: what the original wrote reads back, and what
//! this store writes is byte-for-byte the shape the original writes (field names, order and
//! BSON types, nothing extra).

use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use pfs_domain::{NameFilter, PageRequest, Portfolio, PortfolioChanges, PortfolioId, SearchTerm, Timestamp, Version};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_mongo::testing::fresh_store;

const PAGE: PageRequest = PageRequest { limit: 50, offset: 0 };

/// What the original stores for a portfolio: PyMongo writes a Python int as int32 when it fits.
fn original(oid: ObjectId, name: &str, millis: i64, version: Bson) -> Document {
    doc! { "_id": oid, "name": name, "dateCreated": DateTime::from_millis(millis), "version": version }
}

async fn raw(store: &pfs_storage_mongo::MongoStore, id: PortfolioId) -> Document {
    let oid = ObjectId::from_bytes(*id.as_bytes());
    store.collection().find_one(doc! { "_id": oid }).await.unwrap().expect("stored")
}

fn shape(doc: &Document) -> Vec<(&str, &'static str)> {
    doc.iter()
        .map(|(key, value)| {
            let kind = match value {
                Bson::ObjectId(_) => "objectId",
                Bson::String(_) => "string",
                Bson::DateTime(_) => "date",
                Bson::Int32(_) => "int",
                Bson::Int64(_) => "long",
                _ => "other",
            };
            (key.as_str(), kind)
        })
        .collect()
}

#[tokio::test]
async fn documents_written_by_the_original_are_read_by_every_method() {
    let (store, _db) = fresh_store().await;
    let (small, large) = (ObjectId::new(), ObjectId::new());
    let docs = [
        original(small, "Tech Growth Fund", 1_705_314_600_123, Bson::Int32(1)),
        original(large, "tech growth", 1_705_314_600_000, Bson::Int64(5_000_000_000)),
    ];
    store.collection().insert_many(docs).await.unwrap();

    let expected_small = Portfolio {
        id: PortfolioId::from_bytes(small.bytes()),
        name: "Tech Growth Fund".into(),
        date_created: Timestamp::from_millis(1_705_314_600_123).unwrap(),
        version: Version(1),
    };
    let expected_large = Portfolio {
        id: PortfolioId::from_bytes(large.bytes()),
        name: "tech growth".into(),
        date_created: Timestamp::from_millis(1_705_314_600_000).unwrap(),
        version: Version(5_000_000_000),
    };
    assert_eq!(store.get(expected_small.id).await.unwrap().as_ref(), Some(&expected_small));
    assert_eq!(store.get(expected_large.id).await.unwrap().as_ref(), Some(&expected_large));
    assert_eq!(store.list_all().await.unwrap(), [expected_small.clone(), expected_large.clone()]);

    let term = |s: &str| SearchTerm::parse(s).unwrap();
    let exact = store.search(&NameFilter::Exact(term("TECH GROWTH")), PAGE).await.unwrap();
    assert_eq!((exact.items, exact.total), (vec![expected_large.clone()], 1));
    let contains = store.search(&NameFilter::Contains(term("growth")), PAGE).await.unwrap();
    assert_eq!((contains.items, contains.total), (vec![expected_small.clone(), expected_large], 2));

    // The original's int32 version is matched by a version-checked write, and stays int32.
    let changes = PortfolioChanges { name: "renamed".into(), date_created: None };
    let updated = store.update(expected_small.id, Version(1), &changes).await.unwrap();
    assert_eq!(updated.version, Version(2));
    assert_eq!(raw(&store, expected_small.id).await.get("version"), Some(&Bson::Int32(2)));
}

#[tokio::test]
async fn documents_written_here_have_exactly_the_original_shape() {
    let (store, _db) = fresh_store().await;
    let small = Portfolio {
        id: PortfolioId::generate(),
        name: "  Ünïcödé  ".into(),
        date_created: Timestamp::from_millis(1_748_781_296_789).unwrap(),
        version: Version(1),
    };
    let large = Portfolio { id: PortfolioId::generate(), version: Version(i64::from(i32::MAX) + 1), ..small.clone() };
    store.insert_many(&[small.clone(), large.clone()]).await.unwrap();
    let int = [("_id", "objectId"), ("name", "string"), ("dateCreated", "date"), ("version", "int")];
    let long = [("_id", "objectId"), ("name", "string"), ("dateCreated", "date"), ("version", "long")];

    let stored = raw(&store, small.id).await;
    assert_eq!(shape(&stored), int);
    assert_eq!(
        stored,
        original(ObjectId::from_bytes(*small.id.as_bytes()), "  Ünïcödé  ", 1_748_781_296_789, Bson::Int32(1))
    );
    assert_eq!(shape(&raw(&store, large.id).await), long);

    let moved = Timestamp::from_millis(1_700_000_000_001).unwrap();
    let changes = PortfolioChanges { name: "moved".into(), date_created: Some(moved) };
    store.update(small.id, Version(1), &changes).await.unwrap();
    let stored = raw(&store, small.id).await;
    assert_eq!(shape(&stored), int, "an update keeps the shape");
    assert_eq!(stored.get("dateCreated"), Some(&Bson::DateTime(DateTime::from_millis(1_700_000_000_001))));
    assert_eq!(stored.get("version"), Some(&Bson::Int32(2)));

    // Crossing the int32 boundary widens to int64, as PyMongo would.
    let edge = Portfolio { id: PortfolioId::generate(), version: Version(i64::from(i32::MAX)), ..small.clone() };
    store.insert_missing(std::slice::from_ref(&edge)).await.unwrap();
    assert_eq!(shape(&raw(&store, edge.id).await), int);
    store.update(edge.id, edge.version, &changes).await.unwrap();
    assert_eq!(raw(&store, edge.id).await.get("version"), Some(&Bson::Int64(i64::from(i32::MAX) + 1)));
}

#[tokio::test]
async fn extreme_timestamps_round_trip_to_the_millisecond() {
    let (store, _db) = fresh_store().await;
    let batch: Vec<_> = [-62_135_596_800_000, -86_400_123, -1, 0, 999, 1_700_000_000_123, 253_402_300_799_999]
        .into_iter()
        .map(|millis| Portfolio {
            id: PortfolioId::generate(),
            name: format!("at {millis}"),
            date_created: Timestamp::from_millis(millis).unwrap(),
            version: Version(1),
        })
        .collect();
    store.insert_many(&batch).await.unwrap();
    for p in &batch {
        assert_eq!(store.get(p.id).await.unwrap().as_ref(), Some(p));
    }
}

#[tokio::test]
async fn a_corrupt_document_is_a_backend_error_not_a_panic() {
    let (store, _db) = fresh_store().await;
    let oid = ObjectId::new();
    store
        .collection()
        .insert_one(doc! { "_id": oid, "name": 42, "dateCreated": DateTime::now(), "version": 1 })
        .await
        .unwrap();
    let err = store.get(PortfolioId::from_bytes(oid.bytes())).await.unwrap_err();
    assert!(matches!(err, pfs_storage::StoreError::Backend(_)), "{err:?}");
}
