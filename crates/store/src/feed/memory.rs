//! [`FeedStore`] for [`MemoryStore`]: the same rules as the SQL backends, in maps.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;

use super::{
    clean_arg, engagement_score, prepare, record_uri_range, AccountStatus, FeedItem, FeedStore,
    FeedWrite, PagePosition, PostRow,
};
use crate::{MemoryStore, StoreError};

/// The feed tables of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct FeedState {
    /// The last seq handed out; seqs start at 1 and are never reused.
    last_seq: i64,
    posts: BTreeMap<i64, StoredPost>,
    by_uri: HashMap<String, i64>,
    /// feed → seq → membership.
    items: BTreeMap<String, BTreeMap<i64, Item>>,
    /// Record uri → post seq (ordered, for removing an account's records by uri prefix).
    likes: BTreeMap<String, i64>,
    reposts: BTreeMap<String, i64>,
    /// Accounts that are not active.
    hidden: HashMap<String, AccountStatus>,
    snapshots: HashMap<String, Snapshot>,
    interactions: Vec<Interaction>,
}

#[derive(Debug)]
struct StoredPost {
    row: PostRow,
    likes: u64,
    reposts: u64,
    feeds: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    score: f64,
    min_likes: u64,
    indexed_at_ms: i64,
    /// An engagement-ranked feed's half-life: the score follows the counts.
    half_life: Option<f64>,
}

#[derive(Debug)]
struct Snapshot {
    uris: Vec<String>,
    at_ms: i64,
}

#[derive(Debug)]
struct Interaction {
    feed: Option<String>,
    at_ms: i64,
}

#[derive(Clone, Copy)]
enum Engagement {
    Like,
    Repost,
}

impl FeedState {
    fn write(&mut self, write: FeedWrite) {
        match write {
            FeedWrite::UpsertPost { post, feeds } => {
                if feeds.is_empty() {
                    self.delete_post(&post.uri);
                    return;
                }
                let seq = match self.by_uri.get(&post.uri) {
                    Some(&seq) => seq,
                    None => {
                        self.last_seq += 1;
                        let seq = self.last_seq;
                        self.by_uri.insert(post.uri.clone(), seq);
                        self.posts.insert(
                            seq,
                            StoredPost {
                                row: post.clone(),
                                likes: 0,
                                reposts: 0,
                                feeds: BTreeSet::new(),
                            },
                        );
                        seq
                    }
                };
                let Some(stored) = self.posts.get_mut(&seq) else {
                    return;
                };
                let indexed_at_ms = stored.row.indexed_at_ms;
                stored.row = PostRow {
                    indexed_at_ms,
                    ..post
                };
                let (likes, reposts, created) =
                    (stored.likes, stored.reposts, stored.row.created_at_ms);
                for feed in std::mem::take(&mut stored.feeds) {
                    if let Some(items) = self.items.get_mut(&feed) {
                        items.remove(&seq);
                    }
                }
                for m in feeds {
                    stored.feeds.insert(m.feed.clone());
                    let item = Item {
                        score: m
                            .half_life_s
                            .map_or(m.score, |h| engagement_score(likes, reposts, created, h)),
                        min_likes: m.min_likes,
                        indexed_at_ms,
                        half_life: m.half_life_s,
                    };
                    self.items.entry(m.feed).or_default().insert(seq, item);
                }
                self.drop_empty_feeds();
            }
            FeedWrite::DeletePost { uri } => self.delete_post(&uri),
            FeedWrite::AddLike { uri, subject } => self.add(Engagement::Like, uri, &subject),
            FeedWrite::RemoveLike { uri } => self.remove(Engagement::Like, &uri),
            FeedWrite::AddRepost { uri, subject } => self.add(Engagement::Repost, uri, &subject),
            FeedWrite::RemoveRepost { uri } => self.remove(Engagement::Repost, &uri),
            FeedWrite::SetAccountStatus { did, status } => match status {
                AccountStatus::Active => {
                    self.hidden.remove(&did);
                }
                AccountStatus::Deactivated => {
                    self.hidden.insert(did, status);
                }
                AccountStatus::Removed => {
                    let theirs: Vec<String> = self
                        .posts
                        .values()
                        .filter(|p| p.row.author == did)
                        .map(|p| p.row.uri.clone())
                        .collect();
                    for uri in theirs {
                        self.delete_post(&uri);
                    }
                    let (lo, hi) = record_uri_range(&did);
                    for kind in [Engagement::Like, Engagement::Repost] {
                        let records: Vec<String> = self
                            .records(kind)
                            .range(lo.clone()..hi.clone())
                            .map(|(u, _)| u.clone())
                            .collect();
                        for uri in records {
                            self.remove(kind, &uri);
                        }
                    }
                    self.hidden.insert(did, status);
                }
            },
            FeedWrite::SetScore { feed, uri, score } => {
                if let Some(seq) = self.by_uri.get(&uri) {
                    if let Some(item) = self.items.get_mut(&feed).and_then(|i| i.get_mut(seq)) {
                        item.score = score;
                    }
                }
            }
            FeedWrite::Interaction { feed, at_ms, .. } => {
                self.interactions.push(Interaction { feed, at_ms });
            }
        }
    }

