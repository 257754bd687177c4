//! Private (signing) keys.

use std::fmt;

use k256::ecdsa::signature::Signer;
use k256::elliptic_curve::rand_core::CryptoRng;
use k256::elliptic_curve::Generate;
use k256::sha2::{Digest, Sha256};

use crate::algorithm::Algorithm;
use crate::error::{CryptoError, CryptoErrorKind, Result};
use crate::key::PublicKey;
use crate::signature::{self, SIGNATURE_LEN};

/// Length of a private key: a 32-byte big-endian scalar.
pub const PRIVATE_KEY_LEN: usize = 32;

/// A private key on one of atproto's two curves, for producing signatures.
///
/// Signatures are deterministic (RFC 6979) and always low-S. The secret is
/// zeroized on drop; `Debug` shows only the algorithm and public did:key.
#[derive(Clone)]
pub enum PrivateKey {
    /// A secp256k1 (K-256, `ES256K`) key.
    K256(k256::ecdsa::SigningKey),
    /// A NIST P-256 (`ES256`) key.
    P256(p256::ecdsa::SigningKey),
}

impl PrivateKey {
    /// Generate a key using the given cryptographically secure RNG (the
    /// `rand_core` re-exported as [`crate::rand_core`]).
    pub fn generate<R: CryptoRng + ?Sized>(alg: Algorithm, rng: &mut R) -> Self {
        match alg {
            Algorithm::K256 => Self::K256(k256::ecdsa::SigningKey::generate_from_rng(rng)),
            Algorithm::P256 => Self::P256(p256::ecdsa::SigningKey::generate_from_rng(rng)),
        }
    }

    /// Generate a key from the operating system's secure RNG.
    ///
    /// # Panics
    /// If the operating system RNG fails, which modern systems do not.
    pub fn random(alg: Algorithm) -> Self {
        match alg {
            Algorithm::K256 => Self::K256(k256::ecdsa::SigningKey::generate()),
            Algorithm::P256 => Self::P256(p256::ecdsa::SigningKey::generate()),
        }
    }

    /// Load a key from its 32-byte big-endian scalar. Fails with
    /// [`CryptoErrorKind::BadKeyBytes`] on a wrong length, zero, or a value
    /// not below the curve order.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PRIVATE_KEY_LEN {
            return Err(CryptoError::new(
                CryptoErrorKind::BadKeyBytes,
                format!(
                    "private key must be {PRIVATE_KEY_LEN} bytes, got {}",
                    bytes.len()
                ),
            ));
        }
        let out_of_range = || {
            CryptoError::new(
                CryptoErrorKind::BadKeyBytes,
                format!("private key is zero or not below the {alg} group order"),
            )
        };
        Ok(match alg {
            Algorithm::K256 => {
                Self::K256(k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?)
            }
            Algorithm::P256 => {
                Self::P256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| out_of_range())?)
            }
        })
    }

    /// Derive a key deterministically from a `u64` seed, for tests and
    /// simulations that need reproducible signed data without an RNG.
    ///
    /// **Not secret**: anyone who knows the seed has the key.
    ///
    /// The scalar is `d0 = SHA-256(seed as 8 big-endian bytes)`; if that is
    /// zero or not below the group order, `d(i+1) = SHA-256(d(i))` is tried
    /// next (in practice the first candidate is used).
    pub fn from_seed(alg: Algorithm, seed: u64) -> Self {
        let mut candidate: [u8; 32] = Sha256::digest(seed.to_be_bytes()).into();
        loop {
            if let Ok(key) = Self::from_bytes(alg, &candidate) {
                return key;
            }
            candidate = Sha256::digest(candidate).into();
        }
    }

    /// The key's 32-byte big-endian scalar. Handle with care: this is the
    /// secret.
    pub fn to_bytes(&self) -> [u8; PRIVATE_KEY_LEN] {
        let mut out = [0u8; PRIVATE_KEY_LEN];
        match self {
            Self::K256(k) => out.copy_from_slice(&k.to_bytes()),
            Self::P256(k) => out.copy_from_slice(&k.to_bytes()),
        }
        out
    }

    /// The key's algorithm (curve).
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::K256(_) => Algorithm::K256,
            Self::P256(_) => Algorithm::P256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::K256(k) => PublicKey::K256(*k.verifying_key()),
            Self::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// Sign `msg` (hashed with SHA-256) and return the 64-byte compact
    /// `r || s` signature, normalized to low-S as atproto requires.
    /// Deterministic (RFC 6979): the same key and message give the same
    /// signature.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        match self {
            Self::K256(k) => {
                let sig: k256::ecdsa::Signature = k.sign(msg);
                signature::to_array(&sig.normalize_s().to_bytes())
            }
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                signature::to_array(&sig.normalize_s().to_bytes())
            }
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("public_key", &self.public_key().to_did_key())
            .finish_non_exhaustive()
    }
}
