//! The server end to end, over real sockets: the relay corpus comes out as production
//! Jetstream served it, filters, options updates, requireHello, maxMessageSizeBytes, zstd
//! with the v1 dictionary, the cursor heartbeat, replay-to-live under concurrent appends,
//! cursor clamping, retention, slow subscribers and per-IP limits.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::Value as J;
use skystream_event::Event;
use skystream_jetstream::{router, IpLimits, ServerConfig};
use skystream_pipeline::{Envelope, Position};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

const SECOND: Duration = Duration::from_secs(1);
const NOBODY: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const QUIET: Duration = Duration::from_millis(400);

fn assert_corpus(got: &[J]) {
    let want = expected_by_key();
    assert_eq!(got.len(), want.len());
    let mut last = 0;
    let mut seen = HashSet::new();
    for e in got {
        let t = e["time_us"].as_i64().expect("time_us");
        assert!(t > last, "time_us strictly increases");
        last = t;
        let key = pair_key(e);
        assert!(seen.insert(key.clone()), "duplicate {key}");
        let w = want.get(&key).unwrap_or_else(|| panic!("unexpected {key}"));
        assert_eq!(&without_clock(e.clone()), w, "{key}");
    }
}

#[tokio::test]
async fn corpus_replays_and_streams_as_production_jetstream() {
    let mut s = start(test_config(), true).await;
    let mut live = s.connect("").await;
    // Give the live subscriber time to be registered before the first append.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.feed(&corpus_events(), 40).await;
    let got = recv_json(&mut live, 152).await;
    assert_corpus(&got);
    // The log's time_us are the server's clock, not the events' times.
    let t0 = got[0]["time_us"].as_i64().expect("t");
    assert!(t0 > 1_700_000_000_000_000);

    // A replay from the start gets the same lines, same time_us.
    let mut replay = s.connect("cursor=0").await;
    let again = recv_json(&mut replay, 152).await;
    assert_eq!(again, got);
    assert_silent(&mut replay, QUIET).await;
    // A replay from the middle starts exactly there (the cursor is inclusive, as Jetstream's).
    let mid = got[100]["time_us"].as_i64().expect("t");
    let mut from_mid = s.connect(&format!("cursor={mid}")).await;
    let tail = recv_json(&mut from_mid, 52).await;
    assert_eq!(tail, got[100..].to_vec());
}

async fn filtered(s: &common::TestServer, query: &str) -> Vec<J> {
    let mut ws = s.connect(query).await;
    let mut out = Vec::new();
    while let Some(m) = recv(&mut ws, QUIET).await {
        match m {
            Message::Text(t) => out.push(serde_json::from_str(&t).expect("json")),
            other => panic!("{other:?}"),
        }
    }
    out
}

fn keys(v: &[J]) -> Vec<String> {
    v.iter().map(pair_key).collect()
}

