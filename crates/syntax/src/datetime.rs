//! Datetimes in the strict atproto profile of RFC 3339 / ISO 8601.
//!
//! Spec: <https://atproto.com/specs/lexicon#datetime>.

use crate::macros::string_newtype;
use crate::SyntaxKind;

/// Maximum length of a datetime string, in bytes.
pub const MAX_DATETIME_LEN: usize = 64;

/// Maximum number of fractional-second digits accepted.
const MAX_FRACTION_DIGITS: usize = 20;

const MICROS_PER_SEC: i64 = 1_000_000;

/// A valid atproto datetime, e.g. `1985-04-12T23:20:50.123Z`.
///
/// Syntax: `YYYY-MM-DDTHH:MM:SS`, optionally `.` and 1 to 20 fractional
/// digits, then `Z` or a `+HH:MM` / `-HH:MM` offset; uppercase `T` and `Z`
/// only, exact zero padding, seconds required, `-00:00` not allowed, at most
/// [`MAX_DATETIME_LEN`] characters.
///
/// Parsing additionally checks the calendar: month 1..=12, day within the
/// month (leap years per the proleptic Gregorian calendar), hour 0..=23,
/// minute and second 0..=59 (no leap seconds), offset at most 23:59, and the
/// instant must not fall before `0000-01-01T00:00:00Z` once normalized to UTC.
/// Use [`is_valid_datetime_syntax`] for the purely syntactic check.
///
/// Stored exactly as parsed (no normalization); equality and ordering are on
/// the string, not the instant. Compare [`Datetime::timestamp_micros`] values
/// to compare instants.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datetime(String);

string_newtype!(Datetime, SyntaxKind::Datetime, validate);

impl Datetime {
    /// Microseconds since the UNIX epoch (UTC), with extra fractional digits
    /// truncated. Always `Some` for a value built by parsing; the `Option`
    /// leaves room for instants that do not fit.
    pub fn timestamp_micros(&self) -> Option<i64> {
        parse_syntax(&self.0)
            .ok()
            .and_then(|p| to_unix_micros(&p).ok())
    }
}

/// Cheap, non-allocating check that `s` is a valid [`Datetime`] (syntax and
/// calendar checks; what [`Datetime::parse`] accepts).
pub fn is_valid_datetime(s: &str) -> bool {
    validate(s).is_ok()
}

/// Syntax-only check: accepts strings such as `1985-13-12T23:20:50Z` that
/// have the right shape but are not real datetimes.
pub fn is_valid_datetime_syntax(s: &str) -> bool {
    parse_syntax(s).is_ok()
}

pub(crate) fn validate(s: &str) -> Result<(), &'static str> {
    let parts = parse_syntax(s)?;
    to_unix_micros(&parts).map(|_| ())
}

/// Fields of a syntactically valid datetime, not yet range-checked.
struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    /// `1` for east of UTC (and `Z`), `-1` for west.
    offset_sign: i64,
    offset_hours: u32,
    offset_minutes: u32,
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn parse_syntax(s: &str) -> Result<Parts, &'static str> {
    const SHAPE: &str = "datetime must look like YYYY-MM-DDTHH:MM:SS (uppercase T)";
    let b = s.as_bytes();
    if b.len() > MAX_DATETIME_LEN {
        return Err("datetime is too long (max 64 chars)");
    }
    if b.len() < 20 {
        return Err(SHAPE);
    }
    let field = |range: std::ops::Range<usize>| digits(&b[range]).ok_or(SHAPE);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(SHAPE);
    }
    let year = i64::from(field(0..4)?);
    let month = field(5..7)?;
    let day = field(8..10)?;
    let hour = field(11..13)?;
    let minute = field(14..16)?;
    let second = field(17..19)?;

    let mut i = 19;
    let mut micros = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        let n = end - start;
        if n == 0 || n > MAX_FRACTION_DIGITS {
            return Err("datetime fractional seconds must be 1 to 20 digits");
        }
        // Keep microsecond precision: first six digits, zero-padded.
        for k in 0..6 {
            let d = if start + k < end {
                b[start + k] - b'0'
            } else {
                0
            };
            micros = micros * 10 + u32::from(d);
        }
        i = end;
    }

    let tz = &b[i..];
    let (offset_sign, offset_hours, offset_minutes) = match tz {
        b"Z" => (1, 0, 0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2]).ok_or("datetime offset must be +HH:MM or -HH:MM")?;
            let m = digits(&[*m1, *m2]).ok_or("datetime offset must be +HH:MM or -HH:MM")?;
            if *sign == b'-' && h == 0 && m == 0 {
                return Err("datetime offset -00:00 is not allowed (use Z or +00:00)");
            }
            (if *sign == b'-' { -1 } else { 1 }, h, m)
        }
        _ => return Err("datetime must end with Z or a +HH:MM / -HH:MM offset"),
    };

    Ok(Parts {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
        offset_sign,
        offset_hours,
        offset_minutes,
    })
}

fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        _ => 28,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Shift the year to start in March so the leap day is the last day.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn to_unix_micros(p: &Parts) -> Result<i64, &'static str> {
    if !(1..=12).contains(&p.month) {
        return Err("datetime month must be 01 to 12");
    }
    if p.day < 1 || p.day > days_in_month(p.year, p.month) {
        return Err("datetime day is not valid for the month");
    }
    if p.hour > 23 {
        return Err("datetime hour must be 00 to 23");
    }
    if p.minute > 59 {
        return Err("datetime minute must be 00 to 59");
    }
    if p.second > 59 {
        return Err("datetime second must be 00 to 59");
    }
    if p.offset_hours > 23 || p.offset_minutes > 59 {
        return Err("datetime offset must be at most 23:59");
    }
    let offset_secs =
        p.offset_sign * (i64::from(p.offset_hours) * 3_600 + i64::from(p.offset_minutes) * 60);
    let days = days_from_civil(p.year, p.month, p.day);
    let secs =
        days * 86_400 + i64::from(p.hour) * 3_600 + i64::from(p.minute) * 60 + i64::from(p.second)
            - offset_secs;
    if secs < days_from_civil(0, 1, 1) * 86_400 {
        return Err("datetime is before year 0000 once normalized to UTC");
    }
    Ok(secs * MICROS_PER_SEC + i64::from(p.micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str) -> i64 {
        Datetime::parse(s)
            .expect("valid datetime")
            .timestamp_micros()
            .expect("has micros")
    }

    #[test]
    fn known_values() {
        assert_eq!(micros("1985-04-12T23:20:50.123Z"), 482_196_050_123_000);
        assert_eq!(micros("1970-01-01T00:00:00Z"), 0);
        assert_eq!(micros("1970-01-01T00:00:00.0000019Z"), 1);
        assert_eq!(micros("1969-12-31T23:59:59.5Z"), -500_000);
        assert_eq!(
            micros("1985-04-12T16:20:50.123-07:00"),
            micros("1985-04-12T23:20:50.123Z")
        );
        assert_eq!(
            micros("1985-04-13T01:05:50.123+01:45"),
            micros("1985-04-12T23:20:50.123Z")
        );
        assert_eq!(micros("2000-03-01T00:00:00Z"), 951_868_800_000_000);
        assert_eq!(micros("0000-01-01T00:00:00.000Z"), -62_167_219_200_000_000);
        assert_eq!(
            micros("9999-12-31T23:59:59.999999Z"),
            253_402_300_799_999_999
        );
    }

    #[test]
    fn calendar() {
        assert!(is_valid_datetime("2024-02-29T00:00:00Z"));
        assert!(is_valid_datetime("2000-02-29T00:00:00Z"));
        assert!(!is_valid_datetime("1900-02-29T00:00:00Z"));
        assert!(!is_valid_datetime("2023-02-29T00:00:00Z"));
        assert!(is_valid_datetime_syntax("2023-02-29T00:00:00Z"));
        assert!(!is_valid_datetime("2023-04-31T00:00:00Z"));
        assert!(!is_valid_datetime("2023-04-30T23:59:60Z"));
        assert!(!is_valid_datetime("2023-04-30T00:00:00+24:00"));
        assert!(!is_valid_datetime("0000-01-01T00:59:59+01:00"));
        assert!(is_valid_datetime("0000-01-01T01:00:00+01:00"));
    }

    #[test]
    fn syntax_edges() {
        assert!(!is_valid_datetime_syntax("1985-04-12T23:20:50.123-00:00"));
        assert!(is_valid_datetime_syntax("1985-04-12T23:20:50.123+00:00"));
        assert!(is_valid_datetime_syntax(&format!(
            "1985-04-12T23:20:50.{}Z",
            "1".repeat(20)
        )));
        assert!(!is_valid_datetime_syntax(&format!(
            "1985-04-12T23:20:50.{}Z",
            "1".repeat(21)
        )));
        assert!(!is_valid_datetime_syntax("1985-04-12T23:20:50.Z"));
        assert!(!is_valid_datetime_syntax("1985-04-12T23:20:50ZZ"));
        assert!(!is_valid_datetime_syntax("1985-04-12T23:20:50+01:00Z"));
        assert!(!is_valid_datetime_syntax("1985-04-12T23:20:50"));
    }
}
