//! Loopback upstreams that misbehave on purpose, and a consumer that records what it saw.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::SinkExt;
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, MemoryCursorSink, Pipeline, PipelineConfig, PipelineHandle,
};
use skystream_source::{Source, SourceContext, SourceEnd};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// What the fake upstream does on one connection.
pub enum Step {
    /// Send a binary message.
    Binary(Vec<u8>),
    /// Send a text message.
    Text(String),
    /// Write raw bytes to the socket (a torn frame), then drop the connection.
    RawThenDrop(Vec<u8>),
    /// Keep the socket open and send nothing, answering nothing (not even pings).
    Stall,
    /// Close the connection.
    Close,
}

/// How the fake upstream answers a handshake.
pub enum Answer {
    /// Upgrade and play these steps.
    Play(Vec<Step>),
    /// Refuse with this HTTP status and an HTML page.
    Http(u16),
}

/// A record of one connection attempt: the request's query string.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub query: Option<String>,
    pub at: std::time::Instant,
}

impl Attempt {
    pub fn cursor(&self) -> Option<u64> {
        self.query
            .as_deref()?
            .split('&')
            .find_map(|kv| kv.strip_prefix("cursor=")?.parse().ok())
    }
}

/// Starts a fake upstream; `script(n, attempt)` decides what connection `n` (0-based) gets.
pub async fn fake_upstream<F>(script: F) -> (String, Arc<Mutex<Vec<Attempt>>>)
where
    F: Fn(usize, &Attempt) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            let log = log.clone();
            let index = n;
            n += 1;
            tokio::spawn(async move { serve(stream, index, script, log).await });
        }
    });
    (format!("ws://{addr}"), attempts)
}

async fn serve<F>(stream: TcpStream, index: usize, script: Arc<F>, log: Arc<Mutex<Vec<Attempt>>>)
where
    F: Fn(usize, &Attempt) -> Answer + Send + Sync + 'static,
{
    let decided: Arc<Mutex<Option<Answer>>> = Arc::new(Mutex::new(None));
    let d2 = decided.clone();
    // The signature is tungstenite's callback type; its error is an HTTP response by design.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let attempt = Attempt {
            query: req.uri().query().map(str::to_owned),
            at: std::time::Instant::now(),
        };
        let answer = script(index, &attempt);
        log.lock().expect("lock").push(attempt);
        if let Answer::Http(status) = answer {
            let mut r = ErrorResponse::new(Some(
                "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
            ));
            *r.status_mut() = status.try_into().expect("status");
            r.headers_mut()
                .insert("content-type", "text/html".parse().expect("header"));
            return Err(r);
        }
        *d2.lock().expect("lock") = Some(answer);
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let steps = match decided.lock().expect("lock").take() {
        Some(Answer::Play(steps)) => steps,
        _ => return,
    };
    play(&mut ws, steps).await;
}

async fn play(ws: &mut WebSocketStream<TcpStream>, steps: Vec<Step>) {
    for step in steps {
        match step {
            Step::Binary(b) => {
                if ws.send(Message::Binary(b.into())).await.is_err() {
                    return;
                }
            }
            Step::Text(t) => {
                if ws.send(Message::Text(t.into())).await.is_err() {
                    return;
                }
            }
            Step::RawThenDrop(bytes) => {
                let _ = ws.get_mut().write_all(&bytes).await;
                let _ = ws.get_mut().flush().await;
                return;
            }
            Step::Stall => {
                // Hold the socket without reading (so pings go unanswered) for a long time.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Step::Close => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
    // Script done: keep the connection open, quietly, until the client goes away.
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

/// A consumer that records every event cursor it handled.
pub struct Recorder(pub Arc<Mutex<Vec<u64>>>);

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        self.0.lock().expect("lock").extend(
            batch
                .items
                .iter()
                .filter(|e| e.event.did().is_some())
                .map(|e| e.event.cursor),
        );
        Ok(())
    }
}

/// A running source feeding a recording pipeline.
pub struct Harness {
    pub seen: Arc<Mutex<Vec<u64>>>,
    pub sink: MemoryCursorSink,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<(SourceEnd, PipelineHandle)>,
}

pub fn fast_pipeline() -> PipelineConfig {
    PipelineConfig {
        batch_max: 64,
        batch_linger: Duration::from_millis(1),
        save_interval: Duration::from_millis(20),
        ..PipelineConfig::default()
    }
}

pub fn run<S: Source + 'static>(mut source: S, start: Option<u64>) -> Harness {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast_pipeline(),
        source.cursor_key(),
        start,
        vec![Box::new(Recorder(seen.clone()))],
        Arc::new(sink.clone()),
    );
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        out: input,
        committed: handle.committed(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(async move {
        let end = source.run(start, ctx).await;
        (end, handle)
    });
    Harness {
        seen,
        sink,
        shutdown,
        task,
    }
}

impl Harness {
    /// Waits until `n` events were handled (or panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.seen.lock().expect("lock").len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {:?} handled",
                self.seen.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(self) -> (Vec<u64>, Option<u64>) {
        self.shutdown.cancel();
        let (_, handle) = self.task.await.expect("source task");
        let summary = handle.finish().await;
        let seen = self.seen.lock().expect("lock").clone();
        (seen, summary.cursor)
    }
}
