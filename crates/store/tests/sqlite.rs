//! SQLite-specific behaviour: persistence across reopen and `kill -9`, the URL forms, WAL
//! mode, in-memory databases, and the errors for files that cannot be used.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use skystream_store::{
    BackendKind, CursorStore, FeedStore, FeedWrite, Membership, PostRow, SqliteStore, Store,
    StoreErrorKind, LATEST_SCHEMA_VERSION, SQLITE_READERS,
};

#[tokio::test]
async fn file_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skystream.db");
    let url = path.display().to_string();
    {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.backend(), BackendKind::Sqlite);
        assert_eq!(store.describe(), format!("sqlite:{url}"));
        store.save_cursor("bsky.network", 1_000).await.unwrap();
        store.save_cursor("bsky.network", 2_000).await.unwrap();
        store.save_cursor("jetstream", 3_000).await.unwrap();
    }
    assert!(path.exists());
    let store = Store::open(&url).await.unwrap();
    assert!(store.opened_with().is_noop());
    assert_eq!(
        store.load_cursor("bsky.network").await.unwrap(),
        Some(2_000)
    );
    assert_eq!(store.load_cursor("jetstream").await.unwrap(), Some(3_000));
    assert_eq!(store.list_cursors().await.unwrap().len(), 2);
}

#[tokio::test]
async fn url_forms_reach_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forms.db");
    let abs = path.display().to_string();
    assert!(abs.starts_with('/'), "{abs}");
    Store::open(&abs)
        .await
        .unwrap()
        .save_cursor("s", 1)
        .await
        .unwrap();
    for url in [
        abs.clone(),
        format!("sqlite:{abs}"),
        format!("sqlite://{abs}"),
        format!("  {abs}\n"),
    ] {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.load_cursor("s").await.unwrap(), Some(1), "{url:?}");
        assert_eq!(store.describe(), format!("sqlite:{abs}"), "{url:?}");
    }
}

#[tokio::test]
async fn file_is_in_wal_mode_with_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store.save_cursor("s", 1).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let migrations: Vec<(u32, String, i64)> = conn
        .prepare("SELECT version, description, applied_at FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(migrations.len(), LATEST_SCHEMA_VERSION as usize);
    assert_eq!((migrations[0].0, migrations[0].1.as_str()), (1, "cursors"));
    assert!(migrations[0].2 > 1_700_000_000_000);
    // The table's own rules hold even for writers other than skystream.
    let err = conn
        .execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES ('x', -1, 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

#[tokio::test]
async fn memory_urls_work_and_are_private() {
    for url in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
        let a = Store::open(url).await.unwrap();
        let b = Store::open(url).await.unwrap();
        assert_eq!(a.backend(), BackendKind::Sqlite);
        assert_eq!(a.describe(), "sqlite::memory:");
        assert_eq!(a.schema_version().await.unwrap(), LATEST_SCHEMA_VERSION);
        a.save_cursor("s", 5).await.unwrap();
        assert_eq!(a.load_cursor("s").await.unwrap(), Some(5));
        // Clones share the database; another :memory: store is a different database.
        assert_eq!(a.clone().load_cursor("s").await.unwrap(), Some(5));
        assert_eq!(b.load_cursor("s").await.unwrap(), None);
    }
}

#[tokio::test]
async fn backend_handle_without_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("direct.db"))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let err = store.save_cursor("s", 1).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Query);
    assert!(err.to_string().contains("no such table: cursors"), "{err}");
    let report = store.migrate().await.unwrap();
    assert_eq!(
        (report.from_version, report.to_version),
        (0, LATEST_SCHEMA_VERSION)
    );
    store.save_cursor("s", 1).await.unwrap();
    assert_eq!(store.load_cursor("s").await.unwrap(), Some(1));
    assert!(store.path().is_some());
}

#[tokio::test]
async fn concurrent_first_opens_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("race.db").display().to_string();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
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
async fn not_a_database_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the pages you are looking for\n".repeat(200),
    )
    .unwrap();
    let err = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    let msg = err.to_string();
    assert!(msg.contains("not a SQLite database"), "{msg}");
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
}

