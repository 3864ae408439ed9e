//! The MongoDB database a URL names is the one written to, whatever backend the rest of the
//! suite runs on: this test always talks to the MongoDB test server (`PORTFOLIO_TEST_MONGO_URL`).

use pfs_domain::PortfolioId;
use pfs_storage::PortfolioStore;
use pfs_storage_mongo::testing::TestDatabase;
use pfs_test_support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolios_land_in_the_database_the_mongodb_url_names() {
    let named = TestDatabase::create().await;
    let url = format!("{}/{}", named.url().trim_end_matches('/'), named.name());
    // An empty MONGODB_DB: only the URL names a database (the mongo suite names one itself).
    let app = TestApp::builder()
        .with_config(move |c| {
            c.database.url = url;
            c.database.mongo_database = String::new();
        })
        .spawn()
        .await;
    let created = app.create_portfolio("In the named database").await;
    let id = PortfolioId::parse(created["portfolioId"].as_str().unwrap()).unwrap();

    let store = named.connect(&named.settings()).await;
    let stored = store.get(id).await.unwrap().expect("the portfolio is in the URL's database");
    assert_eq!(stored.name, "In the named database");
    let indexes = store.applied_migrations().await.unwrap();
    assert_eq!(indexes, [pfs_storage_mongo::INDEXES_VERSION], "migrations created the indexes there too");
    store.close().await;
    app.stop().await.unwrap();
}
