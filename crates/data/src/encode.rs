//! The canonical DAG-CBOR encoder.

use crate::cbor::{major, CID_TAG};
use crate::value::Value;

/// Appends the canonical DAG-CBOR encoding of `value` to `out`.
///
/// Maps are already in canonical order (see [`crate::Map`]), so the output is deterministic and
/// hashing it gives the value's CID.
pub fn encode(value: &Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Integer(i) if *i >= 0 => write_head(out, major::UINT, *i as u64),
        Value::Integer(i) => write_head(out, major::NINT, (-1 - *i) as u64),
        Value::String(s) => {
            write_head(out, major::TEXT, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_head(out, major::BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_head(out, major::ARRAY, items.len() as u64);
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(m) => {
            write_head(out, major::MAP, m.len() as u64);
            for (k, v) in m.iter() {
                write_head(out, major::TEXT, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                encode(v, out);
            }
        }
        Value::Link(cid) => {
            write_head(out, major::TAG, CID_TAG);
            let bytes = cid.to_bytes();
            write_head(out, major::BYTES, bytes.len() as u64 + 1);
            out.push(0);
            out.extend_from_slice(&bytes);
        }
    }
}

/// The canonical DAG-CBOR encoding of `value` as a new buffer.
pub fn encode_to_vec(value: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode(value, &mut out);
    out
}

/// Writes an item head in its shortest form.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}
