//! Writing atproto datetimes: RFC 3339 from microseconds since the UNIX epoch, without a date
//! library (the one place the crate formats rather than parses).

/// The latest instant a four-digit year can hold (9999-12-31T23:59:59.999999Z).
const MAX_US: i64 = 253_402_300_799_999_999;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for `us` (clamped to years 1970..=9999; sub-millisecond
/// digits are dropped).
pub fn rfc3339_millis(us: i64) -> String {
    let us = us.clamp(0, MAX_US);
    let secs = us / 1_000_000;
    let millis = (us % 1_000_000) / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datetime;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339_millis(951_782_400_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(rfc3339_millis(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trips_through_the_datetime_parser() {
        let mut us = 0i64;
        while us < 4_000_000_000_000_000 {
            let s = rfc3339_millis(us);
            let back = Datetime::parse(&s)
                .expect("valid datetime")
                .timestamp_micros()
                .expect("in range");
            assert_eq!(back, us - us % 1000, "{s}");
            us += 7_919_999_999_937;
        }
    }
}
