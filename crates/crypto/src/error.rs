//! The crate's error type.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, as a stable, matchable category.
///
/// New kinds may be added in minor releases, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoErrorKind {
    /// The key type is recognised as a key type but is not one atproto uses:
    /// an unknown DID-document verification method type, or a multicodec
    /// for some other key (for example `ed25519-pub`).
    UnsupportedKeyType,
    /// The string is not a `did:key:` DID.
    BadDidKey,
    /// The multibase string is empty, not base58btc (`z`), too long, or not
    /// valid base58.
    BadMultibase,
    /// The multicodec varint prefix is missing or malformed.
    BadMulticodec,
    /// The key bytes are not a valid SEC1 point on the curve (or, for private
    /// keys, not a valid non-zero scalar), or have the wrong length.
    BadKeyBytes,
    /// The signature is not exactly 64 bytes of compact `r || s`; a
    /// DER-encoded signature lands here.
    SignatureLength,
    /// The signature's `s` is greater than `n / 2`. atproto accepts only
    /// low-S signatures.
    HighS,
    /// The signature is malformed (`r` or `s` out of range) or does not
    /// verify for this key and message.
    BadSignature,
}

impl CryptoErrorKind {
    /// A short, stable, lower-case name for the kind (for logs and metrics).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedKeyType => "unsupported key type",
            Self::BadDidKey => "bad did:key",
            Self::BadMultibase => "bad multibase",
            Self::BadMulticodec => "bad multicodec",
            Self::BadKeyBytes => "bad key bytes",
            Self::SignatureLength => "bad signature length",
            Self::HighS => "high-S signature",
            Self::BadSignature => "bad signature",
        }
    }
}

impl fmt::Display for CryptoErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from parsing keys or from signing / verifying.
///
/// Match on [`CryptoError::kind`]; the message is for humans. Errors built on
/// the verification hot path carry a static message and do not allocate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct CryptoError {
    kind: CryptoErrorKind,
    detail: Cow<'static, str>,
}

impl CryptoError {
    /// Build an error of `kind` with a human-readable `detail`.
    pub fn new(kind: CryptoErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// The category of this error.
    pub fn kind(&self) -> CryptoErrorKind {
        self.kind
    }

    /// The human-readable detail (without the kind prefix).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Shorthand for `Result<T, CryptoError>`.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
