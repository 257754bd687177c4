//! The event types.

use skystream_data::{Cid, Value};
use skystream_repo::OpAction;

/// One thing that happened, with the position of its source that covers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The source's cursor for this event: a relay `seq`, a Jetstream `time_us`, a Kafka
    /// offset. Resuming the source from it replays nothing before this event.
    pub cursor: u64,
    /// When the upstream says the event happened, in unix microseconds (0 if unknown).
    pub time_us: i64,
    /// Live from a stream, or read back from a repository.
    pub origin: Origin,
    /// What happened.
    pub kind: EventKind,
}

/// Where an event came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A live (or replayed) stream.
    #[default]
    Live,
    /// A repository read by backfill.
    Backfill,
}

/// The kinds of event.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// Records were created, updated or deleted.
    Commit(Commit),
    /// An account's identity may have changed.
    Identity(Identity),
    /// An account's hosting status changed.
    Account(Account),
    /// A repository was reset to a new commit; repo-state holders must re-fetch it.
    Sync(Sync),
    /// An informational message from the upstream (not about one account).
    Info(Info),
}

impl Event {
    /// The account the event is about (none for `Info`).
    pub fn did(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Commit(c) => Some(&c.did),
            EventKind::Identity(i) => Some(&i.did),
            EventKind::Account(a) => Some(&a.did),
            EventKind::Sync(s) => Some(&s.did),
            EventKind::Info(_) => None,
        }
    }

    /// A short name of the kind, for metrics.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            EventKind::Commit(_) => "commit",
            EventKind::Identity(_) => "identity",
            EventKind::Account(_) => "account",
            EventKind::Sync(_) => "sync",
            EventKind::Info(_) => "info",
        }
    }
}

/// A commit's operations, with their records decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    /// The repository's DID.
    pub did: String,
    /// The commit's revision (a TID).
    pub rev: String,
    /// The previous revision, when the upstream says.
    pub since: Option<String>,
    /// The upstream sequence number (relay `seq`; 0 when the source has none).
    pub seq: i64,
    /// The upstream's timestamp, as sent.
    pub time: String,
    /// The operations that decoded; ones that did not are reported beside the event.
    pub ops: Vec<Op>,
}

/// One record operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// create, update or delete.
    pub action: OpAction,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// The record's CID (none on delete).
    pub cid: Option<Cid>,
    /// The previous record's CID, when known.
    pub prev: Option<Cid>,
    /// The record (none on delete).
    pub record: Option<Value<'static>>,
}

impl Op {
    /// The record's AT-URI.
    pub fn uri(&self, did: &str) -> String {
        format!("at://{did}/{}/{}", self.collection, self.rkey)
    }
}

/// An identity event.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The account's DID.
    pub did: String,
    /// Upstream sequence number.
    pub seq: i64,
    /// The upstream's timestamp, as sent.
    pub time: String,
    /// The handle, when the upstream included it.
    pub handle: Option<String>,
}

/// An account status event.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// The account's DID.
    pub did: String,
    /// Upstream sequence number.
    pub seq: i64,
    /// The upstream's timestamp, as sent.
    pub time: String,
    /// Whether the account is active.
    pub active: bool,
    /// Why it is not, when it is not.
    pub status: Option<String>,
}

/// A repository reset.
#[derive(Clone, Debug, PartialEq)]
pub struct Sync {
    /// The account's DID.
    pub did: String,
    /// Upstream sequence number.
    pub seq: i64,
    /// The new commit's revision.
    pub rev: String,
    /// The upstream's timestamp, as sent.
    pub time: String,
    /// CID of the new commit.
    pub commit: Option<Cid>,
}

/// An informational message.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    /// e.g. `OutdatedCursor`.
    pub name: String,
    /// Free text.
    pub message: Option<String>,
}
