//! The Jetstream v1 JSON form of events: one line per commit operation and per identity or
//! account event; `#sync` and `#info` have no v1 form.
//!
//! `time_us` is not part of the event: Jetstream assigns it when it sequences an event, so the
//! caller passes it in (see [`TimeSequencer`] for the convert command's rule).

use std::fmt::Write as _;

use skystream_data::json::{write_str, write_value};

use crate::model::{Account, Commit, Event, EventKind, Identity, Op};
use crate::OpAction;

/// Appends the Jetstream lines for `event` to `out` (each ending in `\n`), drawing one
/// `time_us` per line from `next_time_us`. Returns how many lines were written.
pub fn write_event(
    event: &Event,
    next_time_us: &mut dyn FnMut() -> i64,
    out: &mut String,
) -> usize {
    match &event.kind {
        EventKind::Commit(c) => {
            for op in &c.ops {
                write_commit_op(c, op, next_time_us(), out);
                out.push('\n');
            }
            c.ops.len()
        }
        EventKind::Identity(i) => {
            write_identity(i, next_time_us(), out);
            out.push('\n');
            1
        }
        EventKind::Account(a) => {
            write_account(a, next_time_us(), out);
            out.push('\n');
            1
        }
        EventKind::Sync(_) | EventKind::Info(_) => 0,
    }
}

fn write_prefix(did: &str, time_us: i64, kind: &str, out: &mut String) {
    out.push_str("{\"did\":");
    write_str(did, out);
    let _ = write!(out, ",\"time_us\":{time_us},\"kind\":\"{kind}\"");
}

/// One commit operation as a Jetstream line (no trailing newline).
pub fn write_commit_op(c: &Commit, op: &Op, time_us: i64, out: &mut String) {
    write_prefix(&c.did, time_us, "commit", out);
    out.push_str(",\"commit\":{\"rev\":");
    write_str(&c.rev, out);
    out.push_str(",\"operation\":\"");
    out.push_str(op.action.as_str());
    out.push_str("\",\"collection\":");
    write_str(&op.collection, out);
    out.push_str(",\"rkey\":");
    write_str(&op.rkey, out);
    if let Some(record) = &op.record {
        out.push_str(",\"record\":");
        write_value(record, out);
    }
    if let (Some(cid), true) = (&op.cid, op.record.is_some()) {
        out.push_str(",\"cid\":\"");
        let _ = write!(out, "{cid}");
        out.push('"');
    }
    out.push_str("}}");
}

/// An identity event as a Jetstream line (no trailing newline).
pub fn write_identity(i: &Identity, time_us: i64, out: &mut String) {
    write_prefix(&i.did, time_us, "identity", out);
    out.push_str(",\"identity\":{\"did\":");
    write_str(&i.did, out);
    if let Some(h) = &i.handle {
        out.push_str(",\"handle\":");
        write_str(h, out);
    }
    let _ = write!(out, ",\"seq\":{},\"time\":", i.seq);
    write_str(&i.time, out);
    out.push_str("}}");
}

/// An account event as a Jetstream line (no trailing newline).
pub fn write_account(a: &Account, time_us: i64, out: &mut String) {
    write_prefix(&a.did, time_us, "account", out);
    let _ = write!(out, ",\"account\":{{\"active\":{},\"did\":", a.active);
    write_str(&a.did, out);
    let _ = write!(out, ",\"seq\":{}", a.seq);
    if let Some(s) = &a.status {
        out.push_str(",\"status\":");
        write_str(s, out);
    }
    out.push_str(",\"time\":");
    write_str(&a.time, out);
    out.push_str("}}");
}

/// Hands out strictly increasing `time_us` values that follow event time: each is the event's
/// time in microseconds, or one more than the previous value when that is not later. This
/// makes any stream a valid Jetstream cursor sequence.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeSequencer {
    last: i64,
}

impl TimeSequencer {
    /// A sequencer that has handed out nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next value for an event that happened at `event_time_us`.
    pub fn next(&mut self, event_time_us: i64) -> i64 {
        self.last = event_time_us.max(self.last + 1);
        self.last
    }

    /// The last value handed out.
    pub fn last(&self) -> i64 {
        self.last
    }
}

/// Why a Jetstream line could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Jetstream event: {0}")]
pub struct ParseError(pub String);

