//! The running pipeline: batcher, one task per consumer, and the cursor saver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::consumer::{Consumer, CursorSink};
use crate::tracker::CursorTracker;
use crate::{Batch, Envelope};

/// The run length [`PipelineInput::send_many`] is sized for (longer runs are accepted; the
/// queue bound then counts them as one message).
pub const RUN_EVENTS: usize = 512;

/// Sizes and timers; every one is configurable so tests run in milliseconds.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Most events in one batch.
    pub batch_max: usize,
    /// How long a small batch waits for more events before it is sent.
    pub batch_linger: Duration,
    /// About how many events the input queue holds before sending waits.
    pub input_capacity: usize,
    /// Batches each consumer's queue holds before the batcher waits.
    pub consumer_queue: usize,
    /// How often the committed cursor is saved.
    pub save_interval: Duration,
    /// First wait before retrying a batch a consumer failed.
    pub retry_initial: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch_max: 1024,
            batch_linger: Duration::from_millis(5),
            input_capacity: 8192,
            consumer_queue: 16,
            save_interval: Duration::from_secs(1),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The sending end a source writes into. Cloneable; the pipeline drains once every clone is
/// dropped.
#[derive(Clone, Debug)]
pub struct PipelineInput {
    tx: mpsc::Sender<Vec<Envelope>>,
    limit: Option<Arc<Limit>>,
}

#[derive(Debug)]
struct Limit {
    max: u64,
    taken: AtomicU64,
}

/// The pipeline has shut down and takes no more events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is closed")]
pub struct Closed;

impl PipelineInput {
    /// Queues an event, waiting while the queue is full (backpressure).
    pub async fn send(&self, env: Envelope) -> Result<(), Closed> {
        self.send_many(vec![env]).await
    }

    /// Queues a run of events at once (cheaper than one [`send`](Self::send) each), waiting
    /// while the queue is full. With a limit, only the events up to it are queued and then the
    /// pipeline reports closed.
    pub async fn send_many(&self, mut envs: Vec<Envelope>) -> Result<(), Closed> {
        let mut closed = false;
        if let Some(limit) = &self.limit {
            let mut keep = 0;
            for env in &envs {
                if env.event.did().is_some()
                    && limit.taken.fetch_add(1, Ordering::SeqCst) >= limit.max
                {
                    closed = true;
                    break;
                }
                keep += 1;
            }
            envs.truncate(keep);
        }
        if !envs.is_empty() {
            self.tx.send(envs).await.map_err(|_| Closed)?;
        }
        if closed {
            Err(Closed)
        } else {
            Ok(())
        }
    }

    /// An input that takes at most `max` events (across all its clones) and then reports the
    /// pipeline closed, so a source stops exactly after the limit and the cursor covers
    /// exactly what was delivered.
    pub fn limited(self, max: u64) -> Self {
        PipelineInput {
            tx: self.tx,
            limit: Some(Arc::new(Limit {
                max,
                taken: AtomicU64::new(0),
            })),
        }
    }

    /// Sends (single events or runs) waiting in the input queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// What a finished pipeline did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineSummary {
    /// Events handed to consumers.
    pub events: u64,
    /// Batches handed to consumers.
    pub batches: u64,
    /// The cursor saved last.
    pub cursor: Option<u64>,
}

/// Controls a running pipeline.
#[derive(Debug)]
pub struct PipelineHandle {
    committed: watch::Receiver<Option<u64>>,
    batcher: JoinHandle<(u64, u64)>,
    consumers: Vec<JoinHandle<()>>,
    saver: JoinHandle<Option<u64>>,
    stop_saver: watch::Sender<bool>,
}

/// Builds and starts pipelines.
#[derive(Debug)]
pub struct Pipeline;

struct Shared {
    tracker: Mutex<CursorTracker>,
    committed: watch::Sender<Option<u64>>,
}

