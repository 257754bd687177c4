//! A real Jetstream v1 client, npm's `@skyware/jetstream` (installed by `.ci/peers`), against
//! the server: it connects, filters by collection, and resumes from the cursor it kept (the
//! largest `time_us` it saw), unchanged.
//!
//! The client is found through `SKYSTREAM_SKYWARE_PEER` (as `.ci/peers` prints it) or in the
//! default cache. The test is ignored unless asked for (`-- --include-ignored`), and then a
//! missing peer fails it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value as J;

struct Peer {
    dir: PathBuf,
    node: PathBuf,
}

fn peer() -> Peer {
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = PathBuf::from(&home).join(".cache/skystream/peers");
    let dir = std::env::var_os("SKYSTREAM_SKYWARE_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("skyware"));
    if !dir.join("node_modules/@skyware/jetstream").is_dir() {
        let why = format!(
            "@skyware/jetstream is not installed (looked in {}); run .ci/peers",
            dir.display()
        );
        panic!("this test needs {why}");
    }
    // Node 22 from the peers when present; the client itself runs on the machine's Node 20.
    let node = std::env::var_os("SKYSTREAM_NODE22")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("node"));
    Peer { dir, node }
}

/// Runs the client until the stream has been quiet for a second; returns what it received and
/// the cursor it kept.
async fn run_client(
    peer: &Peer,
    endpoint: &str,
    cursor: Option<i64>,
    collections: &str,
) -> (Vec<J>, Option<i64>) {
    // The script is the repository's; it runs from the install so its imports resolve.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../peers/skyware/client.mjs");
    let run = peer.dir.join(format!(
        "client-{}-{}.mjs",
        std::process::id(),
        cursor.unwrap_or(0)
    ));
    std::fs::copy(&script, &run).expect("copy client.mjs beside the install");
    let child = Command::new(&peer.node)
        .arg(&run)
        .args([
            endpoint,
            "1000",
            &cursor.map_or("-".to_owned(), |c| c.to_string()),
            collections,
        ])
        .current_dir(&peer.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let pid = child.id();
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let _ = std::fs::remove_file(&run);
    let out = match waited {
        Ok(r) => r.expect("join").expect("node output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the skyware client did not finish");
        }
    };
    assert!(out.status.success(), "client failed: {}", out.status);
    let mut events = Vec::new();
    for line in String::from_utf8(out.stdout).expect("utf8").lines() {
        let v: J = serde_json::from_str(line).expect("client line");
        if v["done"] == true {
            return (events, v["cursor"].as_i64());
        }
        events.push(v);
    }
    panic!("the client never finished ({} events)", events.len());
}

/// What a `wantedCollections=app.bsky.feed.like` subscriber should get from `from` on: the likes
/// and every identity and account event, in log order.
async fn expected_likes(s: &TestServer, from: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let chunk = s.server.hub().read(next, 1000).await.expect("read");
        let Some(last) = chunk.last() else {
            return out;
        };
        next = last.time_us + 1;
        out.extend(
            chunk
                .iter()
                .filter(|e| {
                    e.collection
                        .as_deref()
                        .is_none_or(|c| c == "app.bsky.feed.like")
                })
                .map(|e| e.time_us),
        );
    }
}

fn times(v: &[J]) -> Vec<i64> {
    v.iter()
        .map(|e| e["time_us"].as_i64().expect("time_us"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs npm @skyware/jetstream (bash .ci/peers installs it)"]
async fn skyware_client_connects_filters_and_resumes_from_its_cursor() {
    let peer = peer();
    let mut s = start(test_config(), false).await;
    s.feed(&corpus_events(), 50).await;
    let endpoint = format!("ws://{}/subscribe", s.addr);

    // From the oldest event (cursor 1 is clamped to it), likes only.
    let (first, cursor) = run_client(&peer, &endpoint, Some(1), "app.bsky.feed.like").await;
    assert_eq!(
        first.len(),
        105 + 2,
        "the likes, and the identity and account events"
    );
    assert_eq!(times(&first), expected_likes(&s, 0).await);
    assert!(first
        .iter()
        .all(|e| e["collection"] == "app.bsky.feed.like" || e["kind"] != "commit"));
    let cursor = cursor.expect("the client kept a cursor");
    assert_eq!(
        Some(cursor),
        first.last().and_then(|e| e["time_us"].as_i64())
    );

    // More events arrive; the client comes back with the cursor it kept.
    s.feed(&renumbered(&corpus_events(), 1 << 40), 50).await;
    let (second, _) = run_client(&peer, &endpoint, Some(cursor), "app.bsky.feed.like").await;
    // Jetstream's cursor is inclusive: the event at the cursor comes again, then every new one.
    assert_eq!(times(&second), expected_likes(&s, cursor).await);
    assert_eq!(
        second.first().and_then(|e| e["time_us"].as_i64()),
        Some(cursor)
    );
    assert_eq!(
        second
            .iter()
            .filter(|e| e["time_us"].as_i64() > Some(cursor))
            .count(),
        107
    );

    // Without a cursor the client is live: nothing old arrives.
    let (live, kept) = run_client(&peer, &endpoint, None, "app.bsky.feed.like").await;
    assert!(live.is_empty() && kept.is_none(), "{live:?}");
}
