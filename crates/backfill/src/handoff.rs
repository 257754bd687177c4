//! The hand-off between a backfill and live ingest running beside it. While a repository is
//! being read, live events for it are held; once the backfill has read it at revision R, the
//! held commits at or below R are dropped (the export already reflects them) and the rest are
//! applied after it, in order, so feeds get neither duplicates nor gaps. A `#sync` or an
//! account marked desynchronized queues the repository to be read again.
//!
//! Held events live in memory: if the process dies mid-hand-off the repository is read again
//! on restart (its claim is reset to pending), and that later export includes what was held.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use skystream_event::EventKind;
use skystream_pipeline::{Batch, Consumer, ConsumerError, Envelope};
use skystream_store::BackfillStore;

/// Shared between a [`Backfill`](crate::Backfill) and the live consumers it guards.
#[derive(Clone, Default)]
pub struct HandOff {
    state: Arc<Mutex<State>>,
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
        s.released.extend(keep);
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
}

impl<C: Consumer> Gated<C> {
    /// `inner` behind `handoff`.
    pub fn new(inner: C, handoff: HandOff, requeue: Option<Arc<dyn BackfillStore>>) -> Self {
        Gated {
            inner,
            handoff,
            requeue,
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
        match self.handoff.gate(&batch.items) {
            None => self.inner.handle(batch).await,
            Some(items) => {
                let gated = Batch {
                    id: batch.id,
                    items,
                };
                self.inner.handle(&gated).await
            }
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
