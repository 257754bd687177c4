//! One subscriber's connection: it reads the log by position (pull), filters, and writes
//! frames to its socket; nothing is ever queued for it. Its position `next` is the smallest
//! `time_us` it has not yet looked at, so replay and live are the same loop: a replaying
//! subscriber reads older positions (from disk), a live one reads the tail and waits for the
//! head to move.
//!
//! A second task reads the client's messages (`options_update`, close) and hands them over a
//! small channel; a malformed one ends the connection with a close frame that says why.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::filter::{parse_client_message, ClientMessage, Filter, SubscribeQuery};
use crate::heartbeat;
use crate::hub::Hub;
use crate::limits::Permit;
use crate::sequencer::now_us;
use crate::telemetry::{self, Phase, SubscriberGauge};
use crate::ServerConfig;

/// Entries read from the log per step.
const CHUNK: usize = 256;
/// The close reason for a subscriber whose next event retention deleted.
const BEHIND_RETENTION: &str =
    "too slow: fell behind the replay log's retention; reconnect with a newer cursor";
/// A WebSocket close reason's limit in bytes.
const MAX_REASON: usize = 123;

/// What the reading task tells the writing one.
#[derive(Debug)]
enum Control {
    /// A valid `options_update`.
    Update {
        filter: Filter,
        inform_cursor_seconds: Option<u64>,
    },
    /// The client sent something that ends the connection; the reason to close with.
    Close(String),
    /// The client closed or the socket failed.
    Gone,
}

/// Everything a connection needs besides its socket.
#[derive(Debug)]
pub(crate) struct Session {
    pub hub: Arc<Hub>,
    pub cfg: Arc<ServerConfig>,
    pub permit: Permit,
    pub query: SubscribeQuery,
    pub compress: bool,
    pub stop: CancellationToken,
}

/// How a connection ended, for the close frame.
struct End {
    code: CloseCode,
    reason: String,
}

impl End {
    fn new(code: CloseCode, reason: impl Into<String>) -> End {
        End {
            code,
            reason: reason.into(),
        }
    }
}

