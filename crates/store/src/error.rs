//! The one error type of the crate.

use std::fmt;

/// What went wrong, for callers that branch on the failure;
/// [`StoreErrorKind::as_str`] gives a stable snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store URL is not one of the accepted forms (the message lists them).
    Config,
    /// The database could not be opened or reached: a missing directory, a file that is not a
    /// SQLite database, PostgreSQL down or refusing the login. The message names the URL
    /// (password elided).
    Connect,
    /// Bringing the schema up to date failed, or the database was migrated by a newer skystream
    /// than this one.
    Migration,
    /// A statement failed on an open database (including a connection lost mid-query and data
    /// that breaks the schema's rules).
    Query,
    /// A cursor above `i64::MAX`, the largest a 64-bit signed SQL integer holds.
    CursorOutOfRange,
    /// A value given to the store that it refuses on every backend, before touching the
    /// database: a feed score that is not a finite number (NaN would have no place in a
    /// ranking), a `min_likes` above `i64::MAX`.
    InvalidValue,
}

impl StoreErrorKind {
    /// A short snake_case name, suitable as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Connect => "connect",
            Self::Migration => "migration",
            Self::Query => "query",
            Self::CursorOutOfRange => "cursor_out_of_range",
            Self::InvalidValue => "invalid_value",
        }
    }
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the store.
///
/// The message says what failed, on which database (URL with the password elided) and why,
/// including the driver's own text; so [`std::error::Error::source`] is `None`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Config, message)
    }

    pub(crate) fn connect(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Connect, message)
    }

    pub(crate) fn migration(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Migration, message)
    }

    pub(crate) fn query(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Query, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::InvalidValue, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message alone (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// An error and its causes, joined by ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Converts a cursor to the signed 64-bit integer SQL stores, or says why it cannot be.
pub(crate) fn cursor_to_sql(source: &str, cursor: u64) -> Result<i64, StoreError> {
    i64::try_from(cursor).map_err(|_| {
        StoreError::new(
            StoreErrorKind::CursorOutOfRange,
            format!(
                "cannot save cursor {cursor} for source {source:?}: cursors are stored as \
                 signed 64-bit integers, so the largest is {} (i64::MAX)",
                i64::MAX
            ),
        )
    })
}

/// Converts a stored cursor back; a negative one means the table was edited by hand.
pub(crate) fn cursor_from_sql(source: &str, cursor: i64) -> Result<u64, StoreError> {
    u64::try_from(cursor).map_err(|_| {
        StoreError::query(format!(
            "the stored cursor for source {source:?} is negative ({cursor}); \
             the cursors table has been edited outside skystream"
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        assert_eq!(StoreErrorKind::Config.as_str(), "config");
        assert_eq!(StoreErrorKind::Connect.to_string(), "connect");
        assert_eq!(StoreErrorKind::Migration.as_str(), "migration");
        assert_eq!(StoreErrorKind::Query.as_str(), "query");
        assert_eq!(
            StoreErrorKind::CursorOutOfRange.as_str(),
            "cursor_out_of_range"
        );
        assert_eq!(StoreErrorKind::InvalidValue.as_str(), "invalid_value");
    }

    #[test]
    fn cursor_range() {
        assert_eq!(cursor_to_sql("s", 0), Ok(0));
        assert_eq!(cursor_to_sql("s", i64::MAX as u64), Ok(i64::MAX));
        let err = cursor_to_sql("s", i64::MAX as u64 + 1).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::CursorOutOfRange);
        assert!(err.to_string().contains("9223372036854775808"), "{err}");
        assert_eq!(cursor_from_sql("s", 7), Ok(7));
        assert_eq!(
            cursor_from_sql("s", -1).unwrap_err().kind(),
            StoreErrorKind::Query
        );
    }
}
