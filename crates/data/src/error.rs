use std::fmt;

/// Why a DAG-CBOR input was rejected. Stable, low-cardinality names for metrics via
/// [`DecodeErrorKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// Bytes remained after the value that should have spanned the whole input.
    TrailingBytes,
    /// An integer or length was not in its shortest form (DAG-CBOR requires it).
    NonMinimalEncoding,
    /// An indefinite-length item (forbidden in DAG-CBOR).
    IndefiniteLength,
    /// Additional-information values 28..30, reserved by CBOR.
    ReservedAdditionalInfo,
    /// An integer outside the signed 64-bit range.
    IntegerOutOfRange,
    /// A float; the atproto data model has none.
    Float,
    /// A simple value other than false, true or null (including `undefined`).
    UnsupportedSimple,
    /// A tag other than 42 (CID).
    UnsupportedTag,
    /// A text string that is not UTF-8.
    InvalidUtf8,
    /// A map key that is not a text string.
    NonStringKey,
    /// Map keys out of DAG-CBOR canonical order (length first, then bytes) or repeated.
    KeyOrder,
    /// Nesting deeper than the configured limit.
    TooDeep,
    /// A tag-42 payload that is not a valid binary CID.
    InvalidCid,
    /// A length larger than what remains of the input.
    LengthTooLarge,
}

impl DecodeErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnexpectedEnd => "unexpected_end",
            Self::TrailingBytes => "trailing_bytes",
            Self::NonMinimalEncoding => "non_minimal_encoding",
            Self::IndefiniteLength => "indefinite_length",
            Self::ReservedAdditionalInfo => "reserved_additional_info",
            Self::IntegerOutOfRange => "integer_out_of_range",
            Self::Float => "float",
            Self::UnsupportedSimple => "unsupported_simple",
            Self::UnsupportedTag => "unsupported_tag",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::NonStringKey => "non_string_key",
            Self::KeyOrder => "key_order",
            Self::TooDeep => "too_deep",
            Self::InvalidCid => "invalid_cid",
            Self::LengthTooLarge => "length_too_large",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DAG-CBOR decoding failure: what went wrong and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid DAG-CBOR at byte {offset}: {kind}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Offset into the decoded buffer where the offending item starts.
    pub offset: usize,
}
