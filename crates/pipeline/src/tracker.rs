use std::collections::VecDeque;

/// Tracks which batches every consumer has handled and derives the committed cursor: the
/// cursor of the newest batch such that it and every batch before it were handled by all
/// consumers.
///
/// Each consumer handles batches strictly in order, so its progress is one number (the last
/// batch id it finished); the committed batch is the minimum of those.
#[derive(Debug)]
pub struct CursorTracker {
    /// Batches not yet handled by everyone: (id, cursor covering it).
    pending: VecDeque<(u64, Option<u64>)>,
    /// Last batch id each consumer finished.
    done: Vec<u64>,
    committed: Option<u64>,
}

impl CursorTracker {
    /// A tracker for `consumers` consumers, resuming from `start` (the saved cursor, if any).
    pub fn new(consumers: usize, start: Option<u64>) -> Self {
        CursorTracker {
            pending: VecDeque::new(),
            done: vec![0; consumers],
            committed: start,
        }
    }

    /// Registers a batch before it is handed to consumers. Ids must increase by one.
    pub fn push(&mut self, id: u64, cursor: Option<u64>) {
        debug_assert!(self.pending.back().is_none_or(|(last, _)| *last + 1 == id));
        self.pending.push_back((id, cursor));
        if self.done.is_empty() {
            // With no consumers, everything is handled as soon as it is sequenced.
            self.advance(id);
        }
    }

    /// Records that `consumer` finished batch `id` (and so every earlier one). Returns the new
    /// committed cursor if it moved.
    pub fn ack(&mut self, consumer: usize, id: u64) -> Option<u64> {
        if let Some(d) = self.done.get_mut(consumer) {
            *d = (*d).max(id);
        }
        let min = self.done.iter().copied().min().unwrap_or(id);
        self.advance(min)
    }

    fn advance(&mut self, upto: u64) -> Option<u64> {
        let before = self.committed;
        while let Some(&(id, cursor)) = self.pending.front() {
            if id > upto {
                break;
            }
            if let Some(c) = cursor {
                self.committed = Some(c);
            }
            self.pending.pop_front();
        }
        (self.committed != before)
            .then_some(self.committed)
            .flatten()
    }

    /// The committed cursor.
    pub fn committed(&self) -> Option<u64> {
        self.committed
    }

    /// Batches sequenced but not yet handled by every consumer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_prefix_every_consumer_finished() {
        let mut t = CursorTracker::new(2, Some(5));
        t.push(1, Some(10));
        t.push(2, None);
        t.push(3, Some(30));
        assert_eq!(t.ack(0, 3), None, "consumer 1 has done nothing");
        assert_eq!(t.committed(), Some(5));
        assert_eq!(t.ack(1, 1), Some(10));
        // Batch 2 carries no cursor: finishing it moves nothing.
        assert_eq!(t.ack(1, 2), None);
        assert_eq!(t.ack(1, 3), Some(30));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn no_consumers_commits_immediately() {
        let mut t = CursorTracker::new(0, None);
        t.push(1, Some(7));
        assert_eq!(t.committed(), Some(7));
    }
}
