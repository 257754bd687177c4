//! `time_us`: the server's own clock, assigned when an event is sequenced (appended), unique
//! and strictly increasing, also across restarts.

use std::time::{SystemTime, UNIX_EPOCH};

use skystream_event::jetstream::TimeSequencer;

/// The wall clock in unix microseconds.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Hands out `time_us` values: the wall clock, or one more than the last value when the clock
/// has not moved on (a burst of events within one microsecond, or a clock stepped back).
#[derive(Debug, Default)]
pub struct Sequencer {
    inner: TimeSequencer,
}

impl Sequencer {
    /// A sequencer whose values all follow `last` (the newest `time_us` already in the log),
    /// so a restart never reuses or goes behind one.
    pub fn after(last: i64) -> Sequencer {
        let mut inner = TimeSequencer::new();
        // Seeding: the first call records `last` as the value handed out last.
        inner.next(last);
        Sequencer { inner }
    }

    /// The next value at the current wall-clock time.
    pub fn draw(&mut self) -> i64 {
        self.draw_at(now_us())
    }

    /// The next value if the clock reads `now`.
    pub fn draw_at(&mut self, now: i64) -> i64 {
        self.inner.next(now)
    }

    /// The last value handed out.
    pub fn last(&self) -> i64 {
        self.inner.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_increasing_and_after_the_log() {
        let mut s = Sequencer::after(1_000);
        assert_eq!(
            s.draw_at(500),
            1_001,
            "a clock behind the log does not go back"
        );
        assert_eq!(s.draw_at(500), 1_002);
        assert_eq!(
            s.draw_at(5_000),
            5_000,
            "follows the clock when it is ahead"
        );
        assert_eq!(s.draw_at(5_000), 5_001, "unique within one microsecond");
        assert_eq!(s.last(), 5_001);
        assert!(Sequencer::after(0).draw() > 1_600_000_000_000_000);
    }
}