fn truncate_reason(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Serves one upgraded connection until the client leaves, it is closed, or the server stops.
pub(crate) async fn run<S>(ws: WebSocketStream<S>, session: Session)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Control>(4);
    let reader = tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let ctl = match msg {
                Ok(Message::Text(t)) => match parse_client_message(&t) {
                    Ok(ClientMessage::OptionsUpdate {
                        filter,
                        inform_cursor_seconds,
                    }) => Control::Update {
                        filter,
                        inform_cursor_seconds,
                    },
                    Ok(ClientMessage::Other(kind)) => {
                        debug!(kind, "ignoring a subscriber message of unknown type");
                        continue;
                    }
                    Err(e) => Control::Close(e.to_string()),
                },
                Ok(Message::Close(_)) => Control::Gone,
                // Pings are answered by the WebSocket layer; binary messages mean nothing here.
                Ok(_) => continue,
                Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                    Control::Close(format!("message too large: {e}"))
                }
                Err(_) => Control::Gone,
            };
            let last = !matches!(ctl, Control::Update { .. });
            if ctl_tx.send(ctl).await.is_err() || last {
                return;
            }
        }
        let _ = ctl_tx.send(Control::Gone).await;
    });
    // The reader ends with the connection either way; make sure it does not outlive it.
    let _reader = AbortOnDrop(reader);

    let end = serve(&mut sink, &mut ctl_rx, session).await;
    let Some(end) = end else {
        // The client left (or the socket failed): finish the close handshake if it can be.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
        return;
    };
    let frame = CloseFrame {
        code: end.code,
        reason: Utf8Bytes::from(truncate_reason(end.reason)),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The subscriber's state in the log.
struct Position {
    /// The smallest `time_us` not yet looked at.
    next: i64,
    /// The newest `time_us` looked at (sent or filtered out): the heartbeat's value.
    passed: i64,
    /// Whether anything has been read yet (until then an old position is clamped, after that
    /// it means the subscriber fell behind retention).
    started: bool,
}

async fn serve<W>(sink: &mut W, ctl: &mut mpsc::Receiver<Control>, s: Session) -> Option<End>
where
    W: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let hub = &s.hub;
    let cfg = &s.cfg;
    let mut filter = s.query.filter.clone();
    let mut inform = s.query.inform_cursor_seconds;
    // The start is fixed at connect time, also with requireHello, so nothing appended while
    // the client prepares its hello is lost.
    let head = hub.head();
    let live_start = match s.query.cursor {
        None => true,
        Some(c) => c > now_us(),
    };
    let next = if live_start {
        head + 1
    } else {
        s.query.cursor.unwrap_or(0).max(1)
    };
    let mut pos = Position {
        next,
        passed: next - 1,
        started: false,
    };
    let first_phase = if live_start {
        Phase::Live
    } else {
        Phase::Replay
    };
    let mut gauge = SubscriberGauge::new(
        s.compress,
        filter.narrows(),
        if s.query.require_hello {
            Phase::Waiting
        } else {
            first_phase
        },
    );

    if s.query.require_hello {
        // Only the first options update (or the end of the connection) gets past this.
        tokio::select! {
            _ = s.stop.cancelled() => return Some(End::new(CloseCode::Away, "server shutting down")),
            c = ctl.recv() => match c {
                Some(Control::Update { filter: f, inform_cursor_seconds }) => {
                    filter = f;
                    inform = inform_cursor_seconds.or(inform);
                    gauge.set_filtered(filter.narrows());
                }
                Some(Control::Close(reason)) => return Some(End::new(CloseCode::Policy, reason)),
                Some(Control::Gone) | None => return None,
            },
        }
        gauge.set(first_phase);
    }

    let mut streaming = false;
    let mut heartbeat_every =
        inform.and_then(|n| heartbeat::interval(n, cfg.inform_cursor_floor_secs));
    let mut next_heartbeat = heartbeat_every.map(|d| Instant::now() + d);
    let mut next_ping = Instant::now() + cfg.ping_interval;
    let mut head_rx = hub.watch_head();
    let max_lag_us = cfg
        .max_lag
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));

    loop {
        // Options updates that arrived meanwhile.
        loop {
            match ctl.try_recv() {
                Ok(Control::Update {
                    filter: f,
                    inform_cursor_seconds,
                }) => {
                    filter = f;
                    gauge.set_filtered(filter.narrows());
                    if !streaming && heartbeat_every.is_none() {
                        heartbeat_every = inform_cursor_seconds
                            .and_then(|n| heartbeat::interval(n, cfg.inform_cursor_floor_secs));
                        next_heartbeat = heartbeat_every.map(|d| Instant::now() + d);
                    }
                }
                Ok(Control::Close(reason)) => return Some(End::new(CloseCode::Policy, reason)),
                Ok(Control::Gone) => return None,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        if s.stop.is_cancelled() {
            return Some(End::new(CloseCode::Away, "server shutting down"));
        }

        // Retention: an old start is clamped to what is kept; a subscriber whose next event
        // was deleted under it has missed events and is told so.
        let floor = hub.trimmed_upto();
        if pos.next <= floor {
            if pos.started {
                telemetry::slow_close("retention");
                return Some(End::new(CloseCode::Policy, BEHIND_RETENTION));
            }
            pos.next = floor + 1;
            pos.passed = pos.passed.max(floor);
        }
        // Mark the head seen before reading: an append after this read wakes the wait below.
        head_rx.borrow_and_update();
        let (from, was_started) = (pos.next, pos.started);
        let chunk = match hub.read(pos.next, CHUNK).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading the replay log failed");
                return Some(End::new(
                    CloseCode::Error,
                    "internal error reading the replay log",
                ));
            }
        };
        pos.started = true;
        // Retention may have deleted rows at `from` while this read ran; the read would then
        // have stepped over them without a trace. (A first read is a clamp, which is fine.)
        if was_started && hub.trimmed_upto() >= from {
            telemetry::slow_close("retention");
            return Some(End::new(CloseCode::Policy, BEHIND_RETENTION));
        }
        // Lag: how long ago the oldest event not yet passed was appended (time_us is the
        // server's clock at append). Only for subscribers that have been live: a replay is
        // behind by design.
        if let (Some(max), Some(first)) = (max_lag_us, chunk.first()) {
            if gauge.phase() == Phase::Live && now_us() - first.time_us > max {
                telemetry::slow_close("lag");
                return Some(End::new(
                    CloseCode::Policy,
                    "too slow: fell behind the head by more than the server's lag limit",
                ));
            }
        }

        if chunk.is_empty() {
            gauge.set(Phase::Live);
            let heartbeat_at = next_heartbeat;
            tokio::select! {
                biased;
                _ = s.stop.cancelled() => return Some(End::new(CloseCode::Away, "server shutting down")),
                c = ctl.recv() => match c {
                    Some(Control::Update { filter: f, inform_cursor_seconds }) => {
                        filter = f;
                        gauge.set_filtered(filter.narrows());
                        if !streaming && heartbeat_every.is_none() {
                            heartbeat_every = inform_cursor_seconds
                                .and_then(|n| heartbeat::interval(n, cfg.inform_cursor_floor_secs));
                            next_heartbeat = heartbeat_every.map(|d| Instant::now() + d);
                        }
                    }
                    Some(Control::Close(reason)) => return Some(End::new(CloseCode::Policy, reason)),
                    Some(Control::Gone) | None => return None,
                },
                r = head_rx.changed() => if r.is_err() {
                    return Some(End::new(CloseCode::Away, "server shutting down"));
                },
                _ = sleep_until_opt(heartbeat_at) => {}
                _ = tokio::time::sleep_until(next_ping) => {}
            }
        } else {
            let mut frames = Vec::new();
            let mut bytes = 0u64;
            for e in &chunk {
                if filter.wants(e) {
                    let (msg, len) = if s.compress {
                        (Message::Binary(e.zstd.clone()), e.zstd.len())
                    } else {
                        (Message::Text(e.json.clone()), e.json.len())
                    };
                    if filter.fits(len) {
                        frames.push(msg);
                        bytes += len as u64;
                    }
                }
                pos.passed = e.time_us;
                pos.next = e.time_us + 1;
            }
            let n = frames.len() as u64;
            if !frames.is_empty() {
                if let Err(end) = write(sink, frames, cfg.write_timeout).await {
                    return end;
                }
                streaming = true;
                gauge.sent(n, bytes);
            }
            // Events sent count toward the address's rate, and so do (at a tenth) events read
            // and filtered out, so a sparse filter cannot scan the whole log at disk speed.
            let wait = s.permit.take(n, chunk.len() as u64);
            if !wait.is_zero() {
                tokio::select! {
                    _ = s.stop.cancelled() => return Some(End::new(CloseCode::Away, "server shutting down")),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }

        let now = Instant::now();
        if let (Some(at), Some(every)) = (next_heartbeat, heartbeat_every) {
            if now >= at {
                next_heartbeat = Some(now + every);
                if pos.passed > 0 {
                    let text = heartbeat::message(pos.passed);
                    let msg = if s.compress {
                        match hub.codec().compress(text.as_bytes()) {
                            Ok(z) => Message::Binary(z),
                            Err(_) => {
                                return Some(End::new(
                                    CloseCode::Error,
                                    "internal compression error",
                                ))
                            }
                        }
                    } else {
                        Message::Text(text.into())
                    };
                    if let Err(end) = write(sink, vec![msg], cfg.write_timeout).await {
                        return end;
                    }
                    streaming = true;
                    telemetry::heartbeat();
                }
            }
        }
        if now >= next_ping {
            next_ping = now + cfg.ping_interval;
            if let Err(end) = write(
                sink,
                vec![Message::Ping(Default::default())],
                cfg.write_timeout,
            )
            .await
            {
                return end;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes `frames` and flushes, within `timeout`. A socket that takes no data for that long
/// belongs to a subscriber that stopped reading: it is dropped (a close frame would not get
/// through either).
async fn write<W>(sink: &mut W, frames: Vec<Message>, timeout: Duration) -> Result<(), Option<End>>
where
    W: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let sent = tokio::time::timeout(timeout, async {
        for f in frames {
            sink.feed(f).await?;
        }
        sink.flush().await
    })
    .await;
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => {
            telemetry::slow_close("write_timeout");
            Err(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let t = truncate_reason(long);
        assert!(t.len() <= MAX_REASON && t.chars().all(|c| c == 'é'));
        assert_eq!(truncate_reason("short".into()), "short");
    }
}
