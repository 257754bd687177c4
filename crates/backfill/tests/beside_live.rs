//! Two processes backfilling beside live ingest over one database (issue 15, item 2): the one
//! holding the lease backfills; one cut off from the database loses the lease, stops only its
//! backfill (its stop token, which is the process's, stays untouched), lets go of the
//! repository it was reading, and waits; the other takes over once the lease has expired; the
//! lease is held by one at a time; and a holder that finished never takes the lease back.

#![allow(clippy::unwrap_used)]

#[path = "../../store/tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use skystream_backfill::{
    Backfill, BackfillConfig, BesideLive, HandOff, HostError, Lease, MemoryHost, RepoHost,
    RepoPage, RepoSource, Window, BACKFILL_LEASE,
};
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_event::EventKind;
use skystream_pipeline::{Batch, Consumer, ConsumerError};
use skystream_repo::{RepoWriter, WriteOp};
use skystream_store::{
    BackfillProgress, BackfillStore, MemoryStore, RepoJob, RepoOutcome, RepoRow, Store, StoreError,
};
use skystream_syntax::Tid;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_millis(600);
const REPOS: u8 = 4;
const POSTS: usize = 3;

fn did(n: u8) -> String {
    format!("did:plc:besidelive{n:012}")
}

fn repo(n: u8) -> Vec<u8> {
    let mut w = RepoWriter::new(did(n), PrivateKey::from_seed(Algorithm::K256, 7));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let ops: Vec<WriteOp> = (0..POSTS)
        .map(|i| WriteOp::Create {
            path: format!(
                "app.bsky.feed.post/{}",
                Tid::from_parts(now - i as u64 * 1_000_000, 0)
            ),
            record: skystream_data::json::from_json(&json!({"$type": "app.bsky.feed.post", "text": format!("{n} {i}"), "createdAt": "2026-01-01T00:00:00Z"})).unwrap(),
        })
        .collect();
    w.apply(&ops, Tid::from_parts(now, 0).as_ref()).unwrap();
    w.export_car().unwrap().unwrap()
}

/// A host whose `getRepo` for the first repository waits until the test opens the gate, and
/// says when a read is waiting there.
#[derive(Clone)]
struct Gate {
    inner: MemoryHost,
    open: Arc<AtomicBool>,
    opened: Arc<Notify>,
    waiting: watch::Sender<u32>,
}

#[async_trait]
impl RepoHost for Gate {
    async fn list_repos(&self, cursor: Option<&str>) -> Result<RepoPage, HostError> {
        self.inner.list_repos(cursor).await
    }
    async fn get_repo(&self, did: &str) -> Result<Vec<u8>, HostError> {
        if did == self::did(0) {
            self.waiting.send_modify(|n| *n += 1);
            loop {
                let opened = self.opened.notified();
                if self.open.load(Ordering::SeqCst) {
                    break;
                }
                opened.await;
            }
        }
        self.inner.get_repo(did).await
    }
}

/// One process's view of the shared database: everything passes through, except that the
/// lease calls fail while `cut` is set (the process is cut off from the database).
struct Cuttable {
    inner: Store,
    cut: Arc<AtomicBool>,
    unreachable: StoreError,
}

impl Cuttable {
    fn check(&self) -> Result<(), StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            Err(self.unreachable.clone())
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl BackfillStore for Cuttable {
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError> {
        self.inner.enqueue_repos(dids).await
    }
    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError> {
        self.inner.requeue_repo(did).await
    }
    async fn claim_repos(&self, limit: usize, max: u32) -> Result<Vec<RepoJob>, StoreError> {
        self.inner.claim_repos(limit, max).await
    }
    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError> {
        self.inner.finish_repo(did, outcome).await
    }
    async fn reset_in_progress(&self) -> Result<u64, StoreError> {
        self.inner.reset_in_progress().await
    }
    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError> {
        self.inner.backfill_progress().await
    }
    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError> {
        self.inner.backfill_repo(did).await
    }
    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError> {
        self.inner.failed_repos(limit).await
    }
    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.backfill_value(key).await
    }
    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_backfill_value(key, value).await
    }
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.try_lease(name, holder, now_ms, ttl_ms).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.release_lease(name, holder).await
    }
}

/// Counts the posts it indexed.
#[derive(Clone, Default)]
struct Count(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl Consumer for Count {
    fn name(&self) -> &str {
        "count"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        for env in &batch.items {
            if let EventKind::Commit(c) = &env.event.kind {
                for op in &c.ops {
                    self.0
                        .lock()
                        .unwrap()
                        .push(format!("{}/{}", c.did, op.rkey));
                }
            }
        }
        Ok(())
    }
}

struct Process {
    beside: BesideLive,
    handoff: HandOff,
    cut: Arc<AtomicBool>,
    indexed: Count,
}

async fn unreachable() -> StoreError {
    Store::open("nosuchbackend://x").await.err().unwrap()
}

async fn process(store: &Store, host: Gate, holder: &str) -> Process {
    let cut = Arc::new(AtomicBool::new(false));
    let view: Arc<dyn BackfillStore> = Arc::new(Cuttable {
        inner: store.clone(),
        cut: cut.clone(),
        unreachable: unreachable().await,
    });
    let handoff = HandOff::new();
    let cfg = BackfillConfig {
        window: Window::All,
        batch_size: 1,
        batch_delay: Duration::ZERO,
        max_concurrent: 1,
        max_memory_bytes: 0,
        ..BackfillConfig::default()
    };
    let backfill = Backfill::new(cfg, view.clone(), Arc::new(host)).hand_off(handoff.clone());
    let indexed = Count::default();
    let consumer = indexed.clone();
    let beside = BesideLive::new(
        backfill,
        RepoSource::Host,
        Lease::new(view, BACKFILL_LEASE, holder, TTL),
        Box::new(move || vec![Box::new(consumer.clone()) as Box<dyn Consumer>]),
    )
    .retry_after(Duration::from_millis(20));
    Process {
        beside,
        handoff,
        cut,
        indexed,
    }
}

fn gate() -> Gate {
    let inner = MemoryHost::new(2);
    for n in 0..REPOS {
        inner.insert(&did(n), repo(n));
    }
    Gate {
        inner,
        open: Arc::default(),
        opened: Arc::default(),
        waiting: watch::channel(0).0,
    }
}

/// Fails the test if both ever say they hold the lease.
fn watch_exclusive(
    mut a: watch::Receiver<bool>,
    mut b: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut overlaps = 0;
        loop {
            tokio::select! {
                r = a.changed() => if r.is_err() { return overlaps },
                r = b.changed() => if r.is_err() { return overlaps },
            }
            if *a.borrow() && *b.borrow() {
                overlaps += 1;
            }
        }
    })
}

