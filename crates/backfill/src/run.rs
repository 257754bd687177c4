//! The backfill run: enumerate, claim in batches, read with bounded concurrency, send, and mark
//! each repository done once the pipeline has committed its last event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use skystream_event::{Commit, Event, EventKind, Op, OpAction, Origin};
use skystream_pipeline::{Envelope, PipelineInput, RUN_EVENTS};
use skystream_store::{BackfillStore, RepoJob, RepoOutcome, StoreError};
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::handoff::HandOff;
use crate::host::RepoHost;
use crate::read::{read_repo, RepoRead};
use crate::throttle::wait_for_room;
use crate::window::Window;

/// A repository read and sent (its records moved out into events; how many; the last event's
/// sequence number), or why not.
type ReadResult = Result<(RepoRead, u64, Option<u64>), ReadFailure>;

/// Why a repository was not read.
enum ReadFailure {
    /// The run was stopped first: not an attempt, the repository is read again next run.
    Stopped,
    /// The fetch or the read failed: an attempt.
    Failed(String),
}

impl From<String> for ReadFailure {
    fn from(e: String) -> Self {
        ReadFailure::Failed(e)
    }
}

/// Run-state keys in the store.
const LIST_CURSOR: &str = "list_repos_cursor";
const LIST_DONE: &str = "list_repos_done";

/// Which repositories to read.
#[derive(Clone, Debug)]
pub enum RepoSource {
    /// These DIDs.
    Dids(Vec<String>),
    /// Every repository the host lists (`listRepos`), resuming at the saved page cursor.
    Host,
}

/// Limits and pacing.
#[derive(Clone, Debug)]
pub struct BackfillConfig {
    /// Which records to keep by age.
    pub window: Window,
    /// Collections to keep (all when empty).
    pub collections: Vec<String>,
    /// Repositories claimed per batch (the seed's `BACKFILL_BATCH_SIZE`, 5).
    pub batch_size: usize,
    /// Pause between batches (`BACKFILL_BATCH_DELAY_MS`, 2,000 ms).
    pub batch_delay: Duration,
    /// Repositories read at once (`BACKFILL_MAX_CONCURRENT`, 2).
    pub max_concurrent: usize,
    /// Resident-memory ceiling in bytes (`BACKFILL_MAX_MEMORY_MB`, 512 MB; 0: none).
    pub max_memory_bytes: u64,
    /// Attempts per repository before it stays failed.
    pub max_attempts: u32,
    /// How often a paused backfill looks again.
    pub poll: Duration,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        BackfillConfig {
            window: Window::All,
            collections: Vec::new(),
            batch_size: 5,
            batch_delay: Duration::from_millis(2000),
            max_concurrent: 2,
            max_memory_bytes: 512 << 20,
            max_attempts: 3,
            poll: Duration::from_millis(500),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Repositories read and handled.
    pub done: u64,
    /// Attempts that failed (a repository may fail and then succeed).
    pub failures: u64,
    /// Records sent.
    pub records: u64,
    /// Records older than the window, left out.
    pub outside_window: u64,
    /// Records that could not be read.
    pub bad_records: u64,
    /// Whether it was stopped before the end.
    pub stopped: bool,
}

/// A backfill over a store (its state) and a host (its repositories).
pub struct Backfill {
    cfg: BackfillConfig,
    store: Arc<dyn BackfillStore>,
    host: Arc<dyn RepoHost>,
    lagging: Option<watch::Receiver<bool>>,
    handoff: Option<HandOff>,
}

/// Repositories read, waiting for the pipeline to commit their last event.
struct Sent {
    did: String,
    last: Option<u64>,
    records: u64,
    rev: String,
}

impl Backfill {
    /// A backfill with `cfg`, keeping its state in `store`, reading from `host`.
    pub fn new(
        cfg: BackfillConfig,
        store: Arc<dyn BackfillStore>,
        host: Arc<dyn RepoHost>,
    ) -> Self {
        Backfill {
            cfg,
            store,
            host,
            lagging: None,
            handoff: None,
        }
    }

