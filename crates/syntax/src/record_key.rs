//! Record keys: the last path segment of a record's AT-URI.
//!
//! Spec: <https://atproto.com/specs/record-key>.

use crate::macros::string_newtype;
use crate::{SyntaxKind, Tid};

/// Maximum length of a record key, in bytes.
pub const MAX_RECORD_KEY_LEN: usize = 512;

/// A syntactically valid record key, e.g. `self` or a TID.
///
/// Rules: 1 to [`MAX_RECORD_KEY_LEN`] characters of `A-Z a-z 0-9 . - _ : ~`,
/// and not exactly `.` or `..`. Case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

string_newtype!(RecordKey, SyntaxKind::RecordKey, validate);

impl From<Tid> for RecordKey {
    /// Every TID is a valid record key.
    fn from(tid: Tid) -> Self {
        RecordKey::from_validated(tid.into_string())
    }
}

/// Cheap, non-allocating check that `s` is a valid [`RecordKey`].
pub fn is_valid_record_key(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("record key must not be empty");
    }
    if s.len() > MAX_RECORD_KEY_LEN {
        return Err("record key is too long (max 512 chars)");
    }
    if s == "." || s == ".." {
        return Err("record key must not be \".\" or \"..\"");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~'))
    {
        return Err("record key contains a disallowed character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_tid() {
        let tid = Tid::from_parts(1_700_000_000_000_000, 7);
        let rkey = RecordKey::from(tid.clone());
        assert_eq!(rkey.as_str(), tid.as_str());
    }
}
