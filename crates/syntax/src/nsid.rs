//! Namespaced identifiers (`com.example.fooBar`).
//!
//! Spec: <https://atproto.com/specs/nsid>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of an NSID, in bytes.
pub const MAX_NSID_LEN: usize = 317;

/// A syntactically valid NSID, e.g. `app.bsky.feed.post`.
///
/// Rules: ASCII, at most [`MAX_NSID_LEN`] characters, at least three
/// dot-separated segments. All but the last form the domain authority (in
/// reverse order): each 1..=63 of `A-Z a-z 0-9 -`, not starting or ending
/// with `-`, and the first one (the TLD) not starting with a digit. The last
/// segment is the name: 1..=63 ASCII letters and digits, not starting with a
/// digit.
///
/// The spec also caps the authority at 253 characters, but the interop
/// fixtures accept a longer one, so (like the reference implementations)
/// only the overall 317-character cap is enforced.
///
/// The authority is case-insensitive and the name case-sensitive; equality is
/// on the exact string, see [`Nsid::normalized`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

string_newtype!(Nsid, SyntaxKind::Nsid, validate);

impl Nsid {
    fn name_start(&self) -> usize {
        // Valid NSIDs always contain at least two dots.
        self.0.rfind('.').map_or(0, |i| i + 1)
    }

    /// The name segment (last segment), e.g. `"post"`.
    pub fn name(&self) -> &str {
        &self.0[self.name_start()..]
    }

    /// The domain authority in normal DNS order, e.g. `"feed.bsky.app"` for
    /// `app.bsky.feed.post` (allocates; see [`Nsid::authority_reversed`]).
    pub fn authority(&self) -> String {
        let mut out = String::with_capacity(self.name_start());
        for (i, seg) in self.authority_reversed().rsplit('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    /// The domain authority as written in the NSID (reversed DNS order),
    /// e.g. `"app.bsky.feed"` for `app.bsky.feed.post`. Never allocates.
    pub fn authority_reversed(&self) -> &str {
        &self.0[..self.name_start().saturating_sub(1)]
    }

    /// Normalized form: authority lowercased, name unchanged.
    pub fn normalized(&self) -> Nsid {
        let start = self.name_start();
        let mut out = self.0[..start].to_ascii_lowercase();
        out.push_str(&self.0[start..]);
        Nsid(out)
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Nsid`].
pub fn is_valid_nsid(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("NSID must not be empty");
    }
    if s.len() > MAX_NSID_LEN {
        return Err("NSID is too long (max 317 chars)");
    }
    let Some(dot) = s.rfind('.') else {
        return Err("NSID must have at least three dot-separated segments");
    };
    let (authority, name) = (&s[..dot], &s[dot + 1..]);
    let mut segments = 0usize;
    for seg in authority.split('.') {
        if seg.is_empty() || seg.len() > 63 {
            return Err("NSID segment must be 1 to 63 characters");
        }
        if !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("NSID authority must be ASCII letters, digits or hyphens");
        }
        if seg.starts_with('-') || seg.ends_with('-') {
            return Err("NSID authority segment must not start or end with a hyphen");
        }
        if segments == 0 && seg.as_bytes()[0].is_ascii_digit() {
            return Err("NSID first segment must not start with a digit");
        }
        segments += 1;
    }
    if segments < 2 {
        return Err("NSID must have at least three dot-separated segments");
    }
    if name.is_empty() || name.len() > 63 {
        return Err("NSID name must be 1 to 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("NSID name must be ASCII letters and digits");
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return Err("NSID name must not start with a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let n = Nsid::parse("app.bsky.feed.post").expect("valid");
        assert_eq!(n.name(), "post");
        assert_eq!(n.authority(), "feed.bsky.app");
        assert_eq!(n.authority_reversed(), "app.bsky.feed");
        let n = Nsid::parse("COM.Example.fooBar").expect("valid");
        assert_eq!(n.normalized().as_str(), "com.example.fooBar");
    }
}
