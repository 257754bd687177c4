//! The writing side: a repository held in memory that applies record operations, signs each
//! commit, and emits the diff a firehose `#commit` carries — commit, new records, and exactly
//! the MST nodes a consumer needs to invert the commit back to `prevData`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use skystream_crypto::PrivateKey;
use skystream_data::{cid_for, encode_to_vec, Cid, Value, DAG_CBOR};

use crate::car::{BlockSource, CarWriter};
use crate::commit::UnsignedCommit;
use crate::error::{RepoError, RepoErrorKind as K};
use crate::mst::Mst;
use crate::verify::OpAction;

/// One change to make.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// Create `collection/rkey` with this record.
    Create {
        /// `collection/rkey`.
        path: String,
        /// The record.
        record: Value<'static>,
    },
    /// Replace the record at `collection/rkey`.
    Update {
        /// `collection/rkey`.
        path: String,
        /// The new record.
        record: Value<'static>,
    },
    /// Remove the record at `collection/rkey`.
    Delete {
        /// `collection/rkey`.
        path: String,
    },
}

/// One operation as the firehose lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffOp {
    /// create, update or delete.
    pub action: OpAction,
    /// `collection/rkey`.
    pub path: String,
    /// The new record's CID.
    pub cid: Option<Cid>,
    /// The previous record's CID.
    pub prev: Option<Cid>,
}

/// What one commit changed, ready to put in a `#commit` frame.
#[derive(Clone, Debug)]
pub struct CommitDiff {
    /// The signed commit's CID.
    pub commit: Cid,
    /// Its revision.
    pub rev: String,
    /// The previous revision, if any.
    pub since: Option<String>,
    /// A CAR rooted at the commit, holding it, the new records and the proof nodes.
    pub blocks: Vec<u8>,
    /// The operations.
    pub ops: Vec<DiffOp>,
    /// The MST root before the commit.
    pub prev_data: Cid,
}

/// An in-memory repository that signs its commits.
#[derive(Debug)]
pub struct RepoWriter {
    did: String,
    key: PrivateKey,
    tree: Mst,
    /// The current tree's nodes, by CID (replaced on every commit).
    nodes: HashMap<Cid, Vec<u8>>,
    /// Records ever written, by CID (identical records share a CID, so none is dropped).
    records: HashMap<Cid, Vec<u8>>,
    /// Node count at the last full rebuild of `nodes`; stale nodes are pruned when the map
    /// has grown to twice that.
    live_nodes: usize,
    rev: Option<String>,
    commit: Option<(Cid, Vec<u8>)>,
}

/// A block source that remembers which blocks were read.
struct Tracking<'a> {
    inner: &'a HashMap<Cid, Vec<u8>>,
    read: RefCell<HashSet<Cid>>,
}

impl BlockSource for Tracking<'_> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        self.read.borrow_mut().insert(*cid);
        self.inner.block(cid)
    }
}

impl RepoWriter {
    /// An empty repository for `did`, signed with `key`.
    pub fn new(did: impl Into<String>, key: PrivateKey) -> Self {
        RepoWriter {
            did: did.into(),
            key,
            tree: Mst::new(),
            nodes: HashMap::new(),
            records: HashMap::new(),
            live_nodes: 0,
            rev: None,
            commit: None,
        }
    }

    /// The repository's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The signing key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The latest revision.
    pub fn rev(&self) -> Option<&str> {
        self.rev.as_deref()
    }

    /// The current record CID at `path`.
    pub fn get(&mut self, path: &str) -> Result<Option<Cid>, RepoError> {
        self.tree.get(path.as_bytes(), &self.nodes)
    }

