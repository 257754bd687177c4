//! Page cursors. Opaque to clients, strictly validated here, and never interpolated into SQL.

use std::fmt;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageCursor {
    /// Chronological: items inserted before this sequence number.
    Before(i64),
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
            return seq.parse().ok().map(PageCursor::Before);
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
            PageCursor::Before(seq) => write!(f, "c.{seq}"),
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
            PageCursor::Before(12345),
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
        ] {
            assert_eq!(PageCursor::parse(bad), None, "{bad:?}");
        }
    }
}
