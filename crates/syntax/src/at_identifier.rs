//! AT identifiers: either a DID or a handle.
//!
//! Spec: <https://atproto.com/specs/lexicon#at-identifier>.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::{did, handle, Did, Handle, SyntaxError, SyntaxKind};

/// A DID or a handle, as used in the authority of an AT-URI or in
/// `at-identifier` Lexicon fields.
///
/// Anything starting with `did:` is parsed as a [`Did`]; everything else as a
/// [`Handle`]. Ordering, equality and hashing follow the string form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AtIdentifier {
    /// A DID, e.g. `did:plc:7iza6de2dwap2sbkpav7c6c6`.
    Did(Did),
    /// A handle, e.g. `alice.bsky.social`.
    Handle(Handle),
}

impl AtIdentifier {
    /// Parses and validates an [`AtIdentifier`], copying the input.
    ///
    /// Errors have kind [`SyntaxKind::AtIdentifier`] and the reason from the
    /// DID or handle rules, whichever was attempted.
    pub fn parse(s: &str) -> Result<Self, SyntaxError> {
        match validate(s) {
            Ok(()) => Ok(AtIdentifier::from_validated(s.to_owned())),
            Err(reason) => Err(SyntaxError::new(SyntaxKind::AtIdentifier, reason)),
        }
    }

    /// The identifier exactly as it was parsed.
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(d) => d.as_str(),
            AtIdentifier::Handle(h) => h.as_str(),
        }
    }

    /// Consumes the value, returning the underlying `String`.
    pub fn into_string(self) -> String {
        match self {
            AtIdentifier::Did(d) => d.into_string(),
            AtIdentifier::Handle(h) => h.into_string(),
        }
    }

    /// Whether this is a DID.
    pub fn is_did(&self) -> bool {
        matches!(self, AtIdentifier::Did(_))
    }

    /// Whether this is a handle.
    pub fn is_handle(&self) -> bool {
        matches!(self, AtIdentifier::Handle(_))
    }

    /// The DID, if this is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(d) => Some(d),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Did(_) => None,
            AtIdentifier::Handle(h) => Some(h),
        }
    }

    /// Normalized form: handles are lowercased, DIDs are unchanged
    /// (DIDs are case-sensitive).
    pub fn normalized(&self) -> AtIdentifier {
        match self {
            AtIdentifier::Did(d) => AtIdentifier::Did(d.clone()),
            AtIdentifier::Handle(h) => AtIdentifier::Handle(h.normalized()),
        }
    }

    /// Wraps a string that is already known to be valid.
    pub(crate) fn from_validated(s: String) -> Self {
        if s.starts_with("did:") {
            AtIdentifier::Did(Did::from_validated(s))
        } else {
            AtIdentifier::Handle(Handle::from_validated(s))
        }
    }
}

/// Cheap, non-allocating check that `s` is a valid [`AtIdentifier`].
pub fn is_valid_at_identifier(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.starts_with("did:") {
        did::validate(s)
    } else {
        handle::validate(s)
    }
}

impl PartialOrd for AtIdentifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtIdentifier {
    /// Orders by string form (consistent with `Eq`: a DID and a handle can
    /// never have the same string, since handles cannot contain `:`).
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl From<Did> for AtIdentifier {
    fn from(d: Did) -> Self {
        AtIdentifier::Did(d)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(h: Handle) -> Self {
        AtIdentifier::Handle(h)
    }
}

impl From<AtIdentifier> for String {
    fn from(v: AtIdentifier) -> String {
        v.into_string()
    }
}

impl FromStr for AtIdentifier {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AtIdentifier::parse(s)
    }
}

impl TryFrom<&str> for AtIdentifier {
    type Error = SyntaxError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        AtIdentifier::parse(s)
    }
}

impl TryFrom<String> for AtIdentifier {
    type Error = SyntaxError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match validate(&s) {
            Ok(()) => Ok(AtIdentifier::from_validated(s)),
            Err(reason) => Err(SyntaxError::new(SyntaxKind::AtIdentifier, reason)),
        }
    }
}

impl fmt::Display for AtIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for AtIdentifier {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AtIdentifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for AtIdentifier {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(deserializer)?;
        AtIdentifier::try_from(s).map_err(<D::Error as serde::de::Error>::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch() {
        let id = AtIdentifier::parse("did:plc:abc").expect("valid");
        assert!(id.is_did());
        assert_eq!(id.as_did().map(Did::method), Some("plc"));
        let id = AtIdentifier::parse("Alice.Test").expect("valid");
        assert!(id.is_handle());
        assert_eq!(id.normalized().as_str(), "alice.test");
        assert!(AtIdentifier::parse("did:thing.test").is_err());
    }

    #[test]
    fn ordering_follows_strings() {
        let a = AtIdentifier::parse("alice.test").expect("valid");
        let d = AtIdentifier::parse("did:plc:abc").expect("valid");
        let z = AtIdentifier::parse("zed.test").expect("valid");
        let mut v = vec![z.clone(), d.clone(), a.clone()];
        v.sort();
        assert_eq!(v, vec![a, d, z]);
    }
}
