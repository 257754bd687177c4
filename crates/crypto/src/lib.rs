//! AT Protocol cryptography, pure and I/O-free. This crate owns atproto's
//! two signature algorithms — ECDSA over secp256k1 (K-256, `ES256K`) and
//! NIST P-256 (`ES256`), both with SHA-256 — and everything about their keys:
//! public and private key types, the `did:key` encoding, parsing the
//! `publicKeyMultibase` of DID-document verification methods (`Multikey` and
//! the legacy `EcdsaSecp256k1VerificationKey2019` /
//! `EcdsaSecp256r1VerificationKey2019` forms), and signing and verifying
//! 64-byte compact signatures under atproto's low-S rule (DER and high-S
//! signatures are rejected with distinct error kinds). It does not resolve
//! DIDs, fetch DID documents, or do any other I/O: callers hand it key
//! strings and bytes.
//!
//! ```
//! use skystream_crypto::{Algorithm, PrivateKey, PublicKey};
//!
//! let key = PrivateKey::from_seed(Algorithm::K256, 7);
//! let sig = key.sign(b"hello");
//! let did = key.public_key().to_did_key();
//! let public = PublicKey::from_did_key(&did)?;
//! public.verify(b"hello", &sig)?;
//! # Ok::<(), skystream_crypto::CryptoError>(())
//! ```

mod algorithm;
mod didkey;
mod error;
mod key;
mod multibase;
mod private;
mod signature;

pub use algorithm::Algorithm;
pub use didkey::DID_KEY_PREFIX;
pub use error::{CryptoError, CryptoErrorKind, Result};
pub use key::{PublicKey, COMPRESSED_KEY_LEN, MULTIKEY_TYPE, UNCOMPRESSED_KEY_LEN};
pub use private::{PrivateKey, PRIVATE_KEY_LEN};
pub use signature::SIGNATURE_LEN;

/// The `rand_core` version used by [`PrivateKey::generate`], so callers can
/// name its `CryptoRng` trait without depending on it directly.
pub use k256::elliptic_curve::rand_core;

#[cfg(test)]
mod tests;
