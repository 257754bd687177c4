//! Events as CloudEvents 1.0 (JSON), and CloudEvents back into events. Pure: no I/O.
//!
//! One CloudEvent per record operation (of the selected collections) and per identity or
//! account event; `#sync` and `#info` have no CloudEvents form. The schema is in `EVENTS.md`
//! at the repository root; the rules that make a replay safe are here:
//!
//! - `id` is derived from the event, never random: `AT-URI#rev` for a record operation (a
//!   commit touches a path at most once), `DID#identity/SEQ` and `DID#account/SEQ` otherwise.
//!   A replay after a restart therefore produces the same ids, and consumers can deduplicate.
//! - `time` is the event's own time, not the producer's clock.
//! - `source` is a configured URI for the deployment, not the upstream host (which changes on
//!   failover while the events stay the same).

use std::fmt::Write as _;

use skystream_data::json::{write_str, write_value};
use skystream_data::Value;
use skystream_event::{Account, Commit, Event, EventKind, Identity, Op, OpAction, Origin};

/// The CloudEvents version written and accepted.
pub const SPEC_VERSION: &str = "1.0";

/// The `source` attribute when none is configured.
pub const DEFAULT_SOURCE: &str = "urn:skystream:firehose";

/// Largest Kafka message read back (structured event or binary body). A record is at most
/// 1 MB of CBOR; its JSON (bytes as base64, links spelled out) plus the envelope stays well
/// under this.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// `content-type` of a structured-mode message.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// `content-type` (the `datacontenttype`) of a binary-mode message body.
pub const DATA_CONTENT_TYPE: &str = "application/json";

/// How the CloudEvent is laid out in a Kafka message (the CloudEvents Kafka binding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentMode {
    /// The whole event, attributes and `data`, as one JSON object in the value.
    #[default]
    Structured,
    /// `data` alone in the value; the attributes in `ce_*` headers.
    Binary,
}

/// The record collections that have a CloudEvents type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collection {
    /// `app.bsky.feed.post`
    Post,
    /// `app.bsky.feed.like`
    Like,
    /// `app.bsky.feed.repost`
    Repost,
    /// `app.bsky.graph.follow`
    Follow,
    /// `app.bsky.graph.block`
    Block,
    /// `app.bsky.actor.profile`
    Profile,
}

impl Collection {
    /// Every collection with a type.
    pub const ALL: [Collection; 6] = [
        Collection::Post,
        Collection::Like,
        Collection::Repost,
        Collection::Follow,
        Collection::Block,
        Collection::Profile,
    ];

    /// What `--collections` selects when not given (the seed bridge's volume-conscious set).
    pub const DEFAULT: [Collection; 4] = [
        Collection::Post,
        Collection::Like,
        Collection::Repost,
        Collection::Follow,
    ];

    /// The collection's NSID.
    pub fn nsid(self) -> &'static str {
        match self {
            Collection::Post => "app.bsky.feed.post",
            Collection::Like => "app.bsky.feed.like",
            Collection::Repost => "app.bsky.feed.repost",
            Collection::Follow => "app.bsky.graph.follow",
            Collection::Block => "app.bsky.graph.block",
            Collection::Profile => "app.bsky.actor.profile",
        }
    }

    /// The CloudEvents type of a created record.
    pub fn type_name(self) -> &'static str {
        match self {
            Collection::Post => "Bluesky.Feed.Post",
            Collection::Like => "Bluesky.Feed.Like",
            Collection::Repost => "Bluesky.Feed.Repost",
            Collection::Follow => "Bluesky.Graph.Follow",
            Collection::Block => "Bluesky.Graph.Block",
            Collection::Profile => "Bluesky.Actor.Profile",
        }
    }

    /// The collection with this NSID.
    pub fn from_nsid(nsid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.nsid() == nsid)
    }

    /// A `--collections` item: a short name (`post`, `like`, …) or an NSID.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::from_nsid(name).or(match name.to_ascii_lowercase().as_str() {
            "post" | "posts" => Some(Collection::Post),
            "like" | "likes" => Some(Collection::Like),
            "repost" | "reposts" => Some(Collection::Repost),
            "follow" | "follows" => Some(Collection::Follow),
            "block" | "blocks" => Some(Collection::Block),
            "profile" | "profiles" => Some(Collection::Profile),
            _ => None,
        })
    }

    /// The CloudEvents type of `action` on a record of this collection. A profile is one
    /// record that is rewritten, so its create and update are both `Bluesky.Actor.Profile`
    /// (the current profile, as the seed bridge sent it); other updates are `….Updated`.
    pub fn type_for(self, action: OpAction) -> String {
        match (self, action) {
            (_, OpAction::Create) | (Collection::Profile, OpAction::Update) => {
                self.type_name().to_owned()
            }
            (_, OpAction::Update) => format!("{}.Updated", self.type_name()),
            (_, OpAction::Delete) => format!("{}.Deleted", self.type_name()),
        }
    }
}

