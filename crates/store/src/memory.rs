//! The in-memory store, for tests of the crates that use the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::{cursor_to_sql, StoreError};
use crate::feed::memory::FeedState;
use crate::{now_unix_ms, CursorRow, CursorStore};

/// A store that keeps everything in maps in the process: nothing survives it, nothing can fail
/// but the range and value checks. Behaves like the SQL backends otherwise (the same test
/// suites run on all three), cursors and feed data alike. Clones share the same maps.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    cursors: Arc<Mutex<BTreeMap<String, CursorRow>>>,
    feeds: Arc<Mutex<FeedState>>,
    backfill: Arc<Mutex<crate::backfill::memory::BackfillState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn cursors(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CursorRow>> {
        // Every critical section is a single map operation, so a panic cannot leave the map
        // half-updated; carry on after one.
        self.cursors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The backfill tables, locked. Each change is one map operation or a loop that cannot
    /// fail, so a poisoned lock leaves consistent state.
    pub(crate) fn backfill_state(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::backfill::memory::BackfillState> {
        self.backfill.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The feed tables, locked. A batch is checked before its first change and none of the
    /// changes can fail, so a poisoned lock (a panic elsewhere) leaves consistent state.
    pub(crate) fn feed_state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.feeds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CursorStore for MemoryStore {
    async fn load_cursor(&self, source: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.cursors().get(source).map(|row| row.cursor))
    }

    async fn save_cursor(&self, source: &str, cursor: u64) -> Result<(), StoreError> {
        cursor_to_sql(source, cursor)?;
        let row = CursorRow {
            source: source.to_owned(),
            cursor,
            updated_at_ms: now_unix_ms(),
        };
        self.cursors().insert(source.to_owned(), row);
        Ok(())
    }

    async fn list_cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        Ok(self.cursors().values().cloned().collect())
    }
}
