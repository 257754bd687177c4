//! The relay source against loopback upstreams that stall, tear frames, send garbage, refuse
//! the handshake with an HTML 502, or send error frames. In each case the reconnect comes
//! within the timeout plus backoff, the next request carries the last handled seq, and the
//! consumer sees every event.

mod common;

use std::time::Duration;

use common::{fake_upstream, run, Answer, Step};
use skystream_firehose::write;
use skystream_source::{RelayConfig, RelaySource, WatchdogConfig};

const DID: &str = "did:plc:abcdefghijklmnopqrstuvwx";

fn frame(seq: u64) -> Step {
    Step::Binary(write::identity_frame(
        seq as i64,
        DID,
        None,
        "2026-07-04T14:38:07.877Z",
    ))
}

/// Frames `from..=to`.
fn frames(from: u64, to: u64) -> Vec<Step> {
    (from..=to).map(frame).collect()
}

fn config(url: &str) -> RelayConfig {
    let mut c = RelayConfig::new(format!("{url}/xrpc/com.atproto.sync.subscribeRepos"));
    c.watchdog = WatchdogConfig {
        idle_timeout: Some(Duration::from_millis(400)),
        ping_interval: Duration::from_millis(150),
        pong_timeout: Duration::from_millis(300),
        handshake_timeout: Duration::from_secs(2),
        max_message: 1 << 20,
    };
    c.backoff_initial = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(200);
    c.drain_timeout = Duration::from_secs(2);
    c
}

/// Serves seq `cursor+1..=total` (the reference PDS's "> cursor" rule), or everything when no
/// cursor was sent.
fn replay_after(cursor: Option<u64>, total: u64) -> Vec<Step> {
    frames(cursor.map_or(1, |c| c + 1), total)
}

