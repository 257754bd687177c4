//! A backfill beside live ingest (`serve --backfill-days`): one process per database backfills,
//! the one holding the [`Lease`]; the others keep serving and wait for it. Each round takes the
//! lease, runs the backfill in its own pipeline (its consumers made fresh for the round) and
//! gives the lease up at the end. Losing the lease stops only the round, never the process:
//! the pipeline drains, the hand-off lets go of every repository it was holding, and the
//! process waits to take the lease again. A round that fails (the store, the host) is tried
//! again after a growing pause, so the backfill never stops silently while the process lives.

use std::sync::Arc;
use std::time::Duration;

use skystream_pipeline::{Consumer, MemoryCursorSink, Pipeline, PipelineConfig};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::lease::Lease;
use crate::run::{Backfill, BackfillError, BackfillReport, RepoSource};

/// Makes the consumers of one round's pipeline.
pub type ConsumerFactory = Box<dyn Fn() -> Vec<Box<dyn Consumer>> + Send + Sync>;

/// The longest pause between failed rounds.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// A backfill that runs whenever this process holds the lease.
pub struct BesideLive {
    backfill: Backfill,
    source: RepoSource,
    lease: Lease,
    consumers: ConsumerFactory,
    pipeline: PipelineConfig,
    holding: watch::Sender<bool>,
    first_retry: Duration,
}

impl BesideLive {
    /// `backfill` over `source`, run while holding `lease`, into pipelines of `consumers`.
    pub fn new(
        backfill: Backfill,
        source: RepoSource,
        lease: Lease,
        consumers: ConsumerFactory,
    ) -> BesideLive {
        BesideLive {
            backfill,
            source,
            lease,
            consumers,
            pipeline: PipelineConfig::default(),
            holding: watch::channel(false).0,
            first_retry: Duration::from_secs(5),
        }
    }

    /// Pauses `first` after a failed round, doubling up to five minutes.
    pub fn retry_after(mut self, first: Duration) -> Self {
        self.first_retry = first;
        self
    }

    /// Whether this process holds the lease and backfills (true from taking it until it is
    /// released or found lost).
    pub fn holding(&self) -> watch::Receiver<bool> {
        self.holding.subscribe()
    }

    /// Runs rounds until the backfill is done (the report of every round, summed) or `stop`
    /// (the report so far, marked stopped).
    pub async fn run(&self, stop: &CancellationToken) -> BackfillReport {
        let mut total = BackfillReport::default();
        let mut retry = self.first_retry;
        loop {
            let Some(held) = self.lease.acquire(stop).await else {
                total.stopped = true;
                return total;
            };
            self.holding.send_replace(true);
            metrics::gauge!("skystream_backfill_lease_held").set(1.0);
            info!(holder = %self.lease.holder(), "took the backfill lease; backfilling");
            let holding = self.holding.clone();
            let watch = held.scope(stop, move || {
                holding.send_replace(false);
            });
            let result = self.round(watch.token.clone()).await;
            let lost = held.is_lost();
            held.release().await;
            drop(watch);
            self.holding.send_replace(false);
            metrics::gauge!("skystream_backfill_lease_held").set(0.0);
            match result {
                Ok(report) => {
                    retry = self.first_retry;
                    add(&mut total, &report);
                    if stop.is_cancelled() {
                        total.stopped = true;
                        return total;
                    }
                    if lost {
                        warn!("lost the backfill lease; live ingest goes on, the backfill waits to take the lease again");
                        continue;
                    }
                    if !report.stopped {
                        return total;
                    }
                    // Ended early on its own (repositories sent but never handled): again,
                    // after a pause.
                    warn!(retry_in = ?retry, "backfill round ended before its repositories were handled; trying again");
                    if !self.pause(&mut retry, stop).await {
                        total.stopped = true;
                        return total;
                    }
                }
                Err(e) => {
                    if stop.is_cancelled() {
                        total.stopped = true;
                        return total;
                    }
                    metrics::counter!("skystream_backfill_rounds_failed_total").increment(1);
                    warn!(error = %e, retry_in = ?retry, "backfill round failed; live ingest goes on, trying again");
                    if !self.pause(&mut retry, stop).await {
                        total.stopped = true;
                        return total;
                    }
                }
            }
        }
    }

    /// Waits `retry` (false if stopped first) and doubles it for next time.
    async fn pause(&self, retry: &mut Duration, stop: &CancellationToken) -> bool {
        let wait = *retry;
        *retry = (*retry * 2).min(MAX_RETRY);
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// One round in its own pipeline, drained before it returns.
    async fn round(&self, stop: CancellationToken) -> Result<BackfillReport, BackfillError> {
        let (input, handle) = Pipeline::start(
            self.pipeline.clone(),
            "backfill",
            None,
            (self.consumers)(),
            Arc::new(MemoryCursorSink::new()),
        );
        let report = self
            .backfill
            .run(&self.source, input, handle.committed(), stop)
            .await;
        handle.finish().await;
        report
    }
}

fn add(total: &mut BackfillReport, r: &BackfillReport) {
    total.done += r.done;
    total.failures += r.failures;
    total.records += r.records;
    total.outside_window += r.outside_window;
    total.bad_records += r.bad_records;
}
