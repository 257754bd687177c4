//! Ranking: the order a feed serves its posts in.

use std::time::Duration;

/// The default half-life of engagement ranking.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(6 * 3600);

/// How a feed orders its posts.
///
/// Engagement ranking scores a post `(1 + likes + 2 × reposts) × 0.5^(age / half_life)`: a like
/// counts one, a repost two (it shows the post to a new audience), and the score halves every
/// `half_life`. Exponential decay, unlike Hacker News' `(votes) / (age + 2)^gravity`, shrinks
/// every post by the same factor as time passes, so the order of two posts changes only when one
/// of them gains likes or reposts. That is what [`Ranking::sort_key`] uses: a time-independent
/// key the indexer stores and updates as likes arrive, instead of rescoring the whole feed on
/// every request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Ranking {
    /// Newest first.
    #[default]
    Chronological,
    /// Likes and reposts, decaying with age.
    Engagement {
        /// The age at which a post's score has halved.
        half_life: Duration,
    },
}

impl Ranking {
    /// The name used in feed definitions.
    pub fn name(&self) -> &'static str {
        match self {
            Ranking::Chronological => "chronological",
            Ranking::Engagement { .. } => "engagement",
        }
    }

    /// The post's score now, higher first: for chronological ranking minus its age; for
    /// engagement the decayed score above. A negative age (a `createdAt` in the future) counts as
    /// zero.
    pub fn score(&self, likes: u64, reposts: u64, age_seconds: f64) -> f64 {
        let age = age_seconds.max(0.0);
        match self {
            Ranking::Chronological => -age,
            Ranking::Engagement { half_life } => {
                weight(likes, reposts) * 0.5f64.powf(age / half_life_seconds(*half_life))
            }
        }
    }

    /// For engagement ranking, the half-life in seconds (at least 1): the store keeps such a
    /// feed's scores from its own like and repost counts, with the same formula as
    /// [`Ranking::sort_key`]. `None` for chronological ranking, whose key never changes.
    pub fn half_life_seconds(&self) -> Option<f64> {
        match self {
            Ranking::Chronological => None,
            Ranking::Engagement { half_life } => Some(half_life_seconds(*half_life)),
        }
    }

    /// A key that orders posts as [`Ranking::score`] does at any moment (higher first), without
    /// depending on the current time: `created_at` for chronological ranking,
    /// `log2(1 + likes + 2 × reposts) + created_at / half_life` for engagement. `created_at` is
    /// in unix seconds; the indexer should pass the earlier of the record's `createdAt` and the
    /// time it saw the post, so a post cannot rank itself up with a date in the future.
    pub fn sort_key(&self, likes: u64, reposts: u64, created_at: f64) -> f64 {
        match self {
            Ranking::Chronological => created_at,
            Ranking::Engagement { half_life } => {
                weight(likes, reposts).log2() + created_at / half_life_seconds(*half_life)
            }
        }
    }
}

fn weight(likes: u64, reposts: u64) -> f64 {
    1.0 + likes as f64 + 2.0 * reposts as f64
}

fn half_life_seconds(half_life: Duration) -> f64 {
    half_life.as_secs_f64().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engagement_decays_by_half_each_half_life() {
        let r = Ranking::Engagement {
            half_life: Duration::from_secs(3600),
        };
        assert_eq!(r.score(9, 0, 0.0), 10.0);
        assert!((r.score(9, 0, 3600.0) - 5.0).abs() < 1e-9);
        assert!((r.score(3, 1, 7200.0) - 1.5).abs() < 1e-9);
        assert_eq!(r.score(0, 0, -50.0), 1.0);
    }

    #[test]
    fn sort_key_orders_like_score_at_any_time() {
        let r = Ranking::Engagement {
            half_life: Duration::from_secs(6 * 3600),
        };
        // (likes, reposts, created_at)
        let posts = [
            (0, 0, 10_000.0),
            (40, 3, 0.0),
            (5, 0, 8_000.0),
            (200, 10, -50_000.0),
        ];
        for now in [10_000.0, 20_000.0, 100_000.0, 1_000_000.0] {
            let mut by_score: Vec<usize> = (0..posts.len()).collect();
            let mut by_key = by_score.clone();
            by_score.sort_by(|&a, &b| {
                let s = |i: usize| r.score(posts[i].0, posts[i].1, now - posts[i].2);
                s(b).total_cmp(&s(a))
            });
            by_key.sort_by(|&a, &b| {
                let k = |i: usize| r.sort_key(posts[i].0, posts[i].1, posts[i].2);
                k(b).total_cmp(&k(a))
            });
            assert_eq!(by_score, by_key, "now = {now}");
        }
    }

    #[test]
    fn chronological_is_newest_first() {
        let r = Ranking::Chronological;
        assert!(r.score(0, 0, 10.0) > r.score(1000, 1000, 20.0));
        assert!(r.sort_key(0, 0, 20.0) > r.sort_key(1000, 0, 10.0));
    }
}
