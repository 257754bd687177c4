//! [`CachingResolver`]: a TTL cache in front of any [`Resolver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use tokio::sync::OnceCell;

use crate::document::DidDocument;
use crate::resolve::{ResolveError, ResolveErrorKind, Resolver};

/// How long a resolved document is kept, unless configured.
pub const DEFAULT_HIT_TTL: Duration = Duration::from_secs(60 * 60);

/// How long a definitive failure (not found, bad document, id mismatch) is kept, unless
/// configured.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5 * 60);

/// How many DIDs the cache holds at most, unless configured.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// How many bytes of documents the cache holds at most, unless configured: documents come from
/// the network (a did:web host can serve 64 KiB of aliases), so entries alone do not bound it.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// Settings for a [`CachingResolver`].
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// How long a document is served from the cache. Default [`DEFAULT_HIT_TTL`].
    pub hit_ttl: Duration,
    /// How long a [`ResolveErrorKind::NotFound`], [`ResolveErrorKind::BadDocument`] or
    /// [`ResolveErrorKind::Mismatch`] answer is served from the cache. Network failures and
    /// malformed or unsupported DIDs are never cached. Default [`DEFAULT_NEGATIVE_TTL`].
    pub negative_ttl: Duration,
    /// The most entries held; beyond it the least useful are evicted (moka's TinyLFU policy).
    /// Default [`DEFAULT_MAX_ENTRIES`].
    pub max_entries: u64,
    /// The most bytes of documents held (each entry weighed by its strings); beyond it the
    /// least useful are evicted. Default [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            hit_ttl: DEFAULT_HIT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// One cached answer.
#[derive(Clone, Debug)]
enum Cached {
    Found(Arc<DidDocument>),
    Failed(ResolveError),
}

impl Cached {
    /// About how many bytes the entry holds: its strings, plus a fixed overhead.
    fn weight(&self, did: &str) -> u32 {
        const OVERHEAD: usize = 128;
        let doc = match self {
            Cached::Found(d) => {
                d.id.len()
                    + d.also_known_as.iter().map(String::len).sum::<usize>()
                    + d.verification_method
                        .iter()
                        .map(|m| {
                            m.id.len()
                                + m.kind.len()
                                + m.controller.as_ref().map_or(0, String::len)
                                + m.public_key_multibase.as_ref().map_or(0, String::len)
                                + OVERHEAD
                        })
                        .sum::<usize>()
                    + d.service
                        .iter()
                        .map(|s| {
                            s.id.len()
                                + s.kind.len()
                                + s.service_endpoint.to_string().len()
                                + OVERHEAD
                        })
                        .sum::<usize>()
            }
            Cached::Failed(e) => e.to_string().len(),
        };
        u32::try_from(did.len() + doc + OVERHEAD).unwrap_or(u32::MAX)
    }

    fn into_result(self) -> Result<Arc<DidDocument>, ResolveError> {
        match self {
            Cached::Found(doc) => Ok(doc),
            Cached::Failed(e) => Err(e),
        }
    }
}

/// Per-entry lifetime: hits and failures expire on different clocks.
struct TtlByOutcome {
    hit: Duration,
    negative: Duration,
}

impl Expiry<String, Cached> for TtlByOutcome {
    fn expire_after_create(
        &self,
        _did: &String,
        value: &Cached,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Cached::Found(_) => self.hit,
            Cached::Failed(_) => self.negative,
        })
    }
}

type Flight = Arc<OnceCell<Result<Cached, ResolveError>>>;

/// Wraps a [`Resolver`] with a bounded TTL cache (caching is a wrapper, not a flag).
///
/// Documents are kept for [`CacheConfig::hit_ttl`] (1 h), definitive failures for
/// [`CacheConfig::negative_ttl`] (5 min); at most [`CacheConfig::max_entries`] (100k) DIDs.
/// Concurrent resolutions of one DID share a single call to the inner resolver.
/// [`Resolver::purge`] drops the entry and detaches any resolution in flight, so the next
/// `resolve` goes to the inner resolver and a fetch that began before the purge is not cached.
pub struct CachingResolver<R> {
    inner: R,
    cache: moka::sync::Cache<String, Cached>,
    /// Resolutions in flight, by DID. Held only briefly, never across an `.await`; a cache
    /// insert and the removal of its flight happen under it, so `purge` cannot interleave.
    flights: Mutex<HashMap<String, Flight>>,
}

