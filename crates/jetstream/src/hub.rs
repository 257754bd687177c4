//! The state the writer (the pipeline consumer) and every subscriber share: the durable log,
//! its in-memory tail, the sequencer, the codec and the head notification.
//!
//! Appends are serialised (one writer), made durable in the log, then pushed to the tail and
//! announced; subscribers only ever read by position (`time_us >= next`), from the tail when it
//! covers their position and from the log otherwise. Because the tail is exactly the log's
//! suffix and both are ordered by `time_us`, switching between them (replay to live) can
//! neither skip, repeat nor reorder an event.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use skystream_event::Event;
use tokio::sync::{watch, Mutex};

use crate::entry::{self, Codec, Entry, Rendered};
use crate::log::{Log, LogError, Trimmed, UpstreamMark};
use crate::sequencer::Sequencer;
use crate::tail::Tail;
use crate::telemetry;

/// Why an append or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Compression failed.
    #[error("zstd: {0}")]
    Zstd(#[from] std::io::Error),
    /// A blocking task died.
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A lock was poisoned by a panic elsewhere.
    #[error("hub lock poisoned")]
    Poisoned,
}

/// The shared log state. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Hub {
    log: Arc<Log>,
    tail: RwLock<Tail>,
    head: watch::Sender<i64>,
    oldest: AtomicI64,
    trimmed_upto: AtomicI64,
    codec: Arc<Codec>,
    writer: Arc<Mutex<Sequencer>>,
}

/// What one append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// v1 events appended.
    pub events: usize,
    /// The newest `time_us` appended.
    pub newest: Option<i64>,
}

impl Hub {
    /// Opens the log in `dir` (created if needed; blocking), with a memory tail of
    /// `tail_bytes` and the zstd dictionary, if any.
    pub fn open(dir: &Path, tail_bytes: usize, dictionary: Option<&[u8]>) -> Result<Hub, HubError> {
        std::fs::create_dir_all(dir)?;
        let log = Log::open(&dir.join("jetstream.sqlite"))?;
        let bounds = log.bounds()?;
        let (oldest, newest) = bounds.unwrap_or((0, 0));
        telemetry::log_bounds(oldest, newest);
        telemetry::log_size(log.size_bytes());
        Ok(Hub {
            log: Arc::new(log),
            tail: RwLock::new(Tail::new(tail_bytes, newest)),
            head: watch::Sender::new(newest),
            oldest: AtomicI64::new(oldest),
            // What is older than the oldest kept entry is gone (trimmed by an earlier run).
            trimmed_upto: AtomicI64::new((oldest - 1).max(0)),
            codec: Arc::new(Codec::new(dictionary)?),
            writer: Arc::new(Mutex::new(Sequencer::after(newest))),
        })
    }

    /// The zstd codec (disabled without a dictionary).
    pub fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    /// The newest `time_us` appended (0 when the log is empty).
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Watches the head: changes after every append.
    pub fn watch_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// The oldest `time_us` kept (0 when the log is empty).
    pub fn oldest(&self) -> i64 {
        self.oldest.load(Ordering::Acquire)
    }

    /// The newest `time_us` retention has deleted: a subscriber whose next position is at or
    /// before it has missed events.
    pub fn trimmed_upto(&self) -> i64 {
        self.trimmed_upto.load(Ordering::Acquire)
    }

    /// The upstream cursor stored with the last append from `source` (blocking).
    pub fn upstream_cursor(&self, source: &str) -> Result<Option<u64>, HubError> {
        Ok(self.log.upstream_cursor(source)?)
    }

    /// Per partition, the offset after the last message from `source` the log holds
    /// (blocking).
    pub fn upstream_offsets(&self, source: &str) -> Result<BTreeMap<u32, u64>, HubError> {
        Ok(self.log.upstream_offsets(source)?)
    }

