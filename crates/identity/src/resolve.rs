//! The async resolution seam: [`Resolver`] and its error.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::directory::{Directory, MemoryDirectory};
use crate::document::DidDocument;

/// Why a DID could not be resolved, as a stable category; [`ResolveErrorKind::as_str`] gives a
/// low-cardinality snake_case name for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResolveErrorKind {
    /// The DID positively does not exist (HTTP 404, or 410 for a tombstoned `did:plc`, or not in
    /// a memory directory).
    NotFound,
    /// The string is not a DID, or not a well-formed one of its method (a `did:plc` must be 24
    /// base32 characters, a `did:web` a plain hostname).
    InvalidDid,
    /// The DID method (or a form of it, like a `did:web` with a path or on a loopback host) is
    /// not one this resolver handles.
    Unsupported,
    /// The document could not be fetched: connection failure, timeout, a redirect, or an
    /// unexpected HTTP status. Transient; never cached.
    Network,
    /// The response is not a DID document: not JSON of the right shape, or too large.
    BadDocument,
    /// The document's `id` is not the DID that was asked for.
    Mismatch,
}

impl ResolveErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InvalidDid => "invalid_did",
            Self::Unsupported => "unsupported",
            Self::Network => "network",
            Self::BadDocument => "bad_document",
            Self::Mismatch => "mismatch",
        }
    }
}

impl fmt::Display for ResolveErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed resolution: its kind, the DID and a human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("resolving {did}: {kind}: {detail}")]
pub struct ResolveError {
    /// What went wrong.
    pub kind: ResolveErrorKind,
    /// The DID being resolved.
    pub did: String,
    /// Specifics for logs.
    pub detail: String,
}

impl ResolveError {
    /// An error of `kind` while resolving `did`.
    pub fn new(kind: ResolveErrorKind, did: impl Into<String>, detail: impl Into<String>) -> Self {
        ResolveError {
            kind,
            did: did.into(),
            detail: detail.into(),
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ResolveErrorKind {
        self.kind
    }
}

/// Finds the DID document for a DID, asynchronously (over the network, usually).
///
/// Implementations: [`HttpResolver`](crate::HttpResolver) (did:plc and did:web),
/// [`MemoryDirectory`] (a fixed set), and [`CachingResolver`](crate::CachingResolver), which
/// wraps any of them with a cache. `Arc<R>` is a resolver too, so one cache can be shared.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The document for `did`, whose `id` is `did`.
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError>;

    /// Forgets anything cached for `did`, so the next [`Resolver::resolve`] fetches it afresh
    /// (an `#identity` event, or a signature that failed because the key may have rotated).
    /// Resolvers without a cache do nothing.
    fn purge(&self, did: &str);
}

#[async_trait]
impl Resolver for MemoryDirectory {
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
        self.lookup(did).ok_or_else(|| {
            ResolveError::new(
                ResolveErrorKind::NotFound,
                did,
                "not in the memory directory",
            )
        })
    }

    fn purge(&self, _did: &str) {}
}

#[async_trait]
impl<R: Resolver + ?Sized> Resolver for Arc<R> {
    async fn resolve(&self, did: &str) -> Result<Arc<DidDocument>, ResolveError> {
        (**self).resolve(did).await
    }

    fn purge(&self, did: &str) {
        (**self).purge(did)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        r#"{"id": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "alsoKnownAs": ["at://atproto.com"]}"#;

    #[tokio::test]
    async fn memory_directory_resolves_and_reports_not_found() {
        let mut dir = MemoryDirectory::new();
        dir.insert(DidDocument::from_json(DOC).expect("doc"));
        let doc = Resolver::resolve(&dir, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
            .await
            .expect("found");
        assert_eq!(doc.handle(), Some("atproto.com"));

        let err = Resolver::resolve(&dir, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
            .await
            .expect_err("missing");
        assert_eq!(err.kind(), ResolveErrorKind::NotFound);
        assert_eq!(err.did, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");

        // Through a shared trait object, as verifiers hold it.
        let shared: Arc<dyn Resolver> = Arc::new(dir);
        assert!(shared
            .resolve("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
            .await
            .is_ok());
        Resolver::purge(&shared, "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
    }

    #[test]
    fn kind_names_are_snake_case() {
        assert_eq!(ResolveErrorKind::NotFound.as_str(), "not_found");
        assert_eq!(ResolveErrorKind::BadDocument.to_string(), "bad_document");
        let e = ResolveError::new(
            ResolveErrorKind::Mismatch,
            "did:web:a.com",
            "id is did:web:b.com",
        );
        assert_eq!(
            e.to_string(),
            "resolving did:web:a.com: mismatch: id is did:web:b.com"
        );
    }
}
