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
        let s: J =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let mut dir = MemoryDirectory::new();
        for a in s["accounts"].as_array().expect("accounts") {
            let id = &a["identity"];
            let did = id["did"].as_str().expect("did");
            let key = &id["keys"]["atproto"];
            let doc = serde_json::json!({"id": did, "verificationMethod": [{"id": format!("{did}#atproto"),
                "type": key["type"], "publicKeyMultibase": key["publicKeyMultibase"]}]});
            dir.insert(DidDocument::from_json(&doc.to_string()).expect("doc"));
        }
        let mut steps = Vec::new();
        let mut want = Vec::new();
        for m in s["messages"].as_array().expect("messages") {
            let mut bytes = encode_to_vec(&json::from_json(&m["frame"]["header"]).expect("header"));
            bytes.extend(encode_to_vec(
                &json::from_json(&m["frame"]["body"]).expect("body"),
            ));
            steps.push(Step::Binary(bytes));
            if m["drop"].as_bool() != Some(true) && m["invalid"].as_bool() != Some(true) {
                want.push(m["frame"]["body"]["seq"].as_u64().expect("seq"));
            }
        }
        let steps = Arc::new(std::sync::Mutex::new(Some(steps)));
        let (url, _) = fake_upstream(move |_, _| match steps.lock().expect("lock").take() {
            Some(s) => Answer::Play(s),
            None => Answer::Play(vec![Step::Stall]),
        })
        .await;
        let mut cfg = RelayConfig::new(format!("{url}/xrpc/com.atproto.sync.subscribeRepos"));
        cfg.verify = Some(Arc::new(dir));
        cfg.strict = s["lenient"].as_bool() == Some(false);
        cfg.watchdog.idle_timeout = None;
        let h = run(RelaySource::new(cfg), None);
        h.wait_for(want.len(), Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (seen, _) = h.stop().await;
        assert_eq!(seen, want, "{}", path.display());
    }
}

/// A resolver whose PLC is down for its first `outage` lookups (a network failure each).
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
    let s: J = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let mut dir = MemoryDirectory::new();
    for a in s["accounts"].as_array().expect("accounts") {
        let id = &a["identity"];
        let did = id["did"].as_str().expect("did");
        let key = &id["keys"]["atproto"];
        let doc = serde_json::json!({"id": did, "verificationMethod": [{"id": format!("{did}#atproto"),
            "type": key["type"], "publicKeyMultibase": key["publicKeyMultibase"]}]});
        dir.insert(DidDocument::from_json(&doc.to_string()).expect("doc"));
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
        left: std::sync::atomic::AtomicU32::new(3),
    }));
    cfg.strict = s["lenient"].as_bool() == Some(false);
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
