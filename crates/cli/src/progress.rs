//! Ingest progress for the health figures: when the pipeline last finished a batch and the
//! newest event time in it, recorded by wrapping a consumer. `serve`'s `/health` and the web
//! console (of `serve` and of `jetstream`) report connected and lag from here, so both say the
//! same thing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use skystream_pipeline::{Batch, Consumer, ConsumerError};
use skystream_server::HealthStatus;

use crate::ingest::now_ms;

/// How long after its last batch ingest still counts as connected: a quiet source sends
/// something (an event, or the relay's keep-alive) well within it.
const CONNECTED_WITHIN_MS: i64 = 120_000;

/// Ingest progress.
#[derive(Debug, Default)]
pub struct IngestStatus {
    last_batch_ms: AtomicI64,
    last_event_us: Arc<AtomicI64>,
}

impl IngestStatus {
    /// The newest event time seen, shared (backfill yields while it falls behind).
    pub fn clone_last_event(&self) -> Arc<AtomicI64> {
        self.last_event_us.clone()
    }

    /// Connected: a batch finished recently; lag: how far the newest event's time is behind
    /// now (unknown before the first event with a time).
    pub fn health(&self) -> HealthStatus {
        let last_batch = self.last_batch_ms.load(Ordering::Relaxed);
        let last_event = self.last_event_us.load(Ordering::Relaxed);
        HealthStatus {
            connected: last_batch > 0 && now_ms() - last_batch < CONNECTED_WITHIN_MS,
            lag_seconds: (last_event > 0).then(|| (now_ms() * 1000 - last_event) as f64 / 1e6),
        }
    }
}

/// Wraps a consumer to record ingest progress once each batch is handled.
pub struct Observed<C> {
    pub inner: C,
    pub status: Arc<IngestStatus>,
}

#[async_trait]
impl<C: Consumer> Consumer for Observed<C> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        self.inner.handle(batch).await?;
        self.status.last_batch_ms.store(now_ms(), Ordering::Relaxed);
        if let Some(t) = batch
            .items
            .iter()
            .rev()
            .map(|e| e.event.time_us)
            .find(|t| *t > 0)
        {
            self.status.last_event_us.store(t, Ordering::Relaxed);
        }
        Ok(())
    }
    async fn close(&mut self) -> Result<(), ConsumerError> {
        self.inner.close().await
    }
}
