//! Indexes: `ensure_indexes` is idempotent and accepts what the original already created, and
//! the migration commands map onto our one index without touching anything else.

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use pfs_domain::{Portfolio, Version};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_mongo::testing::TestDatabase;
use pfs_storage_mongo::{INDEXES_VERSION, MongoStore, ORDER_INDEX};

/// `name: keys` of every index, sorted.
async fn indexes(store: &MongoStore) -> Vec<String> {
    let mut cursor = store.collection().list_indexes().await.expect("list indexes");
    let mut all = Vec::new();
    while cursor.advance().await.unwrap() {
        let model = cursor.deserialize_current().unwrap();
        let name = model.options.and_then(|o| o.name).unwrap_or_default();
        all.push(format!("{name}: {}", model.keys));
    }
    all.sort();
    all
}

async fn create(store: &MongoStore, keys: Document, options: IndexOptions) {
    let model = IndexModel::builder().keys(keys).options(options).build();
    store.collection().create_index(model).await.expect("pre-existing index");
}

/// Whether the server builds text indexes (real MongoDB does; the secantus surrogate answers
/// CannotCreateIndex). Asked on a scratch collection, so it leaves nothing behind.
async fn server_has_text_indexes(store: &MongoStore) -> bool {
    let scratch = store.database().collection::<Document>("text_probe");
    let model = IndexModel::builder().keys(doc! { "name": "text" }).build();
    let supported = match scratch.create_index(model).await {
        Ok(_) => true,
        Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == 67) => false,
        Err(e) => panic!("probing text index support: {e}"),
    };
    scratch.drop().await.unwrap();
    if !supported {
        eprintln!("note: this server cannot build text indexes; the text-index checks are reduced to its absence");
    }
    supported
}

async fn ensure_twice_over_pre_existing(named: [Option<&str>; 2]) -> Vec<String> {
    let db = TestDatabase::create().await;
    let store = db.connect(&db.settings()).await;
    // What the original does at startup (PyMongo `create_index` with default names, or with
    // the names its deployment chose).
    if server_has_text_indexes(&store).await {
        let text =
            IndexOptions::builder().name(named[0].map(str::to_owned)).default_language("english".to_owned()).build();
        create(&store, doc! { "name": "text" }, text).await;
    }
    let compound = IndexOptions::builder().name(named[1].map(str::to_owned)).build();
    create(&store, doc! { "name": 1, "dateCreated": -1 }, compound).await;
    let before = indexes(&store).await;

    store.ensure_indexes().await.expect("first ensure");
    let after = indexes(&store).await;
    store.ensure_indexes().await.expect("second ensure");
    assert_eq!(indexes(&store).await, after, "ensure_indexes is idempotent");
    assert_eq!(after.len(), before.len() + 1, "only our order index is added: {before:#?} -> {after:#?}");
    assert!(after.iter().any(|i| i.starts_with(&format!("{ORDER_INDEX}:"))), "{after:#?}");
    after
}

#[tokio::test]
async fn the_originals_default_named_indexes_are_accepted() {
    let all = ensure_twice_over_pre_existing([None, None]).await;
    let texts = all.iter().filter(|i| i.contains("_fts")).count();
    assert!(texts <= 1, "at most one text index: {all:#?}");
    assert!(all.iter().any(|i| i.starts_with("name_1_dateCreated_-1:")), "{all:#?}");
}

#[tokio::test]
async fn equivalent_indexes_under_other_names_are_accepted() {
    let all = ensure_twice_over_pre_existing([Some("portfolio_name_search"), Some("by_name_date")]).await;
    assert!(!all.iter().any(|i| i.starts_with("name_text:") || i.starts_with("name_1_dateCreated_-1:")), "{all:#?}");
}

#[tokio::test]
async fn migrate_creates_all_three_and_down_drops_only_ours_keeping_the_data() {
    let db = TestDatabase::create().await;
    let store = db.connect(&db.settings()).await;
    assert_eq!(store.applied_migrations().await.unwrap(), Vec::<i64>::new(), "no collection yet");

    store.migrate().await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), vec![INDEXES_VERSION]);
    let first = indexes(&store).await;
    let text = server_has_text_indexes(&store).await;
    let names = ["_id_", "name_1_dateCreated_-1", ORDER_INDEX].into_iter().chain(text.then_some("name_text"));
    for name in names {
        assert!(first.iter().any(|i| i.starts_with(&format!("{name}:"))), "{name}: {first:#?}");
    }
    let kept = Portfolio::new("kept".into(), None, Version(1));
    store.insert_many(std::slice::from_ref(&kept)).await.unwrap();

    store.migrate_down(INDEXES_VERSION).await.unwrap();
    assert_eq!(indexes(&store).await, first, "down to the current version changes nothing");
    store.migrate_down(0).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), Vec::<i64>::new());
    let after_down = indexes(&store).await;
    assert_eq!(after_down.len(), first.len() - 1, "the original's indexes stay: {after_down:#?}");
    assert!(!after_down.iter().any(|i| i.starts_with(ORDER_INDEX)));
    assert_eq!(store.list_all().await.unwrap(), vec![kept.clone()], "down never touches documents");
    store.migrate_down(0).await.expect("dropping again is fine");

    store.migrate().await.unwrap();
    assert_eq!(indexes(&store).await, first);
    assert_eq!(store.list_all().await.unwrap(), vec![kept]);
}
