//! The cursor heartbeat (`informCursorSeconds`): every N seconds a subscriber that asked gets
//! `{"kind":"cursor","time_us":T}`, T being the newest `time_us` the server has passed for it,
//! filtered-out events included. A subscriber with a sparse filter can save T and resume from
//! it: nothing it wants lies before T that it has not been sent, and the hours of events it
//! filtered out are not replayed.

use std::time::Duration;

/// The longest interval (and the most a request is clamped to).
pub const MAX_SECS: u64 = 600;
/// The shortest interval unless the server is configured otherwise.
pub const DEFAULT_FLOOR_SECS: u64 = 60;

/// The interval for a requested `informCursorSeconds`: `None` for 0 (off), otherwise
/// clamped to `[floor, 600]` seconds.
pub fn interval(requested: u64, floor_secs: u64) -> Option<Duration> {
    if requested == 0 {
        return None;
    }
    let floor = floor_secs.clamp(1, MAX_SECS);
    Some(Duration::from_secs(requested.clamp(floor, MAX_SECS)))
}

/// The heartbeat message.
pub fn message(time_us: i64) -> String {
    format!("{{\"kind\":\"cursor\",\"time_us\":{time_us}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps() {
        assert_eq!(interval(0, 60), None);
        assert_eq!(interval(5, 60), Some(Duration::from_secs(60)));
        assert_eq!(interval(90, 60), Some(Duration::from_secs(90)));
        assert_eq!(interval(10_000, 60), Some(Duration::from_secs(600)));
        assert_eq!(interval(1, 1), Some(Duration::from_secs(1)));
        assert_eq!(
            interval(1, 0),
            Some(Duration::from_secs(1)),
            "a zero floor is 1 s"
        );
        assert_eq!(interval(1, 9_999), Some(Duration::from_secs(600)));
        let m: serde_json::Value = serde_json::from_str(&message(42)).expect("json");
        assert_eq!(m, serde_json::json!({"kind": "cursor", "time_us": 42}));
        let parsed = skystream_event::jetstream::parse_line(&message(42)).expect("parses");
        assert_eq!((parsed.time_us, parsed.event), (42, None));
    }
}
