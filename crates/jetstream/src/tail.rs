//! The log's newest entries in memory, so subscribers at or near the head read them without a
//! database query. It is a cache of the log's suffix, bounded in bytes: it always holds exactly
//! the log's entries newer than `evicted_upto`, so a reader either finds its position here or
//! goes to the database, and either way sees the same ordered sequence.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::entry::Entry;

/// The in-memory suffix of the log.
#[derive(Debug)]
pub struct Tail {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    budget: usize,
    evicted_upto: i64,
}

impl Tail {
    /// An empty tail for a log whose newest entry is `log_newest` (0 when empty): entries up to
    /// it are only on disk.
    pub fn new(budget: usize, log_newest: i64) -> Tail {
        Tail {
            entries: VecDeque::new(),
            bytes: 0,
            budget,
            evicted_upto: log_newest,
        }
    }

    /// Adds entries just appended to the log (newer than everything here), then evicts the
    /// oldest ones beyond the budget.
    pub fn push(&mut self, new: &[Arc<Entry>]) {
        for e in new {
            self.bytes += e.weight();
            self.entries.push_back(e.clone());
        }
        while self.bytes > self.budget {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.weight();
            self.evicted_upto = old.time_us;
        }
    }

    /// Drops entries at or before `t` (the log trimmed them).
    pub fn forget_upto(&mut self, t: i64) {
        while self.entries.front().is_some_and(|e| e.time_us <= t) {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.weight();
            }
        }
        self.evicted_upto = self.evicted_upto.max(t);
    }

    /// Up to `limit` entries with `time_us >= from`, or `None` when some of them may have left
    /// memory (read the database instead).
    pub fn read(&self, from: i64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        if from <= self.evicted_upto {
            return None;
        }
        let start = self.entries.partition_point(|e| e.time_us < from);
        Some(self.entries.range(start..).take(limit).cloned().collect())
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: i64) -> Arc<Entry> {
        Arc::new(Entry {
            time_us: t,
            did: "did:plc:x".into(),
            collection: None,
            json: "{}".into(),
            zstd: bytes::Bytes::new(),
        })
    }

    #[test]
    fn holds_a_suffix_within_budget() {
        let w = e(0).weight();
        let mut t = Tail::new(w * 3, 10);
        assert_eq!(
            t.read(11, 10),
            Some(vec![]),
            "live position, nothing new yet"
        );
        assert_eq!(t.read(10, 10), None, "10 is on disk only");
        t.push(&[e(11), e(12)]);
        assert_eq!(t.read(11, 10).map(|v| v.len()), Some(2));
        t.push(&[e(13), e(15)]);
        assert_eq!(t.bytes(), w * 3);
        assert_eq!(t.read(11, 10), None, "11 was evicted");
        let got: Vec<i64> = t
            .read(14, 10)
            .expect("in memory")
            .iter()
            .map(|e| e.time_us)
            .collect();
        assert_eq!(got, vec![15]);
        assert_eq!(t.read(12, 2).map(|v| v.len()), Some(2));
        t.forget_upto(13);
        assert_eq!(t.read(13, 10), None);
        assert_eq!(t.read(14, 10).map(|v| v.len()), Some(1));
    }
}
