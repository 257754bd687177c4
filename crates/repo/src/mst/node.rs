//! MST nodes: decoding with validation, encoding, and the split / merge edits that keep the
//! tree canonical.

use std::cell::OnceCell;

use skystream_data::{cid_for, decode, encode_to_vec, Cid, Map, Value, DAG_CBOR};

use super::{key_cmp, key_height};
use crate::car::BlockSource;
use crate::error::{RepoError, RepoErrorKind as K};

/// A child pointer: a loaded node, or just its CID until something needs to look inside.
#[derive(Clone, Debug)]
pub(super) enum Sub {
    Node(Box<Node>),
    Stub(Cid),
}

impl Sub {
    /// Loads the node if needed (checking it sits at `layer`) and returns it.
    pub(super) fn load(
        &mut self,
        layer: u32,
        blocks: &dyn BlockSource,
    ) -> Result<&mut Node, RepoError> {
        if let Sub::Stub(cid) = self {
            let node = Node::load(cid, Some(layer), blocks)?;
            *self = Sub::Node(Box::new(node));
        }
        match self {
            Sub::Node(n) => Ok(n),
            Sub::Stub(_) => unreachable!("loaded above"),
        }
    }

    fn into_node(mut self, layer: u32, blocks: &dyn BlockSource) -> Result<Node, RepoError> {
        self.load(layer, blocks)?;
        match self {
            Sub::Node(n) => Ok(*n),
            Sub::Stub(_) => unreachable!("loaded above"),
        }
    }

