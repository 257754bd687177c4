//! skystream's persistent state. This crate owns the database: its schema, the migrations that
//! create and evolve it (run at every start, and by `skystream migrate`), and what is kept in
//! it: the `cursors` table, one row per event source holding the highest cursor at or
//! before which every event has been durably handled by every consumer, saved about once a
//! second and at shutdown, and read at start to resume; and the feed generator's data
//! ([`FeedStore`]): the posts the feeds hold, in insertion order, with their memberships and
//! scores, like and repost counts, hidden accounts, ranking snapshots and interactions, written
//! by the indexer in batches of [`FeedWrite`]s (one transaction each) and paged by the HTTP
//! server; and backfill state ([`BackfillStore`]): per-repository progress, run state such as the
//! `listRepos` page cursor, and leases. There are two backends. SQLite, through `rusqlite` with SQLite compiled in, is the
//! default: one file, nothing to run, fast enough for one machine
//! ([`SqliteStore`]). PostgreSQL, through `tokio-postgres` and a connection pool, is for when
//! one machine is not enough ([`PostgresStore`]). [`MemoryStore`] is a third, in-process
//! implementation for tests. Every other crate talks to the store through traits
//! ([`CursorStore`], [`FeedStore`]), held as a [`Store`], which [`Store::open`] builds from a URL
//! (`./skystream.db`, `sqlite:PATH`, `:memory:`, `postgres://…`; see [`StoreUrl`]). Database
//! work never blocks the async runtime: SQLite calls run on tokio's blocking pool, PostgreSQL
//! is asynchronous. Failures are [`StoreError`]s with a [`StoreErrorKind`].
//!
//! ```
//! use skystream_store::{CursorStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), skystream_store::StoreError> {
//! let dir = std::env::temp_dir().join(format!("skystream-store-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).expect("temp dir");
//! let url = format!("sqlite:{}", dir.join("skystream.db").display());
//!
//! let store = Store::open(&url).await?; // creates the file and the schema
//! store.save_cursor("bsky.network", 1_234).await?;
//! drop(store);
//!
//! let store = Store::open(&url).await?; // migrations already applied: nothing to do
//! assert!(store.opened_with().is_noop());
//! assert_eq!(store.load_cursor("bsky.network").await?, Some(1_234));
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

mod backfill;
mod checkpoint;
mod error;
mod feed;
mod memory;
mod migrations;
mod postgres;
mod sqlite;
mod store;
mod url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use backfill::{BackfillProgress, BackfillStore, RepoJob, RepoOutcome, RepoRow, RepoStatus};
pub use error::{StoreError, StoreErrorKind};
pub use feed::{
    engagement_score, AccountStatus, FeedItem, FeedStore, FeedWrite, FirstPageCache, Membership,
    PagePosition, PostRow, FIRST_PAGE_TTL,
};
pub use memory::MemoryStore;
pub use migrations::{
    Migration, MigrationReport, LATEST_SCHEMA_VERSION, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS,
};
pub use postgres::{PostgresStore, DEFAULT_CONNECT_TIMEOUT};
pub use sqlite::{SqliteStore, SQLITE_READERS};
pub use store::Store;
pub use url::{BackendKind, StoreUrl};

/// Where each event source's stream resumes: the `cursors` table.
///
/// A cursor is the source's sequence number (`seq` on a relay, `time_us` on Jetstream). The
/// store keeps what it is given: [`save_cursor`](Self::save_cursor) overwrites, even with a
/// smaller value, because deciding which cursor is safe to persist (the highest at or before
/// which every consumer is done) is the caller's job. Cursors range over `0..=i64::MAX`, what
/// a signed 64-bit SQL integer holds; larger ones are refused with
/// [`StoreErrorKind::CursorOutOfRange`] on every backend.
///
/// A save is durable when it returns, in the sense each backend documents ([`SqliteStore`]:
/// survives the process being killed; [`PostgresStore`]: the server's commit).
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// The saved cursor of `source`, or `None` if none was ever saved.
    async fn load_cursor(&self, source: &str) -> Result<Option<u64>, StoreError>;

    /// Saves `cursor` as the cursor of `source`, replacing any earlier one (an upsert), and
    /// stamps the row with the current time.
    async fn save_cursor(&self, source: &str, cursor: u64) -> Result<(), StoreError>;

    /// Every saved cursor, ordered by source (byte order).
    async fn list_cursors(&self) -> Result<Vec<CursorRow>, StoreError>;
}

/// One row of the `cursors` table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CursorRow {
    /// The event source, e.g. a relay host name.
    pub source: String,
    /// The saved cursor.
    pub cursor: u64,
    /// When the row was last saved: Unix time in milliseconds, from the saving process's clock.
    pub updated_at_ms: i64,
}

impl CursorRow {
    /// [`updated_at_ms`](Self::updated_at_ms) as a [`SystemTime`].
    pub fn updated_at(&self) -> SystemTime {
        let ms = Duration::from_millis(self.updated_at_ms.unsigned_abs());
        if self.updated_at_ms >= 0 {
            UNIX_EPOCH + ms
        } else {
            UNIX_EPOCH - ms
        }
    }
}

/// Now, in Unix milliseconds (0 for a clock before 1970).
pub(crate) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        assert_send_sync_clone::<Store>();
        assert_send_sync_clone::<MemoryStore>();
        assert_send_sync_clone::<SqliteStore>();
        assert_send_sync_clone::<PostgresStore>();
        assert_send_sync_clone::<StoreUrl>();
        assert_send_sync_clone::<StoreError>();
        let _: &dyn CursorStore = &MemoryStore::new();
        let _: &dyn FeedStore = &MemoryStore::new();
        let _: &dyn FeedStore = &Store::memory();
    }

    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn futures_are_send() {
        // Never polled: only their types matter, so a task can open and use the store.
        assert_send(Store::open(":memory:"));
        assert_send(Store::migrate_only(":memory:"));
        let store = Store::memory();
        assert_send(store.migrate());
        assert_send(store.schema_version());
        assert_send(store.apply(Vec::new()));
        assert_send(store.chronological_page("f", None, 30));
    }

    #[test]
    fn updated_at_converts() {
        let row = CursorRow {
            source: "s".into(),
            cursor: 1,
            updated_at_ms: 1_700_000_000_123,
        };
        assert_eq!(
            row.updated_at().duration_since(UNIX_EPOCH).ok(),
            Some(Duration::from_millis(1_700_000_000_123))
        );
        assert!(now_unix_ms() > 1_700_000_000_000);
    }
}
