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