    fn cid(&self) -> Cid {
        match self {
            Sub::Node(n) => n.cid(),
            Sub::Stub(c) => *c,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub key: Vec<u8>,
    pub value: Cid,
    pub right: Option<Sub>,
}

#[derive(Clone, Debug)]
pub(super) struct Node {
    pub layer: u32,
    pub left: Option<Sub>,
    pub entries: Vec<Entry>,
    cid: OnceCell<Cid>,
}

fn node_err(cid: &Cid, why: &str) -> RepoError {
    RepoError::new(K::MstNode, format!("node {cid}: {why}"))
}

impl Node {
    pub fn empty(layer: u32) -> Self {
        Node {
            layer,
            left: None,
            entries: Vec::new(),
            cid: OnceCell::new(),
        }
    }

    fn touch(&mut self) {
        self.cid = OnceCell::new();
    }

    fn is_void(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// The root node; its layer comes from its keys (or its child's, for an entry-less root).
    pub fn load_root(cid: &Cid, blocks: &dyn BlockSource) -> Result<Self, RepoError> {
        let mut node = Node::load(cid, None, blocks)?;
        if node.entries.is_empty() {
            if let Some(left) = node.left.as_mut() {
                if let Sub::Stub(c) = left {
                    let child = Node::load(c, None, blocks)?;
                    node.layer = child.layer + 1;
                    *left = Sub::Node(Box::new(child));
                }
            }
        }
        Ok(node)
    }

    fn load(cid: &Cid, layer: Option<u32>, blocks: &dyn BlockSource) -> Result<Self, RepoError> {
        let bytes = blocks.block(cid).ok_or_else(|| RepoError::missing(cid))?;
        // The block must be what its CID names: a node that hashes to something else could
        // stand in for any subtree.
        if cid_for(DAG_CBOR, bytes) != *cid {
            return Err(node_err(cid, "the block does not match its CID"));
        }
        let v = decode(bytes).map_err(|e| RepoError::decode(cid, e))?;
        let m = v.as_map().ok_or_else(|| node_err(cid, "not a map"))?;
        let left = match m.get("l") {
            Some(Value::Link(c)) => Some(Sub::Stub(*c)),
            Some(Value::Null) => None,
            _ => return Err(node_err(cid, "l must be a link or null")),
        };
        let raw = m
            .get("e")
            .and_then(Value::as_array)
            .ok_or_else(|| node_err(cid, "e must be an array"))?;
        let mut entries: Vec<Entry> = Vec::with_capacity(raw.len());
        let mut node_layer = layer;
        for e in raw {
            let p = e
                .get("p")
                .and_then(Value::as_i64)
                .ok_or_else(|| node_err(cid, "entry p must be an integer"))?;
            let suffix = e
                .get("k")
                .and_then(Value::as_bytes)
                .ok_or_else(|| node_err(cid, "entry k must be bytes"))?;
            let value = *e
                .get("v")
                .and_then(Value::as_link)
                .ok_or_else(|| node_err(cid, "entry v must be a link"))?;
            let right = match e.get("t") {
                Some(Value::Link(c)) => Some(Sub::Stub(*c)),
                Some(Value::Null) => None,
                _ => return Err(node_err(cid, "entry t must be a link or null")),
            };
            let prev: &[u8] = entries.last().map_or(&[], |x| &x.key);
            let p = usize::try_from(p).map_err(|_| node_err(cid, "negative prefix"))?;
            if p > prev.len() || (entries.is_empty() && p != 0) {
                return Err(node_err(cid, "prefix longer than the previous key"));
            }
            let mut key = Vec::with_capacity(p + suffix.len());
            key.extend_from_slice(&prev[..p]);
            key.extend_from_slice(suffix);
            if key.is_empty() || key.len() > super::MAX_KEY_LEN {
                return Err(node_err(cid, "key empty or too long"));
            }
            if !entries.is_empty() && key_cmp(prev, &key) != std::cmp::Ordering::Less {
                return Err(node_err(cid, "keys out of order"));
            }
            let h = key_height(&key);
            match node_layer {
                None => node_layer = Some(h),
                Some(l) if l != h => return Err(node_err(cid, "key at the wrong layer")),
                Some(_) => {}
            }
            entries.push(Entry { key, value, right });
        }
        let layer = node_layer.unwrap_or(0);
        if layer == 0 && (left.is_some() || entries.iter().any(|e| e.right.is_some())) {
            return Err(node_err(cid, "a layer-0 node has children"));
        }
        let cell = OnceCell::new();
        let _ = cell.set(*cid);
        Ok(Node {
            layer,
            left,
            entries,
            cid: cell,
        })
    }

    /// Index of the first entry whose key is >= `key`.
    pub fn position(&self, key: &[u8]) -> usize {
        self.entries
            .partition_point(|e| key_cmp(&e.key, key) == std::cmp::Ordering::Less)
    }

    /// The child pointer just before entry `i` (`left` for 0).
    pub fn ptr_before(&mut self, i: usize) -> &mut Option<Sub> {
        if i == 0 {
            &mut self.left
        } else {
            &mut self.entries[i - 1].right
        }
    }

    fn last_ptr(&mut self) -> &mut Option<Sub> {
        let n = self.entries.len();
        self.ptr_before(n)
    }

    pub fn to_value(&self) -> Value<'static> {
        let mut entries = Vec::with_capacity(self.entries.len());
        let mut prev: &[u8] = &[];
        for e in &self.entries {
            let p = prev.iter().zip(&e.key).take_while(|(a, b)| a == b).count();
            entries.push(Value::Map(
                Map::new()
                    .with("p", p as i64)
                    .with("k", e.key[p..].to_vec())
                    .with("v", e.value)
                    .with(
                        "t",
                        e.right
                            .as_ref()
                            .map_or(Value::Null, |s| Value::Link(s.cid())),
                    ),
            ));
            prev = &e.key;
        }
        Value::Map(
            Map::new()
                .with(
                    "l",
                    self.left
                        .as_ref()
                        .map_or(Value::Null, |s| Value::Link(s.cid())),
                )
                .with("e", Value::Array(entries)),
        )
    }

    pub fn cid(&self) -> Cid {
        *self
            .cid
            .get_or_init(|| cid_for(DAG_CBOR, &encode_to_vec(&self.to_value())))
    }

    /// Like [`Node::write_blocks`], but skips any subtree whose CID is already known (its
    /// cached CID is still valid, so nothing under it changed).
    pub fn write_new_blocks(
        &self,
        known: &dyn Fn(&Cid) -> bool,
        sink: &mut dyn FnMut(Cid, Vec<u8>),
    ) -> Cid {
        if let Some(cid) = self.cid.get() {
            if known(cid) {
                return *cid;
            }
        }
        let children = self
            .left
            .iter()
            .chain(self.entries.iter().filter_map(|e| e.right.as_ref()));
        for c in children {
            if let Sub::Node(n) = c {
                n.write_new_blocks(known, sink);
            }
        }
        let bytes = encode_to_vec(&self.to_value());
        let cid = cid_for(DAG_CBOR, &bytes);
        let _ = self.cid.set(cid);
        sink(cid, bytes);
        cid
    }

    pub fn write_blocks(&self, sink: &mut dyn FnMut(Cid, Vec<u8>)) -> Cid {
        let children = self
            .left
            .iter()
            .chain(self.entries.iter().filter_map(|e| e.right.as_ref()));
        for c in children {
            if let Sub::Node(n) = c {
                n.write_blocks(sink);
            }
        }
        let bytes = encode_to_vec(&self.to_value());
        let cid = cid_for(DAG_CBOR, &bytes);
        sink(cid, bytes);
        cid
    }

    /// Visits every entry in key order. Subtrees not yet loaded are read from `blocks` one at
    /// a time and dropped once visited, so a walk holds one path of nodes, not the tree.
    pub fn walk(
        &self,
        blocks: &dyn BlockSource,
        f: &mut super::Visitor<'_>,
    ) -> Result<(), RepoError> {
        let mut walk = Walk {
            blocks,
            seen: std::collections::HashSet::new(),
            last: None,
        };
        walk.node(self, f)
    }
}

/// The state of one [`Node::walk`]: an export is hostile input, so every node it names is read
/// at most once (one node under many parents is refused, which bounds the walk by the export's
/// own size: each node is a distinct block), and keys must rise across the whole walk, not
/// just within a node.
struct Walk<'b> {
    blocks: &'b dyn BlockSource,
    seen: std::collections::HashSet<Cid>,
    last: Option<Vec<u8>>,
}

impl Walk<'_> {
    fn node(&mut self, node: &Node, f: &mut super::Visitor<'_>) -> Result<(), RepoError> {
        let child_layer = node.layer.saturating_sub(1);
        if let Some(l) = &node.left {
            self.sub(l, child_layer, f)?;
        }
        for e in &node.entries {
            if self
                .last
                .as_deref()
                .is_some_and(|last| key_cmp(last, &e.key) != std::cmp::Ordering::Less)
            {
                return Err(RepoError::new(
                    K::MstNode,
                    format!("node {}: keys out of order across subtrees", node.cid()),
                ));
            }
            f(&e.key, &e.value)?;
            self.last = Some(e.key.clone());
            if let Some(r) = &e.right {
                self.sub(r, child_layer, f)?;
            }
        }
        Ok(())
    }

