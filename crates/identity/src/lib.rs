//! Identity: DID documents and the directories that answer "what is this DID's key?".
//!
//! This crate owns reading a DID document ([`DidDocument`]) — its `#atproto` signing key in
//! the Multikey form or the legacy `EcdsaSecp256k1VerificationKey2019` /
//! `EcdsaSecp256r1VerificationKey2019` forms, its handle and its PDS endpoint — and the
//! [`Directory`] seam through which verifiers find documents. [`MemoryDirectory`] is the
//! in-memory implementation (tests, `inspect --did-docs`); network resolvers implement the same
//! trait elsewhere.

mod directory;
mod document;

pub use directory::{Directory, MemoryDirectory};
pub use document::{DidDocument, IdentityError, Service, VerificationMethod};