fn expected_where(f: impl Fn(&J) -> bool) -> Vec<String> {
    let mut e: Vec<J> = expected().into_iter().filter(|e| f(e)).collect();
    // Our order is the relay's; production's is the same here, but compare as sets anyway.
    e.sort_by_key(pair_key);
    keys(&e)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn wanted_collections_and_dids() {
    let mut s = start(test_config(), false).await;
    s.feed(&corpus_events(), 150).await;
    let coll = |e: &J| e["commit"]["collection"].as_str().map(str::to_owned);

    let likes = filtered(&s, "cursor=0&wantedCollections=app.bsky.feed.like").await;
    assert_eq!(
        likes.len(),
        105 + 2,
        "the likes, and the identity and account events"
    );
    assert_eq!(
        sorted(keys(&likes)),
        expected_where(
            |e| e["kind"] != "commit" || coll(e).as_deref() == Some("app.bsky.feed.like")
        )
    );

    // A prefix; identity and account events ignore wantedCollections.
    let graph = filtered(&s, "cursor=0&wantedCollections=app.bsky.graph.*").await;
    assert_eq!(
        sorted(keys(&graph)),
        expected_where(|e| {
            e["kind"] != "commit" || coll(e).is_some_and(|c| c.starts_with("app.bsky.graph."))
        })
    );
    assert_eq!(graph.len(), 10 + 2);

    // wantedDids applies to every kind.
    let did = "did:plc:hqvhxrowqbemo5e4wjnj6zao";
    let other = expected()[0]["did"].as_str().expect("did").to_owned();
    let by_did = filtered(
        &s,
        &format!(
            "cursor=0&wantedDids={did}&wantedDids={other}&wantedCollections=app.bsky.feed.post"
        ),
    )
    .await;
    assert_eq!(
        sorted(keys(&by_did)),
        expected_where(|e| {
            let d = e["did"].as_str().expect("did");
            (d == did || d == other)
                && (e["kind"] != "commit" || coll(e).as_deref() == Some("app.bsky.feed.post"))
        })
    );
    assert!(by_did.iter().any(|e| e["kind"] == "identity"));
}

#[tokio::test]
async fn bad_requests_without_a_socket() {
    let s = start(test_config(), false).await;
    let app = router(s.server.clone());
    let ws_headers = |uri: &str| {
        axum::http::Request::get(uri)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let body = |r: axum::response::Response| async move {
        let b = http_body_util::BodyExt::collect(r.into_body())
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(b.to_vec()).expect("utf8")
    };
    for (uri, want) in [
        ("/subscribe?compress=true", "no zstd dictionary"),
        ("/subscribe?cursor=yesterday", "invalid cursor"),
        ("/subscribe?wantedDids=nobody", "invalid wantedDids"),
        ("/subscribe?informCursorSeconds=soon", "informCursorSeconds"),
    ] {
        let r = app
            .clone()
            .oneshot(ws_headers(uri))
            .await
            .expect("response");
        assert_eq!(r.status(), 400, "{uri}");
        let text = body(r).await;
        assert!(text.contains(want), "{uri}: {text}");
    }
    // The header form of compression is refused the same way.
    let mut req = ws_headers("/subscribe");
    req.headers_mut()
        .insert("socket-encoding", "zstd".parse().expect("value"));
    let r = app.clone().oneshot(req).await.expect("response");
    assert_eq!(r.status(), 400);
    // A plain GET is told it needs a WebSocket.
    let r = app
        .clone()
        .oneshot(
            axum::http::Request::get("/subscribe")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("WebSocket"));
    let r = app
        .oneshot(
            axum::http::Request::get("/health")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn options_update_replaces_the_filter_and_a_malformed_one_closes() {
    let mut s = start(test_config(), false).await;
    let mut ws = s.connect("wantedCollections=app.bsky.feed.like").await;
    send_text(
        &mut ws,
        r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.repost"],"wantedDids":[]}}"#,
    )
    .await;
    // Unknown message types are ignored, as Jetstream does.
    send_text(&mut ws, r#"{"type":"something_else","payload":{}}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.feed(&corpus_events(), 150).await;
    let got = recv_json(&mut ws, 15 + 2).await;
    let reposts = got
        .iter()
        .filter(|e| e["commit"]["collection"] == "app.bsky.feed.repost")
        .count();
    assert_eq!(reposts, 15);
    assert_silent(&mut ws, QUIET).await;

    // An empty list turns that filter off.
    send_text(
        &mut ws,
        r#"{"type":"options_update","payload":{"wantedCollections":[]}}"#,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.feed(&renumbered(&corpus_events()[..1], 1 << 40), 1).await;
    assert_eq!(recv_json(&mut ws, 1).await.len(), 1);

    for (bad, why) in [
        ("{not json", "malformed message"),
        (
            r#"{"type":"options_update","payload":{"wantedDids":["not-a-did"]}}"#,
            "invalid wantedDids",
        ),
        (r#"{"type":"options_update"}"#, "malformed options_update"),
        (
            r#"{"type":"options_update","payload":{"maxMessageSizeBytes":"lots"}}"#,
            "malformed options_update",
        ),
    ] {
        let mut ws = s.connect("").await;
        send_text(&mut ws, bad).await;
        let (code, reason) = close_reason(&mut ws).await;
        assert_eq!(code, 1008, "{bad}");
        assert!(reason.contains(why), "{bad}: {reason}");
    }
    // A message over the size bound closes too (hostile input is bounded).
    let mut ws = s.connect("").await;
    let huge = format!(
        r#"{{"type":"options_update","payload":{{"wantedDids":["{}"]}}}}"#,
        "x".repeat(3 << 20)
    );
    let _ = futures_util::SinkExt::send(&mut ws, Message::Text(huge.into())).await;
    let (code, reason) = close_reason(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("too large"), "{reason}");
}

#[tokio::test]
async fn require_hello_sends_nothing_until_the_first_update() {
    let mut s = start(test_config(), false).await;
    let mut ws = s.connect("requireHello=true").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.feed(&corpus_events(), 150).await;
    assert_silent(&mut ws, QUIET).await;
    send_text(
        &mut ws,
        r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.graph.follow"]}}"#,
    )
    .await;
    // What was appended while waiting is delivered, with the hello's filter.
    let got = recv_json(&mut ws, 9 + 2).await;
    assert_eq!(
        got.iter()
            .filter(|e| e["commit"]["collection"] == "app.bsky.graph.follow")
            .count(),
        9
    );
    assert_silent(&mut ws, QUIET).await;
}

#[tokio::test]
async fn max_message_size_skips_larger_events() {
    let mut s = start(test_config(), true).await;
    s.feed(&corpus_events(), 150).await;
    let all = filtered(&s, "cursor=0").await;
    let limit = 600;
    let small: Vec<String> = all
        .iter()
        .filter(|e| serde_json::to_string(e).expect("json").len() <= limit)
        .map(pair_key)
        .collect();
    assert!(small.len() > 100 && small.len() < 152, "{}", small.len());
    let got = filtered(&s, &format!("cursor=0&maxMessageSizeBytes={limit}")).await;
    assert_eq!(keys(&got), small);
    // Compressed subscribers are measured by the bytes they are sent.
    let mut ws = s
        .connect("cursor=0&compress=true&maxMessageSizeBytes=300")
        .await;
    let mut n = 0;
    while let Some(m) = recv(&mut ws, QUIET).await {
        let Message::Binary(b) = m else {
            panic!("binary")
        };
        assert!(b.len() <= 300);
        n += 1;
    }
    assert!(n > small.len(), "compressed events are smaller: {n}");
}

fn decompressor() -> zstd::bulk::Decompressor<'static> {
    let dict = std::fs::read(DICT).expect("dictionary");
    zstd::bulk::Decompressor::with_dictionary(&dict).expect("dictionary loads")
}

#[tokio::test]
async fn compressed_frames_are_the_json_with_the_v1_dictionary() {
    let mut s = start(test_config(), true).await;
    s.feed(&corpus_events(), 50).await;
    let json = recv_json(&mut s.connect("cursor=0").await, 152).await;
    let mut by_query = s.connect("cursor=0&compress=true").await;
    let mut by_header = connect_url(&s.url("cursor=0"), &[("socket-encoding", "zstd")]).await;
    let mut d = decompressor();
    for want in &json {
        let a = match recv(&mut by_query, SECOND * 5).await {
            Some(Message::Binary(b)) => b,
            other => panic!("{other:?}"),
        };
        let b = match recv(&mut by_header, SECOND * 5).await {
            Some(Message::Binary(b)) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(a, b, "every compressed subscriber gets the same bytes");
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&a),
            Some(std::num::NonZeroU32::new(1612007021).expect("id")),
            "made with the v1 dictionary"
        );
        let plain = d.decompress(&a, 1 << 20).expect("decompresses");
        let got: J = serde_json::from_slice(&plain).expect("json");
        assert_eq!(&got, want);
        assert!(a.len() < plain.len());
    }
}

#[tokio::test]
async fn inform_cursor_heartbeat_carries_the_newest_passed_time_us() {
    let cfg = ServerConfig {
        inform_cursor_floor_secs: 1,
        ..test_config()
    };
    let mut s = start(cfg, true).await;
    // A sparse filter that matches nothing in the corpus (identity and account events ignore
    // wantedCollections, so the DID filter is what keeps them out).
    let mut sparse = s
        .connect(&format!("wantedDids={NOBODY}&informCursorSeconds=1"))
        .await;
    // requireHello + informCursorSeconds in the first update, compressed.
    let mut hello = s.connect("requireHello=true&compress=true").await;
    send_text(
        &mut hello,
        &format!(r#"{{"type":"options_update","payload":{{"wantedDids":["{NOBODY}"],"informCursorSeconds":1}}}}"#),
    )
    .await;
    // informCursorSeconds=0 is off.
    let mut off = s
        .connect(&format!("wantedDids={NOBODY}&informCursorSeconds=0"))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.feed(&corpus_events(), 150).await;
    let head = s.server.hub().head();

    let beat = loop {
        match recv(&mut sparse, SECOND * 3).await {
            Some(Message::Text(t)) => {
                let v: J = serde_json::from_str(&t).expect("json");
                assert_eq!(v["kind"], "cursor", "only heartbeats pass this filter");
                if v["time_us"].as_i64() == Some(head) {
                    break v;
                }
            }
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    };
    assert_eq!(beat, serde_json::json!({"kind": "cursor", "time_us": head}));
    let mut d = decompressor();
    loop {
        let Some(Message::Binary(b)) = recv(&mut hello, SECOND * 3).await else {
            panic!("expected a compressed heartbeat")
        };
        let v: J = serde_json::from_slice(&d.decompress(&b, 1 << 16).expect("zstd")).expect("json");
        assert_eq!(v["kind"], "cursor");
        if v["time_us"].as_i64() == Some(head) {
            break;
        }
    }
    assert_silent(&mut off, Duration::from_millis(1500)).await;

    // Resuming at the heartbeat replays none of the filtered-out hours...
    let mut resumed = s
        .connect(&format!("wantedDids={NOBODY}&cursor={head}"))
        .await;
    assert_silent(&mut resumed, QUIET).await;
    // ...and a heartbeat's value is never ahead of an event the subscriber wants.
    let mut wide = s
        .connect("wantedCollections=app.bsky.feed.like&informCursorSeconds=1&cursor=0")
        .await;
    let mut last_event = 0;
    let mut beats = 0;
    while beats < 2 {
        match recv(&mut wide, SECOND * 3).await {
            Some(Message::Text(t)) => {
                let v: J = serde_json::from_str(&t).expect("json");
                let time = v["time_us"].as_i64().expect("time_us");
                if v["kind"] == "cursor" {
                    assert!(time >= last_event);
                    beats += 1;
                } else {
                    last_event = time;
                }
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn replay_to_live_cutover_under_concurrent_appends() {
    // A small tail forces replays through the database while appends go on.
    let cfg = ServerConfig {
        tail_bytes: 64 << 10,
        ..test_config()
    };
    let mut s = start(cfg, false).await;
    let events = corpus_repeated(20); // 3,040 v1 events
    s.feed(&events[..300], 50).await;
    let first_half = s.log_times().await;
    let mid = first_half[first_half.len() / 2];

    let addr_url = |q: &str| s.url(q);
    let urls = [
        addr_url("cursor=0"),
        addr_url(&format!("cursor={mid}")),
        addr_url(""),
    ];
    let mut readers = Vec::new();
    for url in urls {
        let mut ws = connect_url(&url, &[]).await;
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = recv(&mut ws, SECOND * 2).await {
                let Message::Text(t) = m else { panic!("text") };
                let v: J = serde_json::from_str(&t).expect("json");
                got.push(v["time_us"].as_i64().expect("time_us"));
            }
            got
        }));
    }
    // Append the rest while the three subscribers read.
    s.feed(&events[300..], 37).await;
    let all = s.log_times().await;
    assert_eq!(all.len(), 3_040);
    let results: Vec<Vec<i64>> = futures_util::future::join_all(readers)
        .await
        .into_iter()
        .map(|r| r.expect("reader"))
        .collect();
    assert_eq!(
        results[0], all,
        "from the start: every event once, in order"
    );
    let from_mid: Vec<i64> = all.iter().copied().filter(|t| *t >= mid).collect();
    assert_eq!(
        results[1], from_mid,
        "from the middle: every later event once, in order"
    );
    // The live subscriber starts at the head when it connected: a contiguous suffix.
    let live = &results[2];
    assert!(!live.is_empty());
    let at = all
        .iter()
        .position(|t| *t == live[0])
        .expect("live events are log events");
    assert_eq!(
        live[..],
        all[at..],
        "live: no gap, no duplicate, no reorder"
    );
    assert!(at >= first_half.len(), "nothing from before it connected");
}

#[tokio::test]
async fn cursors_older_than_retention_are_clamped_and_future_ones_are_live() {
    let mut s = start(test_config(), false).await;
    s.feed(&corpus_events(), 150).await;
    let times = s.log_times().await;
    let cut = times[50];
    let t = s.server.hub().trim_before(cut).await.expect("trim");
    assert_eq!(t.removed, 50);
    assert_eq!(s.server.hub().oldest(), cut);
    let mut old = s.connect("cursor=1").await;
    let got = recv_json(&mut old, 102).await;
    assert_eq!(
        got[0]["time_us"].as_i64(),
        Some(cut),
        "clamped to the oldest kept"
    );
    assert_silent(&mut old, QUIET).await;

    let future = sequencer_now() + 3_600_000_000;
    let mut live = s.connect(&format!("cursor={future}")).await;
    assert_silent(&mut live, QUIET).await;
    s.feed(&renumbered(&corpus_events()[..2], 1 << 40), 2).await;
    assert_eq!(recv_json(&mut live, 2).await.len(), 2);
    assert_silent(&mut live, QUIET).await;
}

fn sequencer_now() -> i64 {
    skystream_jetstream::sequencer::now_us()
}

#[tokio::test]
async fn retention_trims_by_age() {
    let cfg = ServerConfig {
        retention: Duration::from_millis(300),
        ..test_config()
    };
    let mut s = start(cfg, false).await;
    s.feed(&corpus_events()[..100], 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.feed(&corpus_events()[100..], 50).await;
    let before = s.log_times().await.len();
    let t = s.server.trim().await.expect("trim");
    let after = s.log_times().await;
    assert_eq!(t.removed as usize, before - after.len());
    assert!(t.removed >= 100, "{t:?}");
    assert!(!after.is_empty(), "recent events are kept");
    let health = reqwest_health(&s).await;
    assert_eq!(health["oldest_time_us"].as_i64(), Some(after[0]));
}

async fn reqwest_health(s: &common::TestServer) -> J {
    let app = router(s.server.clone());
    let r = app
        .oneshot(
            axum::http::Request::get("/health")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let b = http_body_util::BodyExt::collect(r.into_body())
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&b).expect("json")
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_retention_is_closed_with_a_reason() {
    // 100 events/s per IP: the subscriber reads a chunk, then must wait over a second.
    let cfg = ServerConfig {
        ip_limits: IpLimits {
            connections: 0,
            events_per_sec: 100,
        },
        tail_bytes: 64 << 10,
        ..test_config()
    };
    let mut s = start(cfg, false).await;
    s.feed(&corpus_repeated(3), 150).await;
    let mut ws = s.connect("cursor=0").await;
    recv_json(&mut ws, 1).await;
    // Retention deletes what the subscriber has not read yet.
    let head = s.server.hub().head();
    s.server.hub().trim_before(head).await.expect("trim");
    let (code, reason) = close_reason(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("retention"), "{reason}");
}

#[tokio::test]
async fn a_live_subscriber_over_the_lag_limit_is_closed() {
    let cfg = ServerConfig {
        ip_limits: IpLimits {
            connections: 0,
            events_per_sec: 100,
        },
        max_lag: Some(Duration::from_millis(500)),
        ..test_config()
    };
    let mut s = start(cfg, false).await;
    let mut ws = s.connect("").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.feed(&corpus_repeated(3), 150).await;
    let (code, reason) = close_reason(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("lag limit"), "{reason}");
    // A subscriber that keeps up is not closed.
    let mut ok = s.connect("").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.feed(&renumbered(&corpus_events()[..3], 1 << 40), 3).await;
    assert!(recv_json(&mut ok, 3).await.len() == 3);
}

#[tokio::test]
async fn per_ip_connection_limit() {
    let cfg = ServerConfig {
        ip_limits: IpLimits {
            connections: 2,
            events_per_sec: 0,
        },
        ..test_config()
    };
    let s = start(cfg, false).await;
    let a = s.connect("").await;
    let _b = s.connect("").await;
    let err = tokio_tungstenite::connect_async(s.url(""))
        .await
        .expect_err("third refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 429),
        other => panic!("{other:?}"),
    }
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _c = s.connect("").await;
}

#[tokio::test]
async fn restart_keeps_the_log_time_us_order_and_skips_repeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let events = corpus_repeated(1);
    let mut s = start_in(dir, test_config(), false).await;
    s.feed(&events[..100], 50).await;
    let before = s.log_times().await;
    s.server.shutdown();
    let common::TestServer { dir, .. } = s;
    assert_eq!(dir.path(), path);
    let mut s = start_in(dir, test_config(), false).await;
    assert_eq!(s.server.hub().head(), *before.last().expect("some"));
    // The pipeline resumes from its saved cursor, which lags: events 80.. come again.
    s.feed(&events[80..], 50).await;
    let after = s.log_times().await;
    assert_eq!(
        after.len(),
        152,
        "repeats of events already in the log are skipped"
    );
    assert_eq!(after[..before.len()], before[..]);
    assert!(after.windows(2).all(|w| w[0] < w[1]));
    let got = filtered(&s, "cursor=0").await;
    assert_corpus(&got);
}

/// The corpus as a Kafka consumer would read it from a topic of three partitions: each event
/// carries its message's (partition, offset), and `cursors` numbers them locally from
/// `first_cursor`, as the Kafka source does from the pipeline's saved cursor.
fn from_partitions(
    events: &[Event],
    range: std::ops::Range<usize>,
    first_cursor: u64,
) -> Vec<Envelope> {
    range
        .enumerate()
        .map(|(n, i)| {
            let mut event = events[i].clone();
            event.cursor = first_cursor + n as u64;
            let mut env = Envelope::new(event);
            env.position = Some(Position {
                partition: (i % 3) as u32,
                offset: (i / 3) as u64,
            });
            env
        })
        .collect()
}

#[tokio::test]
async fn a_partitioned_upstream_is_deduplicated_by_offsets_across_restarts() {
    let events = corpus_events();
    let mut s = start(test_config(), false).await;
    s.feed_envelopes(&from_partitions(&events, 0..100, 1), 25)
        .await;
    // A restart where the group's committed offsets are ahead of the pipeline's saved cursor
    // (offsets follow every acknowledged batch; the cursor is saved about once a second):
    // reading resumes at event 90 while the local numbers start again from 60. Judged by
    // cursor, events 90..129 would look like 60..99, which the log covers: lost.
    s.consumer = s.server.consumer("test:corpus").expect("consumer");
    s.feed_envelopes(&from_partitions(&events, 90..130, 60), 25)
        .await;
    // And one where the offsets lag: events 50.. come again with numbers past every cursor
    // the log has seen. Judged by cursor, they would all be appended twice.
    s.consumer = s.server.consumer("test:corpus").expect("consumer");
    s.feed_envelopes(&from_partitions(&events, 50..150, 500), 25)
        .await;
    let got = filtered(&s, "cursor=0").await;
    assert_corpus(&got);
}

#[tokio::test]
async fn backfill_events_stay_out_unless_included() {
    let mut events = corpus_events();
    for e in &mut events[..50] {
        e.origin = skystream_event::Origin::Backfill;
    }
    let mut s = start(test_config(), false).await;
    s.feed(&events, 150).await;
    let n = s.log_times().await.len();
    assert!(n < 152 && n > 0, "{n}");
    let cfg = ServerConfig {
        include_backfill: true,
        ..test_config()
    };
    let mut s = start(cfg, false).await;
    s.feed(&events, 150).await;
    assert_eq!(s.log_times().await.len(), 152);
}
