//! Parse-only AT Protocol identifier types: DIDs, handles, AT identifiers,
//! NSIDs, AT-URIs, TIDs, record keys, datetimes, language tags, CID strings
//! and generic URIs. Each is a validated newtype over `String` that can only
//! be built by parsing, plus a non-allocating `is_valid_*` check for hot
//! paths; every failure is a [`SyntaxError`]. This crate owns string syntax
//! only: it does no I/O, no DID or handle resolution, and no CID decoding.
//! It is hand-written (with no dependencies beyond `std`, and `serde` behind
//! the optional `serde` feature) because the atproto rules are exact and
//! idiosyncratic (e.g. TIDs' sortable base32, the strict datetime profile,
//! NSID segment rules), no existing crate implements them to the letter, and
//! it is checked line by line against the shared atproto interop fixtures.
//!
//! ```
//! use skystream_syntax::{is_valid_handle, AtUri, Datetime, Tid};
//!
//! let uri: AtUri = "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a".parse()?;
//! assert_eq!(uri.authority(), "did:plc:abc");
//! assert_eq!(uri.collection(), Some("app.bsky.feed.post"));
//!
//! let tid = Tid::parse(uri.rkey().unwrap_or_default())?;
//! assert_eq!(Tid::from_parts(tid.timestamp_micros(), tid.clock_id()), tid);
//!
//! let at = Datetime::parse("1985-04-12T23:20:50.123Z")?;
//! assert_eq!(at.timestamp_micros(), Some(482_196_050_123_000));
//!
//! assert!(!is_valid_handle("john..test"));
//! # Ok::<(), skystream_syntax::SyntaxError>(())
//! ```

#![deny(missing_docs)]

mod macros;

mod at_identifier;
mod aturi;
mod cid;
mod datetime;
mod did;
mod error;
mod handle;
mod language;
mod nsid;
mod record_key;
mod tid;
mod timestamp;
mod uri;

pub use at_identifier::{is_valid_at_identifier, AtIdentifier};
pub use aturi::{is_valid_at_uri, AtUri, MAX_AT_URI_LEN};
pub use cid::{is_valid_cid, CidString, MAX_CID_LEN, MIN_CID_LEN};
pub use datetime::{is_valid_datetime, is_valid_datetime_syntax, Datetime, MAX_DATETIME_LEN};
pub use did::{is_valid_did, Did, MAX_DID_LEN};
pub use error::{SyntaxError, SyntaxKind};
pub use handle::{is_valid_handle, Handle, MAX_HANDLE_LEN};
pub use language::{is_valid_language, is_valid_language_syntax, Language, MAX_LANGUAGE_LEN};
pub use nsid::{is_valid_nsid, Nsid, MAX_NSID_LEN};
pub use record_key::{is_valid_record_key, RecordKey, MAX_RECORD_KEY_LEN};
pub use tid::{is_valid_tid, Tid, TID_LEN};
pub use timestamp::rfc3339_millis;
pub use uri::{is_valid_uri, Uri, MAX_URI_LEN};

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use serde::de::value::{Error, StrDeserializer};
    use serde::de::IntoDeserializer;
    use serde::Deserialize;

    use crate::{AtIdentifier, Did};

    #[test]
    fn deserialize_validates() {
        let de: StrDeserializer<'_, Error> = "did:plc:abc".into_deserializer();
        assert_eq!(Did::deserialize(de).expect("valid"), "did:plc:abc");
        let de: StrDeserializer<'_, Error> = "did:PLC:abc".into_deserializer();
        assert!(Did::deserialize(de).is_err());
        let de: StrDeserializer<'_, Error> = "alice.test".into_deserializer();
        assert!(AtIdentifier::deserialize(de).expect("valid").is_handle());
    }
}