#[tokio::test]
async fn missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/skystream.db");
    let err = Store::open(path.to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Connect);
    let msg = err.to_string();
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("directory exist"), "{msg}");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let url = path.display().to_string();
    Store::open(&url).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, description, applied_at) \
             VALUES (999, 'from the future', 0)",
            [],
        )
        .unwrap();
    let err = Store::open(&url).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Migration);
    let msg = err.to_string();
    assert!(
        msg.contains("999") && msg.contains("newer skystream"),
        "{msg}"
    );
}

fn feed_post(n: u32) -> FeedWrite {
    FeedWrite::UpsertPost {
        post: PostRow {
            uri: format!("at://did:plc:a/app.bsky.feed.post/{n}"),
            author: "did:plc:a".into(),
            indexed_at_ms: i64::from(n),
            ..PostRow::default()
        },
        feeds: vec![Membership {
            feed: "all".into(),
            score: 0.0,
            min_likes: 0,
            half_life_s: None,
        }],
    }
}

/// WAL and the reader pool: while the write lock is held (here by another connection, and the
/// store's own batch waits behind it), pages are served at once, from the last commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readers.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store.apply(vec![feed_post(1), feed_post(2)]).await.unwrap();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
        .execute(
            "INSERT INTO cursors (source, cursor, updated_at) VALUES ('x', 1, 0)",
            [],
        )
        .unwrap();
    // The store's writer now waits for the lock (up to its 5 s busy timeout).
    let blocked = tokio::spawn({
        let store = store.clone();
        async move { store.apply(vec![feed_post(3)]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!blocked.is_finished());

    let started = Instant::now();
    let reads: Vec<_> = (0..3 * SQLITE_READERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.chronological_page("all", None, 10).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap().len(), 2);
    }
    assert_eq!(store.load_cursor("x").await.unwrap(), None);
    assert!(store.size_bytes().await.unwrap() > 0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "reads took {:?}",
        started.elapsed()
    );
    assert!(!blocked.is_finished());

    other.execute_batch("COMMIT").unwrap();
    blocked.await.unwrap().unwrap();
    assert_eq!(
        store
            .chronological_page("all", None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.load_cursor("x").await.unwrap(), Some(1));
}

/// Version 2 adds the feed tables; their rules hold for other writers too.
#[tokio::test]
async fn feed_tables_have_their_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feeds.db");
    Store::open(path.to_str().unwrap()).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let description: String = conn
        .query_row(
            "SELECT description FROM schema_migrations WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(description, "feeds");
    for (sql, expect) in [
        (
            "INSERT INTO feed_items (feed, post_seq, score, min_likes, indexed_at) \
             VALUES ('f', 12345, 0.0, 0, 0)",
            "FOREIGN KEY",
        ),
        (
            "INSERT INTO accounts (did, status, updated_at) VALUES ('d', 'active', 0)",
            "CHECK",
        ),
        (
            "INSERT INTO posts (uri, cid, author, rkey, created_at, indexed_at, langs, text, \
             hashtags, mentions, labels, like_count, uri_key) \
             VALUES ('u', 'c', 'a', 'r', 0, 0, '[]', '', '[]', '[]', '[]', -1, 'u')",
            "CHECK",
        ),
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains(expect), "{sql}: {err}");
    }
}

const CHILD_DB: &str = "SKYSTREAM_STORE_TEST_CHILD_DB";

/// The process `survives_kill_9` starts and kills: this test binary again, running that same
/// test with `CHILD_DB` set. Saves cursors 1, 2, 3, … and prints `saved N` after each save
/// returns, until it is killed.
fn child_writer(db: &std::ffi::OsStr) -> ! {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(Path::new(db).to_str().unwrap()).await.unwrap();
        let mut stdout = std::io::stdout();
        for cursor in 1u64.. {
            store.save_cursor("relay", cursor).await.unwrap();
            writeln!(stdout, "saved {cursor}").unwrap();
            stdout.flush().unwrap();
        }
    });
    unreachable!("the writer saves until it is killed")
}