/// The type of an identity event.
pub const IDENTITY_TYPE: &str = "Bluesky.Identity";
/// The type of an account status event.
pub const ACCOUNT_TYPE: &str = "Bluesky.Account";

/// What to map and how to label it.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The `source` attribute.
    pub source: String,
    /// Which record collections become events (identity and account events always do: they
    /// are rare, and consumers need them to honour takedowns and handle changes).
    pub collections: Vec<Collection>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            source: DEFAULT_SOURCE.to_owned(),
            collections: Collection::DEFAULT.to_vec(),
        }
    }
}

/// One CloudEvent, ready to be laid out in a Kafka message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEvent {
    /// `id`: deterministic (see the module docs).
    pub id: String,
    /// `type`, e.g. `Bluesky.Feed.Post`.
    pub ty: String,
    /// `source`.
    pub source: String,
    /// `subject`: the record's AT-URI, or the DID for identity and account events.
    pub subject: String,
    /// `time`: the event's time, RFC 3339.
    pub time: String,
    /// The Kafka key: the author's DID, so one author's events stay in order on one partition.
    pub key: String,
    /// `data`: a JSON object, as text.
    pub data: String,
}

/// The `id` of a record operation.
pub fn record_id(uri: &str, rev: &str) -> String {
    format!("{uri}#{rev}")
}

/// The `id` of an identity event.
pub fn identity_id(did: &str, seq: i64) -> String {
    format!("{did}#identity/{seq}")
}

/// The `id` of an account event.
pub fn account_id(did: &str, seq: i64) -> String {
    format!("{did}#account/{seq}")
}

fn event_time(event: &Event, upstream: &str) -> String {
    if event.time_us > 0 {
        skystream_syntax::rfc3339_millis(event.time_us)
    } else {
        upstream.to_owned()
    }
}

/// The CloudEvents for `event` under `mapping`, in firehose order (empty for `#sync`,
/// `#info`, and operations on unselected collections).
pub fn from_event(event: &Event, mapping: &Mapping) -> Vec<CloudEvent> {
    match &event.kind {
        EventKind::Commit(c) => c
            .ops
            .iter()
            .filter_map(|op| {
                let coll = Collection::from_nsid(&op.collection)?;
                mapping
                    .collections
                    .contains(&coll)
                    .then(|| record_event(event, c, op, coll, &mapping.source))
            })
            .collect(),
        EventKind::Identity(i) => vec![identity_event(event, i, &mapping.source)],
        EventKind::Account(a) => vec![account_event(event, a, &mapping.source)],
        EventKind::Sync(_) | EventKind::Info(_) => Vec::new(),
    }
}

/// Writes a JSON object one field at a time, in a fixed order (so equal events give equal
/// bytes).
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(k, self.out);
        self.out.push(':');
        self.out
    }
    fn str(&mut self, k: &str, v: &str) {
        let out = self.key(k);
        write_str(v, out);
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.key(k).push_str("null"),
        }
    }
    fn int(&mut self, k: &str, v: i64) {
        let out = self.key(k);
        let _ = write!(out, "{v}");
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k).push_str(if v { "true" } else { "false" });
    }
    fn value(&mut self, k: &str, v: Option<&Value<'_>>) {
        match v {
            Some(v) => {
                let out = self.key(k);
                write_value(v, out);
            }
            None => self.key(k).push_str("null"),
        }
    }
    /// Writes `v` as a string holding its JSON text (the seed bridge's form of facets and
    /// labels), or null when absent.
    fn json_text(&mut self, k: &str, v: Option<&Value<'_>>) {
        match v {
            Some(v) => {
                let mut text = String::new();
                write_value(v, &mut text);
                self.str(k, &text);
            }
            None => self.key(k).push_str("null"),
        }
    }
    fn str_array(&mut self, k: &str, v: Option<&Value<'_>>) {
        let out = self.key(k);
        out.push('[');
        let items = v.and_then(Value::as_array).unwrap_or(&[]);
        let mut first = true;
        for s in items.iter().filter_map(Value::as_str) {
            if !first {
                out.push(',');
            }
            first = false;
            write_str(s, out);
        }
        out.push(']');
    }
    fn finish(self) {
        self.out.push('}');
    }
}

