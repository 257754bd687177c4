use std::fmt;

use skystream_data::{Cid, DecodeError};

/// What went wrong reading or checking repository structure; low-cardinality names via
/// [`RepoErrorKind::as_str`] for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RepoErrorKind {
    /// The CAR ended inside a header or block.
    CarTruncated,
    /// A varint that overflows or is not minimal.
    CarVarint,
    /// The CAR header is not `{version: 1, roots: [cid, …]}`.
    CarHeader,
    /// A block's CID could not be parsed.
    CarBlockCid,
    /// A block's bytes do not hash to its CID.
    CidMismatch,
    /// More blocks than the configured limit.
    TooManyBlocks,
    /// A block the operation needs is not in the archive.
    MissingBlock,
    /// A block is not valid DAG-CBOR.
    BlockDecode,
    /// An MST node is malformed (bad fields, unsorted keys, wrong layer, bad prefix).
    MstNode,
    /// An operation does not fit the tree (create of an existing key, delete of a missing one).
    MstOp,
    /// The commit object is malformed.
    CommitShape,
    /// The commit's signature does not verify.
    Signature,
    /// The DID, rev or op list disagrees with the commit.
    Mismatch,
    /// Inverting the operations did not give back `prevData`.
    PrevData,
}

impl RepoErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CarTruncated => "car_truncated",
            Self::CarVarint => "car_varint",
            Self::CarHeader => "car_header",
            Self::CarBlockCid => "car_block_cid",
            Self::CidMismatch => "cid_mismatch",
            Self::TooManyBlocks => "too_many_blocks",
            Self::MissingBlock => "missing_block",
            Self::BlockDecode => "block_decode",
            Self::MstNode => "mst_node",
            Self::MstOp => "mst_op",
            Self::CommitShape => "commit_shape",
            Self::Signature => "signature",
            Self::Mismatch => "mismatch",
            Self::PrevData => "prev_data",
        }
    }
}

impl fmt::Display for RepoErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A repository error: its kind and a human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct RepoError {
    /// What went wrong.
    pub kind: RepoErrorKind,
    /// Specifics for logs.
    pub detail: String,
}

impl RepoError {
    pub(crate) fn new(kind: RepoErrorKind, detail: impl Into<String>) -> Self {
        RepoError {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn missing(cid: &Cid) -> Self {
        Self::new(
            RepoErrorKind::MissingBlock,
            format!("block {cid} not present"),
        )
    }

    pub(crate) fn decode(cid: &Cid, e: DecodeError) -> Self {
        Self::new(RepoErrorKind::BlockDecode, format!("block {cid}: {e}"))
    }
}