    fn delete_post(&mut self, uri: &str) {
        let repost_items: Vec<String> = self
            .posts
            .values()
            .filter(|p| p.row.repost_of.as_deref() == Some(uri))
            .map(|p| p.row.uri.clone())
            .collect();
        for item in repost_items {
            self.delete_post(&item);
        }
        let Some(seq) = self.by_uri.remove(uri) else {
            return;
        };
        if let Some(post) = self.posts.remove(&seq) {
            for feed in post.feeds {
                if let Some(items) = self.items.get_mut(&feed) {
                    items.remove(&seq);
                }
            }
        }
        self.likes.retain(|_, s| *s != seq);
        self.reposts.retain(|_, s| *s != seq);
        self.drop_empty_feeds();
    }

    fn drop_empty_feeds(&mut self) {
        self.items.retain(|_, items| !items.is_empty());
    }

    fn records(&mut self, kind: Engagement) -> &mut BTreeMap<String, i64> {
        match kind {
            Engagement::Like => &mut self.likes,
            Engagement::Repost => &mut self.reposts,
        }
    }

    fn count(&mut self, kind: Engagement, seq: i64) -> Option<&mut u64> {
        let post = self.posts.get_mut(&seq)?;
        Some(match kind {
            Engagement::Like => &mut post.likes,
            Engagement::Repost => &mut post.reposts,
        })
    }

    fn add(&mut self, kind: Engagement, uri: String, subject: &str) {
        let Some(&seq) = self.by_uri.get(subject) else {
            return;
        };
        let records = self.records(kind);
        if records.contains_key(&uri) {
            return;
        }
        records.insert(uri, seq);
        if let Some(count) = self.count(kind, seq) {
            *count += 1;
        }
        self.rescore(seq);
    }

    fn remove(&mut self, kind: Engagement, uri: &str) {
        if let Some(seq) = self.records(kind).remove(uri) {
            if let Some(count) = self.count(kind, seq) {
                *count = count.saturating_sub(1);
            }
            self.rescore(seq);
        }
    }

    /// Recomputes the post's engagement scores from its counts.
    fn rescore(&mut self, seq: i64) {
        let Some(post) = self.posts.get(&seq) else {
            return;
        };
        let (likes, reposts, created) = (post.likes, post.reposts, post.row.created_at_ms);
        for feed in &post.feeds {
            if let Some(item) = self.items.get_mut(feed).and_then(|i| i.get_mut(&seq)) {
                if let Some(h) = item.half_life {
                    item.score = engagement_score(likes, reposts, created, h);
                }
            }
        }
    }

    fn visible(&self, seq: i64, item: &Item) -> Option<&StoredPost> {
        let post = self.posts.get(&seq)?;
        (post.likes >= item.min_likes && !self.hidden.contains_key(&post.row.author))
            .then_some(post)
    }

    fn feed_item(&self, seq: i64, item: &Item, post: &StoredPost) -> FeedItem {
        let (uri, repost, likes, reposts) = match &post.row.repost_of {
            None => (post.row.uri.clone(), None, post.likes, post.reposts),
            // A repost item shows the reposted post, with its counts when it is stored.
            Some(subject) => {
                let stored = self.by_uri.get(subject).and_then(|s| self.posts.get(s));
                (
                    subject.clone(),
                    Some(post.row.uri.clone()),
                    stored.map_or(0, |s| s.likes),
                    stored.map_or(0, |s| s.reposts),
                )
            }
        };
        FeedItem {
            seq,
            uri,
            repost,
            score: item.score,
            likes,
            reposts,
            indexed_at_ms: item.indexed_at_ms,
        }
    }
}