    fn sub(&mut self, sub: &Sub, layer: u32, f: &mut super::Visitor<'_>) -> Result<(), RepoError> {
        match sub {
            Sub::Node(n) => self.node(n, f),
            Sub::Stub(cid) => {
                if !self.seen.insert(*cid) {
                    return Err(node_err(cid, "named by more than one pointer"));
                }
                let child = Node::load(cid, Some(layer), self.blocks)?;
                self.node(&child, f)
            }
        }
    }
}

/// Inserts a key of height `h <= node.layer` below or into `node`.
pub(super) fn insert(
    node: &mut Node,
    key: &[u8],
    h: u32,
    value: Cid,
    blocks: &dyn BlockSource,
) -> Result<Option<Cid>, RepoError> {
    node.touch();
    let i = node.position(key);
    if i < node.entries.len() && node.entries[i].key == key {
        let old = std::mem::replace(&mut node.entries[i].value, value);
        return Ok(Some(old));
    }
    let layer = node.layer;
    if h == layer {
        let straddling = node.ptr_before(i).take();
        let (l, r) = split(straddling, key, layer.saturating_sub(1), blocks)?;
        *node.ptr_before(i) = l;
        node.entries.insert(
            i,
            Entry {
                key: key.to_vec(),
                value,
                right: r,
            },
        );
        return Ok(None);
    }
    let ptr = node.ptr_before(i);
    let child = match ptr {
        Some(sub) => sub.load(layer - 1, blocks)?,
        None => {
            *ptr = Some(Sub::Node(Box::new(Node::empty(layer - 1))));
            match ptr {
                Some(Sub::Node(n)) => n,
                _ => unreachable!("just set"),
            }
        }
    };
    insert(child, key, h, value, blocks)
}

