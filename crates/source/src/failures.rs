//! The rule for a message that keeps failing at one place in the stream: reconnect and read it
//! again a few times (a torn read, a flaky proxy), then step past it, so one poison message can
//! neither stall the stream for ever nor be skipped on its first hiccup.

/// Failures in a row at one stream position (the position of the last event handed on before
/// the failing message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FailureCount {
    at: Option<u64>,
    count: u32,
}

impl FailureCount {
    /// Records a failure of the message after `position`; returns how many failures in a row
    /// there have been there (a failure elsewhere starts again from one).
    pub(crate) fn record(&mut self, position: Option<u64>) -> u32 {
        if self.count > 0 && self.at == position {
            self.count += 1;
        } else {
            *self = FailureCount {
                at: position,
                count: 1,
            };
        }
        self.count
    }

    /// Forgets the failures (the message was stepped past, or the stream moved elsewhere).
    pub(crate) fn reset(&mut self) {
        *self = FailureCount::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_a_row_at_one_position_only() {
        let mut f = FailureCount::default();
        assert_eq!(f.record(None), 1);
        assert_eq!(f.record(None), 2);
        assert_eq!(f.record(Some(5)), 1, "another position starts again");
        assert_eq!(f.record(Some(5)), 2);
        f.reset();
        assert_eq!(f.record(Some(5)), 1, "a reset forgets");
    }
}
