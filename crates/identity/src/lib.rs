//! Identity: DID documents, and the directories and resolvers that answer "what is this DID's
//! key?".
//!
//! This crate owns reading a DID document ([`DidDocument`]) — its `#atproto` signing key in
//! the Multikey form or the legacy `EcdsaSecp256k1VerificationKey2019` /
//! `EcdsaSecp256r1VerificationKey2019` forms, its handle and its PDS endpoint — and the two seams
//! through which verifiers find documents: the synchronous [`Directory`] (with
//! [`MemoryDirectory`], for tests and `inspect --did-docs`) and the asynchronous [`Resolver`].
//! [`HttpResolver`] resolves `did:plc` through a PLC directory and `did:web` over HTTPS, with a
//! deadline and a size bound; [`CachingResolver`] wraps any resolver with a bounded TTL cache
//! (including a short negative cache) that [`Resolver::purge`] invalidates when an `#identity`
//! event or a failed signature says a document may have changed.

mod cache;
mod directory;
mod document;
mod http;
mod resolve;

pub use cache::{
    CacheConfig, CachingResolver, DEFAULT_HIT_TTL, DEFAULT_MAX_ENTRIES, DEFAULT_NEGATIVE_TTL,
};
pub use directory::{Directory, MemoryDirectory};
pub use document::{DidDocument, IdentityError, Service, VerificationMethod};
pub use http::{
    HttpResolver, HttpResolverConfig, HttpResolverConfigError, DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_PLC_URL, DEFAULT_RESOLVE_TIMEOUT,
};
pub use resolve::{ResolveError, ResolveErrorKind, Resolver};
