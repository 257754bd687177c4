//! The two signature algorithms atproto uses.

use std::fmt;
use std::str::FromStr;

use crate::error::{CryptoError, CryptoErrorKind};

/// An atproto signature algorithm: ECDSA with SHA-256 over one of two curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// secp256k1 ("K-256"), JWT name `ES256K`.
    K256,
    /// NIST P-256 (secp256r1), JWT name `ES256`.
    P256,
}

impl Algorithm {
    /// Both algorithms, K-256 first.
    pub const ALL: [Algorithm; 2] = [Algorithm::K256, Algorithm::P256];

    /// The JWT / JWA algorithm name: `ES256K` or `ES256`.
    pub const fn jwt_name(self) -> &'static str {
        match self {
            Self::K256 => "ES256K",
            Self::P256 => "ES256",
        }
    }

    /// Parse a JWT / JWA algorithm name (`ES256K` or `ES256`, exact case).
    pub fn from_jwt_name(name: &str) -> Option<Self> {
        match name {
            "ES256K" => Some(Self::K256),
            "ES256" => Some(Self::P256),
            _ => None,
        }
    }

    /// The multicodec code of this curve's public key: `0xe7`
    /// (`secp256k1-pub`) or `0x1200` (`p256-pub`).
    pub const fn multicodec(self) -> u64 {
        match self {
            Self::K256 => 0xe7,
            Self::P256 => 0x1200,
        }
    }

    /// The multicodec code as its unsigned-varint bytes, as it prefixes the
    /// key in a did:key or `Multikey`: `[0xe7, 0x01]` or `[0x80, 0x24]`.
    pub const fn multicodec_prefix(self) -> [u8; 2] {
        match self {
            Self::K256 => [0xe7, 0x01],
            Self::P256 => [0x80, 0x24],
        }
    }

    /// The legacy DID-document verification method type for this curve:
    /// `EcdsaSecp256k1VerificationKey2019` or `EcdsaSecp256r1VerificationKey2019`.
    pub const fn legacy_did_doc_type(self) -> &'static str {
        match self {
            Self::K256 => "EcdsaSecp256k1VerificationKey2019",
            Self::P256 => "EcdsaSecp256r1VerificationKey2019",
        }
    }
}

impl fmt::Display for Algorithm {
    /// Writes the JWT name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jwt_name())
    }
}

impl FromStr for Algorithm {
    type Err = CryptoError;

    /// Parses a JWT name (`ES256K` or `ES256`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_jwt_name(s).ok_or_else(|| {
            CryptoError::new(
                CryptoErrorKind::UnsupportedKeyType,
                format!("unsupported JWT algorithm {s:?} (expected ES256K or ES256)"),
            )
        })
    }
}
