//! AT-URIs in the restricted form used by the Lexicon `at-uri` format:
//! `at://AUTHORITY[/COLLECTION[/RKEY]]`.
//!
//! Spec: <https://atproto.com/specs/at-uri-scheme>.

use crate::macros::string_newtype;
use crate::{at_identifier, nsid, record_key};
use crate::{AtIdentifier, Did, Nsid, RecordKey, SyntaxKind};

/// Maximum length of an AT-URI, in bytes.
pub const MAX_AT_URI_LEN: usize = 8192;

const PREFIX: &str = "at://";

/// A valid AT-URI, e.g. `at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a`.
///
/// Strict (Lexicon `at-uri`) syntax: the lowercase prefix `at://`, an
/// authority that is a valid DID or handle, then optionally `/` and a valid
/// NSID collection, then optionally `/` and a valid record key. No trailing
/// slash, no empty or extra path segments, no percent-decoding, and no query
/// (`?`) or fragment (`#`) part (the general AT-URI grammar allows them, but
/// Lexicon `at-uri` values and the interop fixtures do not); at most
/// [`MAX_AT_URI_LEN`] characters.
///
/// Stored exactly as parsed; equality is on the exact string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri(String);

string_newtype!(AtUri, SyntaxKind::AtUri, validate);

/// Splits a valid AT-URI (without checking) into its parts.
fn split(s: &str) -> (&str, Option<&str>, Option<&str>) {
    let rest = s.strip_prefix(PREFIX).unwrap_or(s);
    let mut parts = rest.splitn(3, '/');
    let authority = parts.next().unwrap_or("");
    (authority, parts.next(), parts.next())
}

impl AtUri {
    /// Builds the AT-URI of a record, `at://{did}/{collection}/{rkey}`.
    /// Infallible: the parts are already valid and cannot exceed the limit.
    pub fn for_record(did: &Did, collection: &Nsid, rkey: &RecordKey) -> AtUri {
        AtUri::from_validated(format!("{PREFIX}{did}/{collection}/{rkey}"))
    }

    /// The authority (a DID or handle), e.g. `"did:plc:abc"`.
    pub fn authority(&self) -> &str {
        split(&self.0).0
    }

    /// The collection NSID, if the URI has a path, e.g. `"app.bsky.feed.post"`.
    pub fn collection(&self) -> Option<&str> {
        split(&self.0).1
    }

    /// The record key, if the URI has one, e.g. `"3jzfcijpj2z2a"`.
    pub fn rkey(&self) -> Option<&str> {
        split(&self.0).2
    }

    /// The path without the leading slash (`"collection"` or
    /// `"collection/rkey"`), as used in repository paths; empty if none.
    pub fn path(&self) -> &str {
        let rest = self.0.strip_prefix(PREFIX).unwrap_or(&self.0);
        match rest.find('/') {
            Some(i) => &rest[i + 1..],
            None => "",
        }
    }

    /// The authority as a typed [`AtIdentifier`] (allocates).
    pub fn to_authority(&self) -> AtIdentifier {
        AtIdentifier::from_validated(self.authority().to_owned())
    }

    /// The collection as a typed [`Nsid`] (allocates).
    pub fn to_collection(&self) -> Option<Nsid> {
        self.collection()
            .map(|c| Nsid::from_validated(c.to_owned()))
    }

    /// The record key as a typed [`RecordKey`] (allocates).
    pub fn to_rkey(&self) -> Option<RecordKey> {
        self.rkey().map(|r| RecordKey::from_validated(r.to_owned()))
    }
}

/// Cheap, non-allocating check that `s` is a valid [`AtUri`].
pub fn is_valid_at_uri(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    if s.len() > MAX_AT_URI_LEN {
        return Err("AT-URI is too long (max 8192 chars)");
    }
    let Some(rest) = s.strip_prefix(PREFIX) else {
        return Err("AT-URI must start with \"at://\"");
    };
    if rest.bytes().any(|b| b == b'?' || b == b'#') {
        return Err("AT-URI must not have a query or fragment");
    }
    let mut parts = rest.splitn(4, '/');
    let authority = parts.next().unwrap_or("");
    if at_identifier::validate(authority).is_err() {
        return Err("AT-URI authority must be a valid DID or handle");
    }
    if let Some(collection) = parts.next() {
        if collection.is_empty() {
            return Err("AT-URI must not have an empty path segment or trailing slash");
        }
        if nsid::validate(collection).is_err() {
            return Err("AT-URI collection must be a valid NSID");
        }
    }
    if let Some(rkey) = parts.next() {
        if rkey.is_empty() {
            return Err("AT-URI must not have an empty path segment or trailing slash");
        }
        if record_key::validate(rkey).is_err() {
            return Err("AT-URI record key must be a valid record key");
        }
    }
    if parts.next().is_some() {
        return Err("AT-URI path can have at most a collection and a record key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let u = AtUri::parse("at://did:plc:asdf123/com.atproto.feed.post/record").expect("valid");
        assert_eq!(u.authority(), "did:plc:asdf123");
        assert_eq!(u.collection(), Some("com.atproto.feed.post"));
        assert_eq!(u.rkey(), Some("record"));
        assert_eq!(u.path(), "com.atproto.feed.post/record");
        assert!(u.to_authority().is_did());
        assert_eq!(
            u.to_collection().map(|c| c.name().to_owned()),
            Some("post".to_owned())
        );
        assert_eq!(u.to_rkey().expect("rkey"), "record");

        let u = AtUri::parse("at://user.bsky.social").expect("valid");
        assert_eq!(u.authority(), "user.bsky.social");
        assert_eq!(u.collection(), None);
        assert_eq!(u.rkey(), None);
        assert_eq!(u.path(), "");
        assert!(u.to_authority().is_handle());

        let u = AtUri::parse("at://user.bsky.social/app.bsky.feed.like").expect("valid");
        assert_eq!(u.collection(), Some("app.bsky.feed.like"));
        assert_eq!(u.rkey(), None);
    }

    #[test]
    fn for_record() {
        let did = Did::parse("did:plc:abc").expect("valid");
        let nsid = Nsid::parse("app.bsky.feed.post").expect("valid");
        let rkey = RecordKey::parse("3jzfcijpj2z2a").expect("valid");
        let u = AtUri::for_record(&did, &nsid, &rkey);
        assert_eq!(
            u.as_str(),
            "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a"
        );
        assert_eq!(AtUri::parse(u.as_str()).expect("round trip"), u);
    }

    #[test]
    fn no_query_or_fragment() {
        assert!(!is_valid_at_uri("at://did:plc:asdf123#/frag"));
        assert!(!is_valid_at_uri("at://did:plc:asdf123?x=1"));
    }
}