/// The threat model of `synchronous=NORMAL`: the process dies without warning. Every save
/// that returned before the kill is there afterwards.
#[test]
fn survives_kill_9() {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        child_writer(&db);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "survives_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_seen = 0u64;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("saved ") {
            last_seen = n.parse().unwrap();
            if last_seen >= 200 {
                break;
            }
        }
    }
    assert!(
        last_seen >= 200,
        "the child stopped after {last_seen} saves"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What the child reported before it died, including lines still in the pipe.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("saved ") {
            last_seen = n.parse().unwrap();
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let saved = rt.block_on(async {
        let store = Store::open(db.to_str().unwrap()).await.unwrap();
        store.load_cursor("relay").await.unwrap().unwrap()
    });
    // The save in flight when the kill came may or may not have committed.
    assert!(
        saved == last_seen || saved == last_seen + 1,
        "reported {last_seen}, found {saved}"
    );
}

/// A database at version 4 with posts, memberships and likes moves to version 5 (the posts
/// table rebuilt around time-ordered keys) with its data, its foreign keys and its sequence.
#[tokio::test]
async fn version_5_rebuilds_posts_and_keeps_everything() {
    use skystream_store::{FeedStore, FeedWrite, Membership, PostRow, SQLITE_MIGRATIONS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; CREATE TABLE schema_migrations (version INTEGER NOT NULL \
             PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        for m in SQLITE_MIGRATIONS.iter().filter(|m| m.version <= 4) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.description],
            )
            .unwrap();
        }
        for (seq, rkey) in [(1, "3ka"), (2, "3kb"), (3, "3kc")] {
            conn.execute(
                "INSERT INTO posts (seq, uri, cid, author, rkey, created_at, indexed_at, langs, \
                 text, hashtags, mentions, labels) VALUES (?1, ?2, 'c', 'did:plc:a', ?3, 0, ?1, \
                 '[]', 'hei', '[]', '[]', '[]')",
                rusqlite::params![
                    seq,
                    format!("at://did:plc:a/app.bsky.feed.post/{rkey}"),
                    rkey
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO feed_items (feed, post_seq, score, min_likes, indexed_at) \
                 VALUES ('f', ?1, 0.0, 0, ?1)",
                [seq],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO likes (uri, post_seq) VALUES ('at://did:plc:b/app.bsky.feed.like/1', 1)",
            [],
        )
        .unwrap();
        conn.execute("UPDATE posts SET like_count = 1 WHERE seq = 1", [])
            .unwrap();
        // The newest post goes: its seq must not come back.
        conn.execute("DELETE FROM posts WHERE seq = 3", []).unwrap();
    }
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(store.opened_with().applied, [5, 6]);
    let a = "at://did:plc:a/app.bsky.feed.post/3ka";
    let (row, likes, _) = store.post(a).await.unwrap().unwrap();
    assert_eq!((row.text.as_str(), likes), ("hei", 1));
    let page = store.chronological_page("f", None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [2, 1],
        "memberships kept, the cascade of seq 3 too"
    );
    store
        .apply(vec![FeedWrite::UpsertPost {
            post: PostRow {
                uri: "at://did:plc:a/app.bsky.feed.post/3kd".into(),
                author: "did:plc:a".into(),
                rkey: "3kd".into(),
                ..PostRow::default()
            },
            feeds: vec![Membership {
                feed: "f".into(),
                score: 0.0,
                min_likes: 0,
                half_life_s: None,
            }],
        }])
        .await
        .unwrap();
    let top = store.chronological_page("f", None, 1).await.unwrap();
    assert_eq!(
        top[0].seq, 4,
        "the sequence goes on after the highest seq ever used"
    );
    // Deleting a post still cascades to its memberships and likes.
    store
        .apply(vec![FeedWrite::DeletePost { uri: a.into() }])
        .await
        .unwrap();
    assert_eq!(
        store.chronological_page("f", None, 10).await.unwrap().len(),
        2
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let likes: i64 = conn
        .query_row("SELECT COUNT(*) FROM likes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(likes, 0);
}
