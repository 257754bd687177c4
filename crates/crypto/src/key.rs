//! Public keys: parsing from the forms atproto uses, encoding, verification.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::signature::Verifier;

use crate::algorithm::Algorithm;
use crate::didkey;
use crate::error::{CryptoError, CryptoErrorKind, Result};
use crate::multibase::{self, DECODE_BUF_LEN};
use crate::signature;

/// Length of a compressed SEC1 point (`0x02`/`0x03` || x).
pub const COMPRESSED_KEY_LEN: usize = 33;
/// Length of an uncompressed SEC1 point (`0x04` || x || y).
pub const UNCOMPRESSED_KEY_LEN: usize = 65;

/// The DID-document verification method type for multicodec-prefixed keys.
pub const MULTIKEY_TYPE: &str = "Multikey";

/// A public key on one of atproto's two curves.
///
/// This is a small `Copy` value (a decoded curve point, no heap), so it is
/// cheap to keep in a cache keyed by did:key and to clone out of it. Parsing
/// costs one base58 decode plus a point decompression; verification does not
/// re-parse anything.
///
/// Equality and hashing are by curve and point. `Display` / `FromStr` use
/// the did:key form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    /// A secp256k1 (K-256, `ES256K`) key.
    K256(k256::ecdsa::VerifyingKey),
    /// A NIST P-256 (`ES256`) key.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parse a `did:key:z...` DID for a secp256k1 or P-256 key (compressed
    /// 33-byte SEC1 point behind the multicodec prefix `0xe7 0x01` or
    /// `0x80 0x24`).
    pub fn from_did_key(did: &str) -> Result<Self> {
        didkey::parse(did)
    }

    /// Parse the `publicKeyMultibase` of a DID-document `Multikey`
    /// verification method: base58btc (`z`) multibase of the multicodec
    /// prefix followed by the compressed 33-byte SEC1 point. This is the
    /// did:key without its `did:key:` prefix.
    pub fn from_multikey(multibase: &str) -> Result<Self> {
        let mut buf = [0u8; DECODE_BUF_LEN];
        let bytes = multibase::decode_base58btc(multibase, &mut buf)?;
        let (alg, key) = multibase::split_multicodec(bytes)?;
        if key.len() != COMPRESSED_KEY_LEN {
            return Err(CryptoError::new(
                CryptoErrorKind::BadKeyBytes,
                format!(
                    "multikey must hold a {COMPRESSED_KEY_LEN}-byte compressed point, got {} bytes",
                    key.len()
                ),
            ));
        }
        Self::from_sec1_bytes(alg, key)
    }

    /// Parse a legacy DID-document key (`EcdsaSecp256k1VerificationKey2019`
    /// or `EcdsaSecp256r1VerificationKey2019`): base58btc (`z`) multibase of
    /// the bare SEC1 point, with no multicodec prefix. The point may be
    /// compressed (33 bytes) or uncompressed (65 bytes).
    pub fn from_legacy_multibase(multibase: &str, alg: Algorithm) -> Result<Self> {
        let mut buf = [0u8; DECODE_BUF_LEN];
        let bytes = multibase::decode_base58btc(multibase, &mut buf)?;
        Self::from_sec1_bytes(alg, bytes)
    }

    /// Parse a DID-document verification method from its `type` and
    /// `publicKeyMultibase`: `Multikey` (see [`Self::from_multikey`]), or the
    /// legacy `EcdsaSecp256k1VerificationKey2019` /
    /// `EcdsaSecp256r1VerificationKey2019` (see
    /// [`Self::from_legacy_multibase`]). Any other type is
    /// [`CryptoErrorKind::UnsupportedKeyType`].
    pub fn from_did_document_method(method_type: &str, public_key_multibase: &str) -> Result<Self> {
        if method_type == MULTIKEY_TYPE {
            return Self::from_multikey(public_key_multibase);
        }
        for alg in Algorithm::ALL {
            if method_type == alg.legacy_did_doc_type() {
                return Self::from_legacy_multibase(public_key_multibase, alg);
            }
        }
        Err(CryptoError::new(
            CryptoErrorKind::UnsupportedKeyType,
            format!(
                "unsupported verification method type {method_type:?} (expected Multikey, \
                 EcdsaSecp256k1VerificationKey2019 or EcdsaSecp256r1VerificationKey2019)"
            ),
        ))
    }

    /// Parse a SEC1-encoded point (compressed 33 bytes or uncompressed 65
    /// bytes) on the curve of `alg`.
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self> {
        if bytes.len() != COMPRESSED_KEY_LEN && bytes.len() != UNCOMPRESSED_KEY_LEN {
            return Err(CryptoError::new(
                CryptoErrorKind::BadKeyBytes,
                format!(
                    "{alg} public key must be {COMPRESSED_KEY_LEN} (compressed) or \
                     {UNCOMPRESSED_KEY_LEN} (uncompressed) SEC1 bytes, got {}",
                    bytes.len()
                ),
            ));
        }
        let not_on_curve = || {
            CryptoError::new(
                CryptoErrorKind::BadKeyBytes,
                format!("bytes are not a valid SEC1 point on the {alg} curve"),
            )
        };
        Ok(match alg {
            Algorithm::K256 => Self::K256(
                k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| not_on_curve())?,
            ),
            Algorithm::P256 => Self::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| not_on_curve())?,
            ),
        })
    }

    /// The key's algorithm (curve).
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::K256(_) => Algorithm::K256,
            Self::P256(_) => Algorithm::P256,
        }
    }

    /// The compressed 33-byte SEC1 encoding of the point.
    pub fn compressed_bytes(&self) -> [u8; COMPRESSED_KEY_LEN] {
        let mut out = [0u8; COMPRESSED_KEY_LEN];
        match self {
            Self::K256(k) => out.copy_from_slice(k.to_sec1_point(true).as_bytes()),
            Self::P256(k) => out.copy_from_slice(k.to_sec1_point(true).as_bytes()),
        }
        out
    }

    /// The uncompressed 65-byte SEC1 encoding of the point.
    pub fn uncompressed_bytes(&self) -> [u8; UNCOMPRESSED_KEY_LEN] {
        let mut out = [0u8; UNCOMPRESSED_KEY_LEN];
        match self {
            Self::K256(k) => out.copy_from_slice(k.to_sec1_point(false).as_bytes()),
            Self::P256(k) => out.copy_from_slice(k.to_sec1_point(false).as_bytes()),
        }
        out
    }

    /// The multicodec-prefixed compressed key bytes (what a did:key and a
    /// `Multikey` encode): 2 prefix bytes + 33 point bytes.
    pub fn multicodec_bytes(&self) -> [u8; 2 + COMPRESSED_KEY_LEN] {
        let mut out = [0u8; 2 + COMPRESSED_KEY_LEN];
        out[..2].copy_from_slice(&self.algorithm().multicodec_prefix());
        out[2..].copy_from_slice(&self.compressed_bytes());
        out
    }

    /// The `Multikey` `publicKeyMultibase` form: `z` + base58btc of the
    /// multicodec-prefixed compressed point.
    pub fn to_multikey(&self) -> String {
        multibase::encode_base58btc(&self.multicodec_bytes())
    }

    /// The did:key form, `did:key:z...`, always with the compressed point.
    pub fn to_did_key(&self) -> String {
        didkey::format(self)
    }

    /// The legacy DID-document `publicKeyMultibase` form: `z` + base58btc of
    /// the compressed point with no multicodec prefix. Pair it with
    /// [`Algorithm::legacy_did_doc_type`].
    pub fn to_legacy_multibase(&self) -> String {
        multibase::encode_base58btc(&self.compressed_bytes())
    }

    /// Verify an atproto signature over `msg`.
    ///
    /// `msg` is hashed with SHA-256 and the digest verified with ECDSA.
    /// `sig` must be exactly 64 bytes of compact `r || s` with low `s`:
    /// other lengths (including DER) are [`CryptoErrorKind::SignatureLength`],
    /// high `s` is [`CryptoErrorKind::HighS`], and anything else that fails
    /// is [`CryptoErrorKind::BadSignature`]. Failures do not allocate.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        let sig = signature::compact(sig)?;
        match self {
            Self::K256(k) => k.verify(msg, &signature::parse_k256(sig)?),
            Self::P256(k) => k.verify(msg, &signature::parse_p256(sig)?),
        }
        .map_err(|_| signature::verification_failed())
    }

    /// Like [`Self::verify`], but for a caller that already has the SHA-256
    /// digest of the message.
    pub fn verify_prehashed(&self, sha256_digest: &[u8; 32], sig: &[u8]) -> Result<()> {
        let sig = signature::compact(sig)?;
        match self {
            Self::K256(k) => k.verify_prehash(sha256_digest, &signature::parse_k256(sig)?),
            Self::P256(k) => k.verify_prehash(sha256_digest, &signature::parse_p256(sig)?),
        }
        .map_err(|_| signature::verification_failed())
    }
}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.compressed_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey")
            .field(&self.to_did_key())
            .finish()
    }
}

impl fmt::Display for PublicKey {
    /// Writes the did:key form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}

impl FromStr for PublicKey {
    type Err = CryptoError;

    /// Parses a did:key.
    fn from_str(s: &str) -> Result<Self> {
        Self::from_did_key(s)
    }
}

impl From<k256::ecdsa::VerifyingKey> for PublicKey {
    fn from(key: k256::ecdsa::VerifyingKey) -> Self {
        Self::K256(key)
    }
}

impl From<p256::ecdsa::VerifyingKey> for PublicKey {
    fn from(key: p256::ecdsa::VerifyingKey) -> Self {
        Self::P256(key)
    }
}
