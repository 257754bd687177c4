//! [`FirstPageCache`]: a [`FeedStore`] in front of another that answers repeated first pages of
//! a chronological feed from memory.
//!
//! Most getFeedSkeleton requests are first pages (every app refresh), and between two indexer
//! batches the first page of a feed is the same for everyone. Without the cache each one ran
//! the page query on a reader (36% of the server's CPU at 19,000 requests/s). A first page is
//! kept per `(feed, limit)` together with the store's write generation read *before* the query
//! ran: every [`apply`](FeedStore::apply) and [`prune`](FeedStore::prune) through the cache
//! bumps the generation after it commits, so a page cached before or during a write is never
//! served after it. Writes by another process (a separate `skystream ingest` on the same
//! database) cannot bump it, so a cached page also expires after [`FirstPageCache::ttl`].
//! Pages with a cursor, rankings and everything else go straight to the inner store.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{FeedItem, FeedStore, FeedWrite, PagePosition, PostRow};
use crate::StoreError;

/// How long a cached first page may be served when nothing in this process wrote meanwhile.
pub const FIRST_PAGE_TTL: Duration = Duration::from_secs(1);

/// At most this many `(feed, limit)` pages are kept; past it the cache starts over.
const MAX_PAGES: usize = 4096;

struct Cached {
    generation: u64,
    at: Instant,
    items: Arc<Vec<FeedItem>>,
}

/// A [`FeedStore`] that caches first pages of chronological feeds (see the module docs).
/// Everything that writes must go through it for its invalidation to be exact.
pub struct FirstPageCache {
    inner: Arc<dyn FeedStore>,
    ttl: Duration,
    generation: AtomicU64,
    /// feed → limit → page (keyed so a lookup borrows the feed name instead of copying it).
    pages: Mutex<HashMap<String, HashMap<usize, Cached>>>,
    /// Held while a missed page is read: after a write, the requests that arrive together
    /// wait for one read instead of all running it (which put the 99th percentile over 5 ms
    /// at 48,000 requests/s).
    refill: tokio::sync::Mutex<()>,
}

impl FirstPageCache {
    /// Caches first pages of `inner` for at most `ttl` (see [`FIRST_PAGE_TTL`]).
    pub fn new(inner: Arc<dyn FeedStore>, ttl: Duration) -> FirstPageCache {
        FirstPageCache {
            inner,
            ttl,
            generation: AtomicU64::new(0),
            pages: Mutex::new(HashMap::new()),
            refill: tokio::sync::Mutex::new(()),
        }
    }

    /// How long a page may be served without a write through this cache.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn written(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached page, counted as a hit; or, when there is none still fresh, the write
    /// generation to file a page read now under.
    fn lookup(&self, feed: &str, limit: usize) -> Result<Vec<FeedItem>, u64> {
        let generation = self.generation.load(Ordering::Acquire);
        let hit = {
            let pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
            pages
                .get(feed)
                .and_then(|by_limit| by_limit.get(&limit))
                .filter(|c| c.generation == generation && c.at.elapsed() < self.ttl)
                .map(|c| Arc::clone(&c.items))
        };
        // The page is copied after the lock is let go.
        let items = hit.ok_or(generation)?;
        metrics::counter!("skystream_store_first_page_cache_total", "result" => "hit").increment(1);
        Ok(items.as_ref().clone())
    }
}