    /// Sequences `events` (each commit operation, identity and account event gets its own
    /// `time_us`), renders and compresses them, appends them durably with the upstream cursor
    /// that covers them, and only then shows them to subscribers.
    ///
    /// The work after rendering runs in its own task holding the writer lock, so a caller that
    /// stops waiting cannot leave an append in the log but missing from the tail.
    pub async fn append<'a>(
        self: &Arc<Self>,
        events: impl IntoIterator<Item = &'a Event>,
        upstream: Option<UpstreamMark>,
    ) -> Result<Appended, HubError> {
        let mut seq = self.writer.clone().lock_owned().await;
        let mut rendered: Vec<Rendered> = Vec::new();
        // time_us values must be unique and increasing, not gapless: values drawn for an append
        // that then fails are simply never used.
        for e in events {
            entry::render(e, &mut || seq.draw(), &mut rendered);
        }
        if rendered.is_empty() && upstream.is_none() {
            return Ok(Appended::default());
        }
        let hub = self.clone();
        tokio::spawn(async move {
            let _writer = seq;
            let codec = hub.codec.clone();
            let log = hub.log.clone();
            let entries = tokio::task::spawn_blocking(move || -> Result<_, HubError> {
                let zstd = codec.compress_all(rendered.iter().map(|r| r.json.as_bytes()))?;
                let entries = entry::entries(rendered, zstd);
                log.append(&entries, upstream.as_ref())?;
                // Two stat calls beside a synchronous SQLite commit: cheap enough per batch.
                telemetry::log_size(log.size_bytes());
                Ok(entries)
            })
            .await??;
            let newest = entries.last().map(|e| e.time_us);
            if let Some(newest) = newest {
                hub.tail
                    .write()
                    .map_err(|_| HubError::Poisoned)?
                    .push(&entries);
                let _ = hub.oldest.compare_exchange(
                    0,
                    entries[0].time_us,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                hub.head.send_replace(newest);
                telemetry::appended(&entries);
                telemetry::log_bounds(hub.oldest(), newest);
            }
            Ok(Appended {
                events: entries.len(),
                newest,
            })
        })
        .await?
    }

    /// Up to `limit` entries with `time_us >= from`, in order: from memory when the tail covers
    /// `from`, else from the log.
    pub async fn read(&self, from: i64, limit: usize) -> Result<Vec<Arc<Entry>>, HubError> {
        if let Some(v) = self
            .tail
            .read()
            .map_err(|_| HubError::Poisoned)?
            .read(from, limit)
        {
            return Ok(v);
        }
        let log = self.log.clone();
        let codec = self.codec.clone();
        tokio::task::spawn_blocking(move || -> Result<_, HubError> {
            let mut v = log.read_from(from, limit)?;
            // Rows written while no dictionary was configured have no zstd frame: make it now.
            if codec.enabled() && v.iter().any(|e| e.zstd.is_empty()) {
                for e in v.iter_mut().filter(|e| e.zstd.is_empty()) {
                    let z = codec.compress(e.json.as_bytes())?;
                    Arc::make_mut(e).zstd = z;
                }
            }
            Ok(v)
        })
        .await?
    }

    /// Deletes entries older than `cutoff` (retention).
    pub async fn trim_before(self: &Arc<Self>, cutoff: i64) -> Result<Trimmed, HubError> {
        let log = self.log.clone();
        let hub = self.clone();
        let (trimmed, bounds) = tokio::task::spawn_blocking(move || -> Result<_, HubError> {
            // Published before each delete: a reader that checks it after its read knows
            // whether the rows it expected could have been deleted under it.
            let t = log.trim_before(cutoff, &|t| {
                hub.trimmed_upto.fetch_max(t, Ordering::AcqRel);
            })?;
            telemetry::log_size(log.size_bytes());
            Ok((t, log.bounds()?))
        })
        .await??;
        if let Some(t) = trimmed.newest_removed {
            self.tail
                .write()
                .map_err(|_| HubError::Poisoned)?
                .forget_upto(t);
        }
        let (oldest, newest) = bounds.unwrap_or((0, self.head()));
        self.oldest.store(oldest, Ordering::Release);
        telemetry::trimmed(trimmed.removed);
        telemetry::log_bounds(oldest, newest);
        Ok(trimmed)
    }
}