/// A string at `path` inside `v`.
fn str_at<'v>(v: Option<&'v Value<'_>>, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v?, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// A blob's CID (`{"$type":"blob","ref":{"$link":…}}`), as text.
fn blob_cid(v: Option<&Value<'_>>) -> Option<String> {
    v?.get("ref")?.as_link().map(|c| c.to_string())
}

fn record_event(event: &Event, c: &Commit, op: &Op, coll: Collection, source: &str) -> CloudEvent {
    let uri = op.uri(&c.did);
    let time = event_time(event, &c.time);
    let record = op.record.as_ref();
    let cid = op.cid.as_ref().map(|c| c.to_string());
    let mut data = String::with_capacity(512);
    let mut o = Obj::new(&mut data);
    o.str("uri", &uri);
    o.opt_str("cid", cid.as_deref());
    o.str("did", &c.did);
    o.key("handle").push_str("null");
    o.str("collection", &op.collection);
    o.str("rkey", &op.rkey);
    o.str("operation", op.action.as_str());
    o.str("rev", &c.rev);
    o.int("seq", c.seq);
    o.str("cursor", &event.cursor.to_string());
    o.str("indexed_at", &time);
    o.opt_str("created_at", str_at(record, &["createdAt"]));
    if let Some(r) = record {
        match coll {
            Collection::Post => {
                let embed = r.get("embed");
                let embed_type = str_at(embed, &["$type"]);
                let embed_uri = match embed_type {
                    Some("app.bsky.embed.external") => str_at(embed, &["external", "uri"]),
                    Some("app.bsky.embed.record") => str_at(embed, &["record", "uri"]),
                    Some("app.bsky.embed.recordWithMedia") => {
                        str_at(embed, &["record", "record", "uri"])
                    }
                    _ => None,
                };
                o.str("text", str_at(record, &["text"]).unwrap_or(""));
                o.str_array("langs", r.get("langs"));
                o.opt_str(
                    "lang",
                    r.get("langs")
                        .and_then(Value::as_array)
                        .and_then(|l| l.first())
                        .and_then(Value::as_str),
                );
                o.opt_str("reply_parent", str_at(record, &["reply", "parent", "uri"]));
                o.opt_str(
                    "reply_parent_cid",
                    str_at(record, &["reply", "parent", "cid"]),
                );
                o.opt_str("reply_root", str_at(record, &["reply", "root", "uri"]));
                o.opt_str("reply_root_cid", str_at(record, &["reply", "root", "cid"]));
                o.opt_str("embed_type", embed_type);
                o.opt_str("embed_uri", embed_uri);
                o.json_text("facets", r.get("facets"));
                o.json_text("labels", r.get("labels"));
                o.str_array("tags", r.get("tags"));
            }
            Collection::Like | Collection::Repost => {
                o.str(
                    "subject_uri",
                    str_at(record, &["subject", "uri"]).unwrap_or(""),
                );
                o.str(
                    "subject_cid",
                    str_at(record, &["subject", "cid"]).unwrap_or(""),
                );
            }
            Collection::Follow | Collection::Block => {
                o.str("subject", str_at(record, &["subject"]).unwrap_or(""));
                o.key("subject_handle").push_str("null");
            }
            Collection::Profile => {
                o.opt_str("display_name", str_at(record, &["displayName"]));
                o.opt_str("description", str_at(record, &["description"]));
                o.opt_str("avatar", blob_cid(r.get("avatar")).as_deref());
                o.opt_str("banner", blob_cid(r.get("banner")).as_deref());
            }
        }
    }
    o.value("record", record);
    o.finish();
    CloudEvent {
        id: record_id(&uri, &c.rev),
        ty: coll.type_for(op.action),
        source: source.to_owned(),
        subject: uri,
        time,
        key: c.did.clone(),
        data,
    }
}

