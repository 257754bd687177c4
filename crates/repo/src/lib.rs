//! AT Protocol repositories: CAR archives, the Merkle Search Tree, signed commits, and the
//! verification of a firehose commit from its message alone.
//!
//! This crate owns repository structure and nothing else: it reads and writes bytes it is
//! given and never performs I/O. [`car`] parses a CAR v1 archive over a borrowed buffer without
//! copying blocks, and writes one. [`mst`] loads, walks and edits a Merkle Search Tree whose
//! nodes may be missing (a firehose diff carries only part of the tree), which is what lets
//! [`verify`] invert a commit's operations and compare the result against `prevData`
//! (Sync 1.1). [`commit`] decodes, signs and checks commit objects, and [`writer`] is the writing side: an
//! in-memory repository that signs commits and emits firehose-ready diffs with their proofs.
//!
//! The CAR reader and the MST are hand-written: the reader must index blocks in place (zero
//! copy) with every length bounded, and the partial-tree inversion that Sync 1.1 needs is not
//! offered by any Rust crate.

pub mod car;
pub mod commit;
mod error;
pub mod mst;
pub mod verify;
pub mod writer;

pub use car::{Block, Car, CarWriter};
pub use commit::{Commit, UnsignedCommit};
pub use error::{RepoError, RepoErrorKind};
pub use mst::{key_height, Mst};
pub use verify::{
    check_commit_block, check_prev_data, verify_commit, CommitOp, OpAction, VerifyOutcome,
};
pub use writer::{CommitDiff, DiffOp, RepoWriter, WriteOp};
