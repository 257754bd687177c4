//! The relay scenarios served by a loopback relay to the relay source with verification on:
//! the consumer receives exactly the frames not marked `drop` or `invalid`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fake_upstream, run, Answer, Step};
use serde_json::Value as J;
use skystream_data::{encode_to_vec, json};
use skystream_identity::{DidDocument, MemoryDirectory};
use skystream_source::{RelayConfig, RelaySource};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/relay-scenarios"
);

/// A relay scenario: its accounts' DID documents, its frames, and the seqs a verifying
/// consumer must receive (every frame not marked `drop` or `invalid`).
struct Scenario {
    directory: MemoryDirectory,
    frames: Vec<(u64, Vec<u8>)>,
    want: Vec<u64>,
    strict: bool,
}

impl Scenario {
    fn load(path: &std::path::Path) -> Scenario {
        let s: J =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        let mut directory = MemoryDirectory::new();
        for a in s["accounts"].as_array().expect("accounts") {
            let id = &a["identity"];
            let did = id["did"].as_str().expect("did");
            let key = &id["keys"]["atproto"];
            let doc = serde_json::json!({"id": did, "verificationMethod": [{"id": format!("{did}#atproto"),
                "type": key["type"], "publicKeyMultibase": key["publicKeyMultibase"]}]});
            directory.insert(DidDocument::from_json(&doc.to_string()).expect("doc"));
        }
        let mut frames = Vec::new();
        let mut want = Vec::new();
        for m in s["messages"].as_array().expect("messages") {
            let mut bytes = encode_to_vec(&json::from_json(&m["frame"]["header"]).expect("header"));
            bytes.extend(encode_to_vec(
                &json::from_json(&m["frame"]["body"]).expect("body"),
            ));
            let seq = m["frame"]["body"]["seq"].as_u64().expect("seq");
            frames.push((seq, bytes));
            if m["drop"].as_bool() != Some(true) && m["invalid"].as_bool() != Some(true) {
                want.push(seq);
            }
        }
        Scenario {
            directory,
            frames,
            want,
            strict: s["lenient"].as_bool() == Some(false),
        }
    }
}