#[tokio::test]
async fn a_stalled_upstream_is_detected_and_resumed() {
    let (url, attempts) = fake_upstream(|n, a| {
        if n == 0 {
            let mut s = frames(1, 5);
            s.push(Step::Stall);
            Answer::Play(s)
        } else {
            Answer::Play(replay_after(a.cursor(), 10))
        }
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(10, Duration::from_secs(5)).await;
    let attempts = attempts.lock().expect("lock").clone();
    assert_eq!(attempts[0].cursor(), None);
    assert_eq!(
        attempts[1].cursor(),
        Some(5),
        "resumes from the last handled seq, not +1"
    );
    let gap = attempts[1].at - attempts[0].at;
    assert!(
        // Idle timeout (400 ms) + backoff (<= 200 ms) + handshake, with room for a loaded machine.
        gap < Duration::from_millis(2500),
        "reconnected after {gap:?}"
    );
    let (seen, cursor) = h.stop().await;
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    assert_eq!(cursor, Some(10));
}

#[tokio::test]
async fn replays_that_include_the_cursor_are_deduplicated() {
    // The spec's rule: replay seq >= cursor. The repeat of the cursor's own event is dropped.
    let (url, attempts) = fake_upstream(|n, a| match n {
        0 => Answer::Play(vec![frame(1), frame(2), frame(3), Step::Close]),
        _ => Answer::Play(frames(a.cursor().unwrap_or(1), 6)),
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(6, Duration::from_secs(5)).await;
    assert_eq!(attempts.lock().expect("lock")[1].cursor(), Some(3));
    let (seen, _) = h.stop().await;
    assert_eq!(seen, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_connection_torn_mid_frame_is_resumed() {
    let (url, attempts) = fake_upstream(|n, a| {
        if n == 0 {
            let mut s = frames(1, 3);
            // A WebSocket binary frame header promising 200 bytes, then 10, then EOF.
            let mut torn = vec![0x82, 126, 0, 200];
            torn.extend_from_slice(&[0xa2; 10]);
            s.push(Step::RawThenDrop(torn));
            Answer::Play(s)
        } else {
            Answer::Play(replay_after(a.cursor(), 8))
        }
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(8, Duration::from_secs(5)).await;
    assert_eq!(attempts.lock().expect("lock")[1].cursor(), Some(3));
    let (seen, _) = h.stop().await;
    assert_eq!(seen, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn garbage_reconnects_and_is_skipped_after_three_failures() {
    // Every connection replays from the cursor, and the frame after seq 2 is always garbage.
    let (url, attempts) = fake_upstream(|_, a| {
        let from = a.cursor().map_or(1, |c| c + 1);
        let mut s = Vec::new();
        for seq in from..=5 {
            if seq == 3 {
                s.push(Step::Binary(vec![0xff, 0x00, 0x13, 0x37]));
            }
            s.push(frame(seq));
        }
        Answer::Play(s)
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(5, Duration::from_secs(5)).await;
    let attempts = attempts.lock().expect("lock").clone();
    assert_eq!(
        attempts.len(),
        3,
        "two reconnects, then the third failure skips the frame"
    );
    assert!(attempts[1..].iter().all(|a| a.cursor() == Some(2)));
    let (seen, _) = h.stop().await;
    assert_eq!(seen, (1..=5).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_html_502_at_the_handshake_is_retried() {
    let (url, attempts) = fake_upstream(|n, a| match n {
        0 | 1 => Answer::Http(502),
        _ => Answer::Play(replay_after(a.cursor(), 4)),
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(attempts.lock().expect("lock").len(), 3);
    let (seen, _) = h.stop().await;
    assert_eq!(seen, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn error_frames_reconnect_from_the_durable_cursor() {
    let (url, attempts) = fake_upstream(|n, a| match n {
        0 => Answer::Play(vec![
            frame(1),
            frame(2),
            Step::Binary(write::encode_error("ConsumerTooSlow", Some("slow"))),
            Step::Close,
        ]),
        1 => Answer::Play(vec![
            Step::Binary(write::encode_error("ConsumerTooSlow", None)),
            Step::Close,
        ]),
        _ => {
            let mut s = vec![Step::Binary(write::info_frame(
                "OutdatedCursor",
                Some("window passed"),
            ))];
            s.extend(replay_after(a.cursor(), 5));
            Answer::Play(s)
        }
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(5, Duration::from_secs(5)).await;
    let attempts = attempts.lock().expect("lock").clone();
    assert_eq!(attempts[1].cursor(), Some(2));
    assert_eq!(attempts[2].cursor(), Some(2));
    let (seen, cursor) = h.stop().await;
    assert_eq!(
        seen,
        (1..=5).collect::<Vec<_>>(),
        "an #info OutdatedCursor is logged, not fatal"
    );
    assert_eq!(cursor, Some(5));
}

#[tokio::test]
async fn restarting_from_a_saved_cursor_asks_for_it() {
    let (url, attempts) = fake_upstream(|_, a| Answer::Play(replay_after(a.cursor(), 20))).await;
    let h = run(RelaySource::new(config(&url)), Some(15));
    h.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(attempts.lock().expect("lock")[0].cursor(), Some(15));
    let (seen, cursor) = h.stop().await;
    assert_eq!(seen, (16..=20).collect::<Vec<_>>());
    assert_eq!(cursor, Some(20));
}

/// A relay that answers our cursor with `FutureCursor` (issue 15, item 8): reconnecting with
/// the same cursor loops forever, so the source reads from the live tail, whose seqs are below
/// ours, and delivers them.
#[tokio::test]
async fn a_future_cursor_resumes_at_the_live_tail() {
    let (url, attempts) = fake_upstream(|_, a| match a.cursor() {
        Some(c) if c > 10 => Answer::Play(vec![
            Step::Binary(write::encode_error(
                "FutureCursor",
                Some("cursor in the future"),
            )),
            Step::Close,
        ]),
        // The tail: what the relay has now, seq 4 to 8.
        None => Answer::Play(frames(4, 8)),
        Some(c) => Answer::Play(replay_after(Some(c), 8)),
    })
    .await;
    let h = run(RelaySource::new(config(&url)), Some(500));
    h.wait_for(5, Duration::from_secs(5)).await;
    let attempts = attempts.lock().expect("lock").clone();
    assert_eq!(attempts[0].cursor(), Some(500));
    assert_eq!(
        attempts[1].cursor(),
        None,
        "the second asks for the live tail"
    );
    let (seen, cursor) = h.stop().await;
    assert_eq!(seen, (4..=8).collect::<Vec<_>>());
    assert_eq!(cursor, Some(8));
}

/// A message over the WebSocket size limit kills the connection every time it is read; it
/// counts toward the skip rule like an undecodable frame, and after three failures the source
/// asks from past it (seq 3 is the oversized one; 1, 2, 4, 5 arrive).
#[tokio::test]
async fn an_oversized_message_counts_toward_the_skip_rule() {
    let (url, attempts) = fake_upstream(|_, a| {
        let from = a.cursor().map_or(1, |c| c + 1);
        let mut s = Vec::new();
        for seq in from..=5 {
            if seq == 3 {
                s.push(Step::Binary(vec![0u8; (1 << 20) + 1]));
            } else {
                s.push(frame(seq));
            }
        }
        Answer::Play(s)
    })
    .await;
    let h = run(RelaySource::new(config(&url)), None);
    h.wait_for(4, Duration::from_secs(10)).await;
    let attempts = attempts.lock().expect("lock").clone();
    let cursors: Vec<Option<u64>> = attempts.iter().map(|a| a.cursor()).collect();
    assert_eq!(
        cursors,
        [None, Some(2), Some(2), Some(3)],
        "two retries at the same position, then from past the oversized message"
    );
    let (seen, _) = h.stop().await;
    assert_eq!(seen, vec![1, 2, 4, 5]);
}
