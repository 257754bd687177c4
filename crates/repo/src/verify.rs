//! Verifying a firehose commit from the message alone (Sync 1.1): block CIDs, the signature,
//! and the inversion of its operations back to `prevData`.

use skystream_crypto::PublicKey;
use skystream_data::Cid;

use crate::car::Car;
use crate::commit::Commit;
use crate::error::{RepoError, RepoErrorKind as K};
use crate::mst::Mst;

/// What an operation did to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpAction {
    /// A new record.
    Create,
    /// A record replaced.
    Update,
    /// A record removed.
    Delete,
}

impl OpAction {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpAction::Create => "create",
            OpAction::Update => "update",
            OpAction::Delete => "delete",
        }
    }
}

/// One operation of a commit, as the firehose message lists it.
#[derive(Clone, Copy, Debug)]
pub struct CommitOp<'a> {
    /// create, update or delete.
    pub action: OpAction,
    /// `collection/rkey`.
    pub path: &'a str,
    /// The new record's CID (none on delete).
    pub cid: Option<Cid>,
    /// The previous record's CID (on update and delete, Sync 1.1).
    pub prev: Option<Cid>,
}

/// What [`verify_commit`] established.
#[derive(Clone, Debug)]
pub struct VerifyOutcome {
    /// The decoded commit.
    pub commit: Commit,
    /// Whether `prevData` was given and the inverted tree matched it.
    pub prev_data_checked: bool,
}

fn mismatch(why: String) -> RepoError {
    RepoError::new(K::Mismatch, why)
}

/// Verifies a commit message: every block hashes to its CID, the CAR's root is `commit_cid`,
/// the commit names `did` and `rev` and is signed by `key`, and — when `prev_data` is given —
/// undoing `ops` on the new tree gives back exactly `prev_data`.
pub fn verify_commit(
    car: &Car<'_>,
    commit_cid: &Cid,
    did: &str,
    rev: &str,
    ops: &[CommitOp<'_>],
    prev_data: Option<&Cid>,
    key: &PublicKey,
) -> Result<VerifyOutcome, RepoError> {
    let commit = check_commit_block(car, commit_cid, did, rev)?;
    commit.verify_signature(key)?;
    let prev_data_checked = match prev_data {
        Some(p) => {
            check_prev_data(car, &commit, ops, p)?;
            true
        }
        None => false,
    };
    Ok(VerifyOutcome {
        commit,
        prev_data_checked,
    })
}

/// Checks every block's CID and that the CAR's root is a commit for `did` at `rev`; returns
/// the decoded commit (its signature not yet checked).
pub fn check_commit_block(
    car: &Car<'_>,
    commit_cid: &Cid,
    did: &str,
    rev: &str,
) -> Result<Commit, RepoError> {
    car.verify_cids()?;
    if car.roots().first() != Some(commit_cid) {
        return Err(mismatch("CAR root is not the commit".into()));
    }
    let block = car
        .get(commit_cid)
        .ok_or_else(|| RepoError::missing(commit_cid))?;
    let commit = Commit::decode(block)?;
    if commit.unsigned.did != did {
        return Err(mismatch(format!(
            "commit is for {}, not {did}",
            commit.unsigned.did
        )));
    }
    if commit.unsigned.rev != rev {
        return Err(mismatch(format!(
            "commit rev {} is not {rev}",
            commit.unsigned.rev
        )));
    }
    Ok(commit)
}

/// Undoes `ops` on the commit's tree (using only the CAR's blocks) and checks that the result
/// is `prev_data`.
pub fn check_prev_data(
    car: &Car<'_>,
    commit: &Commit,
    ops: &[CommitOp<'_>],
    prev_data: &Cid,
) -> Result<(), RepoError> {
    let mut tree = Mst::load(&commit.unsigned.data, car)?;
    for op in ops {
        invert(&mut tree, op, car)?;
    }
    let root = tree.root_cid();
    if &root != prev_data {
        return Err(RepoError::new(
            K::PrevData,
            format!("inverted tree root {root} is not prevData {prev_data}"),
        ));
    }
    Ok(())
}

fn invert(tree: &mut Mst, op: &CommitOp<'_>, car: &Car<'_>) -> Result<(), RepoError> {
    let key = op.path.as_bytes();
    let op_err = |why: &str| {
        RepoError::new(
            K::MstOp,
            format!("{} {}: {why}", op.action.as_str(), op.path),
        )
    };
    match op.action {
        OpAction::Create => {
            let removed = tree.remove(key, car)?;
            if removed.is_none() || removed != op.cid {
                return Err(op_err("the new tree does not hold the created record"));
            }
        }
        OpAction::Update => {
            let prev = op.prev.ok_or_else(|| op_err("no prev CID"))?;
            let old = tree.insert(key, prev, car)?;
            if old.is_none() || old != op.cid {
                return Err(op_err("the new tree does not hold the updated record"));
            }
        }
        OpAction::Delete => {
            let prev = op.prev.ok_or_else(|| op_err("no prev CID"))?;
            if tree.insert(key, prev, car)?.is_some() {
                return Err(op_err("the new tree still holds the deleted record"));
            }
        }
    }
    Ok(())
}
