//! Feeds: what the feed generator serves, and which posts belong where.
//!
//! This crate owns the feed definitions of `skystream.toml` ([`Config`]: the `[service]`,
//! `[ingest]` and `[[feed]]` tables, checked with the line and column of any bad value), the
//! features of a post that feeds filter on ([`PostFeatures`], read from any record however
//! malformed, with bounded work), the filters themselves ([`Feed::matches`], which says which
//! filter decided), language detection for posts without `langs` ([`detect_language`]: lingua,
//! which tells Bokmål from Nynorsk, with a Nordic function-word vote and a Northern Sámi rule on
//! top), and ranking ([`Ranking`]: chronological, or likes and reposts with exponential time
//! decay and a time-independent sort key). It does no I/O but reading the config file; the
//! indexer, the store and the HTTP server that use it live elsewhere.

mod config;
mod duration;
mod features;
mod feed;
mod lang;
mod rank;
mod text;

pub use config::{
    Config, ConfigError, ConfigErrorKind, IngestConfig, JetstreamConfig, ServiceConfig,
    DEFAULT_LISTEN, DEFAULT_RECENT_WINDOW,
};
pub use duration::parse_duration;
pub use features::{
    EmbedKind, MediaKind, PostFeatures, ReplyRef, MAX_FACETS, MAX_ITEMS, MAX_TEXT_BYTES,
};
pub use feed::{
    check_feed_id, Auth, ContentMode, Feed, FeedConfig, FeedError, Filter, Filters, Match, Reason,
    Replies, DEFAULT_LANGUAGE_CONFIDENCE, DEFAULT_MAX_AGE, MAX_DESCRIPTION_BYTES,
    MAX_DESCRIPTION_GRAPHEMES, MAX_DISPLAY_NAME_BYTES, MAX_DISPLAY_NAME_GRAPHEMES, MAX_FEED_ID_LEN,
};
pub use lang::{
    check_feed_language, detect_language, language_covers, DetectedLanguage, DETECTABLE_LANGUAGES,
    MAX_DETECT_BYTES, SAMI_LANGUAGES,
};
pub use rank::{Ranking, DEFAULT_HALF_LIFE};
pub use text::{normalize_hashtag, KeywordSet, MAX_HASHTAG_CHARS};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn shared_across_threads() {
        send_sync::<crate::Config>();
        send_sync::<crate::Feed>();
        send_sync::<crate::PostFeatures>();
    }
}
