//! Jetstream as a source: `/subscribe` JSON (or zstd with the v1 dictionary), cursor =
//! `time_us`, failing over between hosts.

use std::time::Duration;

use async_trait::async_trait;
use skystream_event::jetstream::parse_line;
use skystream_event::{Event, EventKind, Info, Origin};
use skystream_pipeline::{Envelope, Raw};
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::failures::FailureCount;
use crate::relay::{drain, now_us};
use crate::ws::{self, Disconnect, Payload, WatchdogConfig};
use crate::{Source, SourceContext, SourceEnd};

/// How far the cursor is rewound when switching hosts: hosts number events with their own
/// clocks, so a few seconds of overlap (delivered twice) is the price of losing none.
pub const FAILOVER_REWIND_US: u64 = 5_000_000;

/// Settings for [`JetstreamSource`].
#[derive(Clone, Debug)]
pub struct JetstreamConfig {
    /// `/subscribe` URLs, tried in turn.
    pub urls: Vec<String>,
    /// Collections to ask for (exact NSIDs or `prefix.*`); empty = all.
    pub wanted_collections: Vec<String>,
    /// DIDs to ask for; empty = all.
    pub wanted_dids: Vec<String>,
    /// The zstd dictionary; when set, compression is requested.
    pub dictionary: Option<Vec<u8>>,
    /// Watchdog timers.
    pub watchdog: WatchdogConfig,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// How long to wait for in-flight events before reconnecting.
    pub drain_timeout: Duration,
    /// Keep each event's JSON on its envelope (for `record`).
    pub keep_raw: bool,
}

impl JetstreamConfig {
    /// Defaults for these hosts.
    pub fn new(urls: Vec<String>) -> Self {
        JetstreamConfig {
            urls,
            wanted_collections: Vec::new(),
            wanted_dids: Vec::new(),
            dictionary: None,
            watchdog: WatchdogConfig::default(),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(5),
            keep_raw: false,
        }
    }
}

/// Reads Jetstream, reconnecting and failing over for ever.
#[derive(Debug)]
pub struct JetstreamSource {
    cfg: JetstreamConfig,
}

impl JetstreamSource {
    /// A source with these settings. A narrow DID filter turns the idle watchdog off: a few
    /// accounts can be quiet for hours.
    pub fn new(mut cfg: JetstreamConfig) -> Self {
        if !cfg.wanted_dids.is_empty() && cfg.wanted_dids.len() <= 100 {
            cfg.watchdog.idle_timeout = None;
        }
        JetstreamSource { cfg }
    }

