//! A backfill over repositories built with the repo crate's writer and served from memory:
//! the day window, collections, retries, resume, and done only once the consumers handled it.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use skystream_backfill::{
    Backfill, BackfillConfig, HandOff, HostError, MemoryHost, RepoHost, RepoPage, RepoSource,
    Window,
};
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_event::{EventKind, Origin};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, MemoryCursorSink, Pipeline, PipelineConfig,
};
use skystream_repo::{RepoWriter, WriteOp};
use skystream_store::{BackfillStore, MemoryStore, RepoStatus, Store};
use skystream_syntax::Tid;
use tokio_util::sync::CancellationToken;

const DAY_US: i64 = 86_400_000_000;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A repository with one post per day for the last `days` days (rkey = a TID of that day),
/// a like, and a profile (rkey `self`, dated by createdAt 30 days ago).
fn repo(n: u8, days: i64, now: i64) -> (String, Vec<u8>, Vec<String>) {
    let did = format!("did:plc:backfilltest{n:010}");
    let mut w = RepoWriter::new(
        &did,
        PrivateKey::from_seed(Algorithm::K256, u64::from(n) + 1),
    );
    let mut ops = Vec::new();
    let mut rkeys = Vec::new();
    for d in 0..days {
        let t = now - d * DAY_US - 3_600_000_000;
        let rkey = Tid::from_parts(t as u64, u16::from(n)).to_string();
        let rec = json!({"$type": "app.bsky.feed.post", "text": format!("day {d}"), "createdAt": "2020-01-01T00:00:00Z"});
        ops.push(WriteOp::Create {
            path: format!("app.bsky.feed.post/{rkey}"),
            record: skystream_data::json::from_json(&rec).unwrap(),
        });
        rkeys.push(rkey);
    }
    let like_key = Tid::from_parts((now - 1_000_000) as u64, 1).to_string();
    ops.push(WriteOp::Create {
        path: format!("app.bsky.feed.like/{like_key}"),
        record: skystream_data::json::from_json(&json!({"$type": "app.bsky.feed.like", "subject": {"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "createdAt": "2024-01-01T00:00:00Z"})).unwrap(),
    });
    let created = skystream_syntax::rfc3339_millis(now - 30 * DAY_US);
    ops.push(WriteOp::Create {
        path: "app.bsky.actor.profile/self".into(),
        record: skystream_data::json::from_json(
            &json!({"$type": "app.bsky.actor.profile", "displayName": "x", "createdAt": created}),
        )
        .unwrap(),
    });
    let rev = Tid::from_parts(now as u64, 0).to_string();
    w.apply(&ops, &rev).unwrap();
    (did, w.export_car().unwrap().unwrap(), rkeys)
}

/// Collects what it is given (after an optional delay, to show "done" waits for it).
type Seen = Arc<Mutex<Vec<(String, String, String, Origin)>>>;

#[derive(Clone, Default)]
struct Collect(Seen, Duration);

#[async_trait]
impl Consumer for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        tokio::time::sleep(self.1).await;
        for env in &batch.items {
            if let EventKind::Commit(c) = &env.event.kind {
                for op in &c.ops {
                    self.0.lock().unwrap().push((
                        c.did.clone(),
                        op.collection.clone(),
                        op.rkey.clone(),
                        env.event.origin,
                    ));
                }
            }
        }
        Ok(())
    }
}

fn config(window: Window, collections: &[&str]) -> BackfillConfig {
    BackfillConfig {
        window,
        collections: collections.iter().map(|c| c.to_string()).collect(),
        batch_size: 2,
        batch_delay: Duration::from_millis(1),
        max_concurrent: 2,
        max_memory_bytes: 0,
        max_attempts: 3,
        poll: Duration::from_millis(5),
    }
}

async fn run(
    store: &Store,
    host: &MemoryHost,
    cfg: BackfillConfig,
    source: RepoSource,
    consumer: Collect,
) -> skystream_backfill::BackfillReport {
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        "backfill",
        None,
        vec![Box::new(consumer)],
        Arc::new(MemoryCursorSink::new()),
    );
    let bf = Backfill::new(cfg, Arc::new(store.clone()), Arc::new(host.clone()));
    let report = bf
        .run(&source, input, handle.committed(), CancellationToken::new())
        .await
        .unwrap();
    handle.finish().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_window_and_the_collections() {
    let now = now_us();
    let host = MemoryHost::new(2);
    let mut expected = Vec::new();
    for n in 0..5 {
        let (did, car, rkeys) = repo(n, 10, now);
        host.insert(&did, car);
        // --days 3: the posts of days 0, 1, 2 (each an hour into its day).
        for rkey in &rkeys[..3] {
            expected.push((did.clone(), rkey.clone()));
        }
    }
    let store = Store::from(MemoryStore::new());
    let got = Collect::default();
    let cfg = config(Window::from_days(3, now).unwrap(), &["app.bsky.feed.post"]);
    let report = run(&store, &host, cfg, RepoSource::Host, got.clone()).await;
    let mut seen: Vec<(String, String)> = got
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(d, c, r, o)| {
            assert_eq!(c, "app.bsky.feed.post");
            assert_eq!(*o, Origin::Backfill);
            (d.clone(), r.clone())
        })
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(report.records, 15);
    assert_eq!(report.outside_window, 35);
    assert_eq!(report.done, 5);
    let p = store.backfill_progress().await.unwrap();
    assert_eq!((p.done, p.records, p.pending), (5, 15, 0));

    // All history, every collection: the profile dated by createdAt comes too.
    let store = Store::from(MemoryStore::new());
    let got = Collect::default();
    let report = run(
        &store,
        &host,
        config(Window::All, &[]),
        RepoSource::Host,
        got.clone(),
    )
    .await;
    assert_eq!(report.records, 5 * 12);
    // Nothing left to do: a second run reads nothing.
    let report = run(
        &store,
        &host,
        config(Window::All, &[]),
        RepoSource::Host,
        Collect::default(),
    )
    .await;
    assert_eq!((report.records, report.done), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_then_left_failed() {
    let now = now_us();
    let host = MemoryHost::new(10);
    let (flaky, car, _) = repo(1, 2, now);
    host.insert(&flaky, car);
    let (broken, car, _) = repo(2, 2, now);
    host.insert(&broken, car);
    host.fail(&flaky, 1);
    host.fail(&broken, 10);
    let store = Store::from(MemoryStore::new());
    let got = Collect::default();
    let report = run(
        &store,
        &host,
        config(Window::All, &["app.bsky.feed.post"]),
        RepoSource::Dids(vec![flaky.clone(), broken.clone()]),
        got.clone(),
    )
    .await;
    assert_eq!(report.failures, 1 + 3);
    let flaky_row = store.backfill_repo(&flaky).await.unwrap().unwrap();
    assert_eq!((flaky_row.status, flaky_row.records), (RepoStatus::Done, 2));
    let broken_row = store.backfill_repo(&broken).await.unwrap().unwrap();
    assert_eq!(
        (broken_row.status, broken_row.attempts),
        (RepoStatus::Failed, 3)
    );
    assert!(broken_row.last_error.unwrap().contains("502"));
    assert_eq!(got.0.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_and_done_waits_for_the_consumers() {
    let now = now_us();
    let host = MemoryHost::new(100);
    let mut dids = Vec::new();
    for n in 0..6 {
        let (did, car, _) = repo(n, 3, now);
        host.insert(&did, car);
        dids.push(did);
    }
    let store = Store::from(MemoryStore::new());
    // A slow consumer; stop the run soon after it starts.
    let slow = Collect(Arc::default(), Duration::from_millis(300));
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        "backfill",
        None,
        vec![Box::new(slow.clone())],
        Arc::new(MemoryCursorSink::new()),
    );
    let mut cfg = config(Window::All, &["app.bsky.feed.post"]);
    cfg.batch_delay = Duration::from_millis(200);
    let bf = Backfill::new(cfg.clone(), Arc::new(store.clone()), Arc::new(host.clone()));
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopper.cancel();
    });
    let report = bf
        .run(
            &RepoSource::Dids(dids.clone()),
            input,
            handle.committed(),
            stop,
        )
        .await
        .unwrap();
    assert!(report.stopped);
    // A stop sends nothing more; what was sent is drained, and only repositories whose
    // every record the consumer handled are marked done.
    let p = store.backfill_progress().await.unwrap();
    assert!(p.pending > 0, "{p:?}");
    let handled = slow.0.lock().unwrap().clone();
    for did in &dids {
        let row = store.backfill_repo(did).await.unwrap().unwrap();
        if row.status == RepoStatus::Done {
            let n = handled.iter().filter(|(d, ..)| d == did).count();
            assert_eq!(n, 3, "{did} marked done with {n} of its 3 posts handled");
        }
    }
    assert_eq!(report.done, p.done);
    let first_done = p.done;
    handle.finish().await;

    // The next run reads the rest and re-reads what was in flight (idempotent downstream).
    let got = Collect::default();
    let report = run(
        &store,
        &host,
        cfg,
        RepoSource::Dids(dids.clone()),
        got.clone(),
    )
    .await;
    assert_eq!(report.done, 6 - first_done);
    let p = store.backfill_progress().await.unwrap();
    assert_eq!((p.done, p.records), (6, 18));
}

/// A host that notes, for each `getRepo`, whether the hand-off was already holding that
/// repository's live events when the export was asked for.
struct Watched {
    inner: MemoryHost,
    handoff: HandOff,
    held_at_fetch: Arc<Mutex<Vec<(String, bool)>>>,
}

#[async_trait]
impl RepoHost for Watched {
    async fn list_repos(&self, cursor: Option<&str>) -> Result<RepoPage, HostError> {
        self.inner.list_repos(cursor).await
    }
    async fn get_repo(&self, did: &str) -> Result<Vec<u8>, HostError> {
        self.held_at_fetch
            .lock()
            .unwrap()
            .push((did.to_owned(), self.handoff.is_reading(did)));
        self.inner.get_repo(did).await
    }
}

/// The hand-off is told a repository is being read before its export is fetched, and let go
/// once its records are handled. Before, `claimed` had no caller: live events for a
/// repository being read went straight through and the older export then undid them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_are_held_from_before_the_export_is_fetched() {
    let now = now_us();
    let host = MemoryHost::new(100);
    let mut dids = Vec::new();
    for n in 0..3 {
        let (did, car, _) = repo(n, 2, now);
        host.insert(&did, car);
        dids.push(did);
    }
    let handoff = HandOff::new();
    let watched = Watched {
        inner: host,
        handoff: handoff.clone(),
        held_at_fetch: Arc::default(),
    };
    let held_at_fetch = watched.held_at_fetch.clone();
    let store = Store::from(MemoryStore::new());
    let (input, handle) = Pipeline::start(
        PipelineConfig::default(),
        "backfill",
        None,
        vec![Box::new(Collect::default())],
        Arc::new(MemoryCursorSink::new()),
    );
    let bf = Backfill::new(
        config(Window::All, &[]),
        Arc::new(store.clone()),
        Arc::new(watched),
    )
    .hand_off(handoff.clone());
    let report = bf
        .run(
            &RepoSource::Dids(dids.clone()),
            input,
            handle.committed(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    handle.finish().await;
    assert_eq!(report.done, 3);
    let fetched = held_at_fetch.lock().unwrap().clone();
    assert_eq!(fetched.len(), 3);
    assert!(
        fetched.iter().all(|(_, held)| *held),
        "every export was fetched with its live events held: {fetched:?}"
    );
    assert_eq!(
        handoff.reading(),
        0,
        "every repository was let go once handled"
    );
}
