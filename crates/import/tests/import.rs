//! Importing exports into a real (SQLite) store.

use pfs_domain::{PortfolioId, Version};
use pfs_import::{ImportOptions, Location, import_file};
use pfs_storage::{ListAll, PortfolioStore};
use pfs_storage_sqlite::{SqliteSettings, SqliteStore};
use std::io::Write;

async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_file(&dir.path().join("db"), &SqliteSettings::default()).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

const LINES: &str = r#"{"_id":{"$oid":"6740f1c2a1b2c3d4e5f60001"},"name":"Tech Growth","dateCreated":{"$date":"2024-01-15T10:30:00.123Z"},"version":3}
{"_id":{"$oid":"6740f1c2a1b2c3d4e5f60002"},"name":" spaced ","dateCreated":{"$date":{"$numberLong":"-5000"}},"version":{"$numberInt":"0"}}
{"_id":{"$oid":"6740f1c2a1b2c3d4e5f60003"},"name":"no date"}
"#;

#[tokio::test]
async fn ids_names_dates_and_versions_are_preserved_and_a_rerun_changes_nothing() {
    let (store, _dir) = store().await;
    let export = file(LINES);
    let report = import_file(export.path(), &store, &ImportOptions::default()).await.unwrap();
    assert_eq!((report.read, report.inserted, report.already_present, report.rejected), (3, 3, 0, 0));
    assert_eq!(report.dated_from_id, 1);

    let first = store.get(PortfolioId::parse("6740f1c2a1b2c3d4e5f60001").unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (first.name.as_str(), first.date_created.to_rfc3339(), first.version),
        ("Tech Growth", "2024-01-15T10:30:00.123Z".to_owned(), Version(3))
    );
    let second = store.get(PortfolioId::parse("6740f1c2a1b2c3d4e5f60002").unwrap()).await.unwrap().unwrap();
    assert_eq!((second.name.as_str(), second.date_created.millis(), second.version), (" spaced ", -5000, Version(0)));

    let again = import_file(export.path(), &store, &ImportOptions::default()).await.unwrap();
    assert_eq!((again.inserted, again.already_present), (0, 3));
    assert_eq!(store.list_all().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_malformed_line_is_reported_by_number_and_nothing_is_loaded() {
    let (store, _dir) = store().await;
    let text = format!("{LINES}{{\"_id\":{{\"$oid\":\"6740f1c2a1b2c3d4e5f60004\"}}}}\nnot json\n");
    let report = import_file(file(&text).path(), &store, &ImportOptions::default()).await.unwrap();
    assert!(report.aborted);
    assert_eq!((report.read, report.rejected, report.inserted), (5, 2, 0));
    assert_eq!(report.rejections[0].location, Location::Line(4));
    assert!(report.rejections[0].reason.contains("missing name"));
    assert_eq!(report.rejections[1].location, Location::Line(5));
    assert!(store.list_all().await.unwrap().is_empty(), "nothing partial");
}

#[tokio::test]
async fn skip_invalid_loads_the_valid_documents_in_batches() {
    let (store, _dir) = store().await;
    let text = format!("{LINES}{{}}\n");
    let options = ImportOptions { batch_size: 2, skip_invalid: true, ..ImportOptions::default() };
    let report = import_file(file(&text).path(), &store, &options).await.unwrap();
    assert_eq!((report.inserted, report.rejected, report.aborted), (3, 1, false));
}

#[tokio::test]
async fn a_json_array_export_loads_the_same() {
    let (store, _dir) = store().await;
    let array = format!("[{}]", LINES.trim().replace('\n', ",\n"));
    let report = import_file(file(&array).path(), &store, &ImportOptions::default()).await.unwrap();
    assert_eq!((report.read, report.inserted), (3, 3));
}