impl<R: Resolver> CachingResolver<R> {
    /// Wraps `inner` with the default cache settings.
    pub fn new(inner: R) -> Self {
        Self::with_config(inner, CacheConfig::default())
    }

    /// Wraps `inner` with the given cache settings.
    pub fn with_config(inner: R, config: CacheConfig) -> Self {
        // moka bounds one measure; weigh by bytes and let the entry cap come from the same
        // budget: an entry never weighs less than the bytes budget divided by max_entries.
        let floor = u32::try_from(config.max_bytes / config.max_entries.max(1)).unwrap_or(u32::MAX);
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |did: &String, v: &Cached| v.weight(did).max(floor))
            .expire_after(TtlByOutcome {
                hit: config.hit_ttl,
                negative: config.negative_ttl,
            })
            .build();
        CachingResolver {
            inner,
            cache,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Roughly how many entries are cached (evictions are applied lazily).
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<String, Flight>> {
        // Nothing panics while holding the lock, but a poisoned map is still consistent.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self, did: &str, flight: &Flight) -> Result<Cached, ResolveError> {
        let answer = match self.inner.resolve(did).await {
            Ok(doc) => Ok(Cached::Found(doc)),
            Err(e) if is_definitive(e.kind) => Ok(Cached::Failed(e)),
            Err(e) => Err(e),
        };
        let mut flights = self.flights();
        // Only the flight still registered may fill the cache: a purge since it began removed it.
        if flights.get(did).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(did);
            if let Ok(cached) = &answer {
                self.cache.insert(did.to_owned(), cached.clone());
            }
        }
        answer
    }
}

/// Failures that say something lasting about the DID, worth remembering for a while.
fn is_definitive(kind: ResolveErrorKind) -> bool {
    matches!(
        kind,
        ResolveErrorKind::NotFound | ResolveErrorKind::BadDocument | ResolveErrorKind::Mismatch
    )
}

#[async_trait]
impl<R: Resolver> Resolver for CachingResolver<R> {
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
        if let Some(hit) = self.cache.get(did) {
            return hit.into_result();
        }
        let flight = {
            let mut flights = self.flights();
            // Re-check under the lock: a flight may have landed since the first look.
            if let Some(hit) = self.cache.get(did) {
                return hit.into_result();
            }
            flights.entry(did.to_owned()).or_default().clone()
        };
        // The first caller runs the fetch; the others wait for its answer. If the first is
        // cancelled, a waiter takes over.
        flight
            .get_or_init(|| self.fetch(did, &flight))
            .await
            .clone()
            .and_then(Cached::into_result)
    }

    fn purge(&self, did: &str) {
        let mut flights = self.flights();
        flights.remove(did);
        self.cache.invalidate(did);
        drop(flights);
        self.inner.purge(did);
    }
}