    /// Applies `ops` as one commit at revision `rev` (which must sort after the previous one).
    pub fn apply(&mut self, ops: &[WriteOp], rev: &str) -> Result<CommitDiff, RepoError> {
        if let Some(prev) = &self.rev {
            if rev <= prev.as_str() {
                return Err(RepoError::new(
                    K::MstOp,
                    format!("rev {rev} does not follow {prev}"),
                ));
            }
        }
        let prev_data = self.tree.root_cid();
        let mut diff_ops = Vec::with_capacity(ops.len());
        let mut new_records: Vec<(Cid, Vec<u8>)> = Vec::new();
        for op in ops {
            let (action, path, record) = match op {
                WriteOp::Create { path, record } => (OpAction::Create, path, Some(record)),
                WriteOp::Update { path, record } => (OpAction::Update, path, Some(record)),
                WriteOp::Delete { path } => (OpAction::Delete, path, None),
            };
            let cid = record.map(|r| {
                let bytes = encode_to_vec(r);
                let cid = cid_for(DAG_CBOR, &bytes);
                new_records.push((cid, bytes));
                cid
            });
            let prev = match cid {
                Some(c) => self.tree.insert(path.as_bytes(), c, &self.nodes)?,
                None => self.tree.remove(path.as_bytes(), &self.nodes)?,
            };
            let ok = match action {
                OpAction::Create => prev.is_none(),
                OpAction::Update | OpAction::Delete => prev.is_some(),
            };
            if !ok {
                return Err(RepoError::new(
                    K::MstOp,
                    format!("{} of {path} does not fit the repository", action.as_str()),
                ));
            }
            diff_ops.push(DiffOp {
                action,
                path: path.clone(),
                cid,
                prev,
            });
        }

        let mut fresh = Vec::new();
        let known = &self.nodes;
        let data = self
            .tree
            .write_new_blocks(&|c| known.contains_key(c), &mut |c, b| fresh.push((c, b)));
        self.nodes.extend(fresh);
        if self.nodes.len() > 2 * self.live_nodes + 64 {
            // Replaced nodes linger in the map; rebuild it from the live tree now and then.
            let mut nodes = HashMap::with_capacity(self.nodes.len());
            self.tree.write_blocks(&mut |c, b| {
                nodes.insert(c, b);
            });
            self.live_nodes = nodes.len();
            self.nodes = nodes;
        }
        self.records.extend(new_records.iter().cloned());

        let commit = UnsignedCommit::new(self.did.clone(), data, rev).sign(&self.key);
        let commit_bytes = commit.to_bytes();
        let commit_cid = cid_for(DAG_CBOR, &commit_bytes);

        // The proof: every node a consumer touches when undoing the ops on the new tree.
        let tracking = Tracking {
            inner: &self.nodes,
            read: RefCell::new(HashSet::new()),
        };
        tracking.read.borrow_mut().insert(data);
        // Inversion touches different nodes depending on the order the ops are undone in, so
        // prove both orders: consumers differ.
        let forward: Vec<&DiffOp> = diff_ops.iter().collect();
        let backward: Vec<&DiffOp> = diff_ops.iter().rev().collect();
        for order in [forward, backward] {
            let mut scratch = Mst::load(&data, &tracking)?;
            for op in order {
                match (op.action, op.prev) {
                    (OpAction::Create, _) => {
                        scratch.remove(op.path.as_bytes(), &tracking)?;
                    }
                    (_, Some(prev)) => {
                        scratch.insert(op.path.as_bytes(), prev, &tracking)?;
                    }
                    (_, None) => {}
                }
            }
        }
        let mut car = CarWriter::new(&[commit_cid]);
        car.push(&commit_cid, &commit_bytes);
        let mut proof: Vec<Cid> = tracking.read.into_inner().into_iter().collect();
        proof.sort_by_key(|c| c.to_bytes());
        for cid in &proof {
            if let Some(b) = self.nodes.get(cid) {
                car.push(cid, b);
            }
        }
        for (cid, bytes) in &new_records {
            car.push(cid, bytes);
        }

        let since = self.rev.replace(rev.to_owned());
        self.commit = Some((commit_cid, commit_bytes));
        Ok(CommitDiff {
            commit: commit_cid,
            rev: rev.to_owned(),
            since,
            blocks: car.finish(),
            ops: diff_ops,
            prev_data,
        })
    }

    /// A CAR of just the latest signed commit (what a `#sync` frame carries).
    pub fn commit_car(&self) -> Option<Vec<u8>> {
        let (cid, bytes) = self.commit.as_ref()?;
        let mut car = CarWriter::new(&[*cid]);
        car.push(cid, bytes);
        Some(car.finish())
    }

    /// The whole repository as a CAR (what `com.atproto.sync.getRepo` returns).
    pub fn export_car(&mut self) -> Result<Option<Vec<u8>>, RepoError> {
        let Some((cid, bytes)) = self.commit.clone() else {
            return Ok(None);
        };
        let mut car = CarWriter::new(&[cid]);
        car.push(&cid, &bytes);
        let mut nodes: Vec<(&Cid, &Vec<u8>)> = self.nodes.iter().collect();
        nodes.sort_by_key(|(c, _)| c.to_bytes());
        for (c, b) in nodes {
            car.push(c, b);
        }
        let mut seen = HashSet::new();
        for (_, rcid) in self.tree.entries(&self.nodes)? {
            if seen.insert(rcid) {
                if let Some(b) = self.records.get(&rcid) {
                    car.push(&rcid, b);
                }
            }
        }
        Ok(Some(car.finish()))
    }
}