#[async_trait]
impl FeedStore for MemoryStore {
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError> {
        // Checked before the first change, and nothing after can fail: all or nothing.
        let writes = prepare(writes)?;
        let mut state = self.feed_state();
        for write in writes {
            state.write(write);
        }
        Ok(())
    }

    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let state = self.feed_state();
        let Some(items) = state.items.get(&*clean_arg(feed)) else {
            return Ok(Vec::new());
        };
        let mut all: Vec<FeedItem> = items
            .iter()
            .filter(|(&seq, item)| after.is_none_or(|a| (item.score, seq) < (a.score, a.seq)))
            .filter_map(|(&seq, item)| {
                let post = state.visible(seq, item)?;
                Some(state.feed_item(seq, item, post))
            })
            .collect();
        all.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.seq.cmp(&a.seq)));
        all.truncate(limit);
        Ok(all)
    }

    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError> {
        let state = self.feed_state();
        let Some(items) = state.items.get(&*clean_arg(feed)) else {
            return Ok(Vec::new());
        };
        let mut all: Vec<FeedItem> = items
            .iter()
            .filter_map(|(&seq, item)| {
                let post = state.visible(seq, item)?;
                post.row
                    .repost_of
                    .is_none()
                    .then(|| state.feed_item(seq, item, post))
            })
            .collect();
        all.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.seq.cmp(&a.seq)));
        all.truncate(max);
        Ok(all)
    }

    async fn save_snapshot(
        &self,
        id: &str,
        _feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let id = clean_arg(id).into_owned();
        let snapshot = Snapshot {
            uris: uris.iter().map(|u| clean_arg(u).into_owned()).collect(),
            at_ms,
        };
        self.feed_state().snapshots.insert(id, snapshot);
        Ok(())
    }

    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let state = self.feed_state();
        Ok(state
            .snapshots
            .get(&*clean_arg(id))
            .map(|s| s.uris.iter().skip(offset).take(limit).cloned().collect()))
    }

    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.feed_state();
        let before = state.snapshots.len();
        state.snapshots.retain(|_, s| s.at_ms >= older_than_ms);
        Ok((before - state.snapshots.len()) as u64)
    }

    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError> {
        let state = self.feed_state();
        Ok(uris
            .iter()
            .map(|uri| clean_arg(uri).into_owned())
            .filter(|uri| {
                state
                    .by_uri
                    .get(uri)
                    .and_then(|seq| state.posts.get(seq))
                    .is_some_and(|p| !state.hidden.contains_key(&p.row.author))
            })
            .collect())
    }

    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError> {
        let state = self.feed_state();
        Ok(state
            .by_uri
            .get(&*clean_arg(uri))
            .and_then(|seq| state.posts.get(seq))
            .map(|p| (p.row.clone(), p.likes, p.reposts)))
    }

    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let state = self.feed_state();
        let Some(items) = state.items.get(&*clean_arg(feed)) else {
            return Ok(Vec::new());
        };
        let mut recent: Vec<FeedItem> = items
            .iter()
            .filter(|(_, item)| item.indexed_at_ms >= since_ms)
            .filter_map(|(&seq, item)| {
                let post = state.posts.get(&seq)?;
                post.row
                    .repost_of
                    .is_none()
                    .then(|| state.feed_item(seq, item, post))
            })
            .collect();
        recent.sort_by_key(|i| std::cmp::Reverse((i.indexed_at_ms, i.seq)));
        recent.truncate(max);
        Ok(recent)
    }

    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError> {
        let feed = &*clean_arg(feed);
        let mut state = self.feed_state();
        let mut removed = Vec::new();
        if let Some(items) = state.items.get_mut(feed) {
            items.retain(|&seq, item| {
                let keep = item.indexed_at_ms >= older_than_ms;
                if !keep {
                    removed.push(seq);
                }
                keep
            });
        }
        state.drop_empty_feeds();
        for &seq in &removed {
            let Some(post) = state.posts.get_mut(&seq) else {
                continue;
            };
            post.feeds.remove(feed);
            if post.feeds.is_empty() {
                let uri = post.row.uri.clone();
                state.delete_post(&uri);
            }
        }
        state
            .interactions
            .retain(|i| i.at_ms >= older_than_ms || i.feed.as_deref().is_some_and(|f| f != feed));
        Ok(removed.len() as u64)
    }

    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let state = self.feed_state();
        Ok(state
            .items
            .iter()
            .map(|(feed, items)| (feed.clone(), items.len() as u64))
            .collect())
    }

    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let state = self.feed_state();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for i in &state.interactions {
            *counts
                .entry(i.feed.clone().unwrap_or_default())
                .or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
