//! Deterministic sampling: whether an event is kept depends only on its CloudEvents `id`, so
//! a rerun, a replay or a second ingester with the same rate picks exactly the same events
//! (the seed bridge drew a random number per event, so every run published a different set).

use sha2::{Digest, Sha256};

/// Keeps events whose id hashes below `rate` of the hash space.
///
/// The rule, for other implementations: take the first 8 bytes of SHA-256 of the id's UTF-8
/// bytes as a big-endian unsigned integer `h`; keep the event when `h / 2^64 < rate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    rate: f64,
}

impl Sampler {
    /// A sampler keeping about `rate` (0.0 to 1.0) of events; values outside are clamped, and
    /// NaN keeps nothing.
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        Sampler { rate }
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether the event with this id is kept.
    pub fn keep(&self, id: &str) -> bool {
        if self.rate >= 1.0 {
            return true;
        }
        if self.rate <= 0.0 {
            return false;
        }
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let h = u64::from_be_bytes(first);
        // 2^64 as f64 is exact; h as f64 rounds to 53 bits, far finer than any useful rate.
        (h as f64) < self.rate * 18_446_744_073_709_551_616.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_ids_same_decisions_and_about_the_rate() {
        let s = Sampler::new(0.1);
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("at://did:plc:x/app.bsky.feed.like/{i}#rev"))
            .collect();
        let first: Vec<bool> = ids.iter().map(|id| s.keep(id)).collect();
        let second: Vec<bool> = ids.iter().map(|id| Sampler::new(0.1).keep(id)).collect();
        assert_eq!(first, second);
        let kept = first.iter().filter(|k| **k).count();
        assert!(
            (1_700..2_300).contains(&kept),
            "kept {kept} of 20000 at 10%"
        );
        // A lower rate keeps a subset of what a higher rate keeps.
        let low = Sampler::new(0.05);
        assert!(ids.iter().all(|id| !low.keep(id) || s.keep(id)));
    }

    #[test]
    fn edges() {
        assert!(Sampler::new(1.0).keep("x"));
        assert!(Sampler::new(7.0).keep("x"));
        assert!(!Sampler::new(0.0).keep("x"));
        assert!(!Sampler::new(-1.0).keep("x"));
        assert!(!Sampler::new(f64::NAN).keep("x"));
        // The documented rule, checked against a known digest: SHA-256("abc") starts ba7816bf…
        let h = 0xba78_16bf_8f01_cfeau64 as f64 / 18_446_744_073_709_551_616.0;
        assert!(Sampler::new(h + 0.001).keep("abc"));
        assert!(!Sampler::new(h - 0.001).keep("abc"));
    }
}
