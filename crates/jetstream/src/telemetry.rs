//! Metric names and updates, in one place so the dashboard's vocabulary is visible at once.
//!
//! - `skystream_jetstream_subscribers{encoding, filter, phase}` (gauge): connected subscribers
//!   by encoding (`json`, `zstd`), filter (`all` events, or `filtered` by wantedCollections,
//!   wantedDids or maxMessageSizeBytes) and phase (`waiting` for hello, `replay` before first
//!   reaching the head, `live` after).
//! - `skystream_jetstream_events_sent_total{encoding, phase}`,
//!   `skystream_jetstream_bytes_sent_total{encoding, phase}`: what was sent, by encoding, replay
//!   vs live.
//! - `skystream_jetstream_events_appended_total`, `skystream_jetstream_json_bytes_total`,
//!   `skystream_jetstream_zstd_bytes_total`, `skystream_jetstream_compression_ratio` (JSON bytes
//!   over zstd bytes, over everything appended since start).
//! - `skystream_jetstream_slow_closes_total{reason}`: subscribers closed for falling behind
//!   retention, the lag limit, or a stalled socket.
//! - `skystream_jetstream_rejected_total{reason}`: connections refused.
//! - `skystream_jetstream_heartbeats_total`, `skystream_jetstream_trimmed_total`,
//!   `skystream_jetstream_log_oldest_time_us`, `skystream_jetstream_log_newest_time_us`.
//! - `skystream_jetstream_log_size_bytes`: the replay log's files on disk (the database and its
//!   WAL). Retention frees pages for reuse rather than shrinking the file, so this is the disk
//!   the log holds, not the bytes of the events it keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::entry::Entry;

static JSON_BYTES: AtomicU64 = AtomicU64::new(0);
static ZSTD_BYTES: AtomicU64 = AtomicU64::new(0);

/// Entries appended to the log.
pub fn appended(entries: &[Arc<Entry>]) {
    let json: u64 = entries.iter().map(|e| e.json.len() as u64).sum();
    let zstd: u64 = entries.iter().map(|e| e.zstd.len() as u64).sum();
    metrics::counter!("skystream_jetstream_events_appended_total").increment(entries.len() as u64);
    metrics::counter!("skystream_jetstream_json_bytes_total").increment(json);
    metrics::counter!("skystream_jetstream_zstd_bytes_total").increment(zstd);
    let j = JSON_BYTES.fetch_add(json, Ordering::Relaxed) + json;
    let z = ZSTD_BYTES.fetch_add(zstd, Ordering::Relaxed) + zstd;
    if z > 0 {
        metrics::gauge!("skystream_jetstream_compression_ratio").set(j as f64 / z as f64);
    }
}

/// The log's range after an append or trim.
pub fn log_bounds(oldest: i64, newest: i64) {
    metrics::gauge!("skystream_jetstream_log_oldest_time_us").set(oldest as f64);
    metrics::gauge!("skystream_jetstream_log_newest_time_us").set(newest as f64);
}

/// The log's files on disk, after an open, append or trim.
pub fn log_size(bytes: u64) {
    metrics::gauge!("skystream_jetstream_log_size_bytes").set(bytes as f64);
}

/// Rows retention deleted.
pub fn trimmed(rows: u64) {
    metrics::counter!("skystream_jetstream_trimmed_total").increment(rows);
}

/// A subscriber's phase, for the gauges and the sent counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the hello (`requireHello`).
    Waiting,
    /// Reading history it asked for with a cursor, not yet at the head.
    Replay,
    /// Has reached the head at least once.
    Live,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Replay => "replay",
            Phase::Live => "live",
        }
    }
}

/// Keeps the subscriber gauge right for one connection: counted on creation, moved between
/// phases and filter modes, removed on drop.
#[derive(Debug)]
pub struct SubscriberGauge {
    encoding: &'static str,
    filter: &'static str,
    phase: Phase,
}

fn filter_name(filtered: bool) -> &'static str {
    if filtered {
        "filtered"
    } else {
        "all"
    }
}

impl SubscriberGauge {
    /// Counts a new subscriber.
    pub fn new(compressed: bool, filtered: bool, phase: Phase) -> SubscriberGauge {
        let g = SubscriberGauge {
            encoding: if compressed { "zstd" } else { "json" },
            filter: filter_name(filtered),
            phase,
        };
        g.add(1.0);
        g
    }

    fn add(&self, n: f64) {
        metrics::gauge!("skystream_jetstream_subscribers", "encoding" => self.encoding, "filter" => self.filter, "phase" => self.phase.name())
            .increment(n);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves the subscriber to `phase`.
    pub fn set(&mut self, phase: Phase) {
        if phase != self.phase {
            self.add(-1.0);
            self.phase = phase;
            self.add(1.0);
        }
    }

    /// Moves the subscriber between `all` and `filtered` (an `options_update` changed its
    /// filter).
    pub fn set_filtered(&mut self, filtered: bool) {
        let filter = filter_name(filtered);
        if filter != self.filter {
            self.add(-1.0);
            self.filter = filter;
            self.add(1.0);
        }
    }

    /// Counts `events` events of `bytes` bytes sent in the current phase.
    pub fn sent(&self, events: u64, bytes: u64) {
        let phase = match self.phase {
            Phase::Live => "live",
            _ => "replay",
        };
        metrics::counter!("skystream_jetstream_events_sent_total", "encoding" => self.encoding, "phase" => phase)
            .increment(events);
        metrics::counter!("skystream_jetstream_bytes_sent_total", "encoding" => self.encoding, "phase" => phase)
            .increment(bytes);
    }
}

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        self.add(-1.0);
    }
}

/// A subscriber closed for being slow.
pub fn slow_close(reason: &'static str) {
    metrics::counter!("skystream_jetstream_slow_closes_total", "reason" => reason).increment(1);
}

/// A connection refused.
pub fn rejected(reason: &'static str) {
    metrics::counter!("skystream_jetstream_rejected_total", "reason" => reason).increment(1);
}

/// A heartbeat sent.
pub fn heartbeat() {
    metrics::counter!("skystream_jetstream_heartbeats_total").increment(1);
}
