//! Feed data: the types, the [`FeedStore`] trait (whose documentation states the rules every
//! backend follows), and what the backends share (the batch check, small conversions). Each
//! backend's implementation is in the submodule of its name.

pub(crate) mod memory;
mod page_cache;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::borrow::Cow;
use std::collections::HashSet;

use async_trait::async_trait;

use crate::StoreError;

pub use page_cache::{FirstPageCache, FIRST_PAGE_TTL};

/// A post as the feeds keep it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostRow {
    /// `at://DID/app.bsky.feed.post/RKEY`; the post's identity.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
    /// The author's DID (the uri's authority).
    pub author: String,
    /// The record key.
    pub rkey: String,
    /// The record's `createdAt`, Unix milliseconds (as the author claims it).
    pub created_at_ms: i64,
    /// When the indexer first stored the post, Unix milliseconds. Kept from the first insert:
    /// re-indexing does not change it.
    pub indexed_at_ms: i64,
    /// The record's `langs`.
    pub langs: Vec<String>,
    /// The post's text.
    pub text: String,
    /// The uri of the post this replies to.
    pub reply_parent: Option<String>,
    /// The uri of the thread's root post.
    pub reply_root: Option<String>,
    /// The embed's kind (e.g. `images`, `external`, `record`), if any.
    pub embed_kind: Option<String>,
    /// Hashtags (from facets and tags).
    pub hashtags: Vec<String>,
    /// DIDs mentioned.
    pub mentions: Vec<String>,
    /// Self-labels and labels applied to the post.
    pub labels: Vec<String>,
    /// For a repost kept as a feed item: the uri of the reposted post. The row is then the
    /// repost record (`uri` is `at://REPOSTER/app.bsky.feed.repost/RKEY`, `author` the
    /// reposter, the text and lists empty), and pages serve the reposted post with the repost
    /// as its reason.
    pub repost_of: Option<String>,
}

/// A post's place in one feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// The feed's name (the key the feed is configured under).
    pub feed: String,
    /// The ranking score; must be finite. Ignored when `half_life_s` is set.
    pub score: f64,
    /// The post shows in this feed only once it has at least this many likes (0: always).
    pub min_likes: u64,
    /// For an engagement-ranked feed, its half-life in seconds (finite, above 0): the store
    /// then keeps the score itself, from its own like and repost counts, as
    /// [`engagement_score`] gives it, and recomputes it whenever they change (a like, an
    /// unlike, a repost, its removal, an account's removal). So the score is right after a
    /// restart and whichever process counted the likes. `None`: `score` as given.
    pub half_life_s: Option<f64>,
}

/// An engagement-ranked post's score: `log2(1 + likes + 2 × reposts) + created_at / half_life`
/// (`created_at` in Unix seconds), which orders posts as `(1 + likes + 2 × reposts) ×
/// 0.5^(age / half_life)` does at every moment (see `skystream_feeds::Ranking`) without
/// depending on the time it is computed at.
pub fn engagement_score(likes: u64, reposts: u64, created_at_ms: i64, half_life_s: f64) -> f64 {
    engagement_weight(likes, reposts) + created_at_ms as f64 / 1000.0 / half_life_s
}

/// The count part of [`engagement_score`]: `log2(1 + likes + 2 × reposts)`.
pub(crate) fn engagement_weight(likes: u64, reposts: u64) -> f64 {
    (1.0 + likes as f64 + 2.0 * reposts as f64).log2()
}

/// What an account's status means for its posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// The account is in good standing: its posts show (again).
    Active,
    /// Deactivated (or suspended, or otherwise temporarily hidden): its posts are hidden from
    /// every feed but kept, and show again when it is [`Active`](Self::Active).
    Deactivated,
    /// Deleted or taken down: its posts are deleted from every feed, its likes and reposts of
    /// other posts stop counting, and posts it makes while removed are hidden.
    Removed,
}

impl AccountStatus {
    /// `active`, `deactivated` or `removed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Removed => "removed",
        }
    }
}

