//! Frames of the relay firehose, `com.atproto.sync.subscribeRepos`, decoded in place.
//!
//! A frame is two DAG-CBOR values back to back: a header `{op, t}` and a body. This crate owns
//! turning those bytes into a typed [`Frame`] that borrows every string and the `blocks` CAR
//! from the input, enforcing the protocol's limits ([`Limits`]) and reporting every rejection
//! as a [`FrameError`] with a countable [`FrameErrorKind`]. It does no I/O and never panics on
//! input; unknown message types decode to [`Frame::Unknown`] so callers can count and skip them.
//! [`write`] is the other direction: encoding frames for simulators, fault servers and tests.
//!
//! Decoding is hand-written over `skystream-data`'s zero-copy reader because the firehose is the
//! hot path: at the network's peak a consumer must frame hundreds of thousands of messages a
//! second on one core, which rules out building owned trees for every frame.

mod error;
mod frame;
pub mod write;

pub use error::{FrameError, FrameErrorKind};
pub use frame::{
    decode_frame, decode_frame_with, AccountMsg, CommitMsg, ErrorMsg, Frame, IdentityMsg, InfoMsg,
    RepoOp, SyncMsg,
};
pub use skystream_repo::OpAction;

/// The protocol's size limits (see the subscribeRepos lexicon and the sync spec).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest whole frame, in bytes.
    pub max_frame: usize,
    /// Largest `blocks` CAR on a `#commit`, in bytes.
    pub max_commit_blocks: usize,
    /// Largest `blocks` CAR on a `#sync`, in bytes.
    pub max_sync_blocks: usize,
    /// Most operations on one commit.
    pub max_ops: usize,
    /// Largest record block, in bytes.
    pub max_record: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 5_000_000,
            max_commit_blocks: 2_000_000,
            max_sync_blocks: 10_000,
            max_ops: 200,
            max_record: 1_000_000,
        }
    }
}
