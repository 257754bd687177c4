//! Reading ahead of the ordered stage while verifying.
//!
//! Verifying a commit needs its author's DID document, and a cold cache means one network round
//! trip per new account. Resolved one at a time inside the ordered read loop, those round trips
//! add up until the relay drops us as too slow. So when verification is on, a reader task takes
//! messages off the socket ahead of the ordered stage, starts resolving the author of each
//! commit it sees (up to [`RESOLVING`] at once; the caching resolver shares one fetch among
//! callers for the same DID), and queues the message. The ordered stage takes messages in the
//! order they arrived and resolves again, which is by then a cache hit or a wait on the fetch
//! already in flight; what it sends on is in stream order, as before.
//!
//! The queue is bounded in messages ([`QUEUED`]) and bytes ([`QUEUED_BYTES`]); when either
//! bound is reached, the reader stops reading the socket, which is how TCP pushes back on the
//! relay. A resolution started ahead that fails is not remembered (only definitive failures are
//! cached), so the ordered stage meets the failure itself and handles it as it always did.

use std::sync::Arc;

use skystream_firehose::{decode_frame_with, Frame, Limits};
use skystream_identity::Resolver;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::ws::{self, Disconnect, Payload};

/// Messages read ahead of the ordered stage, at most.
pub(crate) const QUEUED: usize = 1024;
/// Bytes of messages read ahead, at most (one larger message still passes alone).
pub(crate) const QUEUED_BYTES: usize = 16 << 20;
/// Resolutions started ahead and still running, at most.
pub(crate) const RESOLVING: usize = 32;

/// A message read ahead, holding its share of the byte budget until the ordered stage takes it.
pub(crate) struct Ahead {
    message: Result<Payload, Disconnect>,
    _bytes: Option<OwnedSemaphorePermit>,
}

/// Where the ordered stage takes its messages from: the socket itself, or the reader's queue.
pub(crate) enum Messages<'a> {
    /// Straight off the socket (no verification: nothing to look up ahead).
    Direct(&'a mut ws::Conn),
    /// From the reader task, in arrival order.
    Ahead(mpsc::Receiver<Ahead>),
}

impl Messages<'_> {
    /// The next message, or why there is none.
    pub(crate) async fn next(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<Payload, Disconnect> {
        match self {
            Messages::Direct(conn) => conn.next(shutdown).await,
            Messages::Ahead(rx) => tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(Disconnect::Shutdown),
                got = rx.recv() => match got {
                    Some(a) => a.message,
                    // The reader only stops after queueing a disconnect; this is a shutdown.
                    None => Err(Disconnect::Shutdown),
                },
            },
        }
    }
}

/// A queue for [`read_ahead`] to fill and the ordered stage to drain.
pub(crate) fn queue() -> (mpsc::Sender<Ahead>, Messages<'static>) {
    let (tx, rx) = mpsc::channel(QUEUED);
    (tx, Messages::Ahead(rx))
}

/// Reads `conn` into `tx` until it disconnects, starting each commit author's resolution on
/// the way. Never returns: after queueing the disconnect it waits to be dropped with the
/// ordered stage, which decides what happens next.
pub(crate) async fn read_ahead(
    conn: &mut ws::Conn,
    shutdown: CancellationToken,
    tx: mpsc::Sender<Ahead>,
    resolver: Arc<dyn Resolver>,
    limits: Limits,
) -> std::convert::Infallible {
    let budget = Arc::new(Semaphore::new(QUEUED_BYTES));
    let resolving = Arc::new(Semaphore::new(RESOLVING));
    loop {
        let message = conn.next(&shutdown).await;
        let last = message.is_err();
        let mut bytes = None;
        if let Ok(Payload::Binary(b)) = &message {
            let want = b.len().clamp(1, QUEUED_BYTES) as u32;
            let Ok(p) = budget.clone().acquire_many_owned(want).await else {
                break;
            };
            bytes = Some(p);
            if let Ok(Frame::Commit(commit)) = decode_frame_with(b, &limits) {
                let did = commit.repo.to_owned();
                let Ok(permit) = resolving.clone().acquire_owned().await else {
                    break;
                };
                let resolver = resolver.clone();
                tokio::spawn(async move {
                    // The answer lands in the resolver's cache; the ordered stage reads it.
                    let _ = resolver.resolve(&did).await;
                    drop(permit);
                });
            }
        }
        if tx
            .send(Ahead {
                message,
                _bytes: bytes,
            })
            .await
            .is_err()
            || last
        {
            break;
        }
    }
    std::future::pending().await
}
