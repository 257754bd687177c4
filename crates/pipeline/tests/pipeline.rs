//! The pipeline's guarantees: every consumer sees every event in order, the committed cursor
//! never passes an event some consumer has not handled, failures are retried, and a full
//! pipeline pushes back on the source.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skystream_event::{Event, EventKind, Identity, Origin};
use skystream_pipeline::{
    Batch, Consumer, ConsumerError, Envelope, MemoryCursorSink, Pipeline, PipelineConfig,
};

fn event(cursor: u64) -> Envelope {
    Envelope::new(Event {
        cursor,
        time_us: 0,
        origin: Origin::Live,
        kind: EventKind::Identity(Identity {
            did: format!("did:plc:{cursor:024}"),
            seq: cursor as i64,
            time: String::new(),
            handle: None,
        }),
    })
}

fn fast() -> PipelineConfig {
    PipelineConfig {
        batch_max: 16,
        batch_linger: Duration::from_millis(1),
        input_capacity: 64,
        consumer_queue: 2,
        save_interval: Duration::from_millis(10),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
    }
}

/// Records what it handled; can be made slow or to fail its first attempts.
struct Recorder {
    name: String,
    seen: Arc<Mutex<Vec<u64>>>,
    delay: Duration,
    fail_first: Arc<AtomicUsize>,
    /// The highest cursor this consumer has finished, for checking the committed cursor.
    handled: Arc<AtomicU64>,
}

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err("backend unavailable".into());
        }
        tokio::time::sleep(self.delay).await;
        let mut seen = self.seen.lock().expect("lock");
        seen.extend(batch.items.iter().map(|e| e.event.cursor));
        if let Some(c) = batch.cursor() {
            self.handled.store(c, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn recorder(
    name: &str,
    delay_ms: u64,
    fail_first: usize,
) -> (Recorder, Arc<Mutex<Vec<u64>>>, Arc<AtomicU64>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(AtomicU64::new(0));
    (
        Recorder {
            name: name.into(),
            seen: seen.clone(),
            delay: Duration::from_millis(delay_ms),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            handled: handled.clone(),
        },
        seen,
        handled,
    )
}

#[tokio::test]
async fn every_consumer_sees_every_event_in_order_and_the_cursor_is_saved() {
    let (a, seen_a, _) = recorder("a", 0, 0);
    let (b, seen_b, _) = recorder("b", 1, 2);
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast(),
        "test",
        None,
        vec![Box::new(a), Box::new(b)],
        Arc::new(sink.clone()),
    );
    for c in 1..=1000 {
        input.send(event(c)).await.expect("open");
    }
    drop(input);
    let summary = handle.finish().await;
    let want: Vec<u64> = (1..=1000).collect();
    assert_eq!(*seen_a.lock().expect("lock"), want);
    assert_eq!(
        *seen_b.lock().expect("lock"),
        want,
        "retried batches are not lost or reordered"
    );
    assert_eq!(summary.events, 1000);
    assert_eq!(summary.cursor, Some(1000));
    assert_eq!(sink.last("test"), Some(1000));
    let history = sink.history("test");
    assert!(
        history.windows(2).all(|w| w[0] < w[1]),
        "saved cursors only move forward: {history:?}"
    );
}

#[tokio::test]
async fn the_committed_cursor_never_passes_the_slowest_consumer() {
    let (fast_c, _, fast_done) = recorder("fast", 0, 0);
    let (slow_c, _, slow_done) = recorder("slow", 3, 0);
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast(),
        "test",
        Some(0),
        vec![Box::new(fast_c), Box::new(slow_c)],
        Arc::new(sink.clone()),
    );
    let mut committed = handle.committed();
    let watcher = tokio::spawn(async move {
        let mut violations = 0;
        while committed.changed().await.is_ok() {
            let c = committed.borrow().unwrap_or(0);
            // Read the consumers' progress after the cursor moved: it must already cover it.
            if c > slow_done.load(Ordering::SeqCst) || c > fast_done.load(Ordering::SeqCst) {
                violations += 1;
            }
        }
        violations
    });
    for c in 1..=400 {
        input.send(event(c)).await.expect("open");
    }
    drop(input);
    let summary = handle.finish().await;
    assert_eq!(summary.cursor, Some(400));
    assert_eq!(watcher.await.expect("watcher"), 0);
}