    /// Tells `handoff` which repositories are being read, so live events for them wait.
    pub fn hand_off(mut self, handoff: HandOff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// Yields while `lagging` is true (`BACKFILL_USE_IDLE`: live ingest first).
    pub fn yield_to(mut self, lagging: watch::Receiver<bool>) -> Self {
        self.lagging = Some(lagging);
        self
    }

    /// Queues the repositories of `source`; with [`RepoSource::Host`], pages through
    /// `listRepos` from the saved cursor, saving it after each page.
    pub async fn enumerate(
        &self,
        source: &RepoSource,
        stop: &CancellationToken,
    ) -> Result<u64, BackfillError> {
        match source {
            RepoSource::Dids(dids) => Ok(self.store.enqueue_repos(dids).await?),
            RepoSource::Host => {
                if self.store.backfill_value(LIST_DONE).await?.as_deref() == Some("true") {
                    return Ok(0);
                }
                let mut cursor = self.store.backfill_value(LIST_CURSOR).await?;
                let mut added = 0;
                loop {
                    if stop.is_cancelled() {
                        return Ok(added);
                    }
                    let page = self
                        .host
                        .list_repos(cursor.as_deref())
                        .await
                        .map_err(|e| BackfillError::List(e.to_string()))?;
                    added += self.store.enqueue_repos(&page.dids).await?;
                    match page.cursor {
                        // A host that repeats its cursor would page forever.
                        Some(next) if !page.dids.is_empty() && Some(&next) != cursor.as_ref() => {
                            self.store.set_backfill_value(LIST_CURSOR, &next).await?;
                            cursor = Some(next);
                        }
                        _ => {
                            self.store.set_backfill_value(LIST_DONE, "true").await?;
                            return Ok(added);
                        }
                    }
                }
            }
        }
    }

    /// Runs to the end (or until `stop`): claims repositories in batches, reads them, sends
    /// their records into `out`, and marks each done once `committed` (the pipeline's committed
    /// cursor) passes its last event. Events carry run-local sequence numbers as cursors.
    pub async fn run(
        &self,
        source: &RepoSource,
        out: PipelineInput,
        mut committed: watch::Receiver<Option<u64>>,
        stop: CancellationToken,
    ) -> Result<BackfillReport, BackfillError> {
        let reset = self.store.reset_in_progress().await?;
        if reset > 0 {
            info!(
                repos = reset,
                "resuming: repositories a stopped run had claimed are pending again"
            );
        }
        self.enumerate(source, &stop).await?;
        let out = Mutex::new(out);
        let seq = AtomicU64::new(0);
        let mut report = BackfillReport::default();
        let mut waiting: Vec<Sent> = Vec::new();
        loop {
            if stop.is_cancelled() {
                report.stopped = true;
                break;
            }
            let jobs = self
                .store
                .claim_repos(self.cfg.batch_size.max(1), self.cfg.max_attempts)
                .await?;
            if jobs.is_empty() {
                break;
            }
            let results: Vec<(RepoJob, ReadResult)> = stream::iter(jobs)
                .map(|job| {
                    let (out, seq, stop) = (&out, &seq, &stop);
                    async move {
                        let r = self.read_and_send(&job, out, seq, stop).await;
                        (job, r)
                    }
                })
                .buffer_unordered(self.cfg.max_concurrent.max(1))
                .collect()
                .await;
            for (job, result) in results {
                match result {
                    Ok((read, kept, last)) => {
                        report.records += kept;
                        report.outside_window += read.outside_window;
                        report.bad_records += read.bad_records;
                        waiting.push(Sent {
                            did: job.did,
                            last,
                            records: kept,
                            rev: read.rev,
                        });
                    }
                    Err(ReadFailure::Stopped) => {
                        // Back to pending, its claim's attempt given back: a shutdown is not
                        // the repository's fault.
                        if let Some(h) = &self.handoff {
                            h.finished(&job.did, None);
                        }
                        self.store
                            .finish_repo(&job.did, RepoOutcome::Stopped)
                            .await?;
                        report.stopped = true;
                    }
                    Err(ReadFailure::Failed(e)) => {
                        if let Some(h) = &self.handoff {
                            h.finished(&job.did, None);
                        }
                        report.failures += 1;
                        metrics::counter!("skystream_backfill_repos_total", "outcome" => "failed")
                            .increment(1);
                        warn!(did = %job.did, attempt = job.attempts + 1, error = %e, "repository backfill failed");
                        self.store
                            .finish_repo(&job.did, RepoOutcome::Failed { error: e })
                            .await?;
                    }
                }
            }
            let now_committed = *committed.borrow();
            report.done += self.mark_committed(&mut waiting, now_committed).await?;
            if !self.cfg.batch_delay.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(self.cfg.batch_delay) => {}
                }
            }
        }
        // Whatever was sent is marked done only once handled. Once stopped (or out of work),
        // nothing more is sent: the pipeline drains what it holds and its committed cursor
        // then says which repositories made it; a closed cursor means it has drained.
        drop(out);
        while !waiting.is_empty() {
            let now_committed = *committed.borrow_and_update();
            report.done += self.mark_committed(&mut waiting, now_committed).await?;
            if waiting.is_empty() || committed.changed().await.is_err() {
                let now_committed = *committed.borrow();
                report.done += self.mark_committed(&mut waiting, now_committed).await?;
                break;
            }
        }
        // Sent but never handled (the pipeline gave up): back to pending, read again next run;
        // live events held for them go on as they came, so the live stream does not wait.
        for s in waiting {
            report.stopped = true;
            if let Some(h) = &self.handoff {
                h.finished(&s.did, None);
            }
            self.store.finish_repo(&s.did, RepoOutcome::Stopped).await?;
        }
        Ok(report)
    }