/// One change to the feed data; [`FeedStore::apply`] commits a batch of them in order.
// Most writes of a batch are upserts, so boxing the post would add an allocation to nearly
// every write to save space on the few small ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FeedWrite {
    /// Inserts or replaces a post with its feed memberships. Idempotent: re-indexing a uri
    /// keeps its original insertion sequence and `indexed_at_ms` (so a replay does not move it
    /// to the top), its like and repost counts, and replaces its other fields and its
    /// memberships. With no memberships the post is not kept: this deletes it, as
    /// [`DeletePost`](Self::DeletePost) does. Two memberships of the same feed: the last wins.
    UpsertPost {
        /// The post.
        post: PostRow,
        /// The feeds it belongs to.
        feeds: Vec<Membership>,
    },
    /// Deletes a post, its memberships and its like/repost bookkeeping, and the repost items
    /// of it ([`PostRow::repost_of`]); unknown uris are ignored. A repost item is deleted by
    /// its own (the repost record's) uri.
    DeletePost {
        /// The post's uri.
        uri: String,
    },
    /// A like record (`uri`) of the post `subject`. Counted once per record uri; ignored when
    /// the subject is not a kept post (it is then in no feed, and if it is stored later it
    /// starts at zero).
    AddLike {
        /// The like record's uri, `at://LIKER/app.bsky.feed.like/RKEY`.
        uri: String,
        /// The liked post's uri.
        subject: String,
    },
    /// The like record `uri` was deleted: its post's count goes down, if it was counted.
    RemoveLike {
        /// The like record's uri.
        uri: String,
    },
    /// A repost record (`uri`) of the post `subject`; as [`AddLike`](Self::AddLike).
    AddRepost {
        /// The repost record's uri, `at://REPOSTER/app.bsky.feed.repost/RKEY`.
        uri: String,
        /// The reposted post's uri.
        subject: String,
    },
    /// The repost record `uri` was deleted; as [`RemoveLike`](Self::RemoveLike).
    RemoveRepost {
        /// The repost record's uri.
        uri: String,
    },
    /// An account's status changed (see [`AccountStatus`]). [`Removed`](AccountStatus::Removed)
    /// deletes the account's posts and its like and repost records (found by their uris'
    /// `at://DID/` prefix).
    SetAccountStatus {
        /// The account's DID.
        did: String,
        /// Its new status.
        status: AccountStatus,
    },
    /// Sets the score of `uri` in `feed`; ignored when the post is not in that feed. The
    /// post's place in the chronological order does not change.
    SetScore {
        /// The feed.
        feed: String,
        /// The post's uri.
        uri: String,
        /// The new score; must be finite.
        score: f64,
    },
    /// An interaction from `app.bsky.feed.sendInteractions` (stored, counted per feed).
    Interaction {
        /// The feed it came from, when known.
        feed: Option<String>,
        /// The DID of the user who sent it.
        requester: String,
        /// The post it is about.
        item: String,
        /// The event, e.g. `app.bsky.feed.defs#requestLess`.
        event: String,
        /// The `feedContext` the feed gave the item, echoed back.
        feed_context: Option<String>,
        /// When it was received, Unix milliseconds.
        at_ms: i64,
    },
}

impl FeedWrite {
    /// A short snake_case name of the variant, for messages.
    pub const fn kind_str(&self) -> &'static str {
        match self {
            Self::UpsertPost { .. } => "upsert_post",
            Self::DeletePost { .. } => "delete_post",
            Self::AddLike { .. } => "add_like",
            Self::RemoveLike { .. } => "remove_like",
            Self::AddRepost { .. } => "add_repost",
            Self::RemoveRepost { .. } => "remove_repost",
            Self::SetAccountStatus { .. } => "set_account_status",
            Self::SetScore { .. } => "set_score",
            Self::Interaction { .. } => "interaction",
        }
    }
}

/// One visible item of a feed: a post's membership with the post's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// The item's insertion sequence: the tie-break of the chronological order (see
    /// [`FeedItem::position`] for the next page's start).
    pub seq: i64,
    /// The uri of the post the feed shows.
    pub uri: String,
    /// For a repost item ([`PostRow::repost_of`]): the repost record's uri, which the feed
    /// gives as the item's reason. Only chronological pages have repost items.
    pub repost: Option<String>,
    /// The post's score in this feed.
    pub score: f64,
    /// Likes counted for the post.
    pub likes: u64,
    /// Reposts counted for the post.
    pub reposts: u64,
    /// When the post was first indexed, Unix milliseconds.
    pub indexed_at_ms: i64,
}

