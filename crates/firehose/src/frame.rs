//! The frame types and their decoder.

use std::borrow::Cow;

use skystream_data::cbor::Decoder;
use skystream_data::{Cid, Map, Value};
use skystream_repo::{Car, OpAction, RepoError};
use skystream_syntax::{is_valid_did, is_valid_nsid, is_valid_record_key};

use crate::error::{FrameError, FrameErrorKind as K};
use crate::Limits;

/// One decoded firehose frame, borrowing from the frame's bytes.
// Commits are nearly every frame; boxing them would add an allocation per frame to save stack
// space in the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Frame<'a> {
    /// `#commit`: a repository changed.
    Commit(CommitMsg<'a>),
    /// `#sync`: a repository's state was reset; consumers re-fetch it.
    Sync(SyncMsg<'a>),
    /// `#identity`: an account's handle or DID document may have changed.
    Identity(IdentityMsg<'a>),
    /// `#account`: an account's hosting status changed.
    Account(AccountMsg<'a>),
    /// `#info`: an informational message (e.g. `OutdatedCursor`).
    Info(InfoMsg<'a>),
    /// An error frame (`op: -1`); the server closes the stream after it.
    Error(ErrorMsg<'a>),
    /// A message type this version does not know; skipped and counted.
    Unknown {
        /// The header's `t`.
        t: &'a str,
        /// The body's `seq`, when it has one.
        seq: Option<i64>,
    },
}

impl Frame<'_> {
    /// The frame's sequence number, when the message type carries one.
    pub fn seq(&self) -> Option<i64> {
        match self {
            Frame::Commit(m) => Some(m.seq),
            Frame::Sync(m) => Some(m.seq),
            Frame::Identity(m) => Some(m.seq),
            Frame::Account(m) => Some(m.seq),
            Frame::Unknown { seq, .. } => *seq,
            Frame::Info(_) | Frame::Error(_) => None,
        }
    }

    /// The message type as named in the header (`#commit`, …), or `error`.
    pub fn type_name(&self) -> &str {
        match self {
            Frame::Commit(_) => "#commit",
            Frame::Sync(_) => "#sync",
            Frame::Identity(_) => "#identity",
            Frame::Account(_) => "#account",
            Frame::Info(_) => "#info",
            Frame::Error(_) => "error",
            Frame::Unknown { t, .. } => t,
        }
    }
}

/// A `#commit` message.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitMsg<'a> {
    /// Stream sequence number.
    pub seq: i64,
    /// The repository's DID.
    pub repo: &'a str,
    /// CID of the commit object (the first root of `blocks`).
    pub commit: Cid,
    /// The commit's revision (a TID).
    pub rev: &'a str,
    /// The revision this diff is relative to.
    pub since: Option<&'a str>,
    /// When the upstream emitted the event.
    pub time: &'a str,
    /// A CAR holding the commit, the changed MST nodes and the new records.
    pub blocks: &'a [u8],
    /// What changed.
    pub ops: Vec<RepoOp<'a>>,
    /// The MST root before this commit (Sync 1.1).
    pub prev_data: Option<Cid>,
    /// Deprecated: the diff was too big to include.
    pub too_big: bool,
}

impl<'a> CommitMsg<'a> {
    /// Indexes the `blocks` CAR (no hashing; see [`Car::verify_cids`]).
    pub fn car(&self) -> Result<Car<'a>, RepoError> {
        Car::parse(self.blocks)
    }
}

/// One operation of a commit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RepoOp<'a> {
    /// create, update or delete.
    pub action: OpAction,
    /// The record's collection NSID.
    pub collection: &'a str,
    /// The record key.
    pub rkey: &'a str,
    /// The new record's CID (none on delete).
    pub cid: Option<Cid>,
    /// The previous record's CID (Sync 1.1, on update and delete).
    pub prev: Option<Cid>,
}

impl RepoOp<'_> {
    /// `collection/rkey`, as the MST keys it.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

/// A `#sync` message.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncMsg<'a> {
    /// Stream sequence number.
    pub seq: i64,
    /// The account's DID.
    pub did: &'a str,
    /// A CAR holding just the signed commit.
    pub blocks: &'a [u8],
    /// The commit's revision.
    pub rev: &'a str,
    /// When the upstream emitted the event.
    pub time: &'a str,
}

/// An `#identity` message.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityMsg<'a> {
    /// Stream sequence number.
    pub seq: i64,
    /// The account's DID.
    pub did: &'a str,
    /// When the upstream emitted the event.
    pub time: &'a str,
    /// The current handle, if the upstream included it.
    pub handle: Option<&'a str>,
}

