//! Timestamp identifiers (TIDs): 13-character sortable base32 integers.
//!
//! Spec: <https://atproto.com/specs/tid>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// The base32-sortable alphabet, in ascending order (also ASCII order).
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Length of a TID string.
pub const TID_LEN: usize = 13;

const MICROS_MASK: u64 = (1 << 53) - 1;
const CLOCK_MASK: u64 = (1 << 10) - 1;

/// A syntactically valid TID, e.g. `3jzfcijpj2z2a`.
///
/// A TID is a 64-bit integer written as 13 characters of the alphabet
/// `234567abcdefghijklmnopqrstuvwxyz` (most significant first). The integer
/// layout is: top bit 0, then 53 bits of microseconds since the UNIX epoch,
/// then a 10-bit clock identifier. Syntactically the first character must be
/// one of `234567abcdefghij` (13 × 5 = 65 bits, so the first character holds
/// only 4 bits); note that the spec's character rule still admits values with
/// bit 63 set (first character `c`..`j`), so [`Tid::to_u64`] returns all 64
/// bits and [`Tid::timestamp_micros`] ignores the top bit.
///
/// Because the alphabet is in ASCII order, the derived string ordering is the
/// same as the ordering of [`Tid::to_u64`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(String);

string_newtype!(Tid, SyntaxKind::Tid, validate);

impl Tid {
    /// Encodes a TID from a timestamp (microseconds since the UNIX epoch) and
    /// a clock identifier.
    ///
    /// Only the low 53 bits of `micros` and the low 10 bits of `clock_id` are
    /// used; higher bits are silently dropped (53 bits of microseconds last
    /// until the year 2255).
    pub fn from_parts(micros: u64, clock_id: u16) -> Tid {
        Tid::from_u64(((micros & MICROS_MASK) << 10) | (u64::from(clock_id) & CLOCK_MASK))
    }

    /// Encodes any 64-bit integer as a TID (lossless; see [`Tid::to_u64`]).
    pub fn from_u64(value: u64) -> Tid {
        let mut buf = [0u8; TID_LEN];
        for (i, slot) in buf.iter_mut().enumerate() {
            let shift = 5 * (TID_LEN - 1 - i);
            *slot = ALPHABET[((value >> shift) & 31) as usize];
        }
        Tid(buf.iter().map(|&b| char::from(b)).collect())
    }

    /// The TID as a 64-bit integer.
    pub fn to_u64(&self) -> u64 {
        self.0.bytes().fold(0u64, |acc, b| {
            (acc << 5) | u64::from(digit_value(b).unwrap_or(0))
        })
    }

    /// Microseconds since the UNIX epoch (53 bits).
    pub fn timestamp_micros(&self) -> u64 {
        (self.to_u64() >> 10) & MICROS_MASK
    }

    /// The 10-bit clock identifier.
    pub fn clock_id(&self) -> u16 {
        // Masked to 10 bits, so the cast cannot truncate.
        (self.to_u64() & CLOCK_MASK) as u16
    }
}

fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'2'..=b'7' => Some(b - b'2'),
        b'a'..=b'z' => Some(b - b'a' + 6),
        _ => None,
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Tid`].
pub fn is_valid_tid(s: &str) -> bool {
    validate(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if b.len() != TID_LEN {
        return Err("TID must be exactly 13 characters");
    }
    if !b.iter().all(|&c| digit_value(c).is_some()) {
        return Err("TID must use only the characters 234567abcdefghijklmnopqrstuvwxyz");
    }
    if digit_value(b[0]).unwrap_or(u8::MAX) > 15 {
        return Err("TID first character must be one of 234567abcdefghij");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_parts() {
        let cases = [
            (0u64, 0u16),
            (1, 1),
            (1_700_000_000_123_456, 42),
            (MICROS_MASK, 1023),
            (482_196_050_123_000, 513),
        ];
        for (micros, clock) in cases {
            let tid = Tid::from_parts(micros, clock);
            assert!(is_valid_tid(tid.as_str()), "{tid} should be valid");
            assert_eq!(tid.timestamp_micros(), micros);
            assert_eq!(tid.clock_id(), clock);
            let reparsed = Tid::parse(tid.as_str()).expect("encoded TID parses");
            assert_eq!(reparsed, tid);
            assert_eq!(Tid::from_u64(tid.to_u64()), tid);
        }
        assert_eq!(Tid::from_parts(0, 0).as_str(), "2222222222222");
        // Out-of-range inputs are masked.
        assert_eq!(
            Tid::from_parts(u64::MAX, u16::MAX),
            Tid::from_parts(MICROS_MASK, 1023)
        );
        assert_eq!(Tid::from_parts(MICROS_MASK, 1023).as_str(), "bzzzzzzzzzzzz");
    }

    #[test]
    fn known_value() {
        let tid = Tid::parse("3jzfcijpj2z2a").expect("valid");
        let v = tid.to_u64();
        assert_eq!(v >> 63, 0);
        assert_eq!(Tid::from_u64(v), tid);
        // A 2023-era timestamp.
        let secs = tid.timestamp_micros() / 1_000_000;
        assert!((1_672_531_200..1_704_067_200).contains(&secs), "{secs}");
    }

    #[test]
    fn ordering_matches_integers() {
        let mut values = vec![
            0u64,
            1,
            31,
            32,
            1 << 40,
            (1 << 40) + 1,
            u64::MAX >> 1,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            0x0123_4567_89ab_cdee,
        ];
        let mut tids: Vec<Tid> = values.iter().map(|&v| Tid::from_u64(v)).collect();
        values.sort_unstable();
        tids.sort();
        let back: Vec<u64> = tids.iter().map(Tid::to_u64).collect();
        assert_eq!(back, values);
        let a = Tid::from_parts(1_000, 5);
        let b = Tid::from_parts(1_001, 0);
        assert!(a < b);
        assert!(a.as_str() < b.as_str());
    }

    #[test]
    fn max_value_is_valid() {
        let max = Tid::from_u64(u64::MAX);
        assert_eq!(max.as_str(), "jzzzzzzzzzzzz");
        assert!(is_valid_tid(max.as_str()));
        assert!(!is_valid_tid("kzzzzzzzzzzzz"));
    }
}