/// Where a chronological page starts: just after the item at this position (the order is
/// score, the post's time, then insertion sequence, both descending). A keyset rather than an
/// offset, so a page's start stays put when newer posts arrive above it or older ones (a
/// backfill) are inserted below it: nothing is served twice or skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PagePosition {
    /// The item's score (for a chronological feed, its time in Unix seconds).
    pub score: f64,
    /// The item's insertion sequence, the tie-break.
    pub seq: i64,
}

impl FeedItem {
    /// This item's place in its chronological feed, to start the next page after it.
    pub fn position(&self) -> PagePosition {
        PagePosition {
            score: self.score,
            seq: self.seq,
        }
    }
}

/// The feed generator's tables: posts, memberships, likes/reposts, account status, ranking
/// snapshots and interactions.
///
/// The indexer writes with [`apply`](Self::apply), a batch of [`FeedWrite`]s committed as one
/// transaction; the HTTP server reads pages ([`chronological_page`](Self::chronological_page))
/// and ranking snapshots. Implemented by [`Store`](crate::Store) and each backend, which all
/// follow the same rules (one test suite runs on all three):
///
/// - **Insertion sequence.** A post gets a `seq` when it is first stored; seqs only grow and
///   are never reused. Chronological feeds are ordered by it (not by `createdAt`, which authors
///   control), and a page's cursor is the last `seq` it returned, so paging with `before_seq`
///   returns every item that existed at the first page exactly once, whatever is inserted
///   meanwhile. Re-indexing a post (a replay) keeps its `seq` and `indexed_at_ms`.
/// - **Only posts in a feed are kept.** A [`FeedWrite::UpsertPost`] with no memberships
///   deletes the post; [`prune`](Self::prune) deletes posts whose last membership it removed.
///   Likes and reposts are only recorded for kept posts, and go with them.
/// - **Visibility.** Pages and rankings leave out posts whose author is
///   [`Deactivated`](AccountStatus::Deactivated) or [`Removed`](AccountStatus::Removed), and
///   memberships whose post has fewer likes than the membership's `min_likes`.
/// - **Validation first.** Scores must be finite and `min_likes` at most `i64::MAX`; a batch
///   with a bad value is refused whole ([`StoreErrorKind::InvalidValue`]) before the database
///   is touched. NUL characters, which PostgreSQL text cannot hold, are replaced with U+FFFD
///   in every string written (and in string arguments of reads), on every backend, so one odd
///   record cannot stall the indexer.
///
/// Writes are durable when they return, as for cursors; reads see every write that returned.
///
/// ```
/// use skystream_store::{FeedStore, FeedWrite, Membership, PostRow, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), skystream_store::StoreError> {
/// let store = Store::open(":memory:").await?;
/// let post = |rkey: &str| PostRow {
///     uri: format!("at://did:plc:alice/app.bsky.feed.post/{rkey}"),
///     author: "did:plc:alice".into(),
///     rkey: rkey.into(),
///     text: "hello".into(),
///     ..PostRow::default()
/// };
/// let in_feed = vec![Membership { feed: "hello".into(), score: 1.0, min_likes: 0, half_life_s: None }];
/// store
///     .apply(vec![
///         FeedWrite::UpsertPost { post: post("1"), feeds: in_feed.clone() },
///         FeedWrite::UpsertPost { post: post("2"), feeds: in_feed },
///         FeedWrite::AddLike {
///             uri: "at://did:plc:bob/app.bsky.feed.like/1".into(),
///             subject: post("1").uri,
///         },
///     ])
///     .await?;
/// let page = store.chronological_page("hello", None, 1).await?;
/// assert_eq!(page[0].uri, post("2").uri); // newest first
/// let next = store.chronological_page("hello", Some(page[0].position()), 1).await?;
/// assert_eq!((next[0].uri.as_str(), next[0].likes), (post("1").uri.as_str(), 1));
/// # Ok(())
/// # }
/// ```
///
/// [`StoreErrorKind::InvalidValue`]: crate::StoreErrorKind::InvalidValue
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Applies `writes` in order, in one transaction: all or nothing. On SQLite it is one
    /// transaction on the writer connection; on PostgreSQL one transaction, retried whole
    /// (a few times) if the server aborts it for a deadlock with another writer.
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError>;

    /// A page of `feed`, newest first by the membership's score (for a chronological feed the
    /// post's time: its `createdAt`, never later than when it was indexed), ties by the
    /// higher insertion sequence: the visible items after `after` in that order (`None`: from
    /// the top), at most `limit`. Visible: the author (of a repost item, the reposter) is
    /// neither deactivated nor removed, and the post has at least the membership's
    /// `min_likes` likes. Repost items come with [`FeedItem::repost`] set.
    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError>;

    /// The top `max` visible items of `feed` by score (ties: higher `seq` first), to take a
    /// ranking snapshot from. Repost items are not ranked.
    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError>;

    /// Stores a ranking snapshot: the ordered `uris` of `feed` under `id`, taken at `at_ms`,
    /// replacing any snapshot with that id. Kept until
    /// [`expire_snapshots`](Self::expire_snapshots) passes `at_ms`; in a shared database every
    /// server sees it.
    async fn save_snapshot(
        &self,
        id: &str,
        feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError>;

    /// The uris at positions `offset..offset + limit` of snapshot `id` (fewer at its end,
    /// none past it), or `None` for an unknown or expired id.
    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// Deletes the snapshots taken before `older_than_ms`; returns how many.
    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError>;

    /// Which of `uris` are live posts: stored (not deleted or pruned), and the author neither
    /// deactivated nor removed. For dropping gone items from a snapshot's page.
    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError>;

    /// The stored post `uri` with its like and repost counts, visible or not.
    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError>;

    /// The memberships of `feed` whose post was indexed at or after `since_ms`, newest first
    /// (by `indexed_at_ms`, then `seq`), at most `max`, visible or not (hidden ones may show
    /// again, with their scores): what a rescoring pass walks.
    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError>;

    /// Retention for `feed`: removes its memberships indexed before `older_than_ms`, the posts
    /// that are then in no feed (with their like and repost records), and the interactions
    /// recorded before `older_than_ms` for `feed` or for no feed. Returns the memberships
    /// removed.
    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError>;

    /// Memberships per feed (visible or not), ordered by feed name (byte order); feeds with
    /// none are absent.
    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Stored interactions per feed, ordered by feed name (byte order); those that named no
    /// feed are counted under `""`.
    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Bytes the data takes: SQLite's `page_count * page_size` (the main file, without the
    /// WAL); PostgreSQL's total size of the tables and indexes in the store's schema;
    /// 0 for [`MemoryStore`](crate::MemoryStore).
    async fn size_bytes(&self) -> Result<u64, StoreError>;
}

