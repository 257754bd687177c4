//! PostgreSQL-specific behaviour: connection failures (quick, with a useful message and no
//! password), migrations under concurrency and from a newer skystream, the bare backend handle.
//! Tests that need a server are ignored unless asked for (`-- --include-ignored`; see `common`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use skystream_store::{
    BackendKind, CursorStore, PostgresStore, Store, StoreErrorKind, LATEST_SCHEMA_VERSION,
};

use common::PgSchema;

#[tokio::test]
async fn unreachable_server_is_a_quick_connect_error() {
    let started = Instant::now();
    let err = Store::open("postgres://postgres:hunter2@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    let msg = err.to_string();
    assert!(
        msg.contains("postgres://postgres:***@127.0.0.1:1/test"),
        "{msg}"
    );
    assert!(
        msg.contains("is PostgreSQL running on 127.0.0.1:1?"),
        "{msg}"
    );
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts TCP connections (the kernel does, from the backlog) and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = Store::open(&format!(
        "postgres://postgres@127.0.0.1:{port}/test?connect_timeout=1"
    ))
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    let msg = err.to_string();
    assert!(msg.contains("timed out"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    drop(listener);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn server_errors_name_the_problem_without_the_running_hint() {
    let pg = PgSchema::create().await;
    let url = common::postgres_url();
    let (base, _) = url.rsplit_once('/').unwrap();
    let missing = format!("{base}/skystream_no_such_database");
    let err = Store::open(&missing).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    let msg = err.to_string();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(!msg.contains("is PostgreSQL running"), "{msg}");
    drop(pg);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn describe_elides_the_password() {
    let pg = PgSchema::create().await;
    // The test server's own password when its URL has one; otherwise one is added, which
    // trust authentication ignores. Either way the description must not show it.
    let url = pg.url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap_or(("postgres", rest));
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user.to_owned(), password.to_owned()),
        None => (userinfo.to_owned(), "hunter2".to_owned()),
    };
    let url = format!("{scheme}://{user}:{password}@{host}");
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), BackendKind::Postgres);
    assert!(
        store.describe().contains(&format!("{user}:***@")),
        "{}",
        store.describe()
    );
    assert!(!store.describe().contains(&password));
    assert!(!format!("{store:?}").contains(&password));
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn schema_migrations_records_each_version() {
    let pg = PgSchema::create().await;
    let store = Store::open(&pg.url()).await.unwrap();
    store.save_cursor("relay", 1).await.unwrap();
    let client = pg.client().await;
    let rows = client
        .query(
            "SELECT version, description, applied_at FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), LATEST_SCHEMA_VERSION as usize);
    let (version, description, applied_at): (i32, String, i64) =
        (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!((version, description.as_str()), (1, "cursors"));
    assert!(applied_at > 1_700_000_000_000);
    // The tables are in the test's schema, not in public.
    let schema: String = client
        .query_one(
            "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'cursors' \
             AND table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schema, pg.name());
    let err = client
        .execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES ('x', -1, 0)",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("check"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn concurrent_first_opens_apply_each_migration_once() {
    let pg = PgSchema::create().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = pg.url();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for open in opens {
        let store = open.await.unwrap().unwrap();
        applied.extend(store.opened_with().applied.iter().copied());
    }
    applied.sort_unstable();
    let all: Vec<u32> = (1..=LATEST_SCHEMA_VERSION).collect();
    assert_eq!(applied, all);
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn newer_schema_is_refused() {
    let pg = PgSchema::create().await;
    Store::open(&pg.url()).await.unwrap();
    pg.client()
        .await
        .batch_execute(
            "INSERT INTO schema_migrations (version, description, applied_at) \
             VALUES (999, 'from the future', 0)",
        )
        .await
        .unwrap();
    let err = Store::open(&pg.url()).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Migration);
    let msg = err.to_string();
    assert!(
        msg.contains("999") && msg.contains("newer skystream"),
        "{msg}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn backend_handle_without_store() {
    let pg = PgSchema::create().await;
    let store = PostgresStore::connect(&pg.url()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let err = store.save_cursor("s", 1).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Query);
    assert!(err.to_string().contains("does not exist"), "{err}");
    let report = store.migrate().await.unwrap();
    assert_eq!(
        (report.from_version, report.to_version),
        (0, LATEST_SCHEMA_VERSION)
    );
    store.save_cursor("s", 1).await.unwrap();
    assert_eq!(store.load_cursor("s").await.unwrap(), Some(1));

    let err = PostgresStore::connect("./skystream.db").await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Config);
    assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
}

/// Two writers whose batches lock the same two posts in opposite orders deadlock now and then;
/// the server aborts one transaction, and `apply` runs it again, so every like counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn deadlocked_batches_are_retried() {
    use skystream_store::{FeedStore, FeedWrite, Membership, PostRow};

    let pg = PgSchema::create().await;
    // Detect deadlocks after 20 ms instead of 1 s (a superuser setting; else the default).
    let fast = format!("{}%20-cdeadlock_timeout%3D20ms", pg.url());
    let store = match Store::open(&fast).await {
        Ok(store) => store,
        Err(_) => Store::open(&pg.url()).await.unwrap(),
    };
    let post = |n: u32| format!("at://did:plc:a/app.bsky.feed.post/{n}");
    let upsert = |n: u32| FeedWrite::UpsertPost {
        post: PostRow {
            uri: post(n),
            author: "did:plc:a".into(),
            ..PostRow::default()
        },
        feeds: vec![Membership {
            feed: "all".into(),
            score: 0.0,
            min_likes: 0,
            half_life_s: None,
        }],
    };
    store.apply(vec![upsert(1), upsert(2)]).await.unwrap();
    const ROUNDS: u32 = 30;
    let tasks: Vec<_> = [(1, 2), (2, 1)]
        .into_iter()
        .enumerate()
        .map(|(t, (first, second))| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..ROUNDS {
                    let like = |n: u32, subject: u32| FeedWrite::AddLike {
                        uri: format!("at://did:plc:liker{t}/app.bsky.feed.like/{i}-{n}"),
                        subject: post(subject),
                    };
                    store
                        .apply(vec![like(0, first), like(1, second)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for n in [1, 2] {
        let (_, likes, _) = store.post(&post(n)).await.unwrap().unwrap();
        assert_eq!(likes, u64::from(2 * ROUNDS), "post {n}");
    }
}
