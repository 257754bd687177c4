use std::fmt;

use skystream_data::DecodeErrorKind;

/// Why a frame was rejected; [`FrameErrorKind::as_str`] gives a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The frame exceeds the size limit.
    FrameTooLarge,
    /// The header is not valid DAG-CBOR.
    HeaderCbor(DecodeErrorKind),
    /// The header is not `{op, t?}` with op 1 or -1.
    HeaderShape,
    /// The body is not valid DAG-CBOR.
    BodyCbor(DecodeErrorKind),
    /// A required field is missing or has the wrong type.
    MissingField,
    /// A field is present but fails its syntax (DID, TID, path, datetime …).
    BadField,
    /// More operations than the limit.
    TooManyOps,
    /// The `blocks` CAR exceeds its size limit.
    BlocksTooLarge,
}

impl FrameErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FrameTooLarge => "frame_too_large",
            Self::HeaderCbor(_) => "header_cbor",
            Self::HeaderShape => "header_shape",
            Self::BodyCbor(_) => "body_cbor",
            Self::MissingField => "missing_field",
            Self::BadField => "bad_field",
            Self::TooManyOps => "too_many_ops",
            Self::BlocksTooLarge => "blocks_too_large",
        }
    }
}

impl fmt::Display for FrameErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderCbor(k) | Self::BodyCbor(k) => write!(f, "{}: {k}", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

/// A rejected frame: the kind, and a detail for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct FrameError {
    /// What went wrong.
    pub kind: FrameErrorKind,
    /// Specifics (field names, offsets).
    pub detail: String,
}

impl FrameError {
    pub(crate) fn new(kind: FrameErrorKind, detail: impl Into<String>) -> Self {
        FrameError {
            kind,
            detail: detail.into(),
        }
    }
}
