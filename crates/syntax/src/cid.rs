//! CID strings, checked syntactically only (no multibase/multihash decoding).
//!
//! Spec: <https://atproto.com/specs/lexicon#cid> and
//! <https://atproto.com/specs/data-model#link-and-cid-formats>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Minimum length of a CID string, in bytes.
pub const MIN_CID_LEN: usize = 8;

/// Maximum length of a CID string, in bytes.
pub const MAX_CID_LEN: usize = 256;

/// A string that looks like a CIDv1, e.g.
/// `bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a`.
///
/// This is only the loose Lexicon `cid` string check: [`MIN_CID_LEN`] to
/// [`MAX_CID_LEN`] characters of `A-Z a-z 0-9 + =`, and not a legacy CIDv0
/// (base58btc, starting with `Qm`). The multibase prefix, multihash and codec
/// are not decoded or verified; use a real CID library for that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidString(String);

string_newtype!(CidString, SyntaxKind::Cid, validate);

/// Cheap, non-allocating check that `s` is a valid [`CidString`].
pub fn is_valid_cid(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.len() < MIN_CID_LEN {
        return Err("CID is too short (min 8 chars)");
    }
    if s.len() > MAX_CID_LEN {
        return Err("CID is too long (max 256 chars)");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
    {
        return Err("CID must be ASCII letters, digits, + or =");
    }
    if s.starts_with("Qm") {
        return Err("CIDv0 is not allowed");
    }
    Ok(())
}
