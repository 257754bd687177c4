//! Store URLs that cannot work fail early, with a message that says what would.

#![allow(clippy::unwrap_used)]

use skystream_store::{BackendKind, Store, StoreErrorKind, StoreUrl};

#[tokio::test]
async fn bad_urls_are_config_errors_listing_the_accepted_forms() {
    for url in [
        "",
        "  \n",
        "mysql://x",
        "redis://user:hunter2@cache:6379",
        "sqlite:",
        "postgres:skystream",
        "postgres://db.example:99999/skystream",
        "postgresql://u:hunter2@db.example/skystream?no_such_param=1",
    ] {
        let err = Store::open(url).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Config, "{url:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("postgres://"), "{url:?}: {msg}");
        assert!(!msg.contains("hunter2"), "{url:?}: {msg}");
        let again = Store::migrate_only(url).await.unwrap_err();
        assert_eq!(again.kind(), StoreErrorKind::Config);
    }
    let msg = Store::open("mysql://x").await.unwrap_err().to_string();
    for form in [
        "\"mysql\"",
        "./skystream.db",
        "sqlite:PATH",
        "sqlite://PATH",
        ":memory:",
    ] {
        assert!(msg.contains(form), "{form} missing from: {msg}");
    }
    assert!(Store::open("")
        .await
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

#[test]
fn parsed_urls_pick_the_backend_and_hide_passwords() {
    let pg: StoreUrl = "postgres://skystream:hunter2@db:5432/skystream"
        .parse()
        .unwrap();
    assert_eq!(pg.backend(), BackendKind::Postgres);
    assert_eq!(pg.to_string(), "postgres://skystream:***@db:5432/skystream");
    assert!(!format!("{pg:?}").contains("hunter2"));
    let file = StoreUrl::parse("./skystream.db").unwrap();
    assert_eq!(file.backend(), BackendKind::Sqlite);
    assert_eq!(file.redacted(), "sqlite:./skystream.db");
    assert_eq!(StoreUrl::sqlite_memory().to_string(), "sqlite::memory:");
}

#[tokio::test]
async fn memory_store_reports_latest_schema() {
    let store = Store::memory();
    assert_eq!(store.backend(), BackendKind::Memory);
    assert_eq!(store.describe(), "memory");
    assert_eq!(
        store.schema_version().await.unwrap(),
        skystream_store::LATEST_SCHEMA_VERSION
    );
}
