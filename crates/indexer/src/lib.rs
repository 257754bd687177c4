//! The feed indexer: the pipeline consumer that keeps the feed store current.
//!
//! This crate owns turning events into feed data: a post create or update is read into
//! [`PostFeatures`](skystream_feeds::PostFeatures) and matched against every feed (a post held
//! back only by `min_likes` is stored and becomes visible as likes arrive); deletes remove it;
//! likes and reposts are counted (and rescore engagement-ranked feeds); account events hide,
//! restore or remove an author's posts. Each batch becomes one store transaction, so handling
//! is durable when [`Indexer`]'s `handle` returns, and idempotent under replays. It also keeps
//! the window of recent posts that a config reload re-evaluates and that draft filters are
//! tried against.

mod indexer;
mod window;

pub use indexer::{FeedSet, Indexer, SharedFeeds};
pub use window::{RecentPost, RecentWindow};
