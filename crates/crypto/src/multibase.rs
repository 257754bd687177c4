//! base58btc multibase and multicodec helpers (internal).

use crate::algorithm::Algorithm;
use crate::error::{CryptoError, CryptoErrorKind, Result};

/// Longest multibase key string accepted, in characters. A 65-byte
/// uncompressed point with a 2-byte multicodec prefix is at most 93 base58
/// characters; this leaves slack while bounding the (quadratic) decode.
const MAX_MULTIBASE_CHARS: usize = 128;

/// Decoding buffer size: large enough for any key we accept, with slack so
/// over-long keys are reported as bad key bytes rather than bad multibase.
pub(crate) const DECODE_BUF_LEN: usize = 96;

/// Decode a base58btc multibase string (`z...`) into `buf`, returning the
/// decoded bytes.
pub(crate) fn decode_base58btc<'a>(s: &str, buf: &'a mut [u8; DECODE_BUF_LEN]) -> Result<&'a [u8]> {
    let Some(body) = s.strip_prefix('z') else {
        return Err(match s.chars().next() {
            None => CryptoError::new(CryptoErrorKind::BadMultibase, "empty multibase string"),
            Some(c) => CryptoError::new(
                CryptoErrorKind::BadMultibase,
                format!("multibase prefix {c:?} is not base58btc ('z')"),
            ),
        });
    };
    if body.is_empty() {
        return Err(CryptoError::new(
            CryptoErrorKind::BadMultibase,
            "multibase string has no data",
        ));
    }
    if s.len() > MAX_MULTIBASE_CHARS {
        return Err(CryptoError::new(
            CryptoErrorKind::BadMultibase,
            format!(
                "multibase key is {} characters, longer than any supported key",
                s.len()
            ),
        ));
    }
    let n = bs58::decode(body)
        .onto(&mut buf[..])
        .map_err(|e| CryptoError::new(CryptoErrorKind::BadMultibase, format!("base58btc: {e}")))?;
    Ok(&buf[..n])
}

/// Encode bytes as a base58btc multibase string (`z...`).
pub(crate) fn encode_base58btc(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(1 + bytes.len() * 138 / 100 + 1);
    out.push('z');
    bs58::encode(bytes).onto(&mut out).unwrap_or_default();
    out
}

/// Split an unsigned-varint multicodec prefix off `bytes` and map it to the
/// key's algorithm.
pub(crate) fn split_multicodec(bytes: &[u8]) -> Result<(Algorithm, &[u8])> {
    let (code, rest) = read_uvarint(bytes)?;
    for alg in Algorithm::ALL {
        if alg.multicodec() == code {
            return Ok((alg, rest));
        }
    }
    Err(CryptoError::new(
        CryptoErrorKind::UnsupportedKeyType,
        format!(
            "multicodec 0x{code:x} is not secp256k1-pub (0xe7) or p256-pub (0x1200){}",
            match code {
                0xed => " (it is ed25519-pub)",
                0x1201 => " (it is p384-pub)",
                _ => "",
            }
        ),
    ))
}

/// Read a minimally-encoded unsigned varint (multiformats: at most 9 bytes).
fn read_uvarint(bytes: &[u8]) -> Result<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(CryptoError::new(
                    CryptoErrorKind::BadMulticodec,
                    "multicodec varint is not minimally encoded",
                ));
            }
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(CryptoError::new(
        CryptoErrorKind::BadMulticodec,
        if bytes.is_empty() {
            "missing multicodec prefix"
        } else {
            "truncated or over-long multicodec varint"
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varint_prefixes_match_codes() {
        for alg in Algorithm::ALL {
            let prefix = alg.multicodec_prefix();
            let (code, rest) = read_uvarint(&prefix).expect("varint");
            assert_eq!(code, alg.multicodec());
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn varint_errors() {
        let kind = |b: &[u8]| read_uvarint(b).map(|_| ()).unwrap_err().kind();
        assert_eq!(kind(&[]), CryptoErrorKind::BadMulticodec);
        assert_eq!(kind(&[0x80]), CryptoErrorKind::BadMulticodec);
        assert_eq!(kind(&[0xe7, 0x81, 0x00]), CryptoErrorKind::BadMulticodec);
        assert_eq!(kind(&[0xff; 12]), CryptoErrorKind::BadMulticodec);
        let unsupported = split_multicodec(&[0xed, 0x01, 1, 2, 3]).unwrap_err();
        assert_eq!(unsupported.kind(), CryptoErrorKind::UnsupportedKeyType);
    }

    #[test]
    fn multibase_errors() {
        let mut buf = [0u8; DECODE_BUF_LEN];
        let mut kind = |s: &str| decode_base58btc(s, &mut buf).unwrap_err().kind();
        assert_eq!(kind(""), CryptoErrorKind::BadMultibase);
        assert_eq!(kind("z"), CryptoErrorKind::BadMultibase);
        assert_eq!(kind("mAAAA"), CryptoErrorKind::BadMultibase);
        assert_eq!(kind("z0OIl"), CryptoErrorKind::BadMultibase);
        assert_eq!(kind(&"z".repeat(200)), CryptoErrorKind::BadMultibase);
    }

    #[test]
    fn base58_round_trip() {
        let bytes = [0u8, 0, 1, 2, 3, 255];
        let s = encode_base58btc(&bytes);
        let mut buf = [0u8; DECODE_BUF_LEN];
        assert_eq!(decode_base58btc(&s, &mut buf).expect("decode"), &bytes);
    }
}
