//! Backfill: history read from the repositories themselves, sent through the same pipeline as
//! live events. A [`Backfill`] enumerates repositories (`com.atproto.sync.listRepos` on a relay
//! or PDS, or a given list), keeps per-repository state in the store ([`BackfillStore`]) so a
//! killed run resumes where it stopped, fetches each with `com.atproto.sync.getRepo` from its
//! PDS ([`RepoHost`]: HTTP with a per-host request rate and `429`/`Retry-After`, or in memory
//! for tests), walks its MST ([`read_repo`], pure, no I/O) and sends the records whose TID key
//! (or `createdAt`) falls in the [`Window`] as events marked [`Origin::Backfill`]. A repository
//! is marked done only once every consumer has durably handled its records: each backfill
//! event carries a run-local sequence number as its cursor, and the pipeline's committed cursor
//! says which repositories are fully handled. Throttling follows the knobs of the backfill
//! service this replaces (batch size, delay between batches, concurrency, a resident-memory
//! ceiling, yielding while live ingest lags). Beside live ingest, [`BesideLive`] runs it in
//! rounds under a [`Lease`] (one backfiller per database) and hands repositories over to the
//! live consumer through a [`HandOff`].
//!
//! [`BackfillStore`]: skystream_store::BackfillStore
//! [`Origin::Backfill`]: skystream_event::Origin::Backfill

mod beside;
mod handoff;
mod host;
mod jsonl;
mod lease;
mod read;
mod run;
mod throttle;
mod window;

pub use beside::{BesideLive, ConsumerFactory};
pub use handoff::{Gated, HandOff};
pub use host::{HostError, HttpHost, HttpHostConfig, MemoryHost, RepoHost, RepoPage};
pub use jsonl::JsonlOut;
pub use lease::{lease_holder, Held, Lease, LossWatch, BACKFILL_LEASE};
pub use read::{read_repo, ReadError, RepoRead, RepoRecord};
pub use run::{Backfill, BackfillConfig, BackfillError, BackfillReport, RepoSource};
pub use throttle::resident_memory_bytes;
pub use window::Window;
