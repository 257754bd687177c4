//! The writing side: encoding frames, for the simulator, fault servers and tests.

use skystream_data::{encode, Cid, Map, Value};
use skystream_repo::CommitDiff;

/// A message frame: header `{op: 1, t}` then `body`.
pub fn encode_message(t: &str, body: &Map<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let header = Map::new().with("op", 1i64).with("t", t.to_owned());
    encode(&Value::Map(header), &mut out);
    encode(&Value::Map(body.clone()), &mut out);
    out
}

/// An error frame: header `{op: -1}` then `{error, message?}`.
pub fn encode_error(error: &str, message: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(&Value::Map(Map::new().with("op", -1i64)), &mut out);
    let mut body = Map::new().with("error", error.to_owned());
    if let Some(m) = message {
        body.insert("message", m.to_owned());
    }
    encode(&Value::Map(body), &mut out);
    out
}

fn link_or_null(c: Option<Cid>) -> Value<'static> {
    c.map_or(Value::Null, Value::Link)
}

/// A `#commit` frame for a diff made by [`skystream_repo::RepoWriter`].
pub fn commit_frame(seq: i64, repo: &str, diff: &CommitDiff, time: &str) -> Vec<u8> {
    let ops = diff
        .ops
        .iter()
        .map(|o| {
            Value::Map(
                Map::new()
                    .with("action", o.action.as_str())
                    .with("path", o.path.clone())
                    .with("cid", link_or_null(o.cid))
                    .with("prev", link_or_null(o.prev)),
            )
        })
        .collect();
    let body = Map::new()
        .with("seq", seq)
        .with("repo", repo.to_owned())
        .with("commit", diff.commit)
        .with("rev", diff.rev.clone())
        .with("since", diff.since.clone().map_or(Value::Null, Value::from))
        .with("time", time.to_owned())
        .with("blocks", diff.blocks.clone())
        .with("ops", Value::Array(ops))
        .with("prevData", diff.prev_data)
        .with("rebase", false)
        .with("tooBig", false)
        .with("blobs", Value::Array(Vec::new()));
    encode_message("#commit", &body)
}

/// A `#sync` frame carrying a CAR of just the signed commit.
pub fn sync_frame(seq: i64, did: &str, commit_car: Vec<u8>, rev: &str, time: &str) -> Vec<u8> {
    let body = Map::new()
        .with("seq", seq)
        .with("did", did.to_owned())
        .with("blocks", commit_car)
        .with("rev", rev.to_owned())
        .with("time", time.to_owned());
    encode_message("#sync", &body)
}

/// An `#identity` frame.
pub fn identity_frame(seq: i64, did: &str, handle: Option<&str>, time: &str) -> Vec<u8> {
    let mut body = Map::new()
        .with("seq", seq)
        .with("did", did.to_owned())
        .with("time", time.to_owned());
    if let Some(h) = handle {
        body.insert("handle", h.to_owned());
    }
    encode_message("#identity", &body)
}

/// An `#account` frame.
pub fn account_frame(
    seq: i64,
    did: &str,
    active: bool,
    status: Option<&str>,
    time: &str,
) -> Vec<u8> {
    let mut body = Map::new()
        .with("seq", seq)
        .with("did", did.to_owned())
        .with("active", active)
        .with("time", time.to_owned());
    if let Some(s) = status {
        body.insert("status", s.to_owned());
    }
    encode_message("#account", &body)
}

/// An `#info` frame.
pub fn info_frame(name: &str, message: Option<&str>) -> Vec<u8> {
    let mut body = Map::new().with("name", name.to_owned());
    if let Some(m) = message {
        body.insert("message", m.to_owned());
    }
    encode_message("#info", &body)
}
