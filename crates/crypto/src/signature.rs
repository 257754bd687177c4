//! Compact `r || s` signatures and atproto's low-S rule (internal helpers).
//!
//! atproto signatures are 64 bytes: the 32-byte big-endian `r` followed by
//! the 32-byte big-endian `s`. DER encoding is not allowed, and `s` must be
//! in the lower half of the group order (`s <= n / 2`) so that signatures are
//! not malleable.

use k256::elliptic_curve::scalar::IsHigh;

use crate::error::{CryptoError, CryptoErrorKind, Result};

/// Length in bytes of an atproto (compact `r || s`) signature.
pub const SIGNATURE_LEN: usize = 64;

/// Check the length and return the signature as a fixed-size array.
pub(crate) fn compact(sig: &[u8]) -> Result<&[u8; SIGNATURE_LEN]> {
    sig.try_into().map_err(|_| {
        CryptoError::new(
            CryptoErrorKind::SignatureLength,
            if sig.first() == Some(&0x30) {
                "expected a 64-byte compact r||s signature; this looks DER-encoded, which atproto does not allow"
            } else {
                "expected a 64-byte compact r||s signature"
            },
        )
    })
}

fn bad_scalars() -> CryptoError {
    CryptoError::new(
        CryptoErrorKind::BadSignature,
        "signature r or s is zero or not less than the group order",
    )
}

fn high_s() -> CryptoError {
    CryptoError::new(
        CryptoErrorKind::HighS,
        "signature s is greater than n/2; atproto accepts only low-S signatures",
    )
}

/// Parse a secp256k1 compact signature, rejecting high-S.
pub(crate) fn parse_k256(sig: &[u8; SIGNATURE_LEN]) -> Result<k256::ecdsa::Signature> {
    let sig = k256::ecdsa::Signature::from_slice(sig).map_err(|_| bad_scalars())?;
    if bool::from(sig.s().is_high()) {
        return Err(high_s());
    }
    Ok(sig)
}

/// Parse a P-256 compact signature, rejecting high-S.
pub(crate) fn parse_p256(sig: &[u8; SIGNATURE_LEN]) -> Result<p256::ecdsa::Signature> {
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| bad_scalars())?;
    if bool::from(sig.s().is_high()) {
        return Err(high_s());
    }
    Ok(sig)
}

/// The error for a well-formed signature that does not verify.
pub(crate) fn verification_failed() -> CryptoError {
    CryptoError::new(
        CryptoErrorKind::BadSignature,
        "signature does not verify for this key and message",
    )
}

/// Copy a fixed-size signature encoding into a plain array.
pub(crate) fn to_array(bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(bytes);
    out
}
