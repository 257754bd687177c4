//! The relay firehose source: `com.atproto.sync.subscribeRepos`, cursor = `seq`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skystream_event::validate::Validator;
use skystream_event::verify::{check_commit_with_doc, CommitCheck};
use skystream_event::{from_frame, FrameOptions};
use skystream_firehose::{decode_frame_with, Frame, Limits};
use skystream_identity::Resolver;
use skystream_pipeline::{Envelope, Raw};
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::failures::FailureCount;
use crate::lookahead;
use crate::ws::{self, Disconnect, Payload, WatchdogConfig};
use crate::{Source, SourceContext, SourceEnd};

/// Settings for [`RelaySource`].
#[derive(Clone)]
pub struct RelayConfig {
    /// The full `subscribeRepos` URL (ws:// or wss://), without a query string.
    pub url: String,
    /// Watchdog timers.
    pub watchdog: WatchdogConfig,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// How long to wait for in-flight events to be handled before reconnecting, so the new
    /// request can carry the newest durable cursor.
    pub drain_timeout: Duration,
    /// Failures at the same position before the offending frame is skipped.
    pub max_frame_failures: u32,
    /// Protocol limits.
    pub limits: Limits,
    /// Verify every commit against DID documents from this resolver (cached: an `#identity`
    /// event purges that DID); failures are dropped and counted.
    pub verify: Option<Arc<dyn Resolver>>,
    /// With `verify`: also require `prevData` on every commit (strict Sync 1.1).
    pub strict: bool,
    /// Keep each frame's bytes on its event (for `record`).
    pub keep_raw: bool,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("url", &self.url)
            .field("watchdog", &self.watchdog)
            .field("verify", &self.verify.is_some())
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RelayConfig {
            url: url.into(),
            watchdog: WatchdogConfig::default(),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(5),
            max_frame_failures: 3,
            limits: Limits::default(),
            verify: None,
            strict: false,
            keep_raw: false,
        }
    }
}

/// Reads a relay's firehose, reconnecting for ever.
#[derive(Debug)]
pub struct RelaySource {
    cfg: RelayConfig,
    refetched: Refetched,
}