fn identity_event(event: &Event, i: &Identity, source: &str) -> CloudEvent {
    let time = event_time(event, &i.time);
    let mut data = String::with_capacity(256);
    let mut o = Obj::new(&mut data);
    o.str("did", &i.did);
    o.opt_str("handle", i.handle.as_deref());
    o.int("seq", i.seq);
    o.str("cursor", &event.cursor.to_string());
    o.str("time", &i.time);
    o.str("indexed_at", &time);
    o.finish();
    CloudEvent {
        id: identity_id(&i.did, i.seq),
        ty: IDENTITY_TYPE.to_owned(),
        source: source.to_owned(),
        subject: i.did.clone(),
        time,
        key: i.did.clone(),
        data,
    }
}

fn account_event(event: &Event, a: &Account, source: &str) -> CloudEvent {
    let time = event_time(event, &a.time);
    let mut data = String::with_capacity(256);
    let mut o = Obj::new(&mut data);
    o.str("did", &a.did);
    o.bool("active", a.active);
    o.opt_str("status", a.status.as_deref());
    o.int("seq", a.seq);
    o.str("cursor", &event.cursor.to_string());
    o.str("time", &a.time);
    o.str("indexed_at", &time);
    o.finish();
    CloudEvent {
        id: account_id(&a.did, a.seq),
        ty: ACCOUNT_TYPE.to_owned(),
        source: source.to_owned(),
        subject: a.did.clone(),
        time,
        key: a.did.clone(),
        data,
    }
}

/// A CloudEvent laid out as a Kafka message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaMessage {
    /// The key (author DID).
    pub key: String,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The value.
    pub payload: String,
}

impl CloudEvent {
    /// The event as a Kafka message in `mode`.
    pub fn to_message(&self, mode: ContentMode) -> KafkaMessage {
        match mode {
            ContentMode::Structured => {
                let mut payload = String::with_capacity(self.data.len() + 256);
                let mut o = Obj::new(&mut payload);
                o.str("specversion", SPEC_VERSION);
                o.str("id", &self.id);
                o.str("source", &self.source);
                o.str("type", &self.ty);
                o.str("subject", &self.subject);
                o.str("time", &self.time);
                o.str("datacontenttype", DATA_CONTENT_TYPE);
                o.key("data").push_str(&self.data);
                o.finish();
                KafkaMessage {
                    key: self.key.clone(),
                    headers: vec![("content-type", STRUCTURED_CONTENT_TYPE.to_owned())],
                    payload,
                }
            }
            ContentMode::Binary => KafkaMessage {
                key: self.key.clone(),
                headers: vec![
                    ("ce_specversion", SPEC_VERSION.to_owned()),
                    ("ce_id", self.id.clone()),
                    ("ce_source", self.source.clone()),
                    ("ce_type", self.ty.clone()),
                    ("ce_subject", self.subject.clone()),
                    ("ce_time", self.time.clone()),
                    ("content-type", DATA_CONTENT_TYPE.to_owned()),
                ],
                payload: self.data.clone(),
            },
        }
    }
}

/// Why a Kafka message is not one of our CloudEvents. [`ReadErrorKind::name`] is for counting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {detail}")]
pub struct ReadError {
    /// What kind of problem.
    pub kind: ReadErrorKind,
    /// Which field, or what the parser said.
    pub detail: String,
}

/// The kinds of [`ReadError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// No value, or a value that is not a JSON object.
    NotJson,
    /// A required attribute or header is missing or not a string.
    MissingAttribute,
    /// `specversion` is not 1.0.
    BadSpecVersion,
    /// A `type` this build does not read.
    UnknownType,
    /// `data` lacks a field or a field is invalid.
    BadData,
}

impl ReadErrorKind {
    /// A stable snake_case name for metrics.
    pub fn name(self) -> &'static str {
        match self {
            ReadErrorKind::TooLarge => "too_large",
            ReadErrorKind::NotJson => "not_json",
            ReadErrorKind::MissingAttribute => "missing_attribute",
            ReadErrorKind::BadSpecVersion => "bad_specversion",
            ReadErrorKind::UnknownType => "unknown_type",
            ReadErrorKind::BadData => "bad_data",
        }
    }
}

