//! The pipeline side: a [`Consumer`] that appends every batch to the replay log and returns
//! only once it is durable, so the pipeline saves the upstream cursor after the log has the
//! events, never before.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skystream_event::Origin;
use skystream_pipeline::{Batch, Consumer, ConsumerError, Envelope};

use crate::hub::Hub;
use crate::log::UpstreamMark;

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
    /// For a partitioned upstream (Kafka), per partition the offset after the last message
    /// the log holds. An event that carries a position is judged by it alone: its cursor is a
    /// number local to the run and says nothing about what an earlier run appended.
    next_offsets: BTreeMap<u32, u64>,
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
        let next_offsets = hub.upstream_offsets(&source)?;
        Ok(LogConsumer {
            hub,
            source,
            include_backfill,
            covered,
            next_offsets,
        })
    }

    /// Whether the log already holds `env`, by its position when it has one, else by its
    /// cursor against the covered one.
    fn already_held(&self, env: &Envelope, moved: &BTreeMap<u32, u64>) -> bool {
        match env.position {
            Some(p) => {
                let next = moved
                    .get(&p.partition)
                    .or_else(|| self.next_offsets.get(&p.partition));
                next.is_some_and(|n| p.offset < *n)
            }
            None => env.event.cursor != 0 && self.covered.is_some_and(|c| env.event.cursor <= c),
        }
    }
}

#[async_trait]
impl Consumer for LogConsumer {
    fn name(&self) -> &str {
        "jetstream"
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        // Positions this batch moves, kept apart until the append is durable so a failed
        // append (retried with the same batch) judges the same events the same way.
        let mut moved: BTreeMap<u32, u64> = BTreeMap::new();
        let mut events = Vec::with_capacity(batch.items.len());
        let mut repeats = 0u64;
        for env in &batch.items {
            if self.already_held(env, &moved) {
                repeats += 1;
                continue;
            }
            if let Some(p) = env.position {
                let next = moved
                    .get(&p.partition)
                    .or_else(|| self.next_offsets.get(&p.partition));
                // Offsets can skip (a message that was not an event, a compacted topic), so a
                // jump is not an error; it is the first thing to look at if one seems lost.
                if next.is_some_and(|n| p.offset > *n) {
                    metrics::counter!("skystream_jetstream_offset_jumps_total").increment(1);
                    tracing::debug!(partition = p.partition, offset = p.offset, expected = ?next, "partition offsets jump");
                }
            }
            if let Some(p) = env.position {
                moved.insert(p.partition, p.offset + 1);
            }
            if self.include_backfill || env.event.origin != Origin::Backfill {
                events.push(&env.event);
            }
        }
        let cursor = batch
            .cursor()
            .filter(|c| self.covered.is_none_or(|old| *c > old));
        let mark = (cursor.is_some() || !moved.is_empty()).then(|| UpstreamMark {
            source: self.source.clone(),
            cursor,
            next_offsets: moved.clone(),
        });
        self.hub.append(events, mark).await?;
        if repeats > 0 {
            metrics::counter!("skystream_jetstream_repeats_skipped_total").increment(repeats);
            tracing::debug!(repeats, "skipped events the log already holds");
        }
        if cursor.is_some() {
            self.covered = cursor;
        }
        self.next_offsets.extend(moved);
        Ok(())
    }
}