/// An `#account` message.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountMsg<'a> {
    /// Stream sequence number.
    pub seq: i64,
    /// The account's DID.
    pub did: &'a str,
    /// When the upstream emitted the event.
    pub time: &'a str,
    /// Whether the account is active.
    pub active: bool,
    /// Why it is inactive (takendown, suspended, deleted, deactivated, desynchronized,
    /// throttled, or a value from a newer spec).
    pub status: Option<&'a str>,
}

/// An `#info` message.
#[derive(Clone, Debug, PartialEq)]
pub struct InfoMsg<'a> {
    /// e.g. `OutdatedCursor`.
    pub name: &'a str,
    /// Free text.
    pub message: Option<&'a str>,
}

/// An error frame.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorMsg<'a> {
    /// e.g. `FutureCursor`, `ConsumerTooSlow`.
    pub error: &'a str,
    /// Free text.
    pub message: Option<&'a str>,
}

/// Decodes a frame with the default [`Limits`].
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    decode_frame_with(bytes, &Limits::default())
}

/// Decodes a frame, enforcing `limits`.
pub fn decode_frame_with<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Frame<'a>, FrameError> {
    if bytes.len() > limits.max_frame {
        return Err(FrameError::new(
            K::FrameTooLarge,
            format!(
                "{} bytes exceeds the {}-byte limit",
                bytes.len(),
                limits.max_frame
            ),
        ));
    }
    let mut dec = Decoder::new(bytes, skystream_data::Limits::default());
    let header = dec
        .decode_value()
        .map_err(|e| FrameError::new(K::HeaderCbor(e.kind), e.to_string()))?;
    let header = header
        .as_map()
        .ok_or_else(|| FrameError::new(K::HeaderShape, "header is not a map"))?;
    let op = header
        .get("op")
        .and_then(Value::as_i64)
        .ok_or_else(|| FrameError::new(K::HeaderShape, "header has no integer op"))?;
    let body = dec
        .decode_all_remaining()
        .map_err(|e| FrameError::new(K::BodyCbor(e.kind), e.to_string()))?;
    let body = body
        .as_map()
        .ok_or_else(|| FrameError::new(K::MissingField, "body is not a map"))?;
    match op {
        -1 => Ok(Frame::Error(ErrorMsg {
            error: req_str(body, "error")?,
            message: opt_str(body, "message")?,
        })),
        1 => {
            let t = match header.get("t") {
                Some(Value::String(Cow::Borrowed(t))) => *t,
                _ => return Err(FrameError::new(K::HeaderShape, "message header has no t")),
            };
            decode_message(t, body, limits)
        }
        other => Err(FrameError::new(
            K::HeaderShape,
            format!("unknown op {other}"),
        )),
    }
}

fn decode_message<'a>(t: &'a str, b: &Map<'a>, limits: &Limits) -> Result<Frame<'a>, FrameError> {
    Ok(match t {
        "#commit" => Frame::Commit(decode_commit(b, limits)?),
        "#sync" => {
            let blocks = req_bytes(b, "blocks")?;
            if blocks.len() > limits.max_sync_blocks {
                return Err(FrameError::new(
                    K::BlocksTooLarge,
                    format!("#sync blocks of {} bytes", blocks.len()),
                ));
            }
            Frame::Sync(SyncMsg {
                seq: seq(b)?,
                did: did(b, "did")?,
                blocks,
                rev: tid(b, "rev")?,
                time: req_str(b, "time")?,
            })
        }
        "#identity" => Frame::Identity(IdentityMsg {
            seq: seq(b)?,
            did: did(b, "did")?,
            time: req_str(b, "time")?,
            handle: opt_str(b, "handle")?,
        }),
        "#account" => Frame::Account(AccountMsg {
            seq: seq(b)?,
            did: did(b, "did")?,
            time: req_str(b, "time")?,
            active: b
                .get("active")
                .and_then(Value::as_bool)
                .ok_or_else(|| missing("active"))?,
            status: opt_str(b, "status")?,
        }),
        "#info" => Frame::Info(InfoMsg {
            name: req_str(b, "name")?,
            message: opt_str(b, "message")?,
        }),
        _ => Frame::Unknown {
            t,
            seq: b.get("seq").and_then(Value::as_i64),
        },
    })
}