fn rerr(kind: ReadErrorKind, detail: impl Into<String>) -> ReadError {
    ReadError {
        kind,
        detail: detail.into(),
    }
}

/// A CloudEvent read back from Kafka: its attributes and the `data` object.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// `id`.
    pub id: String,
    /// `type`.
    pub ty: String,
    /// `source`.
    pub source: String,
    /// `subject`, if present.
    pub subject: Option<String>,
    /// `time`, if present.
    pub time: Option<String>,
    /// `data`.
    pub data: serde_json::Value,
}

/// Reads a Kafka message as a CloudEvent: binary mode when a `ce_specversion` header is
/// present, else structured. `headers` are (name, value) pairs as received.
pub fn read_message(
    headers: &[(&str, &[u8])],
    payload: Option<&[u8]>,
) -> Result<Received, ReadError> {
    use serde_json::Value as J;
    let payload = payload.ok_or_else(|| rerr(ReadErrorKind::NotJson, "no value"))?;
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(rerr(
            ReadErrorKind::TooLarge,
            format!("{} bytes", payload.len()),
        ));
    }
    let header = |name: &str| -> Option<Result<&str, ReadError>> {
        headers.iter().find(|(k, _)| *k == name).map(|(_, v)| {
            std::str::from_utf8(v)
                .map_err(|_| rerr(ReadErrorKind::MissingAttribute, format!("{name} not UTF-8")))
        })
    };
    let parsed: J =
        serde_json::from_slice(payload).map_err(|e| rerr(ReadErrorKind::NotJson, e.to_string()))?;
    if !parsed.is_object() {
        return Err(rerr(ReadErrorKind::NotJson, "the value is not an object"));
    }
    if let Some(spec) = header("ce_specversion") {
        let need = |name: &str| -> Result<String, ReadError> {
            match header(name) {
                Some(v) => Ok(v?.to_owned()),
                None => Err(rerr(ReadErrorKind::MissingAttribute, name)),
            }
        };
        if spec? != SPEC_VERSION {
            return Err(rerr(ReadErrorKind::BadSpecVersion, "ce_specversion"));
        }
        return Ok(Received {
            id: need("ce_id")?,
            ty: need("ce_type")?,
            source: need("ce_source")?,
            subject: header("ce_subject").transpose()?.map(str::to_owned),
            time: header("ce_time").transpose()?.map(str::to_owned),
            data: parsed,
        });
    }
    let J::Object(mut obj) = parsed else {
        return Err(rerr(ReadErrorKind::NotJson, "the value is not an object"));
    };
    let mut take = |name: &str| -> Option<String> {
        match obj.remove(name) {
            Some(J::String(s)) => Some(s),
            _ => None,
        }
    };
    let attr = |v: Option<String>, name: &str| {
        v.ok_or_else(|| rerr(ReadErrorKind::MissingAttribute, name.to_owned()))
    };
    if attr(take("specversion"), "specversion")? != SPEC_VERSION {
        return Err(rerr(ReadErrorKind::BadSpecVersion, "specversion"));
    }
    let id = attr(take("id"), "id")?;
    let ty = attr(take("type"), "type")?;
    let source = attr(take("source"), "source")?;
    let subject = take("subject");
    let time = take("time");
    let data = obj
        .remove("data")
        .filter(J::is_object)
        .ok_or_else(|| rerr(ReadErrorKind::MissingAttribute, "data (an object)"))?;
    Ok(Received {
        id,
        ty,
        source,
        subject,
        time,
        data,
    })
}

