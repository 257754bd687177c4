//! Generic URIs, checked loosely (scheme plus printable ASCII).
//!
//! Spec: <https://atproto.com/specs/lexicon#uri>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of a URI, in bytes.
pub const MAX_URI_LEN: usize = 8192;

/// A string with generic URI syntax, e.g. `https://example.com/path` or
/// `did:plc:abc`.
///
/// This is a permissive fast check, not full RFC 3986 validation: an RFC 3986
/// scheme (an ASCII letter, then letters, digits, `+`, `.` or `-`), a `:`,
/// then one or more printable non-space ASCII characters; at most
/// [`MAX_URI_LEN`] characters. Scheme-specific rules (e.g. AT-URI or DID) are
/// not applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

string_newtype!(Uri, SyntaxKind::Uri, validate);

impl Uri {
    /// The scheme, as written (schemes are case-insensitive), e.g. `"https"`.
    pub fn scheme(&self) -> &str {
        match self.0.find(':') {
            Some(i) => &self.0[..i],
            None => "",
        }
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Uri`].
pub fn is_valid_uri(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("URI must not be empty");
    }
    if s.len() > MAX_URI_LEN {
        return Err("URI is too long (max 8192 chars)");
    }
    let Some(colon) = s.find(':') else {
        return Err("URI must have a scheme followed by ':'");
    };
    let (scheme, rest) = (&s.as_bytes()[..colon], &s.as_bytes()[colon + 1..]);
    match scheme.split_first() {
        Some((first, tail))
            if first.is_ascii_alphabetic()
                && tail
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')) => {}
        _ => return Err("URI scheme must be a letter followed by letters, digits, +, . or -"),
    }
    if rest.is_empty() {
        return Err("URI must have something after the scheme");
    }
    if !rest.iter().all(u8::is_ascii_graphic) {
        return Err("URI must be printable ASCII without spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme() {
        let u = Uri::parse("microsoft.windows.camera:thing").expect("valid");
        assert_eq!(u.scheme(), "microsoft.windows.camera");
        assert!(is_valid_uri("coap+tcp://example.com"));
        assert!(!is_valid_uri("1http://example.com"));
    }
}
