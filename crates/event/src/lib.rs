//! skystream's one event model: what happened on the network, whichever source saw it.
//!
//! Every source (relay firehose, Jetstream, capture file, Kafka, backfill) produces [`Event`]s
//! and every consumer (feed indexer, Jetstream server, Kafka sink) takes them; nothing
//! downstream ever sees a source's wire format. This crate owns the model, its construction
//! from a decoded firehose frame ([`from_frame`]), with records decoded and block CIDs checked,
//! its Jetstream v1 JSON rendering ([`jetstream`]), the per-commit checks a verifying
//! consumer runs ([`verify`]), and the ordering checks of a validating consumer ([`validate`]). It does no I/O.

mod from_frame;
pub mod jetstream;
mod model;
pub mod validate;
pub mod verify;

pub use from_frame::{from_frame, FrameOptions, FrameOutcome, OpError, OpErrorKind};
pub use model::{Account, Commit, Event, EventKind, Identity, Info, Op, Origin, Sync};
pub use skystream_repo::OpAction;
