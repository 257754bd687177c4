//! The sampler: once a second it renders the metrics, parses them and records a point of
//! history; in a process serving feeds, every ten seconds it asks the store for its size and
//! per-feed item counts and publishes them as gauges, so `/metrics` has them and the console
//! reads them back from there.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skystream_indexer::SharedFeeds;
use skystream_store::FeedStore;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::history::{names, History};
use crate::prom::Exposition;
use crate::{HealthFn, RenderFn};

/// How often the store figures are refreshed: counting memberships is a scan, so not every
/// second.
const STORE_EVERY: u32 = 10;

/// The sampler's shared state: the history the status API serves.
pub struct Sampler {
    render: RenderFn,
    health: HealthFn,
    /// The feed store and its feeds; `None` in a process that serves no feeds.
    store: Option<(Arc<dyn FeedStore>, SharedFeeds)>,
    history: Mutex<History>,
    /// Feeds given an items gauge, so one whose count drops to none is set to zero.
    feeds_seen: Mutex<BTreeSet<String>>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Sampler {
    /// A sampler reading `render` (the Prometheus handle's render, the same `/metrics` serves),
    /// `health` (the same `/health` reads), and `store` for the items of `feeds`.
    pub fn new(
        render: RenderFn,
        health: HealthFn,
        store: Arc<dyn FeedStore>,
        feeds: SharedFeeds,
    ) -> Arc<Sampler> {
        Arc::new(Sampler {
            render,
            health,
            store: Some((store, feeds)),
            history: Mutex::new(History::default()),
            feeds_seen: Mutex::new(BTreeSet::new()),
        })
    }

    /// A sampler for a process that serves no feeds (`skystream jetstream`): history only.
    pub fn without_feeds(render: RenderFn, health: HealthFn) -> Arc<Sampler> {
        Arc::new(Sampler {
            render,
            health,
            store: None,
            history: Mutex::new(History::default()),
            feeds_seen: Mutex::new(BTreeSet::new()),
        })
    }

    /// Runs the sampler until `stop` is cancelled.
    pub fn spawn(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let sampler = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut n: u32 = 0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if n.is_multiple_of(STORE_EVERY) {
                    sampler.publish_store_gauges().await;
                }
                n = n.wrapping_add(1);
                sampler.sample();
            }
        })
    }

    /// Takes one sample now.
    pub fn sample(&self) {
        let e = self.exposition();
        let lag = (self.health)().lag_seconds;
        if let Ok(mut h) = self.history.lock() {
            h.record(now_ms(), &e, lag);
        }
    }

    /// The metrics as `/metrics` would serve them now, parsed.
    pub fn exposition(&self) -> Exposition {
        Exposition::parse(&(self.render)())
    }

    /// What `/health` reports now.
    pub fn health(&self) -> skystream_server::HealthStatus {
        (self.health)()
    }

    /// Runs `f` over the history.
    pub fn with_history<T>(&self, f: impl FnOnce(&History) -> T) -> Option<T> {
        self.history.lock().ok().map(|h| f(&h))
    }

    /// Asks the store for its size and per-feed items and sets the gauges (nothing without a
    /// store).
    pub async fn publish_store_gauges(&self) {
        let Some((store, feeds)) = &self.store else {
            return;
        };
        match store.size_bytes().await {
            Ok(bytes) => metrics::gauge!(names::STORE_BYTES).set(bytes as f64),
            Err(e) => warn!(error = %e, "console: cannot read the store's size"),
        }
        match store.feed_counts().await {
            Ok(counts) => {
                let Ok(mut seen) = self.feeds_seen.lock() else {
                    return;
                };
                // The store lists only feeds with items: a configured feed without any, or
                // one that had some before, is zero rather than absent.
                if let Ok(set) = feeds.read() {
                    seen.extend(set.feeds.iter().map(|f| f.id().to_owned()));
                }
                seen.extend(counts.iter().map(|(id, _)| id.clone()));
                for feed in seen.iter() {
                    let n = counts
                        .iter()
                        .find(|(id, _)| id == feed)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!(names::FEED_ITEMS, "feed" => feed.clone()).set(n as f64);
                }
            }
            Err(e) => warn!(error = %e, "console: cannot count the feeds' items"),
        }
    }
}
