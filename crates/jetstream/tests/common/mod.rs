//! Shared test plumbing: the relay corpus as events, a server on a loopback socket, and a
//! WebSocket client that reads frames with a deadline.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value as J;
use skystream_capture::CaptureReader;
use skystream_event::{from_frame, Event, FrameOptions};
use skystream_firehose::decode_frame;
use skystream_jetstream::{router, LogConsumer, Server, ServerConfig};
use skystream_pipeline::{Batch, Consumer, Envelope};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/relay-corpus");
pub const DICT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/zstd/jetstream-v1.zdict"
);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The corpus's 150 frames as events (148 commits, an identity, an account).
pub fn corpus_events() -> Vec<Event> {
    let mut r = CaptureReader::open(format!("{CORPUS}/frames.bin.zst")).expect("open corpus");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("read corpus") {
        let frame = decode_frame(rec.data()).expect("decodes");
        let ev = from_frame(&frame, &FrameOptions::default())
            .expect("event")
            .event
            .expect("some");
        out.push(ev);
    }
    assert_eq!(out.len(), 150, "the manifest's frame count");
    out
}

/// The corpus `times` over, with fresh increasing upstream cursors (so nothing is a repeat).
pub fn corpus_repeated(times: usize) -> Vec<Event> {
    let base = corpus_events();
    let mut out = Vec::new();
    for i in 0..times {
        for (j, e) in base.iter().enumerate() {
            let mut e = e.clone();
            e.cursor = (i * base.len() + j + 1) as u64;
            out.push(e);
        }
    }
    out
}

/// `events` with upstream cursors `from`, `from + 1`, ... (the consumer skips events at or
/// below a cursor the log already covers, so a test that feeds again needs new ones).
pub fn renumbered(events: &[Event], from: u64) -> Vec<Event> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            e.cursor = from + i as u64;
            e
        })
        .collect()
}

/// Production Jetstream's lines for the corpus.
pub fn expected() -> Vec<J> {
    std::fs::read_to_string(format!("{CORPUS}/expected_v1.jsonl"))
        .expect("expected_v1.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// The pairing rule from testdata/README.md.
pub fn pair_key(e: &J) -> String {
    let kind = e["kind"].as_str().expect("kind");
    if kind == "commit" {
        let c = &e["commit"];
        format!(
            "{}|{}|{}|{}|{}",
            e["did"], c["rev"], c["collection"], c["rkey"], c["operation"]
        )
    } else {
        format!("{kind}|{}|{}", e["did"], e[kind]["seq"])
    }
}

pub fn without_clock(mut e: J) -> J {
    let o = e.as_object_mut().expect("object");
    o.remove("time_us");
    o.remove("cursor");
    e
}

/// Expected lines by pair key, clock removed.
pub fn expected_by_key() -> HashMap<String, J> {
    expected()
        .into_iter()
        .map(|e| (pair_key(&e), without_clock(e)))
        .collect()
}

pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
    pub consumer: LogConsumer,
    pub dir: tempfile::TempDir,
    batch_id: u64,
}

/// A config with timers fit for tests and per-IP limits off.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        ip_limits: skystream_jetstream::IpLimits {
            connections: 0,
            events_per_sec: 0,
        },
        write_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

pub async fn start(cfg: ServerConfig, dictionary: bool) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    start_in(dir, cfg, dictionary).await
}

pub async fn start_in(dir: tempfile::TempDir, cfg: ServerConfig, dictionary: bool) -> TestServer {
    let dict = dictionary.then(|| std::fs::read(DICT).expect("dictionary"));
    let server = Server::open(dir.path(), cfg, dict.as_deref()).expect("open server");
    let consumer = server.consumer("test:corpus").expect("consumer");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(server.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer {
        server,
        addr,
        consumer,
        dir,
        batch_id: 0,
    }
}

impl TestServer {
    /// Hands `events` to the consumer in batches of `batch` (as the pipeline would).
    pub async fn feed(&mut self, events: &[Event], batch: usize) {
        let envelopes: Vec<Envelope> = events.iter().cloned().map(Envelope::new).collect();
        self.feed_envelopes(&envelopes, batch).await;
    }

    /// Hands `envelopes` to the consumer in batches of `batch`.
    pub async fn feed_envelopes(&mut self, envelopes: &[Envelope], batch: usize) {
        for chunk in envelopes.chunks(batch.max(1)) {
            self.batch_id += 1;
            let b = Batch {
                id: self.batch_id,
                items: chunk.to_vec(),
            };
            self.consumer.handle(&b).await.expect("append");
        }
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/subscribe?{query}", self.addr)
    }

    pub async fn connect(&self, query: &str) -> Ws {
        connect_url(&self.url(query), &[]).await
    }

    /// Every `time_us` in the log, in order.
    pub async fn log_times(&self) -> Vec<i64> {
        let mut out = Vec::new();
        let mut next = 0;
        loop {
            let chunk = self.server.hub().read(next, 1000).await.expect("read");
            let Some(last) = chunk.last() else {
                return out;
            };
            next = last.time_us + 1;
            out.extend(chunk.iter().map(|e| e.time_us));
        }
    }
}

pub async fn connect_url(url: &str, headers: &[(&'static str, &str)]) -> Ws {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut()
            .insert(*k, v.parse().expect("header value"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    ws
}

/// The next data or close frame, skipping pings; `None` after `wait` of silence.
pub async fn recv(ws: &mut Ws, wait: Duration) -> Option<Message> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return Some(m),
            Ok(Some(Err(e))) => panic!("socket error: {e}"),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Reads text frames as JSON until `n` have arrived (panics on a timeout).
pub async fn recv_json(ws: &mut Ws, n: usize) -> Vec<J> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match recv(ws, Duration::from_secs(10)).await {
            Some(Message::Text(t)) => out.push(serde_json::from_str(&t).expect("JSON frame")),
            other => panic!("after {} frames expected text, got {other:?}", out.len()),
        }
    }
    out
}

/// Asserts nothing but pings arrives for `wait`.
pub async fn assert_silent(ws: &mut Ws, wait: Duration) {
    if let Some(m) = recv(ws, wait).await {
        panic!("expected silence, got {m:?}");
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

/// The close frame's code and reason, reading past any data frames.
pub async fn close_reason(ws: &mut Ws) -> (u16, String) {
    loop {
        match recv(ws, Duration::from_secs(10)).await {
            Some(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Message::Close(None)) => panic!("closed without a reason"),
            Some(_) => continue,
            None => panic!("no close frame"),
        }
    }
}