/// Splits the subtree `sub` (at `layer`) around `key` (which it must not contain).
pub(super) fn split(
    sub: Option<Sub>,
    key: &[u8],
    layer: u32,
    blocks: &dyn BlockSource,
) -> Result<(Option<Sub>, Option<Sub>), RepoError> {
    let Some(sub) = sub else {
        return Ok((None, None));
    };
    let mut left = sub.into_node(layer, blocks)?;
    left.touch();
    let i = left.position(key);
    if i < left.entries.len() && left.entries[i].key == key {
        return Err(RepoError::new(K::MstOp, "split on a key already present"));
    }
    let mut right = Node::empty(layer);
    right.entries = left.entries.split_off(i);
    let straddling = left.last_ptr().take();
    let (ml, mr) = split(straddling, key, layer.saturating_sub(1), blocks)?;
    *left.last_ptr() = ml;
    right.left = mr;
    Ok((non_void(left), non_void(right)))
}

fn non_void(n: Node) -> Option<Sub> {
    (!n.is_void()).then(|| Sub::Node(Box::new(n)))
}

/// Pads a subtree at layer `from` with entry-less nodes until it sits at layer `to`.
pub(super) fn wrap(mut sub: Option<Sub>, from: u32, to: u32) -> Option<Sub> {
    sub.as_ref()?;
    for layer in from + 1..=to {
        let mut n = Node::empty(layer);
        n.left = sub;
        sub = Some(Sub::Node(Box::new(n)));
    }
    sub
}

/// Removes `key` (height `h`) from the subtree rooted at `node`.
pub(super) fn remove(
    node: &mut Node,
    key: &[u8],
    h: u32,
    blocks: &dyn BlockSource,
) -> Result<Option<Cid>, RepoError> {
    if h > node.layer {
        return Ok(None);
    }
    let i = node.position(key);
    let layer = node.layer;
    if i < node.entries.len() && node.entries[i].key == key {
        node.touch();
        let removed = node.entries.remove(i);
        let before = node.ptr_before(i).take();
        let merged = merge(before, removed.right, layer.saturating_sub(1), blocks)?;
        *node.ptr_before(i) = merged;
        return Ok(Some(removed.value));
    }
    if h == layer {
        return Ok(None);
    }
    let ptr = node.ptr_before(i);
    let Some(sub) = ptr.as_mut() else {
        return Ok(None);
    };
    let child = sub.load(layer - 1, blocks)?;
    let removed = remove(child, key, h, blocks)?;
    if removed.is_some() {
        let void = child.is_void();
        if void {
            *ptr = None;
        }
        node.touch();
    }
    Ok(removed)
}

/// Joins two adjacent subtrees at `layer` (everything in `a` sorts before everything in `b`).
fn merge(
    a: Option<Sub>,
    b: Option<Sub>,
    layer: u32,
    blocks: &dyn BlockSource,
) -> Result<Option<Sub>, RepoError> {
    match (a, b) {
        (None, x) | (x, None) => Ok(x),
        (Some(a), Some(b)) => {
            let mut a = a.into_node(layer, blocks)?;
            let mut b = b.into_node(layer, blocks)?;
            a.touch();
            let joint = merge(
                a.last_ptr().take(),
                b.left.take(),
                layer.saturating_sub(1),
                blocks,
            )?;
            *a.last_ptr() = joint;
            a.entries.append(&mut b.entries);
            Ok(Some(Sub::Node(Box::new(a))))
        }
    }
}