#[tokio::test]
async fn a_full_pipeline_pushes_back_on_the_source() {
    // One consumer that never finishes its first batch: the source must block, not buffer.
    struct Stuck;
    #[async_trait]
    impl Consumer for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }
        async fn handle(&mut self, _: &Batch) -> Result<(), ConsumerError> {
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    let (input, _handle) = Pipeline::start(
        fast(),
        "test",
        None,
        vec![Box::new(Stuck)],
        Arc::new(MemoryCursorSink::new()),
    );
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let producer = tokio::spawn(async move {
        for c in 1..=100_000u64 {
            if input.send(event(c)).await.is_err() {
                break;
            }
            counter.store(c, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = sent.load(Ordering::SeqCst);
    // input (64) + consumer queue (2 batches of 16) + the batch being handled + one in hand.
    assert!(
        n <= 64 + 3 * 16 + 16 + 1,
        "the source ran {n} events ahead of a stuck consumer"
    );
    producer.abort();
}

#[tokio::test]
async fn events_without_a_cursor_do_not_move_it() {
    let (a, _, _) = recorder("a", 0, 0);
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast(),
        "test",
        Some(5),
        vec![Box::new(a)],
        Arc::new(sink.clone()),
    );
    input.send(event(0)).await.expect("open");
    drop(input);
    assert_eq!(handle.finish().await.cursor, Some(5));
    assert_eq!(sink.last("test"), None, "nothing new to save");
}

/// The end of a finite input (a capture file) is not a shutdown: however long the consumers
/// take, every event the source delivered is handled and the last cursor saved. Before the
/// drain knew the difference, the end of a file got the shutdown's 10 s and a slow store lost
/// the rest (`ingest --source file:` into PostgreSQL exited 2 with 257,536 of 300,000 posts).
/// Time is paused, so the grace runs out long before the consumer is done unless the drain
/// ignores it.
#[tokio::test(start_paused = true)]
async fn the_end_of_the_input_drains_without_a_deadline() {
    let (slow, seen, _) = recorder("slow", 50, 0);
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast(),
        "test",
        None,
        vec![Box::new(slow)],
        Arc::new(sink.clone()),
    );
    for c in 1..=500 {
        input.send(event(c)).await.expect("open");
    }
    drop(input);
    let stop = tokio_util::sync::CancellationToken::new();
    let summary = handle
        .drain(&stop, Duration::from_millis(10))
        .await
        .expect("the end of the input has no deadline");
    assert_eq!(seen.lock().expect("lock").len(), 500);
    assert_eq!(summary.cursor, Some(500));
    assert_eq!(sink.last("test"), Some(500));
}

/// A shutdown request that comes while the end of the input drains bounds what is left by the
/// grace, and the cursor saved is still one every consumer reached.
#[tokio::test(start_paused = true)]
async fn a_shutdown_during_the_drain_is_bounded_by_the_grace() {
    let (slow, _, handled) = recorder("slow", 1_000, 0);
    let sink = MemoryCursorSink::new();
    let (input, handle) = Pipeline::start(
        fast(),
        "test",
        None,
        vec![Box::new(slow)],
        Arc::new(sink.clone()),
    );
    for c in 1..=100 {
        input.send(event(c)).await.expect("open");
    }
    drop(input);
    let stop = tokio_util::sync::CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        cancel.cancel();
    });
    let started = tokio::time::Instant::now();
    let err = handle
        .drain(&stop, Duration::from_millis(300))
        .await
        .expect_err("100 events at 1 s a batch outlast the grace");
    assert_eq!(err.0, Duration::from_millis(300));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2_800) && took < Duration::from_millis(2_900),
        "{took:?}"
    );
    let saved = sink.last("test").unwrap_or(0);
    assert!(saved <= handled.load(Ordering::SeqCst), "saved {saved}");
}