fn decode_commit<'a>(b: &Map<'a>, limits: &Limits) -> Result<CommitMsg<'a>, FrameError> {
    let blocks = req_bytes(b, "blocks")?;
    if blocks.len() > limits.max_commit_blocks {
        return Err(FrameError::new(
            K::BlocksTooLarge,
            format!("#commit blocks of {} bytes", blocks.len()),
        ));
    }
    let raw_ops = b
        .get("ops")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("ops"))?;
    if raw_ops.len() > limits.max_ops {
        return Err(FrameError::new(
            K::TooManyOps,
            format!(
                "{} ops exceeds the limit of {}",
                raw_ops.len(),
                limits.max_ops
            ),
        ));
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for op in raw_ops {
        let m = op
            .as_map()
            .ok_or_else(|| bad("ops", "an op is not a map"))?;
        ops.push(decode_op(m)?);
    }
    let since = match b.get("since") {
        None | Some(Value::Null) => None,
        Some(Value::String(Cow::Borrowed(s))) if is_plausible_rev(s) => Some(*s),
        Some(_) => return Err(bad("since", "not a TID or null")),
    };
    Ok(CommitMsg {
        seq: seq(b)?,
        repo: did(b, "repo")?,
        commit: *b
            .get("commit")
            .and_then(Value::as_link)
            .ok_or_else(|| missing("commit"))?,
        rev: tid(b, "rev")?,
        since,
        time: req_str(b, "time")?,
        blocks,
        ops,
        prev_data: opt_link(b, "prevData")?,
        too_big: b.get("tooBig").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn decode_op<'a>(m: &Map<'a>) -> Result<RepoOp<'a>, FrameError> {
    let action = match req_str(m, "action")? {
        "create" => OpAction::Create,
        "update" => OpAction::Update,
        "delete" => OpAction::Delete,
        other => return Err(bad("action", &format!("unknown action {other:?}"))),
    };
    let path = req_str(m, "path")?;
    let (collection, rkey) = path
        .split_once('/')
        .filter(|(c, r)| is_valid_nsid(c) && is_valid_record_key(r))
        .ok_or_else(|| bad("path", &format!("{path:?} is not collection/rkey")))?;
    let cid = opt_link(m, "cid")?;
    match (action, cid) {
        (OpAction::Delete, Some(_)) => return Err(bad("cid", "a delete carries a CID")),
        (OpAction::Create | OpAction::Update, None) => {
            return Err(bad("cid", "a create or update has no CID"))
        }
        _ => {}
    }
    Ok(RepoOp {
        action,
        collection,
        rkey,
        cid,
        prev: opt_link(m, "prev")?,
    })
}

fn missing(field: &str) -> FrameError {
    FrameError::new(
        K::MissingField,
        format!("{field} missing or of the wrong type"),
    )
}

fn bad(field: &str, why: &str) -> FrameError {
    FrameError::new(K::BadField, format!("{field}: {why}"))
}

fn req_str<'a>(m: &Map<'a>, k: &str) -> Result<&'a str, FrameError> {
    match m.get(k) {
        Some(Value::String(Cow::Borrowed(s))) => Ok(s),
        _ => Err(missing(k)),
    }
}

fn opt_str<'a>(m: &Map<'a>, k: &str) -> Result<Option<&'a str>, FrameError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(Cow::Borrowed(s))) => Ok(Some(s)),
        Some(_) => Err(bad(k, "not a string")),
    }
}

fn req_bytes<'a>(m: &Map<'a>, k: &str) -> Result<&'a [u8], FrameError> {
    match m.get(k) {
        Some(Value::Bytes(Cow::Borrowed(b))) => Ok(b),
        _ => Err(missing(k)),
    }
}

fn opt_link(m: &Map<'_>, k: &str) -> Result<Option<Cid>, FrameError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Link(c)) => Ok(Some(*c)),
        Some(_) => Err(bad(k, "not a CID link")),
    }
}

fn seq(m: &Map<'_>) -> Result<i64, FrameError> {
    match m.get("seq").and_then(Value::as_i64) {
        Some(s) if s >= 0 => Ok(s),
        Some(_) => Err(bad("seq", "negative")),
        None => Err(missing("seq")),
    }
}

fn did<'a>(m: &Map<'a>, k: &str) -> Result<&'a str, FrameError> {
    let s = req_str(m, k)?;
    if is_valid_did(s) {
        Ok(s)
    } else {
        Err(bad(k, &format!("{s:?} is not a DID")))
    }
}

/// Revisions are TIDs, but real relays pass through some that are not strictly valid (e.g. a
/// final `0`, outside the TID alphabet), and ordering checks need them, so framing accepts any
/// short alphanumeric string and leaves strictness to verification.
fn is_plausible_rev(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn tid<'a>(m: &Map<'a>, k: &str) -> Result<&'a str, FrameError> {
    let s = req_str(m, k)?;
    if is_plausible_rev(s) {
        Ok(s)
    } else {
        Err(bad(k, &format!("{s:?} is not a TID")))
    }
}
