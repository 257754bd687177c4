//! The hand-off between a backfill and live ingest running beside it. While a repository is
//! being read, live events for it are held; once the backfill has read it at revision R, the
//! held commits at or below R are dropped (the export already reflects them) and the rest are
//! applied after it, in order, so feeds get neither duplicates nor gaps. A `#sync` or an
//! account marked desynchronized queues the repository to be read again.
//!
//! Held events live in memory: if the process dies mid-hand-off the repository is read again
//! on restart (its claim is reset to pending), and that later export includes what was held.
//! They are bounded: past [`HandOff::with_max_held`] events the live consumer waits (and so
//! pauses its source) until a read finishes; nothing is dropped. A released event leaves the
//! hand-off only once the live consumer has handled the batch that carries it, so a retried
//! batch carries it again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use skystream_event::EventKind;
use skystream_pipeline::{Batch, Consumer, ConsumerError, Envelope};
use skystream_store::BackfillStore;

/// Shared between a [`Backfill`](crate::Backfill) and the live consumers it guards.
#[derive(Clone)]
pub struct HandOff {
    state: Arc<Mutex<State>>,
    /// Woken whenever held events are released, for a live consumer waiting for room.
    room: Arc<tokio::sync::Notify>,
    /// Tells the live consumer that released events wait to be applied (it applies them
    /// between batches, without waiting for the next live event).
    released_ready: Arc<tokio::sync::Notify>,
    max_held: usize,
}

/// Live events held at most, by default, before the live consumer waits for a read to finish.
pub const DEFAULT_MAX_HELD: usize = 100_000;

impl Default for HandOff {
    fn default() -> Self {
        HandOff {
            state: Arc::default(),
            room: Arc::default(),
            released_ready: Arc::default(),
            max_held: DEFAULT_MAX_HELD,
        }
    }
}

#[derive(Default)]
struct State {
    reading: HashSet<String>,
    held: HashMap<String, Vec<Envelope>>,
    released: Vec<Envelope>,
}

impl HandOff {
    /// A hand-off with nothing in progress.
    pub fn new() -> HandOff {
        HandOff::default()
    }

    /// Holds at most `max` live events (at least 1); past that the live consumer waits.
    pub fn with_max_held(mut self, max: usize) -> HandOff {
        self.max_held = max.max(1);
        self
    }

    /// Whether `did` is being read (its live events are held).
    pub fn is_reading(&self, did: &str) -> bool {
        self.state().reading.contains(did)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A backfill starts reading `did`: hold its live events from now on.
    pub fn claimed(&self, did: &str) {
        self.state().reading.insert(did.to_owned());
    }

    /// The backfill is done with `did`, having read it at `rev` (`None`: it failed, so
    /// everything held is applied as it came).
    pub fn finished(&self, did: &str, rev: Option<&str>) {
        let mut s = self.state();
        s.reading.remove(did);
        let held = s.held.remove(did).unwrap_or_default();
        let dropped = held.len();
        let keep: Vec<Envelope> = held
            .into_iter()
            .filter(|e| match (&e.event.kind, rev) {
                // Revisions are TIDs: their string order is their time order.
                (EventKind::Commit(c), Some(r)) => c.rev.as_str() > r,
                _ => true,
            })
            .collect();
        let dropped = dropped - keep.len();
        if dropped > 0 {
            metrics::counter!("skystream_backfill_handoff_dropped_total").increment(dropped as u64);
        }
        let released = !keep.is_empty();
        s.released.extend(keep);
        metrics::gauge!("skystream_backfill_handoff_held")
            .set(s.held.values().map(Vec::len).sum::<usize>() as f64);
        drop(s);
        self.room.notify_waiters();
        if released {
            self.released_ready.notify_one();
        }
    }

    /// Takes the events released since the last call.
    fn take_released(&self) -> Vec<Envelope> {
        std::mem::take(&mut self.state().released)
    }

    /// Waits while the held events are at the bound (a read finishing makes room).
    async fn wait_for_room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.held() < self.max_held {
                return;
            }
            metrics::counter!("skystream_backfill_handoff_paused_total").increment(1);
            notified.await;
        }
    }

    /// Repositories being read.
    pub fn reading(&self) -> usize {
        self.state().reading.len()
    }

    /// Events held back.
    pub fn held(&self) -> usize {
        self.state().held.values().map(Vec::len).sum()
    }

    /// What to apply of a live batch: first what was released since the last call, then the
    /// batch's events for repositories not being read; the rest is held.
    fn gate(&self, items: &[Envelope]) -> Option<Vec<Envelope>> {
        let mut s = self.state();
        if s.reading.is_empty() && s.released.is_empty() {
            return None;
        }
        let mut out = std::mem::take(&mut s.released);
        for env in items {
            match env.event.did() {
                Some(did) if s.reading.contains(did) => {
                    s.held.entry(did.to_owned()).or_default().push(env.clone());
                }
                _ => out.push(env.clone()),
            }
        }
        metrics::gauge!("skystream_backfill_handoff_held")
            .set(s.held.values().map(Vec::len).sum::<usize>() as f64);
        Some(out)
    }
}

