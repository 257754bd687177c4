//! One behavioural suite for [`CursorStore`], run against every backend: `MemoryStore`, SQLite
//! (a file in a temporary directory) and PostgreSQL (a schema of its own in the test database;
//! ignored unless asked for, see `common`).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use skystream_store::{BackendKind, CursorStore, Store, StoreErrorKind, LATEST_SCHEMA_VERSION};

use common::{Fixture, Under};

/// The behaviours, each a function of a fresh fixture.
mod behaviour {
    use super::*;

    pub async fn fresh_store_is_migrated(fx: &Fixture) {
        let store = &fx.store;
        assert_eq!(store.schema_version().await.unwrap(), LATEST_SCHEMA_VERSION);
        let report = store.opened_with();
        assert_eq!(report.to_version, LATEST_SCHEMA_VERSION);
        if store.backend() == BackendKind::Memory {
            assert!(report.is_noop());
        } else {
            assert_eq!(report.from_version, 0);
            let all: Vec<u32> = (1..=LATEST_SCHEMA_VERSION).collect();
            assert_eq!(report.applied, all);
        }
        assert!(store.list_cursors().await.unwrap().is_empty());
    }

    pub async fn unknown_source_is_none(fx: &Fixture) {
        assert_eq!(fx.store.load_cursor("bsky.network").await.unwrap(), None);
        fx.store.save_cursor("other", 5).await.unwrap();
        assert_eq!(fx.store.load_cursor("bsky.network").await.unwrap(), None);
    }

    pub async fn save_load_round_trip(fx: &Fixture) {
        fx.store.save_cursor("bsky.network", 123_456).await.unwrap();
        assert_eq!(
            fx.store.load_cursor("bsky.network").await.unwrap(),
            Some(123_456)
        );
        fx.store.save_cursor("zero", 0).await.unwrap();
        assert_eq!(fx.store.load_cursor("zero").await.unwrap(), Some(0));
    }

    pub async fn upsert_overwrites(fx: &Fixture) {
        let store = &fx.store;
        store.save_cursor("relay", 10).await.unwrap();
        store.save_cursor("relay", 20).await.unwrap();
        assert_eq!(store.load_cursor("relay").await.unwrap(), Some(20));
        // The store keeps what it is told, even a smaller value.
        store.save_cursor("relay", 15).await.unwrap();
        assert_eq!(store.load_cursor("relay").await.unwrap(), Some(15));
        assert_eq!(store.list_cursors().await.unwrap().len(), 1);
    }

    pub async fn sources_are_independent(fx: &Fixture) {
        let store = &fx.store;
        store.save_cursor("a.example", 1).await.unwrap();
        store.save_cursor("b.example", 2).await.unwrap();
        store.save_cursor("a.example", 3).await.unwrap();
        assert_eq!(store.load_cursor("a.example").await.unwrap(), Some(3));
        assert_eq!(store.load_cursor("b.example").await.unwrap(), Some(2));
        // Exact match, not prefix or case-insensitive.
        assert_eq!(store.load_cursor("a.exampl").await.unwrap(), None);
        assert_eq!(store.load_cursor("A.example").await.unwrap(), None);
    }

