//! The lease that makes one process the backfiller of a shared database. A holder renews it
//! every third of its time to live; it counts as lost as soon as the store says another holder
//! has it, or when renewals have failed for long enough that it may have expired (so a holder
//! cut off from the database stops before another can take over, and two never backfill at
//! once). Renewal stops before the lease is released, so a finished holder never takes it back.

use std::sync::Arc;
use std::time::Duration;

use skystream_store::{BackfillStore, StoreError};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The name of the backfill lease in the store.
pub const BACKFILL_LEASE: &str = "backfill";

/// A lease in a store, as one holder sees it.
#[derive(Clone)]
pub struct Lease {
    store: Arc<dyn BackfillStore>,
    name: String,
    holder: String,
    ttl: Duration,
    clock: Clock,
}

/// Wall-clock milliseconds as the store compares them, advanced by Tokio's clock: the store
/// needs a time every process agrees on, tests need one they can advance.
#[derive(Clone, Copy)]
struct Clock {
    base_ms: i64,
    base: Instant,
}

impl Clock {
    fn new() -> Clock {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            base_ms,
            base: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.base_ms
            .saturating_add(self.base.elapsed().as_millis() as i64)
    }
}

/// Who holds a lease, as `backfill status` and the logs show it: host and process.
pub fn lease_holder() -> String {
    format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "skystream".into()),
        std::process::id()
    )
}

impl Lease {
    /// The lease `name` in `store`, held as `holder` for `ttl` at a time (at least 3 ms, so a
    /// renewal every third of it is possible).
    pub fn new(
        store: Arc<dyn BackfillStore>,
        name: impl Into<String>,
        holder: impl Into<String>,
        ttl: Duration,
    ) -> Lease {
        Lease {
            store,
            name: name.into(),
            holder: holder.into(),
            ttl: ttl.max(Duration::from_millis(3)),
            clock: Clock::new(),
        }
    }

    /// Who this holder is.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long a lease lasts without renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes or renews the lease once; true when this holder holds it.
    pub async fn try_take(&self) -> Result<bool, StoreError> {
        self.store
            .try_lease(
                &self.name,
                &self.holder,
                self.clock.now_ms(),
                self.ttl.as_millis() as i64,
            )
            .await
    }

    /// Waits until this holder holds the lease (asking every half of its time to live), or
    /// `stop`: `None` when stopped first. A store error counts as "not yet".
    pub async fn acquire(&self, stop: &CancellationToken) -> Option<Held> {
        let mut said = false;
        loop {
            if stop.is_cancelled() {
                return None;
            }
            match self.try_take().await {
                Ok(true) => return Some(self.hold()),
                Ok(false) if !said => {
                    info!(lease = %self.name, "another process holds the lease; waiting for it");
                    said = true;
                }
                Ok(false) => {}
                Err(e) => warn!(lease = %self.name, error = %e, "could not ask for the lease"),
            }
            tokio::select! {
                () = stop.cancelled() => return None,
                () = tokio::time::sleep(self.ttl / 2) => {}
            }
        }
    }

    /// The lease as held now (just taken or renewed): renewed in the background until
    /// [`Held::release`], and [`Held::lost`] fires if it is lost.
    pub fn hold(&self) -> Held {
        let lost = CancellationToken::new();
        let done = CancellationToken::new();
        let renewal = tokio::spawn(renew(self.clone(), lost.clone(), done.clone()));
        Held {
            lease: self.clone(),
            lost,
            done,
            renewal,
        }
    }
}

/// A held lease and its renewal task.
pub struct Held {
    lease: Lease,
    lost: CancellationToken,
    done: CancellationToken,
    renewal: JoinHandle<()>,
}

/// Work scoped to a held lease (see [`Held::scope`]).
#[derive(Debug)]
pub struct LossWatch {
    /// Cancelled when the parent is, or when the lease is lost.
    pub token: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for LossWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Held {
    /// Fires when the lease is lost (another holder has it, or it may have expired).
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Whether the lease has been lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// A token for the work done under the lease: cancelled with `parent`, or when the lease
    /// is lost, after running `then` (said at once: the lease may pass to another holder
    /// before the work has drained). The watch ends when the returned [`LossWatch`] is dropped.
    pub fn scope(
        &self,
        parent: &CancellationToken,
        then: impl FnOnce() + Send + 'static,
    ) -> LossWatch {
        let token = parent.child_token();
        let lost = self.lost.clone();
        let cancel = token.clone();
        let task = tokio::spawn(async move {
            lost.cancelled().await;
            then();
            cancel.cancel();
        });
        LossWatch { token, task }
    }

    /// Stops renewing, then gives the lease up (if still held), in that order: a renewal can
    /// never take it back afterwards.
    pub async fn release(self) {
        self.done.cancel();
        let _ = self.renewal.await;
        if !self.lost.is_cancelled() {
            if let Err(e) = self
                .lease
                .store
                .release_lease(&self.lease.name, &self.lease.holder)
                .await
            {
                warn!(lease = %self.lease.name, error = %e, "could not release the lease; it expires on its own");
            }
        }
    }
}

async fn renew(lease: Lease, lost: CancellationToken, done: CancellationToken) {
    let every = lease.ttl / 3;
    let mut renewed = Instant::now();
    // Given up while a renewal could still succeed: past this, the lease may have expired
    // (the store's clock and ours are not the same) and another holder may have taken it.
    let safe = lease.ttl.saturating_sub(every / 2);
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // The store's expiry counts from when we asked, and a hung store counts as a failure.
        let asked = Instant::now();
        let result = tokio::select! {
            () = done.cancelled() => return,
            r = tokio::time::timeout(every, lease.try_take()) => match r {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the store did not answer in time".to_owned()),
            },
        };
        match result {
            Ok(true) => renewed = asked,
            Ok(false) => {
                warn!(lease = %lease.name, "lost the lease to another process");
                metrics::counter!("skystream_lease_lost_total", "lease" => lease.name.clone(), "reason" => "taken").increment(1);
                lost.cancel();
                return;
            }
            Err(e) if renewed.elapsed() + every >= safe => {
                warn!(lease = %lease.name, error = %e, "could not renew the lease in time; giving it up");
                metrics::counter!("skystream_lease_lost_total", "lease" => lease.name.clone(), "reason" => "unreachable").increment(1);
                lost.cancel();
                return;
            }
            Err(e) => {
                warn!(lease = %lease.name, error = %e, "could not renew the lease; trying again")
            }
        }
    }
}