impl<R> std::fmt::Debug for CachingResolver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingResolver")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers from a mutable map, counting calls; `None` in the map means a network failure.
    #[derive(Default)]
    struct Scripted {
        docs: Mutex<HashMap<String, Option<String>>>,
        calls: AtomicUsize,
        delay: Duration,
    }

    impl Scripted {
        fn set(&self, did: &str, handle: Option<&str>) {
            self.docs
                .lock()
                .expect("lock")
                .insert(did.into(), handle.map(str::to_owned));
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Resolver for Scripted {
        async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // Answer as of the start of the call, however long it then takes.
            let entry = self.docs.lock().expect("lock").get(did).cloned();
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            match entry {
                Some(Some(handle)) => Ok(Arc::new(DidDocument {
                    id: did.into(),
                    also_known_as: vec![format!("at://{handle}")],
                    verification_method: vec![],
                    service: vec![],
                })),
                Some(None) => Err(ResolveError::new(ResolveErrorKind::Network, did, "down")),
                None => Err(ResolveError::new(
                    ResolveErrorKind::NotFound,
                    did,
                    "no such DID",
                )),
            }
        }
        fn purge(&self, _did: &str) {}
    }

    const A: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

    #[tokio::test]
    async fn hits_are_served_from_cache_until_purged() {
        let inner = Scripted::default();
        inner.set(A, Some("alice.test"));
        let cache = CachingResolver::new(inner);
        for _ in 0..3 {
            let doc = cache.resolve(A).await.expect("doc");
            assert_eq!(doc.handle(), Some("alice.test"));
        }
        assert_eq!(cache.inner().calls(), 1);

        cache.inner().set(A, Some("alice2.test"));
        cache.purge(A);
        let doc = cache.resolve(A).await.expect("doc");
        assert_eq!(doc.handle(), Some("alice2.test"));
        assert_eq!(cache.inner().calls(), 2);
    }

    #[tokio::test]
    async fn not_found_is_cached_briefly_and_network_errors_not_at_all() {
        let inner = Scripted::default();
        inner.set(B, None);
        let cache = CachingResolver::with_config(
            inner,
            CacheConfig {
                negative_ttl: Duration::from_millis(300),
                ..CacheConfig::default()
            },
        );
        for _ in 0..3 {
            let e = cache.resolve(A).await.expect_err("missing");
            assert_eq!(e.kind, ResolveErrorKind::NotFound);
        }
        assert_eq!(cache.inner().calls(), 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        cache.resolve(A).await.expect_err("missing");
        assert_eq!(cache.inner().calls(), 2);

        for _ in 0..3 {
            let e = cache.resolve(B).await.expect_err("down");
            assert_eq!(e.kind, ResolveErrorKind::Network);
        }
        assert_eq!(cache.inner().calls(), 5);
    }

    #[tokio::test]
    async fn hits_expire() {
        let inner = Scripted::default();
        inner.set(A, Some("alice.test"));
        let cache = CachingResolver::with_config(
            inner,
            CacheConfig {
                hit_ttl: Duration::from_millis(200),
                ..CacheConfig::default()
            },
        );
        cache.resolve(A).await.expect("doc");
        cache.resolve(A).await.expect("doc");
        assert_eq!(cache.inner().calls(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        cache.resolve(A).await.expect("doc");
        assert_eq!(cache.inner().calls(), 2);
    }

    #[tokio::test]
    async fn concurrent_resolutions_share_one_fetch() {
        let inner = Scripted {
            delay: Duration::from_millis(100),
            ..Scripted::default()
        };
        inner.set(A, Some("alice.test"));
        let cache = Arc::new(CachingResolver::new(inner));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.resolve(A).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("join").expect("doc");
        }
        assert_eq!(cache.inner().calls(), 1);
    }

    #[tokio::test]
    async fn a_purge_during_a_fetch_keeps_its_answer_out_of_the_cache() {
        let inner = Scripted {
            delay: Duration::from_millis(200),
            ..Scripted::default()
        };
        inner.set(A, Some("old.test"));
        let cache = Arc::new(CachingResolver::new(inner));
        let early = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.resolve(A).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.inner().set(A, Some("new.test"));
        cache.purge(A);
        // The early caller still gets the answer it waited for...
        let doc = early.await.expect("join").expect("doc");
        assert_eq!(doc.handle(), Some("old.test"));
        // ...but it was not cached: the next resolve fetches the current document.
        let doc = cache.resolve(A).await.expect("doc");
        assert_eq!(doc.handle(), Some("new.test"));
        assert_eq!(cache.inner().calls(), 2);
    }

    #[tokio::test]
    async fn size_is_bounded() {
        let inner = Scripted::default();
        let dids: Vec<String> = (0..50).map(|i| format!("did:web:host{i}.test")).collect();
        for did in &dids {
            inner.set(did, Some("x.test"));
        }
        let cache = CachingResolver::with_config(
            inner,
            CacheConfig {
                max_entries: 10,
                ..CacheConfig::default()
            },
        );
        for did in &dids {
            cache.resolve(did).await.expect("doc");
        }
        assert!(cache.entry_count() <= 10, "{}", cache.entry_count());
    }

    /// Documents come from the network: a host serving 60 KiB of aliases per DID must not make
    /// a cache of many entries hold gigabytes. Entries are weighed by their bytes.
    #[tokio::test]
    async fn bytes_are_bounded_not_only_entries() {
        let inner = Scripted::default();
        let long = format!("{}.test", "a".repeat(60 * 1024));
        let dids: Vec<String> = (0..100).map(|i| format!("did:web:big{i}.test")).collect();
        for did in &dids {
            inner.set(did, Some(&long));
        }
        let cache = CachingResolver::with_config(
            inner,
            CacheConfig {
                max_bytes: 1 << 20,
                ..CacheConfig::default()
            },
        );
        for did in &dids {
            cache.resolve(did).await.expect("doc");
        }
        let n = cache.entry_count();
        assert!(n <= 17, "{n} documents of 60 KiB in a 1 MiB cache");
    }
}