/// When each DID's document was last fetched again after a bad signature: at most once a
/// minute per DID, so a repository that keeps sending bad signatures cannot make us hammer
/// its PLC or did:web host. Bounded: cleared when it holds this many DIDs.
#[derive(Debug, Default)]
struct Refetched(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

const REFETCH_EVERY: Duration = Duration::from_secs(60);
const REFETCH_TRACKED: usize = 100_000;

impl Refetched {
    /// Whether `did` may be fetched again now (and notes it if so).
    fn allow(&self, did: &str) -> bool {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if m.get(did)
            .is_some_and(|t| now.duration_since(*t) < REFETCH_EVERY)
        {
            return false;
        }
        if m.len() >= REFETCH_TRACKED {
            m.clear();
        }
        m.insert(did.to_owned(), now);
        true
    }
}

impl RelaySource {
    /// A source with these settings.
    pub fn new(cfg: RelayConfig) -> Self {
        RelaySource {
            cfg,
            refetched: Refetched::default(),
        }
    }
}

/// What reading one connection ended with.
enum Outcome {
    Reconnect(&'static str, String),
    /// The relay says our cursor is ahead of its stream (a reset relay, another host behind
    /// the same name): asking again with it would loop forever, so read from the live tail.
    FutureCursor(String),
    /// A message over the size limit failed at the same position as often as the skip rule
    /// allows: step past it (see [`RelaySource::run`]).
    SkipAhead(String),
    Stop(SourceEnd),
}

/// Waits (bounded) until the pipeline has handled everything sent so far.
pub(crate) async fn drain(ctx: &SourceContext, sent: Option<u64>, timeout: Duration) {
    let Some(sent) = sent else { return };
    let mut committed = ctx.committed.clone();
    let _ = tokio::time::timeout(
        timeout,
        committed.wait_for(|c| c.is_some_and(|c| c >= sent)),
    )
    .await;
}

#[async_trait]
impl Source for RelaySource {
    fn cursor_key(&self) -> String {
        format!("relay:{}", self.cfg.url)
    }

    async fn run(&mut self, start: Option<u64>, ctx: SourceContext) -> SourceEnd {
        let mut backoff = Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max);
        // The seq of the last event handed to the pipeline; anything at or below it is a repeat.
        let mut last_sent = start;
        // Failures of the message after the last handled seq (undecodable or too large).
        let mut failures = FailureCount::default();
        // Ordering checks run with verification: a verifying consumer is a validating one.
        let mut validator = self.cfg.verify.as_ref().map(|_| {
            Validator::new(self.cfg.strict, 1_000_000).with_last_seq(start.map(|s| s as i64))
        });
        // Set after a FutureCursor: the next connection asks for no cursor (the live tail).
        let mut from_tail = false;
        // How far past the last handled seq to ask from, to step over a message too large to
        // read (which no connection can skip in place: the socket dies with it). Seqs from
        // `last_sent` up to the oversized message's are gaps (any event there would have been
        // read and moved `last_sent`), so asking from `last_sent + 1`, `+ 2`, … skips nothing
        // but the oversized message.
        let mut skip_ahead: u64 = 0;
        loop {
            drain(&ctx, last_sent, self.cfg.drain_timeout).await;
            let cursor = match (from_tail, skip_ahead, last_sent) {
                (true, ..) => None,
                (false, 1.., Some(l)) => Some(l.saturating_add(skip_ahead)),
                _ => *ctx.committed.borrow(),
            };
            from_tail = false;
            let url = match cursor {
                Some(c) => format!("{}?cursor={c}", self.cfg.url),
                None => self.cfg.url.clone(),
            };
            let sent_before = last_sent;
            let outcome = match ws::connect(&url, &self.cfg.watchdog).await {
                Err(e) => Outcome::Reconnect(e.label(), e.detail),
                Ok(mut conn) => {
                    metrics::gauge!("skystream_source_connected").set(1.0);
                    info!(url = %url, "connected to relay");
                    let o = self
                        .read(
                            &mut conn,
                            &ctx,
                            &mut last_sent,
                            &mut failures,
                            &mut backoff,
                            validator.as_mut(),
                        )
                        .await;
                    metrics::gauge!("skystream_source_connected").set(0.0);
                    conn.close().await;
                    o
                }
            };
            if last_sent != sent_before {
                skip_ahead = 0;
            }
            let (reason, detail) = match outcome {
                Outcome::Stop(end) => return end,
                Outcome::Reconnect(reason, detail) => (reason, detail),
                Outcome::FutureCursor(detail) => {
                    metrics::counter!("skystream_source_cursor_resets_total", "reason" => "future_cursor").increment(1);
                    error!(url = %self.cfg.url, cursor = ?cursor, detail = %detail,
                        "the relay says our cursor is in its future; reading from its live tail (events between its tail and our cursor, if any, are not replayed)");
                    from_tail = true;
                    skip_ahead = 0;
                    failures.reset();
                    last_sent = None;
                    validator = self
                        .cfg
                        .verify
                        .as_ref()
                        .map(|_| Validator::new(self.cfg.strict, 1_000_000));
                    ("future_cursor", detail)
                }
                Outcome::SkipAhead(detail) => {
                    skip_ahead += 1;
                    metrics::counter!("skystream_frames_skipped_total").increment(1);
                    warn!(after = ?last_sent, step = skip_ahead, detail = %detail,
                        "a message over the size limit failed {} times; asking from past it", self.cfg.max_frame_failures);
                    ("message_too_large", detail)
                }
            };
            let cursor = *ctx.committed.borrow();
            if !ws::pause_before_reconnect(
                &ctx.shutdown,
                &mut backoff,
                &self.cfg.url,
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

impl RelaySource {
    async fn read(
        &self,
        conn: &mut ws::Conn,
        ctx: &SourceContext,
        last_sent: &mut Option<u64>,
        failures: &mut FailureCount,
        backoff: &mut Backoff,
        validator: Option<&mut Validator>,
    ) -> Outcome {
        let Some(resolver) = &self.cfg.verify else {
            let mut messages = lookahead::Messages::Direct(conn);
            return self
                .handle(&mut messages, ctx, last_sent, failures, backoff, validator)
                .await;
        };
        // Verifying: a reader task runs ahead, starting identity lookups, while the ordered
        // stage below takes the messages in order.
        let (tx, mut messages) = lookahead::queue();
        let reader = lookahead::read_ahead(
            conn,
            ctx.shutdown.clone(),
            tx,
            resolver.clone(),
            self.cfg.limits,
        );
        tokio::select! {
            outcome = self.handle(&mut messages, ctx, last_sent, failures, backoff, validator) => outcome,
            never = reader => match never {},
        }
    }

    /// The ordered stage: decodes, checks and sends on each message in stream order.
    async fn handle(
        &self,
        messages: &mut lookahead::Messages<'_>,
        ctx: &SourceContext,
        last_sent: &mut Option<u64>,
        failures: &mut FailureCount,
        backoff: &mut Backoff,
        mut validator: Option<&mut Validator>,
    ) -> Outcome {
        let opts = FrameOptions {
            check_cids: true,
            max_record: self.cfg.limits.max_record,
        };
        loop {
            let bytes = match messages.next(&ctx.shutdown).await {
                Ok(Payload::Binary(b)) => b,
                Ok(Payload::Text(_)) => {
                    metrics::counter!("skystream_decode_errors_total", "reason" => "text_message")
                        .increment(1);
                    continue;
                }
                Err(Disconnect::Shutdown) => return Outcome::Stop(SourceEnd::Shutdown),
                Err(d @ Disconnect::TooLarge(_)) => {
                    // Counts toward the same rule as a frame that would not decode.
                    metrics::counter!("skystream_decode_errors_total", "reason" => "message_too_large")
                        .increment(1);
                    if failures.record(*last_sent) >= self.cfg.max_frame_failures {
                        return Outcome::SkipAhead(d.detail());
                    }
                    return Outcome::Reconnect(d.reason(), d.detail());
                }
                Err(d) => return Outcome::Reconnect(d.reason(), d.detail()),
            };
            let frame = match decode_frame_with(&bytes, &self.cfg.limits) {
                Ok(f) => f,
                Err(e) => {
                    metrics::counter!("skystream_decode_errors_total", "reason" => e.kind.as_str())
                        .increment(1);
                    let failed = failures.record(*last_sent);
                    if failed >= self.cfg.max_frame_failures {
                        metrics::counter!("skystream_frames_skipped_total").increment(1);
                        warn!(after = ?last_sent, error = %e, "skipping a frame that failed {failed} times");
                        failures.reset();
                        continue;
                    }
                    return Outcome::Reconnect("bad_frame", e.to_string());
                }
            };
            match &frame {
                Frame::Error(m) if m.error == "FutureCursor" => {
                    return Outcome::FutureCursor(format!(
                        "{}: {}",
                        m.error,
                        m.message.unwrap_or("")
                    ));
                }
                Frame::Error(m) => {
                    let reason = match m.error {
                        "ConsumerTooSlow" => "consumer_too_slow",
                        _ => "error_frame",
                    };
                    return Outcome::Reconnect(
                        reason,
                        format!("{}: {}", m.error, m.message.unwrap_or("")),
                    );
                }
                Frame::Info(m) => {
                    warn!(
                        name = m.name,
                        message = m.message.unwrap_or(""),
                        "relay info message"
                    );
                    continue;
                }
                Frame::Unknown { t, .. } => {
                    metrics::counter!("skystream_frames_unknown_total", "type" => t.to_string())
                        .increment(1);
                    continue;
                }
                _ => {}
            }
            let Some(seq) = frame.seq().and_then(|s| u64::try_from(s).ok()) else {
                continue;
            };
            if last_sent.is_some_and(|l| seq <= l) {
                metrics::counter!("skystream_events_repeated_total").increment(1);
                continue;
            }
            // Verified before the ordering checks record the frame: a commit that waits for its
            // identity is read again, and must not then look like a repeat.
            if let (Some(resolver), Frame::Commit(msg)) = (&self.cfg.verify, &frame) {
                if let Err(reason) = verify_commit(resolver.as_ref(), msg, &self.refetched).await {
                    if let Unverified::Unavailable(detail) = reason {
                        // Not the commit's fault: the stream waits (reconnecting with backoff
                        // from the last handled seq, so this commit is read and checked
                        // again) rather than drop it.
                        metrics::counter!("skystream_identity_unavailable_total").increment(1);
                        return Outcome::Reconnect("identity_unavailable", detail);
                    }
                    metrics::counter!("skystream_commits_rejected_total").increment(1);
                    warn!(seq, did = msg.repo, reason = %reason, "dropping a commit that failed verification");
                    *last_sent = Some(seq);
                    continue;
                }
            }
            if let Some(v) = validator.as_deref_mut() {
                if let Err(reason) = v.check(&frame) {
                    metrics::counter!("skystream_frames_dropped_total", "reason" => reason.as_str()).increment(1);
                    warn!(
                        seq,
                        reason = reason.as_str(),
                        "dropping a frame that fails stream validation"
                    );
                    *last_sent = Some(seq);
                    continue;
                }
            }
            if let (Some(resolver), Frame::Identity(m)) = (&self.cfg.verify, &frame) {
                resolver.purge(m.did);
            }
            let outcome = match from_frame(&frame, &opts) {
                Ok(o) => o,
                Err(e) => {
                    metrics::counter!("skystream_decode_errors_total", "reason" => e.kind.as_str())
                        .increment(1);
                    warn!(seq, error = %e, "dropping an invalid frame");
                    *last_sent = Some(seq);
                    continue;
                }
            };
            for e in &outcome.op_errors {
                metrics::counter!("skystream_ops_skipped_total", "reason" => e.kind.as_str())
                    .increment(1);
            }
            let Some(event) = outcome.event else { continue };
            metrics::counter!("skystream_events_total", "kind" => event.kind_name()).increment(1);
            if event.time_us > 0 {
                let lag = now_us().saturating_sub(event.time_us) as f64 / 1e6;
                metrics::gauge!("skystream_source_lag_seconds").set(lag);
            }
            let raw = self.cfg.keep_raw.then(|| Raw::Frame(bytes.to_vec()));
            let env = Envelope::with_raw(event, raw);
            tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => return Outcome::Stop(SourceEnd::Shutdown),
                sent = ctx.out.send(env) => if sent.is_err() {
                    return Outcome::Stop(SourceEnd::PipelineClosed);
                }
            }
            *last_sent = Some(seq);
            backoff.reset();
        }
    }
}

/// Checks a commit against its author's current document; on a signature failure the
/// document is fetched afresh once, since keys rotate.
/// Why a commit was not verified.
enum Unverified {
    /// It fails: a bad signature, a DID that does not resolve, a broken `prevData`.
    Invalid(String),
    /// Its identity could not be fetched for a network reason: nothing is known yet.
    Unavailable(String),
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Invalid(s) | Unverified::Unavailable(s) => f.write_str(s),
        }
    }
}

fn unresolved(e: skystream_identity::ResolveError) -> Unverified {
    match e.kind() {
        skystream_identity::ResolveErrorKind::Network => Unverified::Unavailable(e.to_string()),
        _ => Unverified::Invalid(e.to_string()),
    }
}

async fn verify_commit(
    resolver: &dyn Resolver,
    msg: &skystream_firehose::CommitMsg<'_>,
    refetched: &Refetched,
) -> Result<(), Unverified> {
    let outcome = |check: CommitCheck| -> Result<(), Unverified> {
        check.signature.map_err(Unverified::Invalid)?;
        check
            .prev_data
            .unwrap_or(Ok(()))
            .map_err(Unverified::Invalid)
    };
    let doc = resolver.resolve(msg.repo).await.map_err(unresolved)?;
    let first = check_commit_with_doc(msg, &doc);
    // A bad signature may mean a rotated key: fetch the document again, at most once a minute.
    if first.signature.is_ok() || !refetched.allow(msg.repo) {
        return outcome(first);
    }
    resolver.purge(msg.repo);
    let fresh = resolver.resolve(msg.repo).await.map_err(unresolved)?;
    if fresh.verification_method == doc.verification_method {
        return outcome(first);
    }
    outcome(check_commit_with_doc(msg, &fresh))
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_did_is_fetched_again_at_most_once_a_minute() {
        let r = Refetched::default();
        assert!(r.allow("did:plc:a"));
        assert!(
            !r.allow("did:plc:a"),
            "a second bad signature within the minute"
        );
        assert!(r.allow("did:plc:b"));
        // A minute later it may be fetched again.
        if let Ok(mut m) = r.0.lock() {
            let past = std::time::Instant::now().checked_sub(REFETCH_EVERY);
            if let (Some(t), Some(past)) = (m.get_mut("did:plc:a"), past) {
                *t = past;
            }
        }
        assert!(r.allow("did:plc:a"));
    }
}
