//! A repository export (`getRepo`'s CAR) read into the records a backfill keeps. Pure: bytes
//! in, records out, no I/O, so it is tested and fuzzed on its own.

use skystream_data::{cid_matches, decode, Cid, Value};
use skystream_repo::{Car, Commit, Mst};

use crate::window::{record_time_us, Window};

/// A record kept from a repository.
#[derive(Clone, Debug, PartialEq)]
pub struct RepoRecord {
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// The record's CID.
    pub cid: Cid,
    /// The record.
    pub record: Value<'static>,
    /// When it was written (TID key, else `createdAt`), if known.
    pub time_us: Option<i64>,
}

/// What a repository held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepoRead {
    /// The commit revision the export is at.
    pub rev: String,
    /// Records kept, in key order.
    pub records: Vec<RepoRecord>,
    /// Records in a wanted collection left out as older than the window.
    pub outside_window: u64,
    /// Records whose block was missing, did not match its CID or did not decode: skipped and
    /// counted, the rest of the repository is still read.
    pub bad_records: u64,
}

/// Why a repository export could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// The largest record a backfill decodes (the firehose's limit on a record block).
const MAX_RECORD: usize = 1 << 20;

/// Reads the export `car` of `did`: checks the commit names `did`, walks the MST, and keeps
/// the records of `collections` (all when empty) inside `window`.
pub fn read_repo(
    car: &[u8],
    did: &str,
    window: Window,
    collections: &[String],
) -> Result<RepoRead, ReadError> {
    let car = Car::parse(car).map_err(|e| ReadError(format!("not a CAR: {e}")))?;
    let root = *car
        .roots()
        .first()
        .ok_or_else(|| ReadError("the CAR has no root".into()))?;
    let commit_bytes = car
        .get(&root)
        .ok_or_else(|| ReadError("the CAR lacks its root commit block".into()))?;
    if !cid_matches(&root, commit_bytes) {
        return Err(ReadError("the commit block does not match its CID".into()));
    }
    let commit = Commit::decode(commit_bytes).map_err(|e| ReadError(format!("bad commit: {e}")))?;
    if commit.unsigned.did != did {
        return Err(ReadError(format!(
            "the export is of {} instead of {did}",
            commit.unsigned.did
        )));
    }
    let mut mst = Mst::load(&commit.unsigned.data, &car)
        .map_err(|e| ReadError(format!("bad MST root: {e}")))?;
    let mut out = RepoRead {
        rev: commit.unsigned.rev.clone(),
        ..RepoRead::default()
    };
    mst.walk(&car, &mut |key, cid| {
        let Some((collection, rkey)) = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.split_once('/'))
        else {
            out.bad_records += 1;
            return Ok(());
        };
        if !collections.is_empty() && !collections.iter().any(|c| c == collection) {
            return Ok(());
        }
        let record = match car.get(cid) {
            Some(b) if b.len() <= MAX_RECORD && cid_matches(cid, b) => decode(b).ok(),
            _ => None,
        };
        let Some(record) = record.filter(|r| r.as_map().is_some()) else {
            out.bad_records += 1;
            return Ok(());
        };
        let time_us = record_time_us(rkey, &record);
        if !window.keeps(time_us) {
            out.outside_window += 1;
            return Ok(());
        }
        out.records.push(RepoRecord {
            collection: collection.to_owned(),
            rkey: rkey.to_owned(),
            cid: *cid,
            record: record.into_owned(),
            time_us,
        });
        Ok(())
    })
    .map_err(|e| ReadError(format!("cannot walk the MST: {e}")))?;
    Ok(out)
}