/// A live consumer behind a [`HandOff`]: it sees live events for a repository only after the
/// backfill has read it. With a store, `#sync` events and accounts marked desynchronized queue
/// their repository for another read.
pub struct Gated<C> {
    inner: C,
    handoff: HandOff,
    requeue: Option<Arc<dyn BackfillStore>>,
    /// The batch as the inner consumer was last given it, kept while that failed: the
    /// pipeline's retry of the same batch gets exactly it again (released events included,
    /// nothing held twice).
    failed: Option<Batch>,
    /// The id of the last batch handled: released events applied between batches go to the
    /// inner consumer under it.
    last_batch: u64,
}

impl<C: Consumer> Gated<C> {
    /// `inner` behind `handoff`.
    pub fn new(inner: C, handoff: HandOff, requeue: Option<Arc<dyn BackfillStore>>) -> Self {
        Gated {
            inner,
            handoff,
            requeue,
            failed: None,
            last_batch: 0,
        }
    }
}

#[async_trait]
impl<C: Consumer> Consumer for Gated<C> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
        if let Some(store) = &self.requeue {
            for env in &batch.items {
                let resync = match &env.event.kind {
                    EventKind::Sync(s) => Some(s.did.as_str()),
                    EventKind::Account(a) if a.status.as_deref() == Some("desynchronized") => {
                        Some(a.did.as_str())
                    }
                    _ => None,
                };
                if let Some(did) = resync {
                    store.requeue_repo(did).await?;
                    metrics::counter!("skystream_backfill_requeued_total").increment(1);
                }
            }
        }
        let gated = match self.failed.take() {
            Some(again) if again.id == batch.id => Some(again),
            _ => {
                self.handoff.wait_for_room().await;
                self.handoff.gate(&batch.items).map(|items| Batch {
                    id: batch.id,
                    items,
                })
            }
        };
        let result = match &gated {
            None => self.inner.handle(batch).await,
            Some(g) => self.inner.handle(g).await,
        };
        if result.is_err() {
            self.failed = Some(gated.unwrap_or_else(|| Batch {
                id: batch.id,
                items: batch.items.clone(),
            }));
        } else {
            self.last_batch = batch.id;
        }
        result
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.handoff.released_ready.clone())
    }

    /// Applies what a finished read released, so it does not wait for the next live event.
    async fn idle(&mut self) {
        if self.failed.is_some() {
            // A failed batch carries released events already; its retry comes first.
            return;
        }
        let items = self.handoff.take_released();
        if items.is_empty() {
            return;
        }
        let batch = Batch {
            id: self.last_batch,
            items,
        };
        let mut backoff = std::time::Duration::from_millis(100);
        while let Err(e) = self.inner.handle(&batch).await {
            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                "could not apply live events held during a backfill read; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
        }
    }

    async fn close(&mut self) -> Result<(), ConsumerError> {
        self.inner.close().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skystream_event::{Commit, Event, Origin};

    fn commit(did: &str, rev: &str) -> Envelope {
        Envelope::new(Event {
            cursor: 1,
            time_us: 1,
            origin: Origin::Live,
            kind: EventKind::Commit(Commit {
                did: did.into(),
                rev: rev.into(),
                since: None,
                seq: 1,
                time: String::new(),
                ops: Vec::new(),
            }),
        })
    }

    fn revs(v: &[Envelope]) -> Vec<String> {
        v.iter()
            .map(|e| match &e.event.kind {
                EventKind::Commit(c) => format!("{}@{}", c.did, c.rev),
                _ => String::new(),
            })
            .collect()
    }

    /// Fails its first `fail` batches, then records what it handled.
    struct Flaky {
        fail: Arc<std::sync::atomic::AtomicUsize>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl Consumer for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn handle(&mut self, batch: &Batch) -> Result<(), ConsumerError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.fail.load(SeqCst) > 0 {
                self.fail.fetch_sub(1, SeqCst);
                return Err("store unavailable".into());
            }
            self.seen.lock().unwrap().extend(revs(&batch.items));
            Ok(())
        }
    }

    fn batch(id: u64, items: Vec<Envelope>) -> Batch {
        Batch { id, items }
    }

    /// A batch that carries released events and fails is retried with them: before, the
    /// released events were taken out of the hand-off before the inner consumer ran, and a
    /// retry lost them (a live delete that arrived during the read was never applied).
    #[tokio::test]
    async fn a_retried_batch_keeps_its_released_events_and_holds_nothing_twice() {
        let h = HandOff::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(std::sync::atomic::AtomicUsize::new(1));
        let mut g = Gated::new(
            Flaky {
                fail: fail.clone(),
                seen: seen.clone(),
            },
            h.clone(),
            None,
        );
        h.claimed("did:a");
        g.handle(&batch(1, vec![commit("did:a", "3d"), commit("did:b", "1")]))
            .await
            .unwrap_err();
        // The pipeline retries batch 1 as it is.
        g.handle(&batch(1, vec![commit("did:a", "3d"), commit("did:b", "1")]))
            .await
            .unwrap();
        assert_eq!(h.held(), 1, "held once, not once per attempt");
        h.finished("did:a", Some("3c"));
        fail.store(1, std::sync::atomic::Ordering::SeqCst);
        g.handle(&batch(2, vec![commit("did:b", "2")]))
            .await
            .unwrap_err();
        g.handle(&batch(2, vec![commit("did:b", "2")]))
            .await
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["did:b@1", "did:a@3d", "did:b@2"],
            "the released commit survives the failed attempt"
        );
    }

    /// At the bound, the live consumer waits (pausing its source) instead of dropping, and goes
    /// on once a read finishes.
    #[tokio::test]
    async fn a_full_hand_off_pauses_live_until_a_read_finishes() {
        let h = HandOff::new().with_max_held(2);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut g = Gated::new(
            Flaky {
                fail: Arc::default(),
                seen: seen.clone(),
            },
            h.clone(),
            None,
        );
        h.claimed("did:a");
        g.handle(&batch(1, vec![commit("did:a", "1"), commit("did:a", "2")]))
            .await
            .unwrap();
        assert_eq!(h.held(), 2);
        let waiting = tokio::spawn(async move {
            g.handle(&batch(2, vec![commit("did:b", "1")]))
                .await
                .unwrap();
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "live waits while the hand-off is full"
        );
        assert!(seen.lock().unwrap().is_empty());
        h.finished("did:a", Some("0"));
        waiting.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), ["did:a@1", "did:a@2", "did:b@1"]);
    }

    /// Events held during a read are applied once it finishes, with no further live event to
    /// carry them: before, they waited in the hand-off for the next live batch, which on a
    /// quiet stream (a narrow Jetstream filter, a small PDS) might never come. Found by the
    /// reference-PDS hand-off test.
    #[tokio::test]
    async fn released_events_are_applied_without_waiting_for_another_live_event() {
        use skystream_pipeline::{MemoryCursorSink, Pipeline, PipelineConfig};
        let h = HandOff::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let gated = Gated::new(
            Flaky {
                fail: Arc::default(),
                seen: seen.clone(),
            },
            h.clone(),
            None,
        );
        let (input, handle) = Pipeline::start(
            PipelineConfig::default(),
            "test",
            None,
            vec![Box::new(gated)],
            Arc::new(MemoryCursorSink::new()),
        );
        h.claimed("did:a");
        input.send(commit("did:a", "3d")).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while h.held() == 0 {
            assert!(std::time::Instant::now() < deadline, "never held");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        h.finished("did:a", Some("3c"));
        while seen.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the released event waited for another live event"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(*seen.lock().unwrap(), ["did:a@3d"]);
        drop(input);
        handle.finish().await;
    }

    #[test]
    fn holds_then_releases_newer_revisions_in_order() {
        let h = HandOff::new();
        assert!(h.gate(&[commit("did:a", "3a")]).is_none());
        h.claimed("did:a");
        let out = h
            .gate(&[
                commit("did:a", "3b"),
                commit("did:b", "3b"),
                commit("did:a", "3d"),
            ])
            .unwrap();
        assert_eq!(revs(&out), ["did:b@3b"]);
        assert_eq!(h.held(), 2);
        // Read at 3c: 3b is in the export, 3d is newer.
        h.finished("did:a", Some("3c"));
        let out = h.gate(&[commit("did:a", "3e")]).unwrap();
        assert_eq!(revs(&out), ["did:a@3d", "did:a@3e"]);
        assert!(h.gate(&[commit("did:a", "3f")]).is_none());
        // A failed read applies everything held.
        h.claimed("did:c");
        h.gate(&[commit("did:c", "1")]);
        h.finished("did:c", None);
        assert_eq!(revs(&h.gate(&[]).unwrap()), ["did:c@1"]);
    }
}
