//! What a subscriber asked for: the `/subscribe` query, `options_update` messages, and the
//! filter they build. Both are hostile input: every list is bounded, every value checked, and
//! errors say which value was wrong (shortened, since a close reason has 123 bytes).

use std::collections::HashSet;

use serde::Deserialize;

use crate::entry::Entry;

/// Most `wantedCollections` entries (exact and prefixes together).
pub const MAX_WANTED_COLLECTIONS: usize = 100;
/// Most `wantedDids` entries.
pub const MAX_WANTED_DIDS: usize = 10_000;

/// Which events a subscriber wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `None`: every collection.
    collections: Option<Collections>,
    /// `None`: every account.
    dids: Option<HashSet<Box<str>>>,
    /// 0: no limit.
    max_message_size: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Collections {
    exact: HashSet<Box<str>>,
    /// Prefixes with their trailing `.` (from `app.bsky.graph.*`: `app.bsky.graph.`).
    prefixes: Vec<Box<str>>,
}

/// A filter value that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not an NSID nor an NSID prefix ending in `.*`.
    #[error("invalid wantedCollections entry {0:?}")]
    Collection(String),
    /// Not a DID.
    #[error("invalid wantedDids entry {0:?}")]
    Did(String),
    /// Over [`MAX_WANTED_COLLECTIONS`].
    #[error("too many wantedCollections: {0} (at most 100)")]
    TooManyCollections(usize),
    /// Over [`MAX_WANTED_DIDS`].
    #[error("too many wantedDids: {0} (at most 10000)")]
    TooManyDids(usize),
}

/// A value shortened for an error message.
fn short(s: &str) -> String {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn is_prefix(p: &str) -> bool {
    // An NSID prefix: dot-separated segments of letters, digits and hyphens.
    !p.is_empty()
        && p.len() <= 317
        && p.split('.').all(|seg| {
            !seg.is_empty()
                && seg.len() <= 63
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Filter {
    /// A filter from the two lists (empty: that filter is off) and a size limit (0: none).
    pub fn new(
        collections: &[String],
        dids: &[String],
        max_message_size: u32,
    ) -> Result<Filter, FilterError> {
        let collections = if collections.is_empty() {
            None
        } else {
            let mut c = Collections::default();
            for w in collections {
                if let Some(p) = w.strip_suffix(".*") {
                    if !is_prefix(p) {
                        return Err(FilterError::Collection(short(w)));
                    }
                    let p: Box<str> = format!("{p}.").into();
                    if !c.prefixes.contains(&p) {
                        c.prefixes.push(p);
                    }
                } else if skystream_syntax::is_valid_nsid(w) {
                    c.exact.insert(w.as_str().into());
                } else {
                    return Err(FilterError::Collection(short(w)));
                }
                let n = c.exact.len() + c.prefixes.len();
                if n > MAX_WANTED_COLLECTIONS {
                    return Err(FilterError::TooManyCollections(collections.len()));
                }
            }
            Some(c)
        };
        let dids = if dids.is_empty() {
            None
        } else {
            let mut set = HashSet::with_capacity(dids.len().min(MAX_WANTED_DIDS));
            for d in dids {
                if !skystream_syntax::is_valid_did(d) {
                    return Err(FilterError::Did(short(d)));
                }
                set.insert(d.as_str().into());
                if set.len() > MAX_WANTED_DIDS {
                    return Err(FilterError::TooManyDids(dids.len()));
                }
            }
            Some(set)
        };
        Ok(Filter {
            collections,
            dids,
            max_message_size,
        })
    }

    /// Whether the subscriber wants `e`: identity and account events ignore
    /// `wantedCollections` but obey `wantedDids`.
    pub fn wants(&self, e: &Entry) -> bool {
        if let Some(dids) = &self.dids {
            if !dids.contains(&*e.did) {
                return false;
            }
        }
        match (&self.collections, &e.collection) {
            (Some(c), Some(col)) => {
                c.exact.contains(&**col) || c.prefixes.iter().any(|p| col.starts_with(&**p))
            }
            _ => true,
        }
    }

    /// Whether the filter can leave an event out (wantedCollections, wantedDids or
    /// maxMessageSizeBytes is set), for the subscriber figures by mode.
    pub fn narrows(&self) -> bool {
        self.collections.is_some() || self.dids.is_some() || self.max_message_size != 0
    }

    /// Whether a message of `len` bytes (as sent: compressed or not) is within the
    /// subscriber's `maxMessageSizeBytes`.
    pub fn fits(&self, len: usize) -> bool {
        self.max_message_size == 0 || len <= self.max_message_size as usize
    }
}

/// `maxMessageSizeBytes` as Jetstream reads it: negative or unparseable means no limit.
fn max_size(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// The `/subscribe` query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeQuery {
    /// The filter.
    pub filter: Filter,
    /// `cursor`: where to replay from (unix microseconds).
    pub cursor: Option<i64>,
    /// `compress=true` (the `Socket-Encoding: zstd` header is the server's business).
    pub compress: bool,
    /// `requireHello=true`: send nothing before the first options update.
    pub require_hello: bool,
    /// `informCursorSeconds`, before clamping.
    pub inform_cursor_seconds: Option<u64>,
}

/// A query that cannot be served (HTTP 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A filter value.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `cursor` is not an integer.
    #[error("invalid cursor {0:?}: expected unix microseconds")]
    Cursor(String),
    /// `informCursorSeconds` is not a non-negative integer.
    #[error("invalid informCursorSeconds {0:?}: expected seconds (60 to 600)")]
    InformCursor(String),
}

/// Parses the query string of `/subscribe` (without the `?`).
pub fn parse_query(query: &str) -> Result<SubscribeQuery, QueryError> {
    let mut collections = Vec::new();
    let mut dids = Vec::new();
    let mut max = 0;
    let mut q = SubscribeQuery::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "wantedCollections" => {
                // Bound the work before the filter counts distinct values.
                if collections.len() > MAX_WANTED_COLLECTIONS * 4 {
                    return Err(FilterError::TooManyCollections(collections.len()).into());
                }
                collections.push(v.into_owned());
            }
            "wantedDids" => {
                if dids.len() > MAX_WANTED_DIDS * 2 {
                    return Err(FilterError::TooManyDids(dids.len()).into());
                }
                dids.push(v.into_owned());
            }
            "maxMessageSizeBytes" => max = max_size(v.trim().parse().unwrap_or(0)),
            "cursor" if !v.is_empty() => {
                q.cursor = Some(v.parse().map_err(|_| QueryError::Cursor(short(&v)))?);
            }
            "compress" => q.compress = v == "true",
            "requireHello" => q.require_hello = v == "true",
            "informCursorSeconds" if !v.is_empty() => {
                q.inform_cursor_seconds =
                    Some(v.parse().map_err(|_| QueryError::InformCursor(short(&v)))?);
            }
            _ => {}
        }
    }
    q.filter = Filter::new(&collections, &dids, max)?;
    Ok(q)
}

/// A text message from a subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// `options_update`: the new filter (replacing the old one whole) and, if given,
    /// `informCursorSeconds` (honoured only before streaming begins).
    OptionsUpdate {
        /// The new filter.
        filter: Filter,
        /// `informCursorSeconds`, before clamping.
        inform_cursor_seconds: Option<u64>,
    },
    /// A message of another type: ignored, as Jetstream does.
    Other(String),
}

