use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::Batch;

/// Whatever a consumer's failure is; the pipeline logs it and retries the batch.
pub type ConsumerError = Box<dyn std::error::Error + Send + Sync>;

/// Something that takes every event: a feed indexer, a Jetstream log, a Kafka sink, a capture
/// writer. Handling must be idempotent: after a crash, events since the last saved cursor are
/// delivered again.
#[async_trait]
pub trait Consumer: Send + 'static {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// Handles `batch`; returns only once it is durably handled (the cursor may then move past
    /// it). An error makes the pipeline retry the same batch after a backoff: a consumer that
    /// cannot keep up or reach its backend stalls the stream instead of losing events.
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError>;

    /// For a consumer that can have work of its own between batches (the backfill hand-off,
    /// with live events to apply once a repository's export is read): notified, the pipeline
    /// calls [`Consumer::idle`] between two batches, so that work need not wait for the next
    /// event, which on a quiet stream may be hours away.
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// The work [`Consumer::wake`] announced, done in order with the batches (never during
    /// one). It returns once the work is durably done; the pipeline does not retry it, so a
    /// consumer that fails retries on its own.
    async fn idle(&mut self) {}

    /// Called once after the last batch, at shutdown.
    async fn close(&mut self) -> Result<(), ConsumerError> {
        Ok(())
    }
}

/// Where committed cursors are saved (the store's `cursors` table in production).
#[async_trait]
pub trait CursorSink: Send + Sync + 'static {
    /// Persists `cursor` as the resume point of `source`.
    async fn save(&self, source: &str, cursor: u64) -> Result<(), ConsumerError>;
}

/// A [`CursorSink`] in memory, recording every save (for tests).
#[derive(Clone, Debug, Default)]
pub struct MemoryCursorSink {
    saved: Arc<Mutex<HashMap<String, Vec<u64>>>>,
}

impl MemoryCursorSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every cursor saved for `source`, in order.
    pub fn history(&self, source: &str) -> Vec<u64> {
        self.saved
            .lock()
            .map(|m| m.get(source).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The last cursor saved for `source`.
    pub fn last(&self, source: &str) -> Option<u64> {
        self.history(source).last().copied()
    }
}

#[async_trait]
impl CursorSink for MemoryCursorSink {
    async fn save(&self, source: &str, cursor: u64) -> Result<(), ConsumerError> {
        self.saved
            .lock()
            .map_err(|_| "cursor sink lock poisoned")?
            .entry(source.to_owned())
            .or_default()
            .push(cursor);
        Ok(())
    }
}
