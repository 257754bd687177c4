//! The HTTP side: `GET /subscribe` (validated, limited, then upgraded to a WebSocket) and
//! `GET /health`, over a [`Server`] that also owns retention.
//!
//! The WebSocket upgrade is done here with hyper's upgrade and tokio-tungstenite (about forty
//! lines) rather than axum's `ws` feature, which would bring a second tungstenite version into
//! the build; it also gives direct control over the socket's buffers (small ones, because a
//! server holds many subscribers) and message limits (client messages are hostile input).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::consumer::LogConsumer;
use crate::filter::parse_query;
use crate::hub::{Hub, HubError};
use crate::limits::{IpLimits, Limiter};
use crate::log::Trimmed;
use crate::sequencer::now_us;
use crate::subscriber::{self, Session};
use crate::telemetry;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How long events stay in the replay log.
    pub retention: Duration,
    /// How often retention runs.
    pub trim_interval: Duration,
    /// The shortest `informCursorSeconds` honoured (requests below are raised to it).
    pub inform_cursor_floor_secs: u64,
    /// Per-IP connection and event-rate limits.
    pub ip_limits: IpLimits,
    /// Close a subscriber that, once live, falls this far behind the head (`None`: only
    /// retention closes a slow subscriber).
    pub max_lag: Option<Duration>,
    /// Keep events from a backfill in the log.
    pub include_backfill: bool,
    /// Memory for the newest entries, which live subscribers read without a query.
    pub tail_bytes: usize,
    /// How often subscribers are pinged.
    pub ping_interval: Duration,
    /// A subscriber whose socket takes no data for this long is dropped.
    pub write_timeout: Duration,
    /// A header carrying the client's address (e.g. `X-Forwarded-For` behind a proxy); the
    /// peer address is used when unset or absent.
    pub real_ip_header: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            retention: Duration::from_secs(24 * 3600),
            trim_interval: Duration::from_secs(60),
            inform_cursor_floor_secs: crate::heartbeat::DEFAULT_FLOOR_SECS,
            ip_limits: IpLimits {
                connections: 100,
                events_per_sec: 5_000,
            },
            max_lag: None,
            include_backfill: false,
            tail_bytes: 64 << 20,
            ping_interval: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            real_ip_header: None,
        }
    }
}

/// A Jetstream server: the log, its subscribers' limits, and the stop signal. Clones share
/// everything.
#[derive(Clone, Debug)]
pub struct Server {
    hub: Arc<Hub>,
    cfg: Arc<ServerConfig>,
    limiter: Arc<Limiter>,
    stop: CancellationToken,
}

/// The largest message a subscriber may send: an `options_update` with 10,000 DIDs fits.
const MAX_CLIENT_MESSAGE: usize = 2 << 20;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // Client messages are rare and small; keep per-connection memory low.
        .read_buffer_size(4 << 10)
        .write_buffer_size(16 << 10)
        .max_write_buffer_size(16 << 20)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

impl Server {
    /// Opens the replay log in `data_dir` (blocking) with the zstd dictionary, if any.
    pub fn open(
        data_dir: &Path,
        cfg: ServerConfig,
        dictionary: Option<&[u8]>,
    ) -> Result<Server, HubError> {
        let hub = Arc::new(Hub::open(data_dir, cfg.tail_bytes, dictionary)?);
        let limiter = Limiter::new(cfg.ip_limits);
        Ok(Server {
            hub,
            cfg: Arc::new(cfg),
            limiter,
            stop: CancellationToken::new(),
        })
    }

    /// The log state.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The pipeline consumer that feeds this server from `source` (its cursor key).
    pub fn consumer(&self, source: impl Into<String>) -> Result<LogConsumer, HubError> {
        LogConsumer::new(self.hub.clone(), source, self.cfg.include_backfill)
    }

    /// Closes every subscriber (close frame 1001) and stops retention.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Runs retention once: deletes what is older than the retention period.
    pub async fn trim(&self) -> Result<Trimmed, HubError> {
        let retention = i64::try_from(self.cfg.retention.as_micros()).unwrap_or(i64::MAX);
        self.hub
            .trim_before(now_us().saturating_sub(retention))
            .await
    }

    /// Runs retention every `trim_interval` until [`shutdown`](Self::shutdown).
    pub fn spawn_retention(&self) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                match server.trim().await {
                    Ok(t) if t.removed > 0 => info!(removed = t.removed, "replay log trimmed"),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "trimming the replay log failed; will retry"),
                }
                tokio::select! {
                    _ = server.stop.cancelled() => return,
                    _ = tokio::time::sleep(server.cfg.trim_interval) => {}
                }
            }
        })
    }
}

/// The routes: `GET /subscribe` and `GET /health`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so per-IP limits see the peer.
pub fn router(server: Server) -> Router {
    subscribe_router(server.clone()).merge(
        Router::new()
            .route("/health", get(health))
            .with_state(server),
    )
}

/// `GET /subscribe` alone, to merge into a router that has its own `/health` (the feed
/// generator's). The same connect-info requirement applies.
pub fn subscribe_router(server: Server) -> Router {
    Router::new()
        .route("/subscribe", get(subscribe))
        .with_state(server)
}

fn bad_request(msg: impl Into<String>) -> Response {
    telemetry::rejected("bad_request");
    (StatusCode::BAD_REQUEST, msg.into()).into_response()
}

fn client_ip(req: &Request, cfg: &ServerConfig) -> IpAddr {
    if let Some(name) = &cfg.real_ip_header {
        let first = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = first {
            return ip;
        }
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(c) => c.0.ip(),
        None => {
            // Every client then shares one address's limits: say so once.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                warn!("the server is not served with connect info: per-IP limits see every client as one address");
            });
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    }
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

async fn subscribe(State(server): State<Server>, mut req: Request) -> Response {
    let query = match parse_query(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad_request(e.to_string()),
    };
    let compress = query.compress
        || req
            .headers()
            .get("socket-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("zstd"));
    if compress && !server.hub.codec().enabled() {
        return bad_request(
            "compression was requested (compress=true or Socket-Encoding: zstd) but this server has no zstd dictionary configured; connect without it, or ask the operator to start the server with --dictionary",
        );
    }
    let headers = req.headers();
    if !header_has(headers, header::UPGRADE, "websocket")
        || !header_has(headers, header::CONNECTION, "upgrade")
    {
        return bad_request("/subscribe is a WebSocket endpoint: send a WebSocket upgrade request");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return bad_request("unsupported WebSocket version (expected Sec-WebSocket-Version: 13)");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad_request("missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let ip = client_ip(&req, &server.cfg);
    let Some(permit) = server.limiter.admit(ip) else {
        telemetry::rejected("ip_connections");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many connections from {ip}"),
        )
            .into_response();
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded to a WebSocket",
        )
            .into_response();
    };
    let session = Session {
        hub: server.hub.clone(),
        cfg: server.cfg.clone(),
        permit,
        query,
        compress,
        stop: server.stop.clone(),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_config()),
                )
                .await;
                subscriber::run(ws, session).await;
            }
            Err(e) => debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

async fn health(State(server): State<Server>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "oldest_time_us": server.hub.oldest(),
        "newest_time_us": server.hub.head(),
        "dictionary": server.hub.codec().enabled(),
    }))
    .into_response()
}