fn perr(why: impl Into<String>) -> ParseError {
    ParseError(why.into())
}

/// Reads one Jetstream v1 event (a line or a text frame). Returns `Ok(None)` for lines that
/// carry no event for the model (a `{"kind":"cursor"}` heartbeat is returned as an event-less
/// position: see [`Parsed`]).
pub fn parse_line(line: &str) -> Result<Parsed, ParseError> {
    use serde_json::Value as J;
    let v: J = serde_json::from_str(line).map_err(|e| perr(e.to_string()))?;
    let time_us = v
        .get("time_us")
        .and_then(J::as_i64)
        .ok_or_else(|| perr("no integer time_us"))?;
    let kind = v
        .get("kind")
        .and_then(J::as_str)
        .ok_or_else(|| perr("no kind"))?;
    if kind == "cursor" {
        return Ok(Parsed {
            time_us,
            event: None,
        });
    }
    let did = v
        .get("did")
        .and_then(J::as_str)
        .filter(|d| skystream_syntax::is_valid_did(d))
        .ok_or_else(|| perr("no valid did"))?
        .to_owned();
    let body = v
        .get(kind)
        .ok_or_else(|| perr(format!("no {kind} object")))?;
    let s = |k: &str| body.get(k).and_then(J::as_str).map(str::to_owned);
    let seq = body.get("seq").and_then(J::as_i64).unwrap_or(0);
    let (event_time, kind) = match kind {
        "commit" => {
            let action = match s("operation").as_deref() {
                Some("create") => OpAction::Create,
                Some("update") => OpAction::Update,
                Some("delete") => OpAction::Delete,
                _ => return Err(perr("commit without a valid operation")),
            };
            let collection = s("collection")
                .filter(|c| skystream_syntax::is_valid_nsid(c))
                .ok_or_else(|| perr("commit without a valid collection"))?;
            let rkey = s("rkey")
                .filter(|r| skystream_syntax::is_valid_record_key(r))
                .ok_or_else(|| perr("commit without a valid rkey"))?;
            let cid = match s("cid") {
                Some(c) => Some(c.parse().map_err(|_| perr("commit cid is not a CID"))?),
                None => None,
            };
            let record = match body.get("record") {
                Some(r) => Some(
                    skystream_data::json::record_from_json(r).map_err(|e| perr(e.to_string()))?,
                ),
                None => None,
            };
            let rev = s("rev")
                .filter(|r| !r.is_empty() && r.len() <= 32)
                .ok_or_else(|| perr("commit without a valid rev"))?;
            (
                time_us,
                EventKind::Commit(Commit {
                    did,
                    rev,
                    since: None,
                    seq,
                    time: String::new(),
                    ops: vec![Op {
                        action,
                        collection,
                        rkey,
                        cid,
                        prev: None,
                        record,
                    }],
                }),
            )
        }
        "identity" => {
            let time = s("time").unwrap_or_default();
            (
                datetime_us(&time).unwrap_or(time_us),
                EventKind::Identity(Identity {
                    did,
                    seq,
                    time,
                    handle: s("handle"),
                }),
            )
        }
        "account" => {
            let time = s("time").unwrap_or_default();
            (
                datetime_us(&time).unwrap_or(time_us),
                EventKind::Account(Account {
                    did,
                    seq,
                    time,
                    active: body
                        .get("active")
                        .and_then(J::as_bool)
                        .ok_or_else(|| perr("account without active"))?,
                    status: s("status"),
                }),
            )
        }
        other => return Err(perr(format!("unknown kind {other:?}"))),
    };
    Ok(Parsed {
        time_us,
        event: Some(Event {
            cursor: u64::try_from(time_us).map_err(|_| perr("negative time_us"))?,
            time_us: event_time,
            origin: crate::Origin::Live,
            kind,
        }),
    })
}

fn datetime_us(s: &str) -> Option<i64> {
    skystream_syntax::Datetime::parse(s)
        .ok()
        .and_then(|d| d.timestamp_micros())
}

/// A parsed Jetstream line: its `time_us` (the cursor) and the event, if it carries one.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The line's `time_us`.
    pub time_us: i64,
    /// The event; none for cursor heartbeats.
    pub event: Option<Event>,
}