/// Checks a batch and cleans its strings: the step every backend's `apply` starts with.
pub(crate) fn prepare(mut writes: Vec<FeedWrite>) -> Result<Vec<FeedWrite>, StoreError> {
    for (i, write) in writes.iter_mut().enumerate() {
        let kind = write.kind_str();
        let refuse = |what: String| {
            StoreError::invalid(format!(
                "feed write {} of the batch ({kind}) is refused: {what}; nothing was written",
                i + 1
            ))
        };
        match write {
            FeedWrite::UpsertPost { post, feeds } => {
                for m in feeds.iter() {
                    if !m.score.is_finite() {
                        return Err(refuse(format!(
                            "the score of {} in feed {:?} is {}, not a finite number",
                            post.uri, m.feed, m.score
                        )));
                    }
                    if m.half_life_s.is_some_and(|h| !(h.is_finite() && h > 0.0)) {
                        return Err(refuse(format!(
                            "the half-life of {} in feed {:?} is {:?}, not a positive number of seconds",
                            post.uri, m.feed, m.half_life_s
                        )));
                    }
                    if i64::try_from(m.min_likes).is_err() {
                        return Err(refuse(format!(
                            "min_likes {} of {} in feed {:?} is above i64::MAX",
                            m.min_likes, post.uri, m.feed
                        )));
                    }
                }
                clean_post(post);
                for m in feeds.iter_mut() {
                    clean(&mut m.feed);
                }
            }
            FeedWrite::SetScore { feed, uri, score } => {
                if !score.is_finite() {
                    return Err(refuse(format!(
                        "the score of {uri} in feed {feed:?} is {score}, not a finite number"
                    )));
                }
                clean(feed);
                clean(uri);
            }
            FeedWrite::DeletePost { uri }
            | FeedWrite::RemoveLike { uri }
            | FeedWrite::RemoveRepost { uri } => clean(uri),
            FeedWrite::AddLike { uri, subject } | FeedWrite::AddRepost { uri, subject } => {
                clean(uri);
                clean(subject);
            }
            FeedWrite::SetAccountStatus { did, .. } => clean(did),
            FeedWrite::Interaction {
                feed,
                requester,
                item,
                event,
                feed_context,
                ..
            } => {
                clean_opt(feed);
                clean(requester);
                clean(item);
                clean(event);
                clean_opt(feed_context);
            }
        }
    }
    Ok(writes)
}

