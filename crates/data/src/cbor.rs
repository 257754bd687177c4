//! The low-level DAG-CBOR reader: item heads, strict canonical-form checks, and a decoder that
//! borrows strings and bytes from its input.
//!
//! Every length read from the input is checked against what remains before anything is
//! allocated or sliced, so a hostile length prefix costs nothing.

use std::borrow::Cow;

use cid::Cid;

use crate::error::{DecodeError, DecodeErrorKind as K};
use crate::value::{canonical_key_cmp, Map, Value};
use crate::Limits;

/// CBOR major types.
pub mod major {
    /// Unsigned integer.
    pub const UINT: u8 = 0;
    /// Negative integer.
    pub const NINT: u8 = 1;
    /// Byte string.
    pub const BYTES: u8 = 2;
    /// Text string.
    pub const TEXT: u8 = 3;
    /// Array.
    pub const ARRAY: u8 = 4;
    /// Map.
    pub const MAP: u8 = 5;
    /// Tag.
    pub const TAG: u8 = 6;
    /// Simple values and floats.
    pub const SIMPLE: u8 = 7;
}

/// The only tag DAG-CBOR allows: a CID link.
pub const CID_TAG: u64 = 42;

/// A cursor over a DAG-CBOR buffer.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `buf`.
    pub fn new(buf: &'a [u8], limits: Limits) -> Self {
        Decoder {
            buf,
            pos: 0,
            limits,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread rest of the buffer.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Whether the whole buffer has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn err(&self, kind: K, offset: usize) -> DecodeError {
        DecodeError { kind, offset }
    }

    /// Decodes one value that must span the rest of the buffer.
    pub fn decode_all(mut self) -> Result<Value<'a>, DecodeError> {
        let v = self.decode_value()?;
        if !self.is_at_end() {
            return Err(self.err(K::TrailingBytes, self.pos));
        }
        Ok(v)
    }

    /// Decodes one value that must span the rest of the buffer, by reference.
    pub fn decode_all_remaining(&mut self) -> Result<Value<'a>, DecodeError> {
        let v = self.decode_value()?;
        if !self.is_at_end() {
            return Err(self.err(K::TrailingBytes, self.pos));
        }
        Ok(v)
    }

    /// Decodes the next value and advances past it.
    pub fn decode_value(&mut self) -> Result<Value<'a>, DecodeError> {
        self.value(0)
    }

    /// Reads an item head: its major type and argument, enforcing shortest-form encoding and
    /// rejecting indefinite lengths.
    pub fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let start = self.pos;
        let first = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err(K::UnexpectedEnd, start))?;
        self.pos += 1;
        let major = first >> 5;
        let info = first & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let bytes = self
                    .buf
                    .get(self.pos..self.pos + n)
                    .ok_or_else(|| self.err(K::UnexpectedEnd, start))?;
                self.pos += n;
                let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                // Floats (major 7, info 25..27) carry bit patterns, not lengths; the caller
                // rejects them, so only integer-like heads are checked for minimality here.
                if major != major::SIMPLE {
                    let minimal = match info {
                        24 => v >= 24,
                        25 => v > 0xff,
                        26 => v > 0xffff,
                        _ => v > 0xffff_ffff,
                    };
                    if !minimal {
                        return Err(self.err(K::NonMinimalEncoding, start));
                    }
                }
                v
            }
            28..=30 => return Err(self.err(K::ReservedAdditionalInfo, start)),
            _ => return Err(self.err(K::IndefiniteLength, start)),
        };
        Ok((major, arg))
    }

    /// Takes `len` bytes, failing before any allocation when fewer remain.
    fn take(&mut self, len: u64, start: usize) -> Result<&'a [u8], DecodeError> {
        let rest = self.buf.len() - self.pos;
        if len > rest as u64 {
            return Err(self.err(K::LengthTooLarge, start));
        }
        let len = len as usize;
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    /// Reads a text string item.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        match self.head()? {
            (major::TEXT, len) => {
                let bytes = self.take(len, start)?;
                std::str::from_utf8(bytes).map_err(|_| self.err(K::InvalidUtf8, start))
            }
            _ => Err(self.err(K::NonStringKey, start)),
        }
    }

    fn value(&mut self, depth: u32) -> Result<Value<'a>, DecodeError> {
        let start = self.pos;
        let (major, arg) = self.head()?;
        Ok(match major {
            major::UINT => Value::Integer(
                i64::try_from(arg).map_err(|_| self.err(K::IntegerOutOfRange, start))?,
            ),
            major::NINT => {
                let v = i64::try_from(arg).map_err(|_| self.err(K::IntegerOutOfRange, start))?;
                Value::Integer(-1 - v)
            }
            major::BYTES => Value::Bytes(Cow::Borrowed(self.take(arg, start)?)),
            major::TEXT => {
                let bytes = self.take(arg, start)?;
                Value::String(Cow::Borrowed(
                    std::str::from_utf8(bytes).map_err(|_| self.err(K::InvalidUtf8, start))?,
                ))
            }
            major::ARRAY => {
                if depth >= self.limits.max_depth {
                    return Err(self.err(K::TooDeep, start));
                }
                // Every item takes at least one byte, so the remaining length bounds the
                // allocation whatever the prefix claims.
                if arg > (self.buf.len() - self.pos) as u64 {
                    return Err(self.err(K::LengthTooLarge, start));
                }
                let mut items = Vec::with_capacity(arg as usize);
                for _ in 0..arg {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            major::MAP => {
                if depth >= self.limits.max_depth {
                    return Err(self.err(K::TooDeep, start));
                }
                if arg > ((self.buf.len() - self.pos) / 2) as u64 {
                    return Err(self.err(K::LengthTooLarge, start));
                }
                let mut entries: Vec<(Cow<'a, str>, Value<'a>)> = Vec::with_capacity(arg as usize);
                for _ in 0..arg {
                    let key_at = self.pos;
                    let key = self.read_str()?;
                    if let Some((prev, _)) = entries.last() {
                        if canonical_key_cmp(prev, key) != std::cmp::Ordering::Less {
                            return Err(self.err(K::KeyOrder, key_at));
                        }
                    }
                    let v = self.value(depth + 1)?;
                    entries.push((Cow::Borrowed(key), v));
                }
                Value::Map(Map::from_sorted_unchecked(entries))
            }
            major::TAG => {
                if arg != CID_TAG {
                    return Err(self.err(K::UnsupportedTag, start));
                }
                let inner = self.pos;
                match self.head()? {
                    (major::BYTES, len) => {
                        let bytes = self.take(len, inner)?;
                        Value::Link(parse_cid_payload(bytes).ok_or(self.err(K::InvalidCid, inner))?)
                    }
                    _ => return Err(self.err(K::InvalidCid, inner)),
                }
            }
            // Major 7: only false, true and null exist in the data model. Matching on the
            // additional info (not the argument) rejects non-minimal simples like 0xf8 0x14.
            _ => match self.buf[start] & 0x1f {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                25..=27 => return Err(self.err(K::Float, start)),
                _ => return Err(self.err(K::UnsupportedSimple, start)),
            },
        })
    }

    /// Skips one whole value without building it (still fully validated).
    pub fn skip_value(&mut self) -> Result<(), DecodeError> {
        self.value(0).map(drop)
    }
}

/// Parses the payload of a tag-42 byte string: a 0x00 multibase-identity prefix, then a binary
/// CID with nothing after it.
pub fn parse_cid_payload(bytes: &[u8]) -> Option<Cid> {
    let (&prefix, rest) = bytes.split_first()?;
    if prefix != 0 {
        return None;
    }
    parse_binary_cid(rest)
}

/// Parses a binary CID that must span `bytes` exactly.
pub fn parse_binary_cid(mut bytes: &[u8]) -> Option<Cid> {
    let total = bytes.len();
    let cid = Cid::read_bytes(&mut bytes).ok()?;
    // `read_bytes` stops at the end of the CID; trailing bytes are not a CID.
    if !bytes.is_empty() || total == 0 {
        return None;
    }
    Some(cid)
}
