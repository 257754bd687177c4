//! The schema, as an ordered list of migrations per backend.
//!
//! To change the schema, add `migrations/sqlite/NNNN_name.sql` and
//! `migrations/postgres/NNNN_name.sql` and one line to each list below, with the next version
//! number. Never edit a migration that has shipped: databases that ran it will not run it again.
//! Each migration runs in its own transaction, together with the insertion of its row in
//! `schema_migrations (version, description, applied_at)`, so it is applied entirely or not at
//! all, and re-running the list skips what a database already has. A SQLite migration whose
//! first line is `-- skystream: foreign_keys off` (one that rebuilds a table) runs with foreign
//! keys off, and they are checked before its commit.

/// One step of the schema: the SQL that takes a database from `version - 1` to `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version this migration produces; versions start at 1 and have no gaps.
    pub version: u32,
    /// A short description, stored with the version in `schema_migrations`.
    pub description: &'static str,
    /// The statements, run as one batch inside the migration's transaction.
    pub sql: &'static str,
}

/// The SQLite schema.
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "cursors",
        sql: include_str!("../migrations/sqlite/0001_cursors.sql"),
    },
    Migration {
        version: 2,
        description: "feeds",
        sql: include_str!("../migrations/sqlite/0002_feeds.sql"),
    },
    Migration {
        version: 3,
        description: "backfill",
        sql: include_str!("../migrations/sqlite/0003_backfill.sql"),
    },
    Migration {
        version: 4,
        description: "repost items",
        sql: include_str!("../migrations/sqlite/0004_repost_items.sql"),
    },
    Migration {
        version: 5,
        description: "time-ordered keys",
        sql: include_str!("../migrations/sqlite/0005_time_ordered_keys.sql"),
    },
    Migration {
        version: 6,
        description: "engagement from counts",
        sql: include_str!("../migrations/sqlite/0006_engagement_from_counts.sql"),
    },
];

/// The PostgreSQL schema: the same versions and tables as [`SQLITE_MIGRATIONS`], in
/// PostgreSQL's dialect.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "cursors",
        sql: include_str!("../migrations/postgres/0001_cursors.sql"),
    },
    Migration {
        version: 2,
        description: "feeds",
        sql: include_str!("../migrations/postgres/0002_feeds.sql"),
    },
    Migration {
        version: 3,
        description: "backfill",
        sql: include_str!("../migrations/postgres/0003_backfill.sql"),
    },
    Migration {
        version: 4,
        description: "repost items",
        sql: include_str!("../migrations/postgres/0004_repost_items.sql"),
    },
    Migration {
        version: 5,
        description: "time-ordered keys",
        sql: include_str!("../migrations/postgres/0005_time_ordered_keys.sql"),
    },
    Migration {
        version: 6,
        description: "engagement from counts",
        sql: include_str!("../migrations/postgres/0006_engagement_from_counts.sql"),
    },
];

/// The schema version this build of skystream writes and expects. A database at a higher
/// version was migrated by a newer skystream and is refused with a
/// [`Migration`](crate::StoreErrorKind::Migration) error rather than used half-understood.
pub const LATEST_SCHEMA_VERSION: u32 = 6;

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The schema version before the run (0 for a new database).
    pub from_version: u32,
    /// The schema version after the run ([`LATEST_SCHEMA_VERSION`] when it succeeds).
    pub to_version: u32,
    /// The versions this run applied, in order; empty when the database was up to date.
    pub applied: Vec<u32>,
}

impl MigrationReport {
    /// A report for a store with nothing to migrate, at `version`.
    pub(crate) fn up_to_date(version: u32) -> Self {
        MigrationReport {
            from_version: version,
            to_version: version,
            applied: Vec::new(),
        }
    }

    /// Whether the run applied nothing.
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty()
    }
}

/// The error for a database whose schema is ahead of this build.
pub(crate) fn newer_schema_error(database: &str, version: u32) -> crate::StoreError {
    crate::StoreError::migration(format!(
        "the database {database} is at schema version {version}, but this skystream only knows \
         versions up to {LATEST_SCHEMA_VERSION}; it was migrated by a newer skystream, so \
         upgrade skystream (or point it at another database)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_ordered_contiguous_and_parallel() {
        for list in [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{m:?}");
                assert!(!m.sql.trim().is_empty());
                assert!(!m.description.is_empty());
            }
            assert_eq!(list.last().map(|m| m.version), Some(LATEST_SCHEMA_VERSION));
        }
        assert_eq!(SQLITE_MIGRATIONS.len(), POSTGRES_MIGRATIONS.len());
        for (s, p) in SQLITE_MIGRATIONS.iter().zip(POSTGRES_MIGRATIONS) {
            assert_eq!((s.version, s.description), (p.version, p.description));
        }
    }
}