fn clean_post(post: &mut PostRow) {
    for s in [
        &mut post.uri,
        &mut post.cid,
        &mut post.author,
        &mut post.rkey,
        &mut post.text,
    ] {
        clean(s);
    }
    for s in [
        &mut post.reply_parent,
        &mut post.reply_root,
        &mut post.embed_kind,
        &mut post.repost_of,
    ] {
        clean_opt(s);
    }
    for list in [
        &mut post.langs,
        &mut post.hashtags,
        &mut post.mentions,
        &mut post.labels,
    ] {
        list.iter_mut().for_each(clean);
    }
}

/// Replaces NUL, which PostgreSQL text cannot hold, with U+FFFD.
fn clean(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
    }
}

fn clean_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        clean(s);
    }
}

/// A string argument of a read, cleaned the same way (a snapshot id may come from a client's
/// cursor).
pub(crate) fn clean_arg(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// `[lo, hi)`: the uris of the records of `did`, `at://DID/…`, as a byte-order range.
pub(crate) fn record_uri_range(did: &str) -> (String, String) {
    (format!("at://{did}/"), format!("at://{did}0"))
}

/// A `usize` argument as a SQL integer (saturating).
pub(crate) fn to_sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back from SQL (never negative: the schema checks it).
pub(crate) fn from_sql_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `min_likes` as a SQL integer; [`prepare`] has checked the range.
pub(crate) fn min_likes_to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;

    fn upsert(score: f64, min_likes: u64) -> FeedWrite {
        FeedWrite::UpsertPost {
            post: PostRow {
                uri: "at://did:plc:a/app.bsky.feed.post/1".into(),
                ..PostRow::default()
            },
            feeds: vec![Membership {
                feed: "f".into(),
                score,
                min_likes,
                half_life_s: None,
            }],
        }
    }

    #[test]
    fn bad_values_are_refused_with_their_position() {
        for bad in [
            upsert(f64::NAN, 0),
            upsert(f64::INFINITY, 0),
            upsert(1.0, u64::MAX),
        ] {
            let err = prepare(vec![upsert(1.0, 0), bad]).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::InvalidValue);
            let msg = err.to_string();
            assert!(
                msg.contains("feed write 2 of the batch (upsert_post)"),
                "{msg}"
            );
        }
        let err = prepare(vec![FeedWrite::SetScore {
            feed: "f".into(),
            uri: "u".into(),
            score: f64::NEG_INFINITY,
        }])
        .unwrap_err();
        assert!(err.to_string().contains("(set_score)"), "{err}");
        assert!(prepare(vec![upsert(-0.0, i64::MAX as u64)]).is_ok());
    }

    #[test]
    fn nul_is_replaced() {
        let mut write = upsert(1.0, 0);
        if let FeedWrite::UpsertPost { post, .. } = &mut write {
            post.text = "a\0b".into();
            post.langs = vec!["e\0n".into()];
            post.embed_kind = Some("\0".into());
        }
        let out = prepare(vec![write]).unwrap();
        let FeedWrite::UpsertPost { post, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(post.text, "a\u{FFFD}b");
        assert_eq!(post.langs, ["e\u{FFFD}n"]);
        assert_eq!(post.embed_kind.as_deref(), Some("\u{FFFD}"));
        assert_eq!(clean_arg("x\0"), "x\u{FFFD}");
        assert!(matches!(clean_arg("x"), Cow::Borrowed("x")));
    }

    #[test]
    fn record_range_covers_exactly_the_did() {
        let (lo, hi) = record_uri_range("did:plc:abc");
        let inside = "at://did:plc:abc/app.bsky.feed.like/3k";
        assert!(lo.as_str() <= inside && inside < hi.as_str());
        for outside in [
            "at://did:plc:abcd/app.bsky.feed.like/3k",
            "at://did:plc:ab/app.bsky.feed.like/3k",
            "at://did:plc:abc",
        ] {
            assert!(
                !(lo.as_str() <= outside && outside < hi.as_str()),
                "{outside}"
            );
        }
    }
}
