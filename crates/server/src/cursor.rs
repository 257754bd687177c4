//! Page cursors. Opaque to clients, strictly validated here, and never interpolated into SQL.

use std::fmt;

use skystream_store::PagePosition;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq)]
pub enum PageCursor {
    /// Chronological: the items after this one (by time, then insertion sequence).
    After(PagePosition),
    /// Chronological, as cursors were before pages followed the posts' time (`c.SEQ`):
    /// recognised so the client is told to start again rather than that it sent junk.
    Outdated,
    /// Ranked: position `offset` in snapshot `id`.
    Snapshot {
        /// The snapshot's id (hex).
        id: String,
        /// Items already served.
        offset: usize,
    },
}

impl PageCursor {
    /// Parses a cursor from a query string; `None` for anything malformed.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(seq) = s.strip_prefix("c.") {
            if seq.is_empty() || seq.len() > 19 || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return seq.parse::<i64>().ok().map(|_| PageCursor::Outdated);
        }
        if let Some(rest) = s.strip_prefix("t.") {
            // t.SEQ.SCORE: the score is f64's shortest round-trip text, so it compares equal.
            let (seq, score) = rest.split_once('.')?;
            let seq_ok =
                !seq.is_empty() && seq.len() <= 19 && seq.bytes().all(|b| b.is_ascii_digit());
            let score_ok = !score.is_empty()
                && score.len() <= 40
                && score
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
            if !(seq_ok && score_ok) {
                return None;
            }
            let score: f64 = score.parse().ok().filter(|f: &f64| f.is_finite())?;
            return Some(PageCursor::After(PagePosition {
                score,
                seq: seq.parse().ok()?,
            }));
        }
        let rest = s.strip_prefix("r.")?;
        let (id, offset) = rest.split_once('.')?;
        let id_ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let off_ok =
            !offset.is_empty() && offset.len() <= 6 && offset.bytes().all(|b| b.is_ascii_digit());
        if !(id_ok && off_ok) {
            return None;
        }
        Some(PageCursor::Snapshot {
            id: id.to_ascii_lowercase(),
            offset: offset.parse().ok()?,
        })
    }
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageCursor::After(p) => write!(f, "t.{}.{}", p.seq, p.score),
            PageCursor::Outdated => f.write_str("c.0"),
            PageCursor::Snapshot { id, offset } => write!(f, "r.{id}.{offset}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_junk() {
        for c in [
            PageCursor::After(PagePosition {
                score: 1_783_175_886.24,
                seq: 12345,
            }),
            PageCursor::After(PagePosition {
                score: -0.5,
                seq: 0,
            }),
            PageCursor::After(PagePosition {
                score: 1_783_175_886.000_001,
                seq: 7,
            }),
            PageCursor::Snapshot {
                id: "0123456789abcdef0123456789abcdef".into(),
                offset: 30,
            },
        ] {
            assert_eq!(PageCursor::parse(&c.to_string()), Some(c));
        }
        for bad in [
            "",
            "c.",
            "c.-1",
            "c.1 OR 1=1",
            "c.99999999999999999999",
            "r.abc.1",
            "r.0123456789abcdef0123456789abcdef.",
            "r.0123456789abcdef0123456789abcdef.1x",
            "x.1",
            "c.1.2",
            "t.1",
            "t.1.",
            "t..1.5",
            "t.1.1e9",
            "t.1.NaN",
            "t.1.inf",
            "t.-1.5",
            "t.1.5 OR 1=1",
        ] {
            assert_eq!(PageCursor::parse(bad), None, "{bad:?}");
        }
        // A cursor from before pages followed the posts' time is known, and outdated.
        assert_eq!(PageCursor::parse("c.12345"), Some(PageCursor::Outdated));
    }
}
