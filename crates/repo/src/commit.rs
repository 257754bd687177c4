//! Signed commit objects: `{did, version, data, rev, prev, sig}`.

use skystream_crypto::{PrivateKey, PublicKey};
use skystream_data::{cid_for, decode, encode_to_vec, Cid, Map, Value, DAG_CBOR};

use crate::error::{RepoError, RepoErrorKind as K};

/// A commit's fields without the signature: what gets signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedCommit {
    /// The repository's DID.
    pub did: String,
    /// Repo format version (3 today; 2 in old exports).
    pub version: i64,
    /// Root CID of the MST.
    pub data: Cid,
    /// The revision, a TID.
    pub rev: String,
    /// The previous commit's CID (always null since v3; kept for old exports).
    pub prev: Option<Cid>,
}

/// A signed commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The signed fields.
    pub unsigned: UnsignedCommit,
    /// The 64-byte compact signature over the unsigned fields' DAG-CBOR.
    pub sig: Vec<u8>,
}

impl UnsignedCommit {
    /// A v3 commit.
    pub fn new(did: impl Into<String>, data: Cid, rev: impl Into<String>) -> Self {
        UnsignedCommit {
            did: did.into(),
            version: 3,
            data,
            rev: rev.into(),
            prev: None,
        }
    }

    fn to_map(&self) -> Map<'static> {
        Map::new()
            .with("did", self.did.clone())
            .with("version", self.version)
            .with("data", self.data)
            .with("rev", self.rev.clone())
            .with("prev", self.prev.map_or(Value::Null, Value::Link))
    }

    /// The bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode_to_vec(&Value::Map(self.to_map()))
    }

    /// Signs with `key`.
    pub fn sign(self, key: &PrivateKey) -> Commit {
        let sig = key.sign(&self.signing_bytes()).to_vec();
        Commit {
            unsigned: self,
            sig,
        }
    }
}

fn shape(why: &str) -> RepoError {
    RepoError::new(K::CommitShape, why.to_string())
}

impl Commit {
    /// Decodes a commit block.
    pub fn decode(bytes: &[u8]) -> Result<Self, RepoError> {
        let v =
            decode(bytes).map_err(|e| RepoError::new(K::CommitShape, format!("commit: {e}")))?;
        let m = v.as_map().ok_or_else(|| shape("commit is not a map"))?;
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| shape(&format!("commit {k} must be a string")))
        };
        let version = m
            .get("version")
            .and_then(Value::as_i64)
            .ok_or_else(|| shape("commit version must be an integer"))?;
        if !(2..=3).contains(&version) {
            return Err(shape("unsupported commit version"));
        }
        let data = *m
            .get("data")
            .and_then(Value::as_link)
            .ok_or_else(|| shape("commit data must be a link"))?;
        let prev = match m.get("prev") {
            None | Some(Value::Null) => None,
            Some(Value::Link(c)) => Some(*c),
            Some(_) => return Err(shape("commit prev must be a link or null")),
        };
        let sig = m
            .get("sig")
            .and_then(Value::as_bytes)
            .ok_or_else(|| shape("commit sig must be bytes"))?
            .to_vec();
        Ok(Commit {
            unsigned: UnsignedCommit {
                did: s("did")?,
                version,
                data,
                rev: s("rev")?,
                prev,
            },
            sig,
        })
    }

    /// The commit block's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = self.unsigned.to_map();
        m.insert("sig", self.sig.clone());
        encode_to_vec(&Value::Map(m))
    }

    /// The commit block's CID.
    pub fn cid(&self) -> Cid {
        cid_for(DAG_CBOR, &self.to_bytes())
    }

    /// Checks the signature against `key`.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), RepoError> {
        key.verify(&self.unsigned.signing_bytes(), &self.sig)
            .map_err(|e| RepoError::new(K::Signature, e.to_string()))
    }
}