#[async_trait]
impl FeedStore for FirstPageCache {
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError> {
        let result = self.inner.apply(writes).await;
        // Also after a failure: a PostgreSQL batch may have committed before its reply was lost.
        self.written();
        result
    }

    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        if after.is_some() {
            return self.inner.chronological_page(feed, after, limit).await;
        }
        if let Ok(items) = self.lookup(feed, limit) {
            return Ok(items);
        }
        let _refill = self.refill.lock().await;
        // Another request may have read the page while this one waited.
        let generation = match self.lookup(feed, limit) {
            Ok(items) => return Ok(items),
            Err(generation) => generation,
        };
        metrics::counter!("skystream_store_first_page_cache_total", "result" => "miss")
            .increment(1);
        let items = self.inner.chronological_page(feed, None, limit).await?;
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if pages.values().map(HashMap::len).sum::<usize>() >= MAX_PAGES {
            pages.clear();
        }
        pages.entry(feed.to_owned()).or_default().insert(
            limit,
            Cached {
                generation,
                at: Instant::now(),
                items: Arc::new(items.clone()),
            },
        );
        Ok(items)
    }

    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError> {
        self.inner.ranked_top(feed, max).await
    }

    async fn save_snapshot(
        &self,
        id: &str,
        feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.inner.save_snapshot(id, feed, uris, at_ms).await
    }

    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.inner.snapshot_slice(id, offset, limit).await
    }

    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        self.inner.expire_snapshots(older_than_ms).await
    }

    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError> {
        self.inner.live_posts(uris).await
    }

    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError> {
        self.inner.post(uri).await
    }

    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        self.inner.recent_posts(feed, since_ms, max).await
    }

    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError> {
        let result = self.inner.prune(feed, older_than_ms).await;
        self.written();
        result
    }

    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.feed_counts().await
    }

    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.interaction_counts().await
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        self.inner.size_bytes().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Membership, MemoryStore};

    fn upsert(rkey: &str) -> FeedWrite {
        FeedWrite::UpsertPost {
            post: PostRow {
                uri: format!("at://did:plc:a/app.bsky.feed.post/{rkey}"),
                author: "did:plc:a".into(),
                rkey: rkey.into(),
                ..PostRow::default()
            },
            feeds: vec![Membership {
                feed: "f".into(),
                score: 0.0,
                min_likes: 0,
                half_life_s: None,
            }],
        }
    }

    fn uris(items: &[FeedItem]) -> Vec<&str> {
        items.iter().map(|i| i.uri.as_str()).collect()
    }

    #[tokio::test]
    async fn a_write_through_the_cache_shows_at_once() {
        let inner = MemoryStore::new();
        let cache = FirstPageCache::new(Arc::new(inner.clone()), Duration::from_secs(3600));
        cache.apply(vec![upsert("1")]).await.unwrap();
        let first = cache.chronological_page("f", None, 10).await.unwrap();
        assert_eq!(uris(&first), ["at://did:plc:a/app.bsky.feed.post/1"]);
        cache.apply(vec![upsert("2")]).await.unwrap();
        let second = cache.chronological_page("f", None, 10).await.unwrap();
        assert_eq!(second.len(), 2, "a write through the cache invalidates it");
        // A cursor page and another limit are never the cached page.
        let rest = cache
            .chronological_page("f", Some(second[0].position()), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            cache.chronological_page("f", None, 1).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_write_elsewhere_shows_within_the_ttl() {
        let inner = MemoryStore::new();
        let cache = FirstPageCache::new(Arc::new(inner.clone()), Duration::from_millis(50));
        inner.apply(vec![upsert("1")]).await.unwrap();
        assert_eq!(
            cache.chronological_page("f", None, 10).await.unwrap().len(),
            1
        );
        // Written around the cache (another process): served from the cache until it expires.
        inner.apply(vec![upsert("2")]).await.unwrap();
        assert_eq!(
            cache.chronological_page("f", None, 10).await.unwrap().len(),
            1
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(
            cache.chronological_page("f", None, 10).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn prune_invalidates() {
        let inner = MemoryStore::new();
        let cache = FirstPageCache::new(Arc::new(inner), Duration::from_secs(3600));
        cache.apply(vec![upsert("1")]).await.unwrap();
        assert_eq!(
            cache.chronological_page("f", None, 10).await.unwrap().len(),
            1
        );
        assert_eq!(cache.prune("f", i64::MAX).await.unwrap(), 1);
        assert!(cache
            .chronological_page("f", None, 10)
            .await
            .unwrap()
            .is_empty());
    }
}
