//! The `did:key` method for atproto's two curves.
//!
//! `did:key:` + base58btc multibase (`z`) of the multicodec-prefixed,
//! compressed SEC1 point: `0xe7 0x01` for secp256k1 (`did:key:zQ3s...`) and
//! `0x80 0x24` for P-256 (`did:key:zDn...`).

use crate::error::{CryptoError, CryptoErrorKind, Result};
use crate::key::PublicKey;

/// The prefix of every did:key.
pub const DID_KEY_PREFIX: &str = "did:key:";

/// Parse a did:key (see [`PublicKey::from_did_key`]).
pub(crate) fn parse(did: &str) -> Result<PublicKey> {
    let Some(multikey) = did.strip_prefix(DID_KEY_PREFIX) else {
        return Err(CryptoError::new(
            CryptoErrorKind::BadDidKey,
            "not a did:key (must start with \"did:key:\")",
        ));
    };
    PublicKey::from_multikey(multikey)
}

/// Format a key as a did:key (see [`PublicKey::to_did_key`]).
pub(crate) fn format(key: &PublicKey) -> String {
    let multikey = key.to_multikey();
    let mut out = String::with_capacity(DID_KEY_PREFIX.len() + multikey.len());
    out.push_str(DID_KEY_PREFIX);
    out.push_str(&multikey);
    out
}
