//! The feed generator's HTTP surface, exactly as the lexicons describe it.
//!
//! This crate owns the routes a feed generator serves — `/.well-known/did.json`,
//! `app.bsky.feed.describeFeedGenerator`, `app.bsky.feed.getFeedSkeleton` (with stable,
//! validated cursors for chronological and ranked feeds), `app.bsky.feed.sendInteractions`,
//! `/health` and `/metrics` — and the mapping of every failure to an XRPC error. [`router`]
//! builds an axum `Router` from an [`AppState`], so tests drive it without a socket; storage
//! is the `FeedStore` trait and requester auth is `skystream-auth`, both injected.

mod cursor;
mod error;
mod routes;
mod state;

pub use cursor::PageCursor;
pub use error::XrpcError;
pub use routes::router;
pub use state::{
    AppState, AuthMode, Catalog, FeedInfo, HealthStatus, RankingKind, ServiceIdentity,
};
