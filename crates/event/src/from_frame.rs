//! Building events from decoded firehose frames.

use std::fmt;

use skystream_data::decode;
use skystream_firehose::Frame;
use skystream_repo::{Car, OpAction, RepoError};
use skystream_syntax::Datetime;

use crate::model::{Account, Commit, Event, EventKind, Identity, Info, Op, Origin, Sync};

/// How much work [`from_frame`] does.
#[derive(Clone, Copy, Debug)]
pub struct FrameOptions {
    /// Hash every CAR block and compare with its CID.
    pub check_cids: bool,
    /// Largest record accepted, in bytes.
    pub max_record: usize,
}

impl Default for FrameOptions {
    fn default() -> Self {
        FrameOptions {
            check_cids: true,
            max_record: 1_000_000,
        }
    }
}

/// Why one operation of an otherwise good commit was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpErrorKind {
    /// The record's block is not in the commit's CAR.
    RecordMissing,
    /// The record is larger than the limit.
    RecordTooLarge,
    /// The record is not valid DAG-CBOR.
    RecordDecode,
    /// The record is not a map.
    RecordNotMap,
}

impl OpErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecordMissing => "record_missing",
            Self::RecordTooLarge => "record_too_large",
            Self::RecordDecode => "record_decode",
            Self::RecordNotMap => "record_not_map",
        }
    }
}

impl fmt::Display for OpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    /// `collection/rkey`.
    pub path: String,
    /// Why.
    pub kind: OpErrorKind,
    /// Specifics for logs.
    pub detail: String,
}

/// The event a frame carries (none for error frames and unknown types) and any operations
/// that had to be skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameOutcome {
    /// The event, if the frame carries one.
    pub event: Option<Event>,
    /// Operations left out of the event.
    pub op_errors: Vec<OpError>,
}

fn time_us(time: &str) -> i64 {
    Datetime::parse(time)
        .ok()
        .and_then(|d| d.timestamp_micros())
        .unwrap_or(0)
}

/// Turns a decoded frame into an event. A CAR that does not parse, or (with `check_cids`) a
/// block that does not hash to its CID, rejects the whole frame; a bad record skips only its
/// operation.
pub fn from_frame(frame: &Frame<'_>, opts: &FrameOptions) -> Result<FrameOutcome, RepoError> {
    let mut out = FrameOutcome::default();
    let (cursor, time, kind) = match frame {
        Frame::Commit(m) => {
            let car = m.car()?;
            if opts.check_cids {
                car.verify_cids()?;
            }
            let mut ops = Vec::with_capacity(m.ops.len());
            for op in &m.ops {
                let record = match (op.action, op.cid) {
                    (OpAction::Delete, _) | (_, None) => None,
                    (_, Some(cid)) => match decode_record(&car, &cid, opts) {
                        Ok(v) => Some(v),
                        Err((kind, detail)) => {
                            out.op_errors.push(OpError {
                                path: op.path(),
                                kind,
                                detail,
                            });
                            continue;
                        }
                    },
                };
                ops.push(Op {
                    action: op.action,
                    collection: op.collection.to_owned(),
                    rkey: op.rkey.to_owned(),
                    cid: op.cid,
                    prev: op.prev,
                    record,
                });
            }
            (
                m.seq,
                m.time,
                EventKind::Commit(Commit {
                    did: m.repo.to_owned(),
                    rev: m.rev.to_owned(),
                    since: m.since.map(str::to_owned),
                    seq: m.seq,
                    time: m.time.to_owned(),
                    ops,
                }),
            )
        }
        Frame::Sync(m) => {
            let car = Car::parse(m.blocks)?;
            if opts.check_cids {
                car.verify_cids()?;
            }
            (
                m.seq,
                m.time,
                EventKind::Sync(Sync {
                    did: m.did.to_owned(),
                    seq: m.seq,
                    rev: m.rev.to_owned(),
                    time: m.time.to_owned(),
                    commit: car.roots().first().copied(),
                }),
            )
        }
        Frame::Identity(m) => (
            m.seq,
            m.time,
            EventKind::Identity(Identity {
                did: m.did.to_owned(),
                seq: m.seq,
                time: m.time.to_owned(),
                handle: m.handle.map(str::to_owned),
            }),
        ),
        Frame::Account(m) => (
            m.seq,
            m.time,
            EventKind::Account(Account {
                did: m.did.to_owned(),
                seq: m.seq,
                time: m.time.to_owned(),
                active: m.active,
                status: m.status.map(str::to_owned),
            }),
        ),
        // Info has no position in the stream; cursor 0 means "does not move the cursor".
        Frame::Info(m) => (
            0,
            "",
            EventKind::Info(Info {
                name: m.name.to_owned(),
                message: m.message.map(str::to_owned),
            }),
        ),
        Frame::Error(_) | Frame::Unknown { .. } => return Ok(out),
    };
    out.event = Some(Event {
        cursor: cursor as u64,
        time_us: time_us(time),
        origin: Origin::Live,
        kind,
    });
    Ok(out)
}

fn decode_record(
    car: &Car<'_>,
    cid: &skystream_data::Cid,
    opts: &FrameOptions,
) -> Result<skystream_data::Value<'static>, (OpErrorKind, String)> {
    let bytes = car.get(cid).ok_or_else(|| {
        (
            OpErrorKind::RecordMissing,
            format!("block {cid} not in the CAR"),
        )
    })?;
    if bytes.len() > opts.max_record {
        return Err((
            OpErrorKind::RecordTooLarge,
            format!("{} bytes exceeds {}", bytes.len(), opts.max_record),
        ));
    }
    let v = decode(bytes).map_err(|e| (OpErrorKind::RecordDecode, e.to_string()))?;
    if v.as_map().is_none() {
        return Err((
            OpErrorKind::RecordNotMap,
            format!("record is a {}", v.kind_name()),
        ));
    }
    Ok(v.into_owned())
}