impl Received {
    /// The event this CloudEvent describes, with `cursor` as its position. Every identifier is
    /// validated as the Jetstream reader does, so hostile messages are rejected, not indexed.
    pub fn to_event(&self, cursor: u64) -> Result<Event, ReadError> {
        use serde_json::Value as J;
        let bad = |why: &str| rerr(ReadErrorKind::BadData, why.to_owned());
        let d = &self.data;
        let s = |k: &str| d.get(k).and_then(J::as_str);
        let did = s("did")
            .filter(|d| skystream_syntax::is_valid_did(d))
            .ok_or_else(|| bad("no valid did"))?
            .to_owned();
        let seq = d.get("seq").and_then(J::as_i64).unwrap_or(0);
        let time = self.time.clone().unwrap_or_default();
        let time_us = skystream_syntax::Datetime::parse(&time)
            .ok()
            .and_then(|t| t.timestamp_micros())
            .unwrap_or(0);
        let upstream_time = s("time").map(str::to_owned).unwrap_or_else(|| time.clone());
        let kind = if self.ty == IDENTITY_TYPE {
            EventKind::Identity(Identity {
                did,
                seq,
                time: upstream_time,
                handle: s("handle")
                    .filter(|h| skystream_syntax::is_valid_handle(h))
                    .map(str::to_owned),
            })
        } else if self.ty == ACCOUNT_TYPE {
            EventKind::Account(Account {
                did,
                seq,
                time: upstream_time,
                active: d
                    .get("active")
                    .and_then(J::as_bool)
                    .ok_or_else(|| bad("account without active"))?,
                status: s("status").filter(|s| s.len() <= 64).map(str::to_owned),
            })
        } else {
            let collection = s("collection")
                .and_then(Collection::from_nsid)
                .ok_or_else(|| bad("no known collection"))?;
            let action = match s("operation") {
                Some("create") => OpAction::Create,
                Some("update") => OpAction::Update,
                Some("delete") => OpAction::Delete,
                _ => return Err(bad("no valid operation")),
            };
            if collection.type_for(action) != self.ty {
                return Err(rerr(
                    ReadErrorKind::UnknownType,
                    format!("type {:?} does not match the data", self.ty),
                ));
            }
            let rkey = s("rkey")
                .filter(|r| skystream_syntax::is_valid_record_key(r))
                .ok_or_else(|| bad("no valid rkey"))?
                .to_owned();
            let rev = s("rev")
                .filter(|r| !r.is_empty() && r.len() <= 32)
                .ok_or_else(|| bad("no valid rev"))?
                .to_owned();
            let cid = match s("cid") {
                Some(c) if action != OpAction::Delete => {
                    Some(c.parse().map_err(|_| bad("cid is not a CID"))?)
                }
                _ => None,
            };
            let record = match d.get("record") {
                Some(r) if !r.is_null() && action != OpAction::Delete => Some(
                    skystream_data::json::record_from_json(r)
                        .map_err(|e| rerr(ReadErrorKind::BadData, e.to_string()))?,
                ),
                _ => None,
            };
            if action != OpAction::Delete && (record.is_none() || cid.is_none()) {
                return Err(bad("a create or update without its record and cid"));
            }
            EventKind::Commit(Commit {
                did,
                rev,
                since: None,
                seq,
                time,
                ops: vec![Op {
                    action,
                    collection: collection.nsid().to_owned(),
                    rkey,
                    cid,
                    prev: None,
                    record,
                }],
            })
        };
        Ok(Event {
            cursor,
            time_us,
            origin: Origin::Live,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skystream_data::Cid;

    fn post_event() -> Event {
        let record = skystream_data::json::record_from_json(&serde_json::json!({
            "$type": "app.bsky.feed.post",
            "text": "Hei på deg",
            "langs": ["nb", "en"],
            "createdAt": "2026-07-04T12:00:00.000Z",
            "reply": {
                "root": {"uri": "at://did:plc:root/app.bsky.feed.post/1", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
                "parent": {"uri": "at://did:plc:parent/app.bsky.feed.post/2", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}
            },
            "embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://example.com", "title": "", "description": ""}},
            "facets": [{"index": {"byteStart": 0, "byteEnd": 3}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "hei"}]}],
            "tags": ["x"]
        }))
        .expect("record");
        let cid: Cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
            .parse()
            .expect("cid");
        Event {
            cursor: 42,
            time_us: 1_783_166_400_123_456,
            origin: Origin::Live,
            kind: EventKind::Commit(Commit {
                did: "did:plc:author".into(),
                rev: "3lxyz2abcde2a".into(),
                since: None,
                seq: 42,
                time: "2026-07-04T12:00:00.123Z".into(),
                ops: vec![
                    Op {
                        action: OpAction::Create,
                        collection: "app.bsky.feed.post".into(),
                        rkey: "3lxyz2abcde2b".into(),
                        cid: Some(cid),
                        prev: None,
                        record: Some(record),
                    },
                    Op {
                        action: OpAction::Delete,
                        collection: "app.bsky.feed.like".into(),
                        rkey: "3lxyz2abcde2c".into(),
                        cid: None,
                        prev: None,
                        record: None,
                    },
                    Op {
                        action: OpAction::Create,
                        collection: "app.bsky.graph.listitem".into(),
                        rkey: "3lxyz2abcde2d".into(),
                        cid: Some(cid),
                        prev: None,
                        record: None,
                    },
                ],
            }),
        }
    }

