//! Handles: DNS hostnames used as human-readable account names.
//!
//! Spec: <https://atproto.com/specs/handle>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of a handle, in bytes.
pub const MAX_HANDLE_LEN: usize = 253;

/// Maximum length of one handle label (the part between dots).
const MAX_LABEL_LEN: usize = 63;

/// A syntactically valid handle, e.g. `alice.bsky.social`.
///
/// Rules: ASCII only, at most [`MAX_HANDLE_LEN`] characters, at least two
/// dot-separated labels of 1 to 63 characters each made of
/// `A-Z a-z 0-9 -`, no label starting or ending with `-`, and a final label
/// (TLD) that starts with a letter.
///
/// Handles are case-insensitive but are stored exactly as parsed; equality,
/// hashing and ordering are on the exact string. Compare
/// [`Handle::normalized`] values to compare handles semantically.
///
/// Syntactic validity says nothing about resolution: reserved TLDs such as
/// `.local`, `.onion` or `.invalid` (and the `handle.invalid` marker) pass.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

string_newtype!(Handle, SyntaxKind::Handle, validate);

impl Handle {
    /// The normalized (ASCII-lowercased) form of this handle.
    pub fn normalized(&self) -> Handle {
        Handle(self.0.to_ascii_lowercase())
    }

    /// The handle lowercased as a `String`; same as
    /// `self.normalized().into_string()`.
    pub fn to_lowercase(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// Whether the handle is already in normalized (lowercase) form.
    pub fn is_normalized(&self) -> bool {
        !self.0.bytes().any(|b| b.is_ascii_uppercase())
    }

    /// The top-level domain (last label), e.g. `"social"`.
    pub fn tld(&self) -> &str {
        match self.0.rfind('.') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Handle`].
pub fn is_valid_handle(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("handle must not be empty");
    }
    if s.len() > MAX_HANDLE_LEN {
        return Err("handle is too long (max 253 chars)");
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in s.split('.') {
        validate_label(label)?;
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err("handle must have at least two dot-separated labels");
    }
    if !last.as_bytes()[0].is_ascii_alphabetic() {
        return Err("handle top-level domain must start with a letter");
    }
    Ok(())
}

/// Checks one DNS label: 1..=63 of `A-Za-z0-9-`, no leading/trailing hyphen.
fn validate_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() || label.len() > MAX_LABEL_LEN {
        return Err("handle label must be 1 to 63 characters");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("handle label must be ASCII letters, digits or hyphens");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("handle label must not start or end with a hyphen");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        let h = Handle::parse("XX.LCS.MIT.EDU").expect("valid");
        assert!(!h.is_normalized());
        let n = h.normalized();
        assert_eq!(n.as_str(), "xx.lcs.mit.edu");
        assert!(n.is_normalized());
        assert_eq!(h.to_lowercase(), "xx.lcs.mit.edu");
        assert_ne!(h, n, "equality is exact, not case-folded");
        assert_eq!(
            h.normalized(),
            Handle::parse("xx.lcs.MIT.edu").expect("valid").normalized()
        );
        assert_eq!(h.tld(), "EDU");
    }

    #[test]
    fn lengths() {
        let label63 = "o".repeat(63);
        assert!(is_valid_handle(&format!("short.{label63}.test")));
        assert!(!is_valid_handle(&format!("short.{label63}o.test")));
        let full = format!("{}.test", "a".repeat(248));
        assert_eq!(full.len(), 253);
        // 248-char label is too long, so build from several labels instead.
        assert!(!is_valid_handle(&full));
        let ok = format!(
            "{}.{}.{}.{}.test",
            label63,
            label63,
            label63,
            "a".repeat(56)
        );
        assert_eq!(ok.len(), 253);
        assert!(is_valid_handle(&ok));
        assert!(!is_valid_handle(&format!("a{ok}")));
    }
}
