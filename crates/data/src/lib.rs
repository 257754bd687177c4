//! The AT Protocol data model: DAG-CBOR values, CIDs and atproto's JSON form.
//!
//! This crate owns the bytes-to-values layer that every other skystream crate stands on: a
//! strict, zero-copy DAG-CBOR decoder ([`decode`]) producing borrowed [`Value`]s, a canonical
//! encoder ([`encode`]), CID computation for DAG-CBOR and raw blocks ([`cid_for`]), and the
//! atproto JSON rendering (`{"$link": …}`, `{"$bytes": …}`) that Jetstream prints ([`json`]).
//! It performs no I/O.
//!
//! The decoder is hand-written rather than taken from `serde_ipld_dagcbor` for three reasons:
//! the firehose hot path needs values that borrow from the frame (no copy of strings or
//! bytes), every rejection must carry a countable [`DecodeErrorKind`] so a bad frame becomes a
//! metric rather than a crash, and allocation must be bounded by the input length however
//! hostile the length prefixes are. `serde_ipld_dagcbor` is used in this crate's tests as an
//! independent oracle for the encoder and decoder.

pub mod cbor;
mod cid_util;
pub mod encode;
mod error;
pub mod json;
mod value;

pub use cid::Cid;
pub use cid_util::{cid_for, cid_matches, Codec, DAG_CBOR, RAW};
pub use encode::{encode, encode_to_vec};
pub use error::{DecodeError, DecodeErrorKind};
pub use value::{Map, Value};

/// Decodes exactly one DAG-CBOR value that spans all of `bytes`, with default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Value<'_>, DecodeError> {
    cbor::Decoder::new(bytes, Limits::default()).decode_all()
}

/// Bounds that keep a hostile input from costing more than its own size.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of arrays and maps accepted.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        // atproto records nest a handful of levels; 64 leaves room and keeps recursion shallow.
        Limits { max_depth: 64 }
    }
}