#[tokio::test]
async fn verifying_relay_source_drops_what_the_scenarios_mark() {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    for path in files {
        let scenario = Scenario::load(&path);
        let steps: Vec<Step> = scenario
            .frames
            .iter()
            .map(|(_, b)| Step::Binary(b.clone()))
            .collect();
        let (dir, want, strict) = (scenario.directory, scenario.want, scenario.strict);
        let steps = Arc::new(std::sync::Mutex::new(Some(steps)));
        let (url, _) = fake_upstream(move |_, _| match steps.lock().expect("lock").take() {
            Some(s) => Answer::Play(s),
            None => Answer::Play(vec![Step::Stall]),
        })
        .await;
        let mut cfg = RelayConfig::new(format!("{url}/xrpc/com.atproto.sync.subscribeRepos"));
        cfg.verify = Some(Arc::new(dir));
        cfg.strict = strict;
        cfg.watchdog.idle_timeout = None;
        let h = run(RelaySource::new(cfg), None);
        h.wait_for(want.len(), Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (seen, _) = h.stop().await;
        assert_eq!(seen, want, "{}", path.display());
    }
}

/// A resolver whose PLC is down for its first `left` lookups (a network failure each; lookups
/// started ahead of the ordered stage count too, so the outage outlasts them).
struct Outage {
    inner: MemoryDirectory,
    left: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl skystream_identity::Resolver for Outage {
    async fn resolve(
        &self,
        did: &str,
    ) -> Result<Arc<DidDocument>, skystream_identity::ResolveError> {
        use std::sync::atomic::Ordering;
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(skystream_identity::ResolveError::new(
                skystream_identity::ResolveErrorKind::Network,
                did,
                "connection refused",
            ));
        }
        self.inner.resolve(did).await
    }
    fn purge(&self, did: &str) {
        self.inner.purge(did);
    }
}

/// Identity resolution failing for a network reason during `--verify` (issue 15, item 7):
/// the stream waits and reads the commit again, and no commit is dropped. Before, a commit
/// whose DID document could not be fetched was dropped for good, like a bad signature.
#[tokio::test]
async fn a_plc_outage_during_verification_drops_no_commit() {
    let path = format!("{DIR}/post_lifecycle.json");
    let Scenario {
        directory: dir,
        frames,
        want,
        strict,
    } = Scenario::load(std::path::Path::new(&path));
    assert!(want.len() >= 2, "the scenario has commits to verify");
    // Every connection replays what comes after its cursor.
    let (url, attempts) = fake_upstream(move |_, a| {
        let mut steps: Vec<Step> = frames
            .iter()
            .filter(|(seq, _)| a.cursor().is_none_or(|c| *seq > c))
            .map(|(_, b)| Step::Binary(b.clone()))
            .collect();
        steps.push(Step::Stall);
        Answer::Play(steps)
    })
    .await;
    let mut cfg = RelayConfig::new(format!("{url}/xrpc/com.atproto.sync.subscribeRepos"));
    cfg.verify = Some(Arc::new(Outage {
        inner: dir,
        left: std::sync::atomic::AtomicU32::new(12),
    }));
    cfg.strict = strict;
    cfg.watchdog.idle_timeout = None;
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(50);
    cfg.drain_timeout = Duration::from_secs(2);
    let h = run(RelaySource::new(cfg), None);
    h.wait_for(want.len(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (seen, _) = h.stop().await;
    assert_eq!(seen, want, "every commit once the PLC answers again");
    assert!(
        attempts.lock().expect("lock").len() >= 2,
        "the outage made the stream wait and read again"
    );
}

/// Holds every lookup until `together` of them are waiting at once, then lets all through:
/// a reader that resolves one identity at a time never gets past the first.
struct Rendezvous {
    /// Documents, tried in turn (the simulator replaces deleted accounts as it goes).
    inner: Vec<MemoryDirectory>,
    together: usize,
    waiting: std::sync::Mutex<usize>,
    most: std::sync::atomic::AtomicUsize,
    open: tokio::sync::Notify,
    opened: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl skystream_identity::Resolver for Rendezvous {
    async fn resolve(
        &self,
        did: &str,
    ) -> Result<Arc<DidDocument>, skystream_identity::ResolveError> {
        use std::sync::atomic::Ordering;
        if !self.opened.load(Ordering::SeqCst) {
            let released = self.open.notified();
            let n = {
                let mut w = self.waiting.lock().expect("lock");
                *w += 1;
                *w
            };
            self.most.fetch_max(n, Ordering::SeqCst);
            if n >= self.together {
                self.opened.store(true, Ordering::SeqCst);
                self.open.notify_waiters();
            } else if !self.opened.load(Ordering::SeqCst) {
                released.await;
            }
            *self.waiting.lock().expect("lock") -= 1;
        }
        let mut last = None;
        for dir in &self.inner {
            match dir.resolve(did).await {
                Ok(doc) => return Ok(doc),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("a directory"))
    }
    fn purge(&self, _did: &str) {}
}

/// With `--verify`, the identities of commits are resolved ahead of the ordered stage, several
/// at once (issue 15, item 7): the resolver here answers only once eight lookups wait together,
/// which one-at-a-time resolution inside the read loop never reaches. Events still come out in
/// stream order, every one of them.
#[tokio::test]
async fn identities_are_resolved_ahead_and_concurrently_and_order_is_kept() {
    let mut sim = skystream_simulate::Simulator::new(skystream_simulate::SimConfig {
        accounts: 200,
        seed: 7,
        ..Default::default()
    });
    let before = sim.memory_directory();
    let frames: Vec<skystream_simulate::SimFrame> = (0..300)
        .map(|i| sim.next_frame(1_780_000_000_000_000 + i * 1_000))
        .collect();
    let directory = vec![before, sim.memory_directory()];
    let want: Vec<u64> = frames.iter().map(|f| f.seq as u64).collect();
    let steps: Vec<Step> = frames
        .iter()
        .map(|f| Step::Binary(f.bytes.clone()))
        .chain([Step::Stall])
        .collect();
    let steps = Arc::new(std::sync::Mutex::new(Some(steps)));
    let (url, _) = fake_upstream(move |_, _| match steps.lock().expect("lock").take() {
        Some(s) => Answer::Play(s),
        None => Answer::Play(vec![Step::Stall]),
    })
    .await;
    let resolver = Arc::new(Rendezvous {
        inner: directory,
        together: 8,
        waiting: std::sync::Mutex::new(0),
        most: std::sync::atomic::AtomicUsize::new(0),
        open: tokio::sync::Notify::new(),
        opened: std::sync::atomic::AtomicBool::new(false),
    });
    let mut cfg = RelayConfig::new(format!("{url}/xrpc/com.atproto.sync.subscribeRepos"));
    cfg.verify = Some(Arc::new(skystream_identity::CachingResolver::new(
        resolver.clone(),
    )));
    cfg.watchdog.idle_timeout = None;
    let h = run(RelaySource::new(cfg), None);
    h.wait_for(want.len(), Duration::from_secs(20)).await;
    let (seen, _) = h.stop().await;
    assert_eq!(seen, want, "every event, in stream order");
    assert!(
        resolver.most.load(std::sync::atomic::Ordering::SeqCst) >= 8,
        "lookups ran together"
    );
}
