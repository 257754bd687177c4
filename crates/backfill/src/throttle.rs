//! What a backfill waits for before reading another repository: resident memory under its
//! ceiling, and live ingest keeping up.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This process's resident memory, from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size is 4 KiB on every platform skystream ships for.
    Some(pages * 4096)
}

/// Waits while resident memory is above `max_bytes` (0: no ceiling) or `lagging` says live
/// ingest is behind. Returns false when `stop` fires first.
pub(crate) async fn wait_for_room(
    max_bytes: u64,
    lagging: Option<&watch::Receiver<bool>>,
    poll: Duration,
    stop: &CancellationToken,
) -> bool {
    let mut paused = false;
    loop {
        let over = max_bytes > 0 && resident_memory_bytes().is_some_and(|m| m > max_bytes);
        let behind = lagging.is_some_and(|l| *l.borrow());
        if !over && !behind {
            if paused {
                tracing::info!("backfill resumed");
            }
            return true;
        }
        if !paused {
            paused = true;
            let why = if over {
                "resident memory is above the ceiling"
            } else {
                "live ingest is lagging"
            };
            tracing::info!(reason = why, "backfill paused");
            metrics::counter!("skystream_backfill_pauses_total", "reason" => if over { "memory" } else { "live_lag" }).increment(1);
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_memory() {
        let m = resident_memory_bytes().expect("Linux has /proc/self/statm");
        assert!(m > 1 << 20, "{m}");
    }

    #[tokio::test]
    async fn waits_while_lagging() {
        let (tx, rx) = watch::channel(true);
        let stop = CancellationToken::new();
        let wait = tokio::spawn({
            let stop = stop.clone();
            async move { wait_for_room(0, Some(&rx), Duration::from_millis(5), &stop).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!wait.is_finished());
        tx.send(false).expect("send");
        assert!(wait.await.expect("join"));
        // A ceiling below what we use pauses until stopped.
        let stop = CancellationToken::new();
        stop.cancel();
        assert!(!wait_for_room(1, None, Duration::from_millis(5), &stop).await);
    }
}
