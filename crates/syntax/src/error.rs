//! The crate's single error type.

use std::fmt;

/// Which kind of identifier a [`SyntaxError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyntaxKind {
    /// [`crate::Did`]
    Did,
    /// [`crate::Handle`]
    Handle,
    /// [`crate::AtIdentifier`]
    AtIdentifier,
    /// [`crate::Nsid`]
    Nsid,
    /// [`crate::AtUri`]
    AtUri,
    /// [`crate::Tid`]
    Tid,
    /// [`crate::RecordKey`]
    RecordKey,
    /// [`crate::Datetime`]
    Datetime,
    /// [`crate::Language`]
    Language,
    /// [`crate::CidString`]
    Cid,
    /// [`crate::Uri`]
    Uri,
}

impl SyntaxKind {
    /// Short human name of the kind, as used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            SyntaxKind::Did => "DID",
            SyntaxKind::Handle => "handle",
            SyntaxKind::AtIdentifier => "AT identifier",
            SyntaxKind::Nsid => "NSID",
            SyntaxKind::AtUri => "AT-URI",
            SyntaxKind::Tid => "TID",
            SyntaxKind::RecordKey => "record key",
            SyntaxKind::Datetime => "datetime",
            SyntaxKind::Language => "language tag",
            SyntaxKind::Cid => "CID string",
            SyntaxKind::Uri => "URI",
        }
    }
}

impl fmt::Display for SyntaxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string failed to parse as an AT Protocol identifier.
///
/// Carries the [`SyntaxKind`] that was being parsed and a short, static,
/// human-readable reason. The offending input is deliberately not stored
/// (it can be up to 8 KiB, and errors are cheap to create on hot paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyntaxError {
    kind: SyntaxKind,
    reason: &'static str,
}

impl SyntaxError {
    pub(crate) const fn new(kind: SyntaxKind, reason: &'static str) -> Self {
        SyntaxError { kind, reason }
    }

    /// Which kind of identifier failed to parse.
    pub const fn kind(&self) -> SyntaxKind {
        self.kind
    }

    /// Why it failed, e.g. `"DID method must be lowercase letters"`.
    pub const fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for SyntaxError {}
