//! CAR v1 archives: a zero-copy reader over a byte slice, and a writer.
//!
//! Layout: `varint(len) header` then repeated `varint(len) cid block-bytes`, where the header is
//! the DAG-CBOR map `{roots: [cid…], version: 1}`. Reading indexes blocks in place; checking
//! their CIDs is a separate step ([`Car::verify_cids`]) so callers that only route frames
//! don't pay for hashing.

use std::collections::HashMap;

use skystream_data::{cbor::parse_binary_cid, cid_matches, decode, encode_to_vec, Cid, Map, Value};

use crate::error::{RepoError, RepoErrorKind as K};

/// Bounds on what a CAR may claim.
#[derive(Clone, Copy, Debug)]
pub struct CarLimits {
    /// Most blocks accepted in one archive.
    pub max_blocks: usize,
    /// Largest header accepted, in bytes.
    pub max_header: usize,
}

impl Default for CarLimits {
    fn default() -> Self {
        // A firehose CAR is at most 2 MB; a whole repo export can be far larger, so the block
        // count is bounded by the input (each block costs >= 36 bytes) rather than a constant.
        CarLimits {
            max_blocks: usize::MAX,
            max_header: 64 * 1024,
        }
    }
}

/// One block: its CID and its bytes, borrowed from the archive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block<'a> {
    /// The block's CID as written in the archive.
    pub cid: Cid,
    /// The block's bytes.
    pub data: &'a [u8],
}

/// A parsed CAR archive borrowing its blocks from the input.
#[derive(Clone, Debug)]
pub struct Car<'a> {
    roots: Vec<Cid>,
    blocks: Vec<Block<'a>>,
}

/// Reads an unsigned LEB128 varint (at most 9 bytes, minimal), advancing `pos`.
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, RepoError> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| RepoError::new(K::CarTruncated, "CAR ended inside a varint"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(RepoError::new(K::CarVarint, "non-minimal varint"));
            }
            return Ok(value);
        }
    }
    Err(RepoError::new(K::CarVarint, "varint longer than 9 bytes"))
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl<'a> Car<'a> {
    /// Parses `bytes` with default limits. Block CIDs are not checked; see
    /// [`Car::verify_cids`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RepoError> {
        Self::parse_with(bytes, CarLimits::default())
    }

    /// Parses `bytes`, enforcing `limits`.
    pub fn parse_with(bytes: &'a [u8], limits: CarLimits) -> Result<Self, RepoError> {
        let mut pos = 0;
        let header_len = read_varint(bytes, &mut pos)?;
        if header_len as usize > limits.max_header || header_len > (bytes.len() - pos) as u64 {
            return Err(RepoError::new(K::CarHeader, "header length out of bounds"));
        }
        let header_bytes = &bytes[pos..pos + header_len as usize];
        pos += header_len as usize;
        let roots = parse_header(header_bytes)?;

        let mut blocks = Vec::with_capacity(((bytes.len() - pos) / 256).min(4096));
        while pos < bytes.len() {
            if blocks.len() >= limits.max_blocks {
                return Err(RepoError::new(K::TooManyBlocks, "too many blocks"));
            }
            let len = read_varint(bytes, &mut pos)?;
            if len > (bytes.len() - pos) as u64 {
                return Err(RepoError::new(
                    K::CarTruncated,
                    "block longer than the archive",
                ));
            }
            let section = &bytes[pos..pos + len as usize];
            pos += len as usize;
            let mut rest = section;
            let cid = Cid::read_bytes(&mut rest)
                .map_err(|e| RepoError::new(K::CarBlockCid, format!("block CID: {e}")))?;
            let data = &section[section.len() - rest.len()..];
            blocks.push(Block { cid, data });
        }
        Ok(Car { roots, blocks })
    }

    /// The archive's roots (for a commit diff or repo export, the first is the commit).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The blocks in archive order.
    pub fn blocks(&self) -> &[Block<'a>] {
        &self.blocks
    }

    /// Finds a block by CID (a linear scan: firehose archives hold about ten blocks; build a
    /// [`BlockMap`] for large archives).
    pub fn get(&self, cid: &Cid) -> Option<&'a [u8]> {
        self.blocks.iter().find(|b| &b.cid == cid).map(|b| b.data)
    }

    /// Checks that every block's bytes hash to its CID.
    pub fn verify_cids(&self) -> Result<(), RepoError> {
        for b in &self.blocks {
            if !cid_matches(&b.cid, b.data) {
                return Err(RepoError::new(
                    K::CidMismatch,
                    format!("block {} does not hash to its CID", b.cid),
                ));
            }
        }
        Ok(())
    }

    /// A hash index of the blocks, for archives too large to scan.
    pub fn block_map(&self) -> BlockMap<'a> {
        BlockMap(self.blocks.iter().map(|b| (b.cid, b.data)).collect())
    }
}

fn parse_header(bytes: &[u8]) -> Result<Vec<Cid>, RepoError> {
    let bad = |why: &str| RepoError::new(K::CarHeader, why.to_string());
    let v = decode(bytes).map_err(|e| RepoError::new(K::CarHeader, format!("header: {e}")))?;
    if v.get("version").and_then(Value::as_i64) != Some(1) {
        return Err(bad("CAR version is not 1"));
    }
    let roots = v
        .get("roots")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("header has no roots array"))?;
    roots
        .iter()
        .map(|r| {
            r.as_link()
                .copied()
                .ok_or_else(|| bad("a root is not a CID"))
        })
        .collect()
}

/// Blocks by CID.
#[derive(Clone, Debug, Default)]
pub struct BlockMap<'a>(HashMap<Cid, &'a [u8]>);

impl<'a> BlockMap<'a> {
    /// The block with this CID.
    pub fn get(&self, cid: &Cid) -> Option<&'a [u8]> {
        self.0.get(cid).copied()
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Somewhere blocks can be looked up by CID.
pub trait BlockSource {
    /// The bytes of the block with this CID, if present.
    fn block(&self, cid: &Cid) -> Option<&[u8]>;
}

impl BlockSource for Car<'_> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        self.get(cid)
    }
}

impl BlockSource for BlockMap<'_> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        self.get(cid)
    }
}

impl BlockSource for HashMap<Cid, Vec<u8>> {
    fn block(&self, cid: &Cid) -> Option<&[u8]> {
        self.get(cid).map(Vec::as_slice)
    }
}

/// Writes a CAR v1 archive into memory.
#[derive(Debug)]
pub struct CarWriter {
    out: Vec<u8>,
}

impl CarWriter {
    /// Starts an archive with these roots.
    pub fn new(roots: &[Cid]) -> Self {
        let header = Map::new().with("version", 1i64).with(
            "roots",
            Value::Array(roots.iter().map(|c| Value::Link(*c)).collect()),
        );
        let header = encode_to_vec(&Value::Map(header));
        let mut out = Vec::with_capacity(1024);
        write_varint(&mut out, header.len() as u64);
        out.extend_from_slice(&header);
        CarWriter { out }
    }

    /// Appends a block. The caller vouches that `cid` is the block's CID.
    pub fn push(&mut self, cid: &Cid, data: &[u8]) {
        let cid_bytes = cid.to_bytes();
        write_varint(&mut self.out, (cid_bytes.len() + data.len()) as u64);
        self.out.extend_from_slice(&cid_bytes);
        self.out.extend_from_slice(data);
    }

    /// The finished archive.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Parses a binary CID that must span `bytes` exactly (re-exported for callers that hold raw
/// CID bytes, e.g. from a database).
pub fn cid_from_bytes(bytes: &[u8]) -> Option<Cid> {
    parse_binary_cid(bytes)
}
