//! Which records a backfill keeps: those written in the last N days, judged by the record key
//! when it is a TID (the time the record was created, set by the PDS) and by `createdAt`
//! otherwise.

use skystream_data::Value;
use skystream_syntax::{Datetime, Tid};

/// The time window of a backfill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Every record, whatever its age (`--days -1`).
    All,
    /// Records from this unix time (microseconds) on.
    Since(i64),
}

impl Window {
    /// The window for `--days`: `-1` is all history, `N > 0` the last N days before `now_us`.
    /// `0` (backfill off) and other negative values have no window.
    pub fn from_days(days: i64, now_us: i64) -> Option<Window> {
        match days {
            -1 => Some(Window::All),
            d if d > 0 => Some(Window::Since(
                now_us.saturating_sub(d.saturating_mul(86_400_000_000)),
            )),
            _ => None,
        }
    }

    /// Whether a record at `time_us` (None: its time is unknown) is kept. A record whose time
    /// cannot be told is kept only when the window is all history.
    pub fn keeps(&self, time_us: Option<i64>) -> bool {
        match (self, time_us) {
            (Window::All, _) => true,
            (Window::Since(since), Some(t)) => t >= *since,
            (Window::Since(_), None) => false,
        }
    }
}

/// When a record was written: its TID key's timestamp, else its `createdAt`.
pub fn record_time_us(rkey: &str, record: &Value<'_>) -> Option<i64> {
    if let Ok(tid) = rkey.parse::<Tid>() {
        return i64::try_from(tid.timestamp_micros()).ok();
    }
    let created = record.get("createdAt")?.as_str()?;
    created.parse::<Datetime>().ok()?.timestamp_micros()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn days() {
        let now = 1_800_000_000_000_000;
        assert_eq!(Window::from_days(-1, now), Some(Window::All));
        assert_eq!(Window::from_days(0, now), None);
        assert_eq!(Window::from_days(-2, now), None);
        assert_eq!(
            Window::from_days(3, now),
            Some(Window::Since(now - 3 * DAY))
        );
        let w = Window::from_days(3, now).unwrap();
        assert!(w.keeps(Some(now - 3 * DAY)));
        assert!(!w.keeps(Some(now - 3 * DAY - 1)));
        assert!(!w.keeps(None));
        assert!(Window::All.keeps(None));
    }

    #[test]
    fn times_from_tid_then_created_at() {
        let rec = skystream_data::json::from_json(
            &serde_json::json!({"createdAt": "2024-01-02T03:04:05.678Z"}),
        )
        .unwrap();
        let tid = Tid::from_parts(1_700_000_000_123_456, 7).to_string();
        assert_eq!(record_time_us(&tid, &rec), Some(1_700_000_000_123_456));
        assert_eq!(record_time_us("self", &rec), Some(1_704_164_645_678_000));
        let empty = skystream_data::json::from_json(&serde_json::json!({})).unwrap();
        assert_eq!(record_time_us("self", &empty), None);
    }
}