async fn the_one_that_loses_the_lease_keeps_running_and_the_other_takes_over(store: Store) {
    let host = gate();
    let a = Arc::new(process(&store, host.clone(), "a").await);
    let b = Arc::new(process(&store, host.clone(), "b").await);
    let overlaps = watch_exclusive(a.beside.holding(), b.beside.holding());
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());

    // A takes the lease and starts reading the first repository, which waits at the gate.
    let mut waiting = host.waiting.subscribe();
    let run_a = {
        let (a, stop) = (a.clone(), stop_a.clone());
        tokio::spawn(async move { a.beside.run(&stop).await })
    };
    waiting.wait_for(|n| *n == 1).await.unwrap();
    assert!(*a.beside.holding().borrow());
    assert!(a.handoff.is_reading(&did(0)));
    // B waits for the lease.
    let run_b = {
        let (b, stop) = (b.clone(), stop_b.clone());
        tokio::spawn(async move { b.beside.run(&stop).await })
    };

    // A is cut off from the database: its renewals fail, it gives the lease up before it
    // expires, and stops its round, not itself.
    a.cut.store(true, Ordering::SeqCst);
    a.beside.holding().wait_for(|h| !*h).await.unwrap();
    let mut reading = 0;
    for _ in 0..200 {
        reading = a.handoff.reading();
        if reading == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        reading, 0,
        "A still holds live events of the repository it was reading"
    );
    assert!(
        !stop_a.is_cancelled(),
        "losing the lease must not stop the process"
    );
    assert!(
        !run_a.is_finished(),
        "A's backfill waits to take the lease again"
    );

    // B takes over once the lease expires and reads everything (the gate now open).
    host.open.store(true, Ordering::SeqCst);
    host.opened.notify_waiters();
    let report_b = tokio::time::timeout(Duration::from_secs(20), run_b)
        .await
        .expect("B finishes the backfill")
        .unwrap();
    assert!(!report_b.stopped);
    assert_eq!(report_b.done, u64::from(REPOS));
    assert!(!run_a.is_finished());

    // A reconnects, takes the free lease, finds nothing left, and ends.
    a.cut.store(false, Ordering::SeqCst);
    let report_a = tokio::time::timeout(Duration::from_secs(20), run_a)
        .await
        .expect("A ends once the backfill is done")
        .unwrap();
    assert_eq!(report_a.done, 0);
    assert!(!report_a.stopped);

    let p = store.backfill_progress().await.unwrap();
    assert_eq!((p.done, p.failed, p.pending, p.in_progress), (4, 0, 0, 0));
    let mut all = a.indexed.0.lock().unwrap().clone();
    all.extend(b.indexed.0.lock().unwrap().iter().cloned());
    all.sort();
    let len = all.len();
    all.dedup();
    assert_eq!(len, all.len(), "a record was indexed twice");
    assert_eq!(len, usize::from(REPOS) * POSTS);

    drop((a, b));
    assert_eq!(overlaps.await.unwrap(), 0, "both held the lease at once");
    // Both released it: it is free.
    assert!(store
        .try_lease(BACKFILL_LEASE, "probe", now_ms(), 1)
        .await
        .unwrap());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_stops_only_the_backfill_and_the_other_takes_over() {
    the_one_that_loses_the_lease_keeps_running_and_the_other_takes_over(Store::from(
        MemoryStore::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
async fn losing_the_lease_on_postgres_stops_only_the_backfill_and_the_other_takes_over() {
    let schema = common::PgSchema::create().await;
    let store = Store::open(&schema.url()).await.unwrap();
    the_one_that_loses_the_lease_keeps_running_and_the_other_takes_over(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_backfill_never_takes_the_lease_back() {
    let store = Store::from(MemoryStore::new());
    let host = gate();
    host.open.store(true, Ordering::SeqCst);
    let a = process(&store, host, "a").await;
    let report = a.beside.run(&CancellationToken::new()).await;
    assert_eq!(report.done, u64::from(REPOS));
    // Well past several renewal periods: nobody renews a released lease.
    tokio::time::sleep(TTL * 2).await;
    assert!(
        store
            .try_lease(BACKFILL_LEASE, "probe", now_ms(), 1)
            .await
            .unwrap(),
        "the lease was taken back after the backfill released it"
    );
}