    async fn mark_committed(
        &self,
        waiting: &mut Vec<Sent>,
        committed: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        let mut keep = Vec::with_capacity(waiting.len());
        for s in waiting.drain(..) {
            let handled = match s.last {
                None => true,
                Some(last) => committed.is_some_and(|c| c >= last),
            };
            if handled {
                if let Some(h) = &self.handoff {
                    h.finished(&s.did, Some(&s.rev));
                }
                self.store
                    .finish_repo(
                        &s.did,
                        RepoOutcome::Done {
                            records: s.records,
                            rev: s.rev,
                        },
                    )
                    .await?;
                metrics::counter!("skystream_backfill_repos_total", "outcome" => "done")
                    .increment(1);
                n += 1;
            } else {
                keep.push(s);
            }
        }
        *waiting = keep;
        Ok(n)
    }

    /// Reads one repository and sends its records; returns what it read and the sequence
    /// number of its last event.
    async fn read_and_send(
        &self,
        job: &RepoJob,
        out: &Mutex<PipelineInput>,
        seq: &AtomicU64,
        stop: &CancellationToken,
    ) -> ReadResult {
        if !wait_for_room(
            self.cfg.max_memory_bytes,
            self.lagging.as_ref(),
            self.cfg.poll,
            stop,
        )
        .await
        {
            return Err(ReadFailure::Stopped);
        }
        // Live events for the repository are held from before its export is fetched: one that
        // came while the export was read would otherwise be applied, then undone by the export.
        if let Some(h) = &self.handoff {
            h.claimed(&job.did);
        }
        let car = tokio::select! {
            car = self.host.get_repo(&job.did) => car.map_err(|e| e.to_string())?,
            () = stop.cancelled() => return Err(ReadFailure::Stopped),
        };
        let (did, window, collections) = (
            job.did.clone(),
            self.cfg.window,
            self.cfg.collections.clone(),
        );
        // Walking a large repository is CPU work: off the async threads.
        let mut read =
            tokio::task::spawn_blocking(move || read_repo(&car, &did, window, &collections))
                .await
                .map_err(|e| format!("reader panicked: {e}"))?
                .map_err(|e| e.to_string())?;
        if stop.is_cancelled() {
            return Err(ReadFailure::Stopped);
        }
        // Records move into their events: a large repository is not held twice.
        let records = std::mem::take(&mut read.records);
        let kept = records.len() as u64;
        let mut records = records.into_iter().peekable();
        let mut last = None;
        let out = out.lock().await;
        while records.peek().is_some() {
            let envs: Vec<Envelope> = records
                .by_ref()
                .take(RUN_EVENTS)
                .map(|r| {
                    // Assigned under the lock, so sequence numbers follow queue order.
                    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
                    last = Some(n);
                    Envelope::new(record_event(&job.did, &read.rev, r, n))
                })
                .collect();
            out.send_many(envs)
                .await
                .map_err(|_| "the pipeline closed".to_owned())?;
        }
        metrics::counter!("skystream_backfill_records_total").increment(kept);
        Ok((read, kept, last))
    }
}

/// A kept record as a one-op create commit, marked as backfill.
fn record_event(did: &str, rev: &str, r: crate::read::RepoRecord, seq: u64) -> Event {
    let time_us = r.time_us.unwrap_or(0);
    Event {
        cursor: seq,
        time_us,
        origin: Origin::Backfill,
        kind: EventKind::Commit(Commit {
            did: did.to_owned(),
            rev: rev.to_owned(),
            since: None,
            seq: 0,
            time: skystream_syntax::rfc3339_millis(time_us),
            ops: vec![Op {
                action: OpAction::Create,
                collection: r.collection,
                rkey: r.rkey,
                cid: Some(r.cid),
                prev: None,
                record: Some(r.record),
            }],
        }),
    }
}

/// Why a backfill could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The store failed.
    #[error("backfill state: {0}")]
    Store(#[from] StoreError),
    /// Listing repositories failed.
    #[error("listing repositories: {0}")]
    List(String),
}