    fn url(&self, host: usize, cursor: Option<u64>) -> String {
        let mut q: Vec<String> = Vec::new();
        for c in &self.cfg.wanted_collections {
            q.push(format!("wantedCollections={}", encode(c)));
        }
        for d in &self.cfg.wanted_dids {
            q.push(format!("wantedDids={}", encode(d)));
        }
        if self.cfg.dictionary.is_some() {
            q.push("compress=true".into());
        }
        // The host skips what this client could not read anyway: a message over the
        // WebSocket limit would otherwise kill the connection at the same place every time.
        q.push(format!(
            "maxMessageSizeBytes={}",
            self.cfg.watchdog.max_message
        ));
        if let Some(c) = cursor {
            q.push(format!("cursor={c}"));
        }
        let base = &self.cfg.urls[host % self.cfg.urls.len()];
        format!("{base}?{}", q.join("&"))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'*' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

enum Outcome {
    Reconnect(&'static str, String),
    Stop(SourceEnd),
}

/// Failures of one message at the same position before it is skipped (as the relay source's
/// `max_frame_failures` default).
const MAX_MESSAGE_FAILURES: u32 = 3;

#[async_trait]
impl Source for JetstreamSource {
    fn cursor_key(&self) -> String {
        format!("jetstream:{}", self.cfg.urls.join(","))
    }

    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd {
        let mut backoff = Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max);
        let mut last_sent = start;
        let mut host = 0usize;
        let mut rewind = false;
        // Failures of the message after the last handled time (too large, or would not
        // decompress within the limit).
        let mut failures = FailureCount::default();
        let mut decompressor = match &self.cfg.dictionary {
            Some(d) => match zstd::bulk::Decompressor::with_dictionary(d) {
                Ok(z) => Some(z),
                Err(e) => {
                    warn!(error = %e, "the zstd dictionary could not be loaded; not requesting compression");
                    self.cfg.dictionary = None;
                    None
                }
            },
            None => None,
        };
        loop {
            drain(&ctx, last_sent, self.cfg.drain_timeout).await;
            let mut cursor = *ctx.committed.borrow();
            if rewind {
                cursor = cursor.map(|c| c.saturating_sub(FAILOVER_REWIND_US));
                // The new host's clock numbers events differently: accept its repeats.
                last_sent = None;
                rewind = false;
            }
            let url = self.url(host, cursor);
            let outcome = match ws::connect(&url, &self.cfg.watchdog).await {
                Err(e) => Outcome::Reconnect(e.label(), e.detail),
                Ok(mut conn) => {
                    metrics::gauge!("skystream_source_connected").set(1.0);
                    info!(url = %url, "connected to Jetstream");
                    let o = self
                        .read(
                            &mut conn,
                            &ctx,
                            &mut last_sent,
                            decompressor.as_mut(),
                            &mut backoff,
                            &mut failures,
                        )
                        .await;
                    metrics::gauge!("skystream_source_connected").set(0.0);
                    conn.close().await;
                    o
                }
            };
            match outcome {
                Outcome::Stop(end) => return end,
                Outcome::Reconnect(reason, detail) => {
                    let failed = self.cfg.urls[host % self.cfg.urls.len()].clone();
                    if self.cfg.urls.len() > 1 {
                        host += 1;
                        rewind = true;
                    }
                    let cursor = *ctx.committed.borrow();
                    if !ws::pause_before_reconnect(
                        &ctx.shutdown,
                        &mut backoff,
                        &failed,
                        reason,
                        &detail,
                        cursor,
                    )
                    .await
                    {
                        return SourceEnd::Shutdown;
                    }
                }
            }
        }
    }
}

impl JetstreamSource {
    async fn read(
        &self,
        conn: &mut ws::Conn,
        ctx: &SourceContext,
        last_sent: &mut Option<u64>,
        mut zstd: Option<&mut zstd::bulk::Decompressor<'static>>,
        backoff: &mut Backoff,
        failures: &mut FailureCount,
    ) -> Outcome {
        loop {
            let text = match conn.next(&ctx.shutdown).await {
                Ok(Payload::Text(t)) => t.to_string(),
                Ok(Payload::Binary(b)) => {
                    let Some(z) = zstd.as_deref_mut() else {
                        metrics::counter!("skystream_decode_errors_total", "reason" => "unexpected_binary").increment(1);
                        continue;
                    };
                    match z.decompress(&b, self.cfg.watchdog.max_message) {
                        Ok(v) => match String::from_utf8(v) {
                            Ok(s) => s,
                            Err(_) => {
                                metrics::counter!("skystream_decode_errors_total", "reason" => "invalid_utf8").increment(1);
                                continue;
                            }
                        },
                        Err(e) => {
                            // Corrupt, or decompressing past the size limit: the same rule as
                            // an undecodable relay frame, reconnect twice, then skip it.
                            metrics::counter!("skystream_decode_errors_total", "reason" => "zstd")
                                .increment(1);
                            let failed = failures.record(*last_sent);
                            if failed >= MAX_MESSAGE_FAILURES {
                                metrics::counter!("skystream_frames_skipped_total").increment(1);
                                warn!(after = ?last_sent, error = %e, "skipping a compressed message that failed {failed} times");
                                failures.reset();
                                continue;
                            }
                            return Outcome::Reconnect("bad_frame", e.to_string());
                        }
                    }
                }
                Err(Disconnect::Shutdown) => return Outcome::Stop(SourceEnd::Shutdown),
                Err(d @ Disconnect::TooLarge(_)) => {
                    // The URL asks the host to skip messages over the limit
                    // (maxMessageSizeBytes), so a conforming host never sends one. The stream
                    // cannot step past it in place (its time is unknown, and a guessed cursor
                    // could skip other events), so it keeps asking, loudly.
                    metrics::counter!("skystream_decode_errors_total", "reason" => "message_too_large")
                        .increment(1);
                    if failures.record(*last_sent) == MAX_MESSAGE_FAILURES {
                        error!(after = ?last_sent, detail = %d.detail(),
                            "the Jetstream host keeps sending a message over the size limit though asked not to (maxMessageSizeBytes); raise the limit or use another host");
                    }
                    return Outcome::Reconnect(d.reason(), d.detail());
                }
                Err(d) => return Outcome::Reconnect(d.reason(), d.detail()),
            };
            let parsed = match parse_line(&text) {
                Ok(p) => p,
                Err(e) => {
                    metrics::counter!("skystream_decode_errors_total", "reason" => "invalid_event")
                        .increment(1);
                    warn!(error = %e, "skipping an invalid Jetstream event");
                    continue;
                }
            };
            let Ok(time_us) = u64::try_from(parsed.time_us) else {
                continue;
            };
            if last_sent.is_some_and(|l| time_us <= l) {
                metrics::counter!("skystream_events_repeated_total").increment(1);
                continue;
            }
            let (event, raw) = match parsed.event {
                Some(e) => {
                    metrics::counter!("skystream_events_total", "kind" => e.kind_name())
                        .increment(1);
                    let lag = now_us().saturating_sub(parsed.time_us) as f64 / 1e6;
                    metrics::gauge!("skystream_source_lag_seconds").set(lag);
                    (e, self.cfg.keep_raw.then_some(Raw::JsonLine(text)))
                }
                // A cursor heartbeat: nothing to deliver, but the position moves.
                None => (
                    Event {
                        cursor: time_us,
                        time_us: parsed.time_us,
                        origin: Origin::Live,
                        kind: EventKind::Info(Info {
                            name: "cursor".into(),
                            message: None,
                        }),
                    },
                    None,
                ),
            };
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => return Outcome::Stop(SourceEnd::Shutdown),
                sent = ctx.out.send(Envelope::with_raw(event, raw)) => if sent.is_err() {
                    return Outcome::Stop(SourceEnd::PipelineClosed);
                }
            }
            *last_sent = Some(time_us);
            backoff.reset();
        }
    }
}
