//! Decentralized identifiers (`did:<method>:<identifier>`).
//!
//! Spec: <https://atproto.com/specs/did>. Only the generic DID syntax is
//! checked here; method-specific rules (e.g. `did:plc` length) are not.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of a DID, in bytes.
pub const MAX_DID_LEN: usize = 2048;

/// A syntactically valid DID, e.g. `did:plc:7iza6de2dwap2sbkpav7c6c6`.
///
/// Rules: the literal prefix `did:`, a method of one or more lowercase ASCII
/// letters, a `:`, then a non-empty method-specific identifier of
/// `A-Z a-z 0-9 . _ : % -` that does not end in `:` or `%`; at most
/// [`MAX_DID_LEN`] characters. Percent-encoding is not decoded or checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

string_newtype!(Did, SyntaxKind::Did, validate);

impl Did {
    /// The DID method, e.g. `"plc"` or `"web"`.
    pub fn method(&self) -> &str {
        let rest = &self.0[4..];
        match rest.find(':') {
            Some(i) => &rest[..i],
            None => rest,
        }
    }

    /// The method-specific identifier: everything after `did:<method>:`.
    pub fn identifier(&self) -> &str {
        let rest = &self.0[4..];
        match rest.find(':') {
            Some(i) => &rest[i + 1..],
            None => "",
        }
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Did`].
pub fn is_valid_did(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.len() > MAX_DID_LEN {
        return Err("DID is too long (max 2048 chars)");
    }
    let Some(rest) = s.strip_prefix("did:") else {
        return Err("DID must start with \"did:\"");
    };
    let Some(colon) = rest.find(':') else {
        return Err("DID must have a method and an identifier separated by ':'");
    };
    let (method, id) = (&rest[..colon], &rest[colon + 1..]);
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("DID method must be lowercase letters");
    }
    if id.is_empty() {
        return Err("DID method-specific identifier must not be empty");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-'))
    {
        return Err("DID identifier contains a disallowed character");
    }
    if id.ends_with(':') || id.ends_with('%') {
        return Err("DID must not end with ':' or '%'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let did = Did::parse("did:web:localhost%3A1234").expect("valid");
        assert_eq!(did.method(), "web");
        assert_eq!(did.identifier(), "localhost%3A1234");
        let did = Did::parse("did:method::::val").expect("valid");
        assert_eq!(did.method(), "method");
        assert_eq!(did.identifier(), ":::val");
    }

    #[test]
    fn error_reason() {
        let err = Did::parse("did:m123:val").expect_err("invalid");
        assert_eq!(err.kind(), SyntaxKind::Did);
        assert_eq!(err.reason(), "DID method must be lowercase letters");
        assert_eq!(
            err.to_string(),
            "invalid DID: DID method must be lowercase letters"
        );
    }
}
