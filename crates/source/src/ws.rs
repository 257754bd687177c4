//! A WebSocket connection that never stalls silently: an idle watchdog, pings with a pong
//! deadline, and handshake failures (5xx, HTML error pages) classified into reasons.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// The watchdog's timers; all configurable so tests run in seconds.
#[derive(Clone, Debug)]
pub struct WatchdogConfig {
    /// Reconnect after this long without data; `None` disables the idle check (a narrow
    /// subscription can be legitimately quiet).
    pub idle_timeout: Option<Duration>,
    /// How often to ping.
    pub ping_interval: Duration,
    /// Reconnect when a ping gets no pong within this.
    pub pong_timeout: Duration,
    /// Give up on a handshake after this.
    pub handshake_timeout: Duration,
    /// Largest message accepted.
    pub max_message: usize,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            idle_timeout: Some(Duration::from_secs(30)),
            ping_interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_message: 6 * 1024 * 1024,
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub struct ConnectError {
    /// A metric label: `http_502`, `handshake_timeout`, `connect_failed`, …
    pub reason: String,
    /// Specifics for the log.
    pub detail: String,
}

impl ConnectError {
    /// A bounded metric label: `http_5xx`, `http_4xx`, `handshake_timeout`, `connect_failed`,
    /// `bad_url` or `handshake_failed`.
    pub fn label(&self) -> &'static str {
        match self.reason.as_str() {
            "handshake_timeout" => "handshake_timeout",
            "connect_failed" => "connect_failed",
            "bad_url" => "bad_url",
            r if r.starts_with("http_5") => "http_5xx",
            r if r.starts_with("http_4") => "http_4xx",
            _ => "handshake_failed",
        }
    }
}

/// After a lost connection: counts it by reason, logs it, and waits out the backoff. Returns
/// `false` when shutdown came first.
pub async fn pause_before_reconnect(
    shutdown: &CancellationToken,
    backoff: &mut crate::Backoff,
    upstream: &str,
    reason: &'static str,
    detail: &str,
    resume_from: Option<u64>,
) -> bool {
    metrics::counter!("skystream_source_reconnects_total", "reason" => reason).increment(1);
    let delay = backoff.next_delay();
    tracing::warn!(upstream, reason, detail, cursor = ?resume_from,
        retry_in_ms = delay.as_millis() as u64, "connection lost; reconnecting");
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum Disconnect {
    /// No data within the idle timeout.
    Idle,
    /// A ping went unanswered.
    PongTimeout,
    /// The server closed the connection.
    Closed(String),
    /// A read or write failed.
    Error(String),
    /// A message was larger than `max_message` (the connection is gone with it).
    TooLarge(String),
    /// Shutdown was requested.
    Shutdown,
}

impl Disconnect {
    /// A metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Disconnect::Idle => "idle",
            Disconnect::PongTimeout => "pong_timeout",
            Disconnect::Closed(_) => "closed",
            Disconnect::Error(_) => "read_error",
            Disconnect::TooLarge(_) => "message_too_large",
            Disconnect::Shutdown => "shutdown",
        }
    }

    /// A human-readable account for the log.
    pub fn detail(&self) -> String {
        match self {
            Disconnect::Idle => "no data within the idle timeout".into(),
            Disconnect::PongTimeout => "a ping went unanswered".into(),
            Disconnect::Closed(why) => format!("the server closed the connection ({why})"),
            Disconnect::Error(e) => format!("the connection failed: {e}"),
            Disconnect::TooLarge(e) => format!("a message was over the size limit: {e}"),
            Disconnect::Shutdown => "shutting down".into(),
        }
    }
}

/// A data message.
pub enum Payload {
    /// A binary message.
    Binary(tungstenite::Bytes),
    /// A text message.
    Text(tungstenite::Utf8Bytes),
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open connection with its watchdog state.
pub struct Conn {
    ws: Stream,
    cfg: WatchdogConfig,
    last_data: Instant,
    ping_sent: Option<Instant>,
    next_ping: Instant,
}

/// Opens `url` with the handshake timeout, classifying failures.
pub async fn connect(url: &str, cfg: &WatchdogConfig) -> Result<Conn, ConnectError> {
    let mut request = url.into_client_request().map_err(|e| ConnectError {
        reason: "bad_url".into(),
        detail: e.to_string(),
    })?;
    if let Ok(ua) = concat!("skystream/", env!("CARGO_PKG_VERSION")).parse() {
        request.headers_mut().insert("User-Agent", ua);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message));
    let attempt = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (ws, _) = match tokio::time::timeout(cfg.handshake_timeout, attempt).await {
        Err(_) => {
            return Err(ConnectError {
                reason: "handshake_timeout".into(),
                detail: format!("no handshake within {:?}", cfg.handshake_timeout),
            })
        }
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let html = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("html"));
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned())
                .unwrap_or_default();
            return Err(ConnectError {
                reason: format!("http_{status}"),
                detail: format!(
                    "the server answered HTTP {status}{}: {}",
                    if html { " with an HTML page" } else { "" },
                    body.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            });
        }
        Ok(Err(e)) => {
            return Err(ConnectError {
                reason: "connect_failed".into(),
                detail: e.to_string(),
            })
        }
        Ok(Ok(pair)) => pair,
    };
    let now = Instant::now();
    Ok(Conn {
        ws,
        next_ping: now + cfg.ping_interval,
        cfg: cfg.clone(),
        last_data: now,
        ping_sent: None,
    })
}

impl Conn {
    /// The next data message, or why the connection is over.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Result<Payload, Disconnect> {
        loop {
            let idle_at = self.cfg.idle_timeout.map(|t| self.last_data + t);
            let pong_at = self.ping_sent.map(|t| t + self.cfg.pong_timeout);
            let wake = [Some(self.next_ping), idle_at, pong_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(self.next_ping);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(Disconnect::Shutdown),
                msg = self.ws.next() => match msg {
                    None => return Err(Disconnect::Closed("stream ended".into())),
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        return Err(Disconnect::TooLarge(e.to_string()))
                    }
                    Some(Err(e)) => return Err(Disconnect::Error(e.to_string())),
                    Some(Ok(Message::Binary(b))) => {
                        self.last_data = Instant::now();
                        return Ok(Payload::Binary(b));
                    }
                    Some(Ok(Message::Text(t))) => {
                        self.last_data = Instant::now();
                        return Ok(Payload::Text(t));
                    }
                    Some(Ok(Message::Pong(_))) => self.ping_sent = None,
                    Some(Ok(Message::Close(frame))) => {
                        return Err(Disconnect::Closed(
                            frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default(),
                        ))
                    }
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if idle_at.is_some_and(|t| now >= t) {
                        return Err(Disconnect::Idle);
                    }
                    if pong_at.is_some_and(|t| now >= t) {
                        return Err(Disconnect::PongTimeout);
                    }
                    if now >= self.next_ping {
                        self.next_ping = now + self.cfg.ping_interval;
                        if self.ping_sent.is_none() {
                            self.ping_sent = Some(now);
                        }
                        if let Err(e) = self.ws.send(Message::Ping(Vec::new().into())).await {
                            return Err(Disconnect::Error(e.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Closes politely, without waiting long.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}