impl Pipeline {
    /// Starts the pipeline for `source` (the key its cursor is saved under), resuming from
    /// `start`. Must be called inside a Tokio runtime.
    pub fn start(
        cfg: PipelineConfig,
        source: impl Into<String>,
        start: Option<u64>,
        consumers: Vec<Box<dyn Consumer>>,
        sink: Arc<dyn CursorSink>,
    ) -> (PipelineInput, PipelineHandle) {
        let source = source.into();
        // The queue holds messages, each one event or a run of up to RUN_EVENTS; sizing it in
        // runs keeps the events it can hold near `input_capacity` either way.
        let (tx, rx) = mpsc::channel((cfg.input_capacity / RUN_EVENTS).max(4));
        let (committed_tx, committed_rx) = watch::channel(start);
        let shared = Arc::new(Shared {
            tracker: Mutex::new(CursorTracker::new(consumers.len(), start)),
            committed: committed_tx,
        });

        let mut queues = Vec::with_capacity(consumers.len());
        let mut consumer_tasks = Vec::with_capacity(consumers.len());
        for (i, consumer) in consumers.into_iter().enumerate() {
            let (ctx, crx) = mpsc::channel::<Arc<Batch>>(cfg.consumer_queue.max(1));
            queues.push(ctx);
            consumer_tasks.push(tokio::spawn(run_consumer(
                i,
                consumer,
                crx,
                shared.clone(),
                cfg.clone(),
            )));
        }
        let batcher = tokio::spawn(run_batcher(rx, queues, shared.clone(), cfg.clone()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let saver = tokio::spawn(run_saver(
            source,
            sink,
            committed_rx.clone(),
            stop_rx,
            start,
            cfg.save_interval,
        ));
        (
            PipelineInput { tx, limit: None },
            PipelineHandle {
                committed: committed_rx,
                batcher,
                consumers: consumer_tasks,
                saver,
                stop_saver: stop_tx,
            },
        )
    }
}

impl PipelineHandle {
    /// Watches the committed cursor (the last event every consumer has durably handled).
    pub fn committed(&self) -> watch::Receiver<Option<u64>> {
        self.committed.clone()
    }

    /// Waits until every input clone is dropped and every queued event is handled, then saves
    /// the final cursor.
    pub async fn finish(self) -> PipelineSummary {
        let (events, batches) = self.batcher.await.unwrap_or_default();
        for c in self.consumers {
            let _ = c.await;
        }
        let _ = self.stop_saver.send(true);
        let cursor = self.saver.await.unwrap_or(None);
        PipelineSummary {
            events,
            batches,
            cursor,
        }
    }

    /// [`finish`](Self::finish) after the source has stopped: the end of a finite input drains
    /// without a deadline (every event it delivered is handled and the last cursor saved),
    /// while a shutdown request (`stop`, before or during the drain) gives the rest at most
    /// `grace`. A timed-out drain leaves the saved cursor where the handled events put it.
    pub async fn drain(
        self,
        stop: &CancellationToken,
        grace: Duration,
    ) -> Result<PipelineSummary, DrainTimedOut> {
        let finish = self.finish();
        tokio::pin!(finish);
        if !stop.is_cancelled() {
            tokio::select! {
                summary = &mut finish => return Ok(summary),
                () = stop.cancelled() => {}
            }
        }
        tokio::time::timeout(grace, finish)
            .await
            .map_err(|_| DrainTimedOut(grace))
    }
}

/// A shutdown's drain took longer than its grace.
#[derive(Debug, thiserror::Error)]
#[error("shutdown timed out: the pipeline did not drain within {0:?}; the saved cursor is still safe to resume from")]
pub struct DrainTimedOut(pub Duration);

async fn run_batcher(
    mut rx: mpsc::Receiver<Vec<Envelope>>,
    queues: Vec<mpsc::Sender<Arc<Batch>>>,
    shared: Arc<Shared>,
    cfg: PipelineConfig,
) -> (u64, u64) {
    let (mut events, mut id) = (0u64, 0u64);
    let max = cfg.batch_max.max(1);
    let mut runs: Vec<Vec<Envelope>> = Vec::new();
    loop {
        // A batch is whole runs as the source sent them, up to about `max` events.
        let mut items: Vec<Envelope> = Vec::with_capacity(max.min(1024));
        if rx.recv_many(&mut runs, max).await == 0 {
            break;
        }
        for run in runs.drain(..) {
            items.extend(run);
        }
        // Under light load, give the batch a moment to fill; under heavy load it is full.
        if items.len() < max / 4 && !cfg.batch_linger.is_zero() {
            let deadline = tokio::time::Instant::now() + cfg.batch_linger;
            while items.len() < max {
                let want = max - items.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut runs, want)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        for run in runs.drain(..) {
                            items.extend(run);
                        }
                    }
                }
            }
        }
        id += 1;
        events += items.len() as u64;
        let batch = Arc::new(Batch { id, items });
        let moved = {
            let mut t = shared.tracker.lock().unwrap_or_else(|p| p.into_inner());
            t.push(id, batch.cursor());
            t.committed()
        };
        if queues.is_empty() {
            shared.committed.send_replace(moved);
        }
        metrics::counter!("skystream_pipeline_events_total").increment(batch.items.len() as u64);
        metrics::gauge!("skystream_pipeline_queue_depth").set(rx.len() as f64);
        for q in &queues {
            // A closed queue means its consumer task ended (it only does at shutdown).
            let _ = q.send(batch.clone()).await;
        }
    }
    (events, id)
}

async fn run_consumer(
    index: usize,
    mut consumer: Box<dyn Consumer>,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    shared: Arc<Shared>,
    cfg: PipelineConfig,
) {
    let name = consumer.name().to_owned();
    let wake = consumer.wake();
    loop {
        let batch = match &wake {
            None => rx.recv().await,
            Some(wake) => tokio::select! {
                biased;
                batch = rx.recv() => batch,
                () = wake.notified() => {
                    consumer.idle().await;
                    continue;
                }
            },
        };
        let Some(batch) = batch else { break };
        let mut backoff = cfg.retry_initial;
        loop {
            let started = Instant::now();
            match consumer.handle(&batch).await {
                Ok(()) => {
                    metrics::histogram!("skystream_consumer_batch_seconds", "consumer" => name.clone())
                        .record(started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    metrics::counter!("skystream_consumer_errors_total", "consumer" => name.clone())
                        .increment(1);
                    warn!(consumer = %name, batch = batch.id, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "consumer failed a batch; retrying it");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(cfg.retry_max);
                }
            }
        }
        let moved = shared
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ack(index, batch.id);
        if let Some(c) = moved {
            shared.committed.send_replace(Some(c));
        }
    }
    if let Err(e) = consumer.close().await {
        warn!(consumer = %name, error = %e, "consumer failed to close cleanly");
    }
}

async fn run_saver(
    source: String,
    sink: Arc<dyn CursorSink>,
    committed: watch::Receiver<Option<u64>>,
    mut stop: watch::Receiver<bool>,
    start: Option<u64>,
    every: Duration,
) -> Option<u64> {
    let mut saved = start;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let current = *committed.borrow();
        if current != saved {
            if let Some(c) = current {
                match sink.save(&source, c).await {
                    Ok(()) => {
                        saved = current;
                        metrics::gauge!("skystream_cursor", "source" => source.clone())
                            .set(c as f64);
                    }
                    Err(e) => {
                        warn!(source = %source, cursor = c, error = %e, "could not save the cursor; will retry")
                    }
                }
            }
        }
        if stopping {
            if saved.is_some() {
                info!(source = %source, cursor = saved, "final cursor saved");
            }
            return saved;
        }
    }
}