    #[test]
    fn maps_a_commit_to_one_event_per_selected_op() {
        let ces = from_event(&post_event(), &Mapping::default());
        assert_eq!(ces.len(), 2, "the listitem op has no type");
        let post = &ces[0];
        assert_eq!(post.ty, "Bluesky.Feed.Post");
        assert_eq!(
            post.id,
            "at://did:plc:author/app.bsky.feed.post/3lxyz2abcde2b#3lxyz2abcde2a"
        );
        assert_eq!(
            post.subject,
            "at://did:plc:author/app.bsky.feed.post/3lxyz2abcde2b"
        );
        assert_eq!(post.key, "did:plc:author");
        assert_eq!(post.time, "2026-07-04T12:00:00.123Z");
        assert_eq!(post.source, DEFAULT_SOURCE);
        let data: serde_json::Value = serde_json::from_str(&post.data).expect("json");
        assert_eq!(data["text"], "Hei på deg");
        assert_eq!(data["lang"], "nb");
        assert_eq!(data["langs"], serde_json::json!(["nb", "en"]));
        assert_eq!(
            data["reply_parent"],
            "at://did:plc:parent/app.bsky.feed.post/2"
        );
        assert_eq!(data["embed_uri"], "https://example.com");
        assert_eq!(data["created_at"], "2026-07-04T12:00:00.000Z");
        assert_eq!(data["seq"], 42);
        assert_eq!(data["cursor"], "42");
        assert_eq!(data["rev"], "3lxyz2abcde2a");
        assert_eq!(data["collection"], "app.bsky.feed.post");
        assert!(data["facets"].as_str().expect("text").contains("richtext"));
        assert_eq!(data["record"]["text"], "Hei på deg");
        let del = &ces[1];
        assert_eq!(del.ty, "Bluesky.Feed.Like.Deleted");
        let data: serde_json::Value = serde_json::from_str(&del.data).expect("json");
        assert!(data["record"].is_null() && data["cid"].is_null());
    }

    #[test]
    fn collection_filter_and_types() {
        let only_posts = Mapping {
            collections: vec![Collection::Post],
            ..Mapping::default()
        };
        assert_eq!(from_event(&post_event(), &only_posts).len(), 1);
        assert_eq!(
            Collection::Post.type_for(OpAction::Update),
            "Bluesky.Feed.Post.Updated"
        );
        assert_eq!(
            Collection::Profile.type_for(OpAction::Update),
            "Bluesky.Actor.Profile"
        );
        assert_eq!(
            Collection::Block.type_for(OpAction::Delete),
            "Bluesky.Graph.Block.Deleted"
        );
        assert_eq!(Collection::parse("likes"), Some(Collection::Like));
        assert_eq!(
            Collection::parse("app.bsky.graph.block"),
            Some(Collection::Block)
        );
        assert_eq!(Collection::parse("app.bsky.graph.listitem"), None);
    }

    #[test]
    fn identity_and_account_ids_come_from_did_and_seq() {
        let ev = Event {
            cursor: 9,
            time_us: 0,
            origin: Origin::Live,
            kind: EventKind::Account(Account {
                did: "did:plc:a".into(),
                seq: 77,
                time: "2026-07-04T12:00:00.000Z".into(),
                active: false,
                status: Some("takendown".into()),
            }),
        };
        let ce = &from_event(&ev, &Mapping::default())[0];
        assert_eq!(ce.id, "did:plc:a#account/77");
        assert_eq!(ce.ty, ACCOUNT_TYPE);
        assert_eq!(
            ce.time, "2026-07-04T12:00:00.000Z",
            "upstream time when no time_us"
        );
        let back = read_message(
            &[],
            Some(ce.to_message(ContentMode::Structured).payload.as_bytes()),
        )
        .expect("read")
        .to_event(1)
        .expect("event");
        let EventKind::Account(a) = back.kind else {
            panic!("not an account event")
        };
        assert_eq!(
            (a.seq, a.active, a.status.as_deref()),
            (77, false, Some("takendown"))
        );
    }

