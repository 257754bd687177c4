//! The web console `skystream serve` shows at `/`: a live status page and a preview of every
//! feed, with a box to try a draft filter against the posts the indexer saw recently.
//! `skystream jetstream` shows the same status page with its own figures and a Jetstream
//! section ([`jetstream_section`]), and no preview: it serves no feeds.
//!
//! This crate owns the console's pages (one HTML file, one stylesheet and one script, embedded
//! with `include_str!`, fetched by relative URLs so the console works offline and under a
//! reverse proxy's path prefix, with a Content-Security-Policy that allows no inline script or
//! outside origin), its JSON API under `/console/api/`, and the [`Sampler`] that keeps an hour
//! of history server side. It is a crate of its own rather than part of `skystream-server`
//! because that crate is the feed generator's protocol surface, which must not grow pages,
//! assets and a dependency on the indexer's recent-post window; [`router`] returns a plain
//! axum `Router` that `serve` merges beside the feed generator's (and `jetstream` beside
//! `/subscribe`), and tests drive it without a socket. Figures are never counted twice: status numbers, extra sections' included, are parsed
//! from the same Prometheus rendering `/metrics` serves (store size and per-feed items are
//! published there as gauges by the sampler first), connection and lag are what the ingest
//! health function reports (`serve`'s `/health`), and previews use the store queries
//! `getFeedSkeleton` pages with and the feeds' own `Feed::matches`.

mod assets;
mod draft;
mod history;
mod jetstream;
mod preview;
mod prom;
mod sampler;
mod section;
mod status;

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use skystream_indexer::{FeedSet, RecentWindow, SharedFeeds};
use skystream_server::HealthStatus;
use skystream_store::FeedStore;
use tokio::sync::Semaphore;

pub use history::{names, History, Point, Ring, SECOND_POINTS, TEN_SECOND_POINTS};
pub use jetstream::jetstream_section;
pub use prom::{Exposition, Sample};
pub use sampler::Sampler;
pub use section::{Figure, Section, SectionFn, Unit};

/// Renders the Prometheus exposition (the function `/metrics` serves).
pub type RenderFn = Arc<dyn Fn() -> String + Send + Sync>;
/// Reports ingest health, connected and lag (the function `serve`'s `/health` reads).
pub type HealthFn = Arc<dyn Fn() -> HealthStatus + Send + Sync>;

/// Where events come from, as the status page names it.
#[derive(Clone, Debug, Default)]
pub struct SourceInfo {
    /// `relay`, `jetstream`, `file`, `simulate`, or `none` when this process does not ingest.
    pub kind: String,
    /// The hosts (or file, or simulated rate) it reads from.
    pub hosts: Vec<String>,
}

/// What the console shows of the feeds a process serves.
#[derive(Clone)]
pub struct FeedView {
    /// The feed store (the one `getFeedSkeleton` reads).
    pub store: Arc<dyn FeedStore>,
    /// The compiled feeds (swapped on reload).
    pub feeds: SharedFeeds,
    /// The indexer's recent-post window; `None` when this process does not ingest.
    pub window: Option<Arc<Mutex<RecentWindow>>>,
}

/// Everything the console's routes read.
#[derive(Clone)]
pub struct ConsoleState {
    /// The source, for the status page.
    pub source: SourceInfo,
    /// The feeds; `None` in a process that serves none (`skystream jetstream`), whose page
    /// then has no preview and whose feed API answers 404 saying so.
    pub feeds: Option<FeedView>,
    /// The history and the metrics reader.
    pub sampler: Arc<Sampler>,
    /// Extra status sections.
    pub sections: Vec<Section>,
    /// One draft evaluation at a time: it can be CPU-heavy (language detection) and the page
    /// may be public.
    draft_gate: Arc<Semaphore>,
}

impl ConsoleState {
    /// The console of a process serving feeds: status and preview.
    pub fn new(
        source: SourceInfo,
        store: Arc<dyn FeedStore>,
        feeds: SharedFeeds,
        window: Option<Arc<Mutex<RecentWindow>>>,
        sampler: Arc<Sampler>,
    ) -> ConsoleState {
        ConsoleState {
            feeds: Some(FeedView {
                store,
                feeds,
                window,
            }),
            ..ConsoleState::without_feeds(source, sampler)
        }
    }

    /// The console of a process that serves no feeds: the status page only.
    pub fn without_feeds(source: SourceInfo, sampler: Arc<Sampler>) -> ConsoleState {
        ConsoleState {
            source,
            feeds: None,
            sampler,
            sections: Vec::new(),
            draft_gate: Arc::new(Semaphore::new(1)),
        }
    }

    /// Adds an extra status section.
    pub fn with_section(mut self, section: Section) -> ConsoleState {
        self.sections.push(section);
        self
    }

    /// The feeds now; `None` when this process serves none.
    pub(crate) fn feed_set(&self) -> Option<Arc<FeedSet>> {
        self.feeds.as_ref().map(|v| {
            v.feeds
                .read()
                .map(|f| f.clone())
                .unwrap_or_else(|p| p.into_inner().clone())
        })
    }
}

/// The console's routes: `/` (the page), `/console/*` (its assets) and `/console/api/*`.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/console/console.css", get(assets::css))
        .route("/console/console.js", get(assets::js))
        .route("/console/api/status", get(status::status))
        .route("/console/api/history", get(status::history))
        .route("/console/api/feeds", get(preview::feeds))
        .route("/console/api/feeds/{id}/items", get(preview::items))
        .route("/console/api/draft", get(draft::draft))
        .with_state(state)
}