/// Why a subscriber's message ends its connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not a JSON object of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An `options_update` without a payload object.
    #[error("malformed options_update: {0}")]
    Payload(String),
    /// A refused filter value.
    #[error("invalid options_update: {0}")]
    Filter(#[from] FilterError),
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOptions {
    #[serde(default)]
    wanted_collections: Option<Vec<String>>,
    #[serde(default)]
    wanted_dids: Option<Vec<String>>,
    #[serde(default)]
    max_message_size_bytes: Option<i64>,
    #[serde(default)]
    inform_cursor_seconds: Option<u64>,
}

fn json_error(e: &serde_json::Error) -> String {
    // serde_json's messages can quote input; keep the category and position only.
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
    .to_lowercase()
}

/// Parses a subscriber's text message.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, MessageError> {
    let raw: RawMessage =
        serde_json::from_str(text).map_err(|e| MessageError::Malformed(json_error(&e)))?;
    if raw.kind != "options_update" {
        return Ok(ClientMessage::Other(short(&raw.kind)));
    }
    let payload = raw
        .payload
        .ok_or_else(|| MessageError::Payload("no payload".into()))?;
    let opts: RawOptions =
        serde_json::from_value(payload).map_err(|e| MessageError::Payload(json_error(&e)))?;
    let filter = Filter::new(
        opts.wanted_collections.as_deref().unwrap_or_default(),
        opts.wanted_dids.as_deref().unwrap_or_default(),
        max_size(opts.max_message_size_bytes.unwrap_or(0)),
    )?;
    Ok(ClientMessage::OptionsUpdate {
        filter,
        inform_cursor_seconds: opts.inform_cursor_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(did: &str, collection: Option<&str>) -> Entry {
        Entry {
            time_us: 1,
            did: did.into(),
            collection: collection.map(Into::into),
            json: "{}".into(),
            zstd: bytes::Bytes::new(),
        }
    }

    const A: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_filter_narrows_only_when_something_is_set() {
        assert!(!Filter::default().narrows());
        assert!(!Filter::new(&[], &[], 0).expect("valid").narrows());
        let c = Filter::new(&["app.bsky.feed.post".into()], &[], 0).expect("valid");
        let d = Filter::new(&[], &[A.into()], 0).expect("valid");
        let m = Filter::new(&[], &[], 1000).expect("valid");
        assert!(c.narrows() && d.narrows() && m.narrows());
    }

    #[test]
    fn collections_exact_and_prefix_dids_and_kinds() {
        let f = Filter::new(
            &["app.bsky.feed.post".into(), "app.bsky.graph.*".into()],
            &[A.into()],
            0,
        )
        .expect("valid");
        assert!(f.wants(&entry(A, Some("app.bsky.feed.post"))));
        assert!(f.wants(&entry(A, Some("app.bsky.graph.follow"))));
        assert!(
            !f.wants(&entry(A, Some("app.bsky.graphic.x"))),
            "prefix ends at a dot"
        );
        assert!(!f.wants(&entry(A, Some("app.bsky.feed.like"))));
        assert!(!f.wants(&entry(B, Some("app.bsky.feed.post"))));
        assert!(
            f.wants(&entry(A, None)),
            "identity/account ignore collections"
        );
        assert!(!f.wants(&entry(B, None)), "but obey wantedDids");
        let all = Filter::default();
        assert!(all.wants(&entry(B, Some("x.y.z"))) && all.fits(usize::MAX));
    }

    #[test]
    fn limits_and_invalid_values() {
        let many: Vec<String> = (0..101).map(|i| format!("com.example.c{i}")).collect();
        assert_eq!(
            Filter::new(&many, &[], 0),
            Err(FilterError::TooManyCollections(101))
        );
        let hundred = &many[..100];
        assert!(Filter::new(hundred, &[], 0).is_ok());
        let repeated: Vec<String> = (0..300).map(|_| "app.bsky.feed.post".into()).collect();
        assert!(
            Filter::new(&repeated, &[], 0).is_ok(),
            "duplicates count once"
        );
        let dids: Vec<String> = (0..10_001).map(|i| format!("did:plc:{i:024}")).collect();
        assert_eq!(
            Filter::new(&[], &dids, 0),
            Err(FilterError::TooManyDids(10_001))
        );
        assert!(Filter::new(&[], &dids[..10_000], 0).is_ok());
        assert!(matches!(
            Filter::new(&["not a nsid".into()], &[], 0),
            Err(FilterError::Collection(_))
        ));
        assert!(matches!(
            Filter::new(&[".*".into()], &[], 0),
            Err(FilterError::Collection(_))
        ));
        assert!(matches!(
            Filter::new(&[], &["plc:abc".into()], 0),
            Err(FilterError::Did(_))
        ));
    }

    #[test]
    fn query() {
        let q = parse_query(
            "wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=did%3Aplc%3Aaaaaaaaaaaaaaaaaaaaaaaaa&cursor=123&compress=true&requireHello=true&maxMessageSizeBytes=1000&informCursorSeconds=90",
        )
        .expect("valid");
        assert_eq!(q.cursor, Some(123));
        assert!(q.compress && q.require_hello);
        assert_eq!(q.inform_cursor_seconds, Some(90));
        assert!(q.filter.fits(1000) && !q.filter.fits(1001));
        assert!(q.filter.wants(&entry(A, Some("app.bsky.graph.block"))));
        assert_eq!(parse_query("").expect("empty"), SubscribeQuery::default());
        assert_eq!(
            parse_query("maxMessageSizeBytes=-5")
                .expect("lenient")
                .filter,
            Filter::default()
        );
        assert!(matches!(
            parse_query("cursor=abc"),
            Err(QueryError::Cursor(_))
        ));
        assert!(matches!(
            parse_query("informCursorSeconds=-1"),
            Err(QueryError::InformCursor(_))
        ));
        assert!(parse_query("wantedCollections=bad%20one").is_err());
    }

    #[test]
    fn options_updates() {
        let m = parse_client_message(
            r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.like"],"wantedDids":[],"maxMessageSizeBytes":10,"informCursorSeconds":120}}"#,
        )
        .expect("valid");
        let ClientMessage::OptionsUpdate {
            filter,
            inform_cursor_seconds,
        } = m
        else {
            panic!("an update")
        };
        assert_eq!(inform_cursor_seconds, Some(120));
        assert!(filter.wants(&entry(B, Some("app.bsky.feed.like"))));
        assert!(!filter.fits(11));
        assert_eq!(
            parse_client_message(r#"{"type":"hello"}"#),
            Ok(ClientMessage::Other("hello".into()))
        );
        for bad in [
            "not json",
            "[1,2]",
            r#"{"type":"options_update"}"#,
            r#"{"type":"options_update","payload":"x"}"#,
            r#"{"type":"options_update","payload":{"wantedDids":"did:plc:x"}}"#,
            r#"{"type":"options_update","payload":{"maxMessageSizeBytes":"big"}}"#,
            r#"{"type":"options_update","payload":{"wantedCollections":["no"]}}"#,
        ] {
            assert!(parse_client_message(bad).is_err(), "{bad}");
        }
    }
}