    #[test]
    fn both_modes_read_back_to_the_same_event() {
        let ev = post_event();
        for ce in from_event(&ev, &Mapping::default()) {
            for mode in [ContentMode::Structured, ContentMode::Binary] {
                let msg = ce.to_message(mode);
                let headers: Vec<(&str, &[u8])> = msg
                    .headers
                    .iter()
                    .map(|(k, v)| (*k, v.as_bytes()))
                    .collect();
                let got = read_message(&headers, Some(msg.payload.as_bytes())).expect("read");
                assert_eq!(got.id, ce.id);
                assert_eq!(got.ty, ce.ty);
                let back = got.to_event(ev.cursor).expect("event");
                // Mapping the event read back gives the same CloudEvent again.
                let again = from_event(&back, &Mapping::default());
                assert_eq!(again.len(), 1);
                assert_eq!(again[0], ce, "{mode:?}");
            }
        }
    }

    #[test]
    fn hostile_messages_are_rejected_with_a_kind() {
        type Case<'a> = (Vec<(&'a str, &'a [u8])>, Option<&'a [u8]>, ReadErrorKind);
        let cases: Vec<Case<'_>> = vec![
            (vec![], None, ReadErrorKind::NotJson),
            (vec![], Some(b"not json"), ReadErrorKind::NotJson),
            (vec![], Some(b"[1,2]"), ReadErrorKind::NotJson),
            (vec![], Some(b"{\"id\":\"x\"}"), ReadErrorKind::MissingAttribute),
            (
                vec![],
                Some(b"{\"specversion\":\"0.3\",\"id\":\"x\",\"type\":\"t\",\"source\":\"s\",\"data\":{}}"),
                ReadErrorKind::BadSpecVersion,
            ),
            (
                vec![("ce_specversion", b"1.0")],
                Some(b"{}"),
                ReadErrorKind::MissingAttribute,
            ),
            (
                vec![("ce_specversion", b"\xff")],
                Some(b"{}"),
                ReadErrorKind::MissingAttribute,
            ),
        ];
        for (headers, payload, kind) in cases {
            let e = read_message(&headers, payload).expect_err("rejected");
            assert_eq!(e.kind, kind, "{e}");
        }
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            read_message(&[], Some(&big)).expect_err("too big").kind,
            ReadErrorKind::TooLarge
        );
        let bad_data = [
            r#"{"did":"nope","collection":"app.bsky.feed.post","operation":"delete","rkey":"a","rev":"r"}"#,
            r#"{"did":"did:plc:a","collection":"app.bsky.feed.post","operation":"create","rkey":"a","rev":"r"}"#,
            r#"{"did":"did:plc:a","collection":"app.bsky.feed.post","operation":"delete","rkey":"../x","rev":"r"}"#,
            r#"{"did":"did:plc:a","collection":"app.bsky.feed.post","operation":"explode","rkey":"a","rev":"r"}"#,
        ];
        for data in bad_data {
            let received = Received {
                id: "x".into(),
                ty: "Bluesky.Feed.Post.Deleted".into(),
                source: "s".into(),
                subject: None,
                time: None,
                data: serde_json::from_str(data).expect("json"),
            };
            assert!(received.to_event(1).is_err(), "{data}");
        }
        let mismatched = Received {
            id: "x".into(),
            ty: "Bluesky.Feed.Like".into(),
            source: "s".into(),
            subject: None,
            time: None,
            data: serde_json::from_str(
                r#"{"did":"did:plc:a","collection":"app.bsky.feed.post","operation":"delete","rkey":"a","rev":"r"}"#,
            )
            .expect("json"),
        };
        assert_eq!(
            mismatched.to_event(1).expect_err("type").kind,
            ReadErrorKind::UnknownType
        );
    }
}
