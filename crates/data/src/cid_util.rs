use cid::Cid;
use sha2::{Digest, Sha256};

/// A multicodec content type for a CID.
pub type Codec = u64;
/// The DAG-CBOR multicodec (records, MST nodes, commits).
pub const DAG_CBOR: Codec = 0x71;
/// The raw multicodec (blobs).
pub const RAW: Codec = 0x55;
const SHA2_256: u64 = 0x12;

/// The CIDv1 (SHA-256) of `bytes` under `codec`, as atproto computes it.
pub fn cid_for(codec: Codec, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let mh = cid::multihash::Multihash::<64>::wrap(SHA2_256, &digest)
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(codec, mh)
}

/// Whether `cid` is a SHA-256 CID whose digest is the hash of `bytes`. Other hash functions are
/// not used by atproto and never match.
pub fn cid_matches(cid: &Cid, bytes: &[u8]) -> bool {
    let mh = cid.hash();
    mh.code() == SHA2_256 && mh.digest() == Sha256::digest(bytes).as_slice()
}
