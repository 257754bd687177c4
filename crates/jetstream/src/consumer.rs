//! The pipeline side: a [`Consumer`] that appends every batch to the replay log and returns
//! only once it is durable, so the pipeline saves the upstream cursor after the log has the
//! events, never before.

use std::sync::Arc;

use async_trait::async_trait;
use skystream_event::Origin;
use skystream_pipeline::{Batch, Consumer, ConsumerError};

use crate::hub::Hub;

/// Appends batches to the log and wakes subscribers.
#[derive(Debug)]
pub struct LogConsumer {
    hub: Arc<Hub>,
    source: String,
    include_backfill: bool,
    /// The upstream cursor the log already covers: events at or before it were appended by an
    /// earlier run (the pipeline's saved cursor lags the log by up to its save interval, so a
    /// restart replays them) and are skipped, keeping the log free of repeats.
    covered: Option<u64>,
}

impl LogConsumer {
    /// A consumer for events from `source` (its cursor key). Backfill events are kept out of
    /// the log unless `include_backfill`: live subscribers would see old records as new.
    /// Reads the log (blocking).
    pub fn new(
        hub: Arc<Hub>,
        source: impl Into<String>,
        include_backfill: bool,
    ) -> Result<LogConsumer, crate::HubError> {
        let source = source.into();
        let covered = hub.upstream_cursor(&source)?;
        Ok(LogConsumer {
            hub,
            source,
            include_backfill,
            covered,
        })
    }
}

#[async_trait]
impl Consumer for LogConsumer {
    fn name(&self) -> &str {
        "jetstream"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        let covered = self.covered;
        let events = batch
            .items
            .iter()
            .map(|env| &env.event)
            .filter(|e| self.include_backfill || e.origin != Origin::Backfill)
            .filter(|e| !(e.cursor != 0 && covered.is_some_and(|c| e.cursor <= c)));
        let cursor = batch
            .cursor()
            .filter(|c| covered.is_none_or(|old| *c > old));
        self.hub
            .append(events, cursor.map(|c| (self.source.clone(), c)))
            .await?;
        if cursor.is_some() {
            self.covered = cursor;
        }
        Ok(())
    }
}