    pub async fn odd_source_names_round_trip(fx: &Fixture) {
        let names = [
            "",
            "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos",
            "jetstream2.us-east.bsky.network",
            "o'brien\"; DROP TABLE cursors; --",
            "relé-ü-日本",
        ];
        for (i, name) in names.iter().enumerate() {
            fx.store.save_cursor(name, i as u64 + 100).await.unwrap();
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                fx.store.load_cursor(name).await.unwrap(),
                Some(i as u64 + 100),
                "{name:?}"
            );
        }
        assert_eq!(fx.store.list_cursors().await.unwrap().len(), names.len());
    }

    pub async fn list_cursors_is_ordered_and_stamped(fx: &Fixture) {
        let store = &fx.store;
        let before = now_ms();
        for (source, cursor) in [("b", 2), ("a", 1), ("ä", 4), ("B", 3)] {
            store.save_cursor(source, cursor).await.unwrap();
        }
        let after = now_ms();
        let rows = store.list_cursors().await.unwrap();
        let listed: Vec<(&str, u64)> = rows.iter().map(|r| (r.source.as_str(), r.cursor)).collect();
        // Byte order on every backend, whatever the database's collation.
        assert_eq!(listed, [("B", 3), ("a", 1), ("b", 2), ("ä", 4)]);
        for row in &rows {
            assert!(
                (before..=after).contains(&row.updated_at_ms),
                "{row:?} not in {before}..={after}"
            );
        }
    }

    pub async fn large_cursors_round_trip(fx: &Fixture) {
        for cursor in [
            1u64 << 53,
            (1u64 << 53) + 1,
            i64::MAX as u64 - 1,
            i64::MAX as u64,
        ] {
            fx.store.save_cursor("big", cursor).await.unwrap();
            assert_eq!(fx.store.load_cursor("big").await.unwrap(), Some(cursor));
            let rows = fx.store.list_cursors().await.unwrap();
            assert_eq!(rows[0].cursor, cursor);
        }
    }

    pub async fn cursor_above_i64_max_is_rejected(fx: &Fixture) {
        let store = &fx.store;
        store.save_cursor("relay", 7).await.unwrap();
        for cursor in [i64::MAX as u64 + 1, u64::MAX] {
            let err = store.save_cursor("relay", cursor).await.unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::CursorOutOfRange);
            let msg = err.to_string();
            assert!(msg.contains(&cursor.to_string()), "{msg}");
            assert!(msg.contains("i64::MAX"), "{msg}");
            let err = store.save_cursor("new", cursor).await.unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::CursorOutOfRange);
        }
        assert_eq!(store.load_cursor("relay").await.unwrap(), Some(7));
        assert_eq!(store.load_cursor("new").await.unwrap(), None);
    }

    pub async fn migrations_rerun_are_noop(fx: &Fixture) {
        let store = &fx.store;
        store.save_cursor("relay", 99).await.unwrap();
        let version = store.schema_version().await.unwrap();
        let again = store.migrate().await.unwrap();
        assert!(again.is_noop(), "{again:?}");
        assert_eq!((again.from_version, again.to_version), (version, version));
        assert_eq!(store.schema_version().await.unwrap(), version);
        if let Some(url) = &fx.url {
            let reopened = Store::open(url).await.unwrap();
            assert!(
                reopened.opened_with().is_noop(),
                "{:?}",
                reopened.opened_with()
            );
            assert_eq!(reopened.schema_version().await.unwrap(), version);
            assert_eq!(reopened.load_cursor("relay").await.unwrap(), Some(99));
            let report = Store::migrate_only(url).await.unwrap();
            assert!(report.is_noop(), "{report:?}");
            assert_eq!(report.to_version, version);
        }
        assert_eq!(store.load_cursor("relay").await.unwrap(), Some(99));
    }

    pub async fn concurrent_saves_end_consistent(fx: &Fixture) {
        const TASKS: u64 = 24;
        const SAVES: u64 = 20;
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = fx.store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 1..=SAVES {
                    let own = t * 1_000 + i;
                    store
                        .save_cursor(&format!("task-{t:02}"), own)
                        .await
                        .unwrap();
                    store.save_cursor("shared", own).await.unwrap();
                    // Reads interleave with the writes and see a value some task saved.
                    let seen = store.load_cursor("shared").await.unwrap().unwrap();
                    assert!((1..=SAVES).contains(&(seen % 1_000)), "{seen}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let store = &fx.store;
        for t in 0..TASKS {
            assert_eq!(
                store.load_cursor(&format!("task-{t:02}")).await.unwrap(),
                Some(t * 1_000 + SAVES),
                "task {t}"
            );
        }
        let shared = store.load_cursor("shared").await.unwrap().unwrap();
        let possible: HashSet<u64> = (0..TASKS).map(|t| t * 1_000 + SAVES).collect();
        // The last write of all is the last write of some task: one with i = SAVES.
        assert!(possible.contains(&shared), "{shared}");
        assert_eq!(store.list_cursors().await.unwrap().len() as u64, TASKS + 1);
    }

    pub async fn usable_as_dyn_cursor_store(fx: &Fixture) {
        let dynamic: Arc<dyn CursorStore> = Arc::new(fx.store.clone());
        dynamic.save_cursor("dyn", 42).await.unwrap();
        assert_eq!(fx.store.load_cursor("dyn").await.unwrap(), Some(42));
        let rows = dynamic.list_cursors().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].source.as_str(), rows[0].cursor), ("dyn", 42));
    }

    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }
}

macro_rules! suite {
    ($(#[$attr:meta])* $module:ident, $under:expr) => {
        mod $module {
            use super::*;

            suite!(@tests [$(#[$attr])*] $under;
                fresh_store_is_migrated,
                unknown_source_is_none,
                save_load_round_trip,
                upsert_overwrites,
                sources_are_independent,
                odd_source_names_round_trip,
                list_cursors_is_ordered_and_stamped,
                large_cursors_round_trip,
                cursor_above_i64_max_is_rejected,
                migrations_rerun_are_noop,
                concurrent_saves_end_consistent,
                usable_as_dyn_cursor_store,
            );
        }
    };
    (@tests $attrs:tt $under:expr; $($name:ident),* $(,)?) => {
        $(
            suite!(@test $attrs $under; $name);
        )*
    };
    (@test [$(#[$attr:meta])*] $under:expr; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            let fx = Fixture::new($under).await;
            behaviour::$name(&fx).await;
        }
    };
}

suite!(memory, Under::Memory);
suite!(sqlite, Under::Sqlite);
suite!(
    #[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
    postgres,
    Under::Postgres
);
