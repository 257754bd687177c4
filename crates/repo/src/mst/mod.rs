//! The Merkle Search Tree that maps `collection/rkey` paths to record CIDs.
//!
//! A key's layer is the number of leading zero bit-pairs in its SHA-256 ([`key_height`]), so
//! the tree's shape follows from its keys alone and any two implementations agree on the root
//! CID. Nodes are loaded lazily from a [`BlockSource`]: a subtree that is never touched stays a
//! bare CID, which is how a firehose diff (a handful of blocks) can be edited and re-hashed
//! without the rest of the repository.

mod node;

use std::cmp::Ordering;

use sha2::{Digest, Sha256};
use skystream_data::Cid;

use crate::car::BlockSource;
use crate::error::{RepoError, RepoErrorKind as K};
use node::{Entry, Node, Sub};

/// The MST layer of `key`: leading zero bits of its SHA-256, counted in pairs (fanout 4).
pub fn key_height(key: &[u8]) -> u32 {
    let digest = Sha256::digest(key);
    let mut zeros = 0;
    for b in digest {
        if b == 0 {
            zeros += 8;
            continue;
        }
        zeros += b.leading_zeros();
        break;
    }
    zeros / 2
}

/// A callback over `(key, value)` entries that may stop the walk with an error.
pub type Visitor<'f> = dyn FnMut(&[u8], &Cid) -> Result<(), RepoError> + 'f;

/// A Merkle Search Tree, possibly partial.
#[derive(Clone, Debug)]
pub struct Mst {
    root: Node,
}

impl Default for Mst {
    fn default() -> Self {
        Self::new()
    }
}

impl Mst {
    /// An empty tree.
    pub fn new() -> Self {
        Mst {
            root: Node::empty(0),
        }
    }

    /// Opens the tree whose root node is `root`; deeper nodes load on demand from `blocks`.
    pub fn load(root: &Cid, blocks: &dyn BlockSource) -> Result<Self, RepoError> {
        Ok(Mst {
            root: Node::load_root(root, blocks)?,
        })
    }

    /// Builds a tree from entries in any order.
    pub fn from_entries<K: AsRef<[u8]>>(
        entries: impl IntoIterator<Item = (K, Cid)>,
    ) -> Result<Self, RepoError> {
        let mut t = Mst::new();
        let none = NoBlocks;
        for (k, v) in entries {
            t.insert(k.as_ref(), v, &none)?;
        }
        Ok(t)
    }

    /// The root node's CID.
    pub fn root_cid(&self) -> Cid {
        self.root.cid()
    }

    /// The value under `key`.
    pub fn get(&mut self, key: &[u8], blocks: &dyn BlockSource) -> Result<Option<Cid>, RepoError> {
        let h = key_height(key);
        let mut node = &mut self.root;
        loop {
            if h > node.layer {
                return Ok(None);
            }
            let i = node.position(key);
            if i < node.entries.len() && node.entries[i].key == key {
                return Ok(Some(node.entries[i].value));
            }
            if h == node.layer {
                return Ok(None);
            }
            let layer = node.layer;
            match node.ptr_before(i) {
                None => return Ok(None),
                Some(sub) => node = sub.load(layer - 1, blocks)?,
            }
        }
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(
        &mut self,
        key: &[u8],
        value: Cid,
        blocks: &dyn BlockSource,
    ) -> Result<Option<Cid>, RepoError> {
        check_key(key)?;
        let h = key_height(key);
        if self.root.entries.is_empty() && self.root.left.is_none() {
            self.root = Node::empty(h);
            self.root.entries.push(Entry {
                key: key.to_vec(),
                value,
                right: None,
            });
            return Ok(None);
        }
        if h > self.root.layer {
            // The key outranks the whole tree: split everything around it under a new root,
            // padding each half with empty nodes up to the new root's layer.
            let old = std::mem::replace(&mut self.root, Node::empty(h));
            let old_layer = old.layer;
            let (l, r) = node::split(Some(Sub::Node(Box::new(old))), key, old_layer, blocks)?;
            self.root.left = node::wrap(l, old_layer, h - 1);
            self.root.entries.push(Entry {
                key: key.to_vec(),
                value,
                right: node::wrap(r, old_layer, h - 1),
            });
            return Ok(None);
        }
        node::insert(&mut self.root, key, h, value, blocks)
    }

    /// Removes `key`, returning its value.
    pub fn remove(
        &mut self,
        key: &[u8],
        blocks: &dyn BlockSource,
    ) -> Result<Option<Cid>, RepoError> {
        let h = key_height(key);
        let removed = node::remove(&mut self.root, key, h, blocks)?;
        // Trim: a root with no entries is replaced by its only child.
        while self.root.entries.is_empty() {
            let layer = self.root.layer;
            match self.root.left.take() {
                None => {
                    self.root = Node::empty(0);
                    break;
                }
                Some(mut sub) => {
                    sub.load(layer.saturating_sub(1), blocks)?;
                    let Sub::Node(n) = sub else {
                        unreachable!("just loaded")
                    };
                    self.root = *n;
                }
            }
        }
        Ok(removed)
    }

    /// Visits every entry in key order, loading the whole tree.
    pub fn walk(&mut self, blocks: &dyn BlockSource, f: &mut Visitor<'_>) -> Result<(), RepoError> {
        self.root.walk(blocks, f)
    }

    /// Every entry in key order.
    pub fn entries(&mut self, blocks: &dyn BlockSource) -> Result<Vec<(Vec<u8>, Cid)>, RepoError> {
        let mut out = Vec::new();
        self.walk(blocks, &mut |k, v| {
            out.push((k.to_vec(), *v));
            Ok(())
        })?;
        Ok(out)
    }

    /// Encodes only the nodes that changed since their CIDs were last computed, skipping every
    /// subtree whose CID `known` recognises; returns the root CID. This makes a commit cost
    /// proportional to the path it touched, not to the size of the tree.
    pub fn write_new_blocks(
        &self,
        known: &dyn Fn(&Cid) -> bool,
        sink: &mut dyn FnMut(Cid, Vec<u8>),
    ) -> Cid {
        self.root.write_new_blocks(known, sink)
    }

    /// Encodes every loaded node, handing each `(cid, bytes)` to `sink` (children before
    /// parents); returns the root CID. Stubs are assumed stored elsewhere already.
    pub fn write_blocks(&self, sink: &mut dyn FnMut(Cid, Vec<u8>)) -> Cid {
        self.root.write_blocks(sink)
    }
}

/// A block source with no blocks, for trees built entirely in memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBlocks;

impl BlockSource for NoBlocks {
    fn block(&self, _: &Cid) -> Option<&[u8]> {
        None
    }
}

/// Longest key the tree accepts (the repo spec caps `collection/rkey` well below this).
pub const MAX_KEY_LEN: usize = 1024;

fn check_key(key: &[u8]) -> Result<(), RepoError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(RepoError::new(K::MstOp, "MST key empty or too long"));
    }
    Ok(())
}

fn key_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}
