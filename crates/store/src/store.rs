//! [`Store`]: the handle the rest of skystream holds, whatever the backend.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::backfill::{BackfillProgress, BackfillStore, RepoJob, RepoOutcome, RepoRow};
use crate::feed::{FeedItem, FeedStore, FeedWrite, PagePosition, PostRow};
use crate::migrations::{MigrationReport, LATEST_SCHEMA_VERSION};
use crate::url::{BackendKind, StoreUrl, Target};
use crate::{CursorRow, CursorStore, MemoryStore, PostgresStore, SqliteStore, StoreError};

/// An open, migrated store: SQLite, PostgreSQL or memory, picked by URL.
///
/// Cheap to clone (clones share the connections); `Send + Sync`, so one handle serves every
/// task. It implements [`CursorStore`], [`FeedStore`] and [`BackfillStore`].
///
/// ```
/// use skystream_store::{CursorStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), skystream_store::StoreError> {
/// let store = Store::open(":memory:").await?;
/// assert_eq!(store.describe(), "sqlite::memory:");
/// assert_eq!(store.load_cursor("bsky.network").await?, None);
/// store.save_cursor("bsky.network", 4_200_000_000).await?;
/// assert_eq!(store.load_cursor("bsky.network").await?, Some(4_200_000_000));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    opened: Arc<MigrationReport>,
}

#[derive(Clone)]
enum Backend {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the store a URL names (see [`StoreUrl`] for the forms: a SQLite path, `sqlite:…`,
    /// `:memory:`, `postgres://…`) and brings its schema up to date. What the migrations did
    /// is in [`opened_with`](Self::opened_with).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_url(&StoreUrl::parse(url)?).await
    }

    /// [`open`](Self::open) for an already parsed URL.
    pub async fn open_url(url: &StoreUrl) -> Result<Store, StoreError> {
        let backend = match url.target() {
            Target::SqliteFile(path) => Backend::Sqlite(SqliteStore::open(path).await?),
            Target::SqliteMemory => Backend::Sqlite(SqliteStore::open_in_memory().await?),
            Target::Postgres(config) => Backend::Postgres(
                PostgresStore::connect_config((**config).clone(), url.redacted()).await?,
            ),
        };
        let report = backend.migrate().await?;
        Ok(Store {
            backend,
            opened: Arc::new(report),
        })
    }

    /// Opens the store, brings its schema up to date, and closes it again: the `skystream
    /// migrate` command.
    pub async fn migrate_only(url: &str) -> Result<MigrationReport, StoreError> {
        let store = Self::open(url).await?;
        Ok(store.opened_with().clone())
    }

    /// A fresh [`MemoryStore`]: for tests of the crates that use the store.
    pub fn memory() -> Store {
        Store::from(MemoryStore::new())
    }

    /// Which backend this is.
    pub fn backend(&self) -> BackendKind {
        match self.backend {
            Backend::Memory(_) => BackendKind::Memory,
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The database for logs: `sqlite:./skystream.db`, `sqlite::memory:`,
    /// `postgres://skystream:***@db:5432/skystream` (password elided), or `memory`.
    pub fn describe(&self) -> &str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Sqlite(s) => s.describe(),
            Backend::Postgres(p) => p.describe(),
        }
    }

    /// What the migrations run by [`open`](Self::open) did (for a log line such as "schema
    /// 0 → 1").
    pub fn opened_with(&self) -> &MigrationReport {
        &self.opened
    }

    /// Runs the migrations again. After [`open`](Self::open) there is nothing left to apply,
    /// so this reports a no-op; it is how tests check that re-running is harmless.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.backend.migrate().await
    }

    /// The database's schema version: the highest migration applied (a [`MemoryStore`] is
    /// always at [`LATEST_SCHEMA_VERSION`]).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(LATEST_SCHEMA_VERSION),
            Backend::Sqlite(s) => s.schema_version().await,
            Backend::Postgres(p) => p.schema_version().await,
        }
    }

    fn cursors(&self) -> &dyn CursorStore {
        match &self.backend {
            Backend::Memory(m) => m,
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => p,
        }
    }

    fn backfill(&self) -> &dyn BackfillStore {
        match &self.backend {
            Backend::Memory(m) => m,
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => p,
        }
    }

    fn feeds(&self) -> &dyn FeedStore {
        match &self.backend {
            Backend::Memory(m) => m,
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => p,
        }
    }
}

impl Backend {
    async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        match self {
            Backend::Memory(_) => Ok(MigrationReport::up_to_date(LATEST_SCHEMA_VERSION)),
            Backend::Sqlite(s) => s.migrate().await,
            Backend::Postgres(p) => p.migrate().await,
        }
    }
}

/// A store over an existing [`MemoryStore`], sharing its map (so a test can keep the
/// `MemoryStore` to look inside).
impl From<MemoryStore> for Store {
    fn from(memory: MemoryStore) -> Store {
        Store {
            backend: Backend::Memory(memory),
            opened: Arc::new(MigrationReport::up_to_date(LATEST_SCHEMA_VERSION)),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("database", &self.describe())
            .finish()
    }
}

#[async_trait]
impl CursorStore for Store {
    async fn load_cursor(&self, source: &str) -> Result<Option<u64>, StoreError> {
        self.cursors().load_cursor(source).await
    }

    async fn save_cursor(&self, source: &str, cursor: u64) -> Result<(), StoreError> {
        self.cursors().save_cursor(source, cursor).await
    }

    async fn list_cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        self.cursors().list_cursors().await
    }
}

#[async_trait]
impl FeedStore for Store {
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError> {
        self.feeds().apply(writes).await
    }

    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        self.feeds().chronological_page(feed, after, limit).await
    }

    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError> {
        self.feeds().ranked_top(feed, max).await
    }

    async fn save_snapshot(
        &self,
        id: &str,
        feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.feeds().save_snapshot(id, feed, uris, at_ms).await
    }

    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.feeds().snapshot_slice(id, offset, limit).await
    }

    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        self.feeds().expire_snapshots(older_than_ms).await
    }

    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError> {
        self.feeds().live_posts(uris).await
    }

    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError> {
        self.feeds().post(uri).await
    }

    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        self.feeds().recent_posts(feed, since_ms, max).await
    }

    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError> {
        self.feeds().prune(feed, older_than_ms).await
    }

    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.feeds().feed_counts().await
    }

    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.feeds().interaction_counts().await
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        self.feeds().size_bytes().await
    }
}

#[async_trait]
impl BackfillStore for Store {
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError> {
        self.backfill().enqueue_repos(dids).await
    }

    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError> {
        self.backfill().requeue_repo(did).await
    }

    async fn claim_repos(
        &self,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<RepoJob>, StoreError> {
        self.backfill().claim_repos(limit, max_attempts).await
    }

    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError> {
        self.backfill().finish_repo(did, outcome).await
    }

    async fn reset_in_progress(&self) -> Result<u64, StoreError> {
        self.backfill().reset_in_progress().await
    }

    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError> {
        self.backfill().backfill_progress().await
    }

    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError> {
        self.backfill().backfill_repo(did).await
    }

    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError> {
        self.backfill().failed_repos(limit).await
    }

    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.backfill().backfill_value(key).await
    }

    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.backfill().set_backfill_value(key, value).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.backfill()
            .try_lease(name, holder, now_ms, ttl_ms)
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.backfill().release_lease(name, holder).await
    }
}
