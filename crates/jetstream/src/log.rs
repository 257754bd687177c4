//! The durable replay log: one SQLite table keyed by `time_us`.
//!
//! SQLite (through rusqlite, the build's one SQLite driver) rather than hand-written segment
//! files: a batch commits atomically (a crash never leaves half a batch or a torn record), the
//! `time_us` primary key is the table's own b-tree key, so a replay is one ordered range scan
//! and retention one range delete, and WAL lets subscribers read while the writer appends.
//! Each row keeps the JSON and the zstd frame made once at append time, so a replay sends the
//! stored bytes without rendering or compressing again, plus the DID and collection that
//! filters look at. `synchronous=FULL` makes a commit durable when `append` returns, which is
//! what lets the pipeline save the upstream cursor after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::entry::Entry;

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// SQLite refused.
    #[error("replay log {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A lock was poisoned by a panic elsewhere.
    #[error("replay log lock poisoned")]
    Poisoned,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    time_us    INTEGER PRIMARY KEY,
    did        TEXT NOT NULL,
    collection TEXT,
    json       TEXT NOT NULL,
    zstd       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS upstream (
    source TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS upstream_offsets (
    source      TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (source, partition)
) WITHOUT ROWID;
";

/// What a batch's append records about the upstream it came from, in the same transaction as
/// its events, so a restart knows exactly what the log already has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamMark {
    /// The source's cursor key.
    pub source: String,
    /// The upstream cursor that covers the batch (a relay seq, a Jetstream time).
    pub cursor: Option<u64>,
    /// For a partitioned upstream (Kafka), per partition the offset after the last message
    /// the log holds. Only partitions the batch moved are listed.
    pub next_offsets: BTreeMap<u32, u64>,
}

/// Rows a trim deletes per statement, so appends never wait long behind a large trim.
const TRIM_CHUNK: i64 = 20_000;
/// Read connections kept open between replays.
const READER_POOL: usize = 8;

/// What a trim removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Rows deleted.
    pub removed: u64,
    /// The newest `time_us` deleted, if any.
    pub newest_removed: Option<i64>,
}

/// The replay log. Every method blocks on SQLite: call them from blocking threads.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Log {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<Log, LogError> {
        let err = |source| LogError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let writer = Connection::open(path).map_err(err)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
            )
            .map_err(err)?;
        writer.execute_batch(SCHEMA).map_err(err)?;
        Ok(Log {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The file the log lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the log takes on disk: the database file and its WAL (a file that is missing, as
    /// the WAL is after a clean close, counts as empty).
    pub fn size_bytes(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        [self.path.as_os_str(), wal.as_os_str()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    fn err(&self, source: rusqlite::Error) -> LogError {
        LogError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LogError> {
        let pooled = self.readers.lock().map_err(|_| LogError::Poisoned)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| self.err(e))?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| self.err(e))?;
                c
            }
        };
        let out = f(&conn).map_err(|e| self.err(e));
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < READER_POOL {
                pool.push(conn);
            }
        }
        out
    }

    /// The oldest and newest `time_us` kept (none when the log is empty).
    pub fn bounds(&self) -> Result<Option<(i64, i64)>, LogError> {
        self.with_reader(|c| {
            c.query_row("SELECT MIN(time_us), MAX(time_us) FROM events", [], |r| {
                Ok(
                    match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                )
            })
        })
    }

    /// The upstream cursor stored with the last batch appended from `source`.
    pub fn upstream_cursor(&self, source: &str) -> Result<Option<u64>, LogError> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT cursor FROM upstream WHERE source = ?1",
                [source],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })
        .map(|c| c.map(|c| c as u64))
    }

    /// Per partition, the offset after the last message from `source` the log holds.
    pub fn upstream_offsets(&self, source: &str) -> Result<BTreeMap<u32, u64>, LogError> {
        self.with_reader(|c| {
            let mut stmt =
                c.prepare("SELECT partition, next_offset FROM upstream_offsets WHERE source = ?1")?;
            let rows = stmt.query_map([source], |r| {
                Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        })
    }

    /// Appends `entries` (in increasing `time_us`) and, in the same transaction, the upstream
    /// position that covers them. Durable when it returns.
    pub fn append(
        &self,
        entries: &[Arc<Entry>],
        upstream: Option<&UpstreamMark>,
    ) -> Result<(), LogError> {
        let mut conn = self.writer.lock().map_err(|_| LogError::Poisoned)?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (time_us, did, collection, json, zstd) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.err(e))?;
            for e in entries {
                insert
                    .execute(params![
                        e.time_us,
                        &*e.did,
                        e.collection.as_deref(),
                        e.json.as_str(),
                        &e.zstd[..]
                    ])
                    .map_err(|e| self.err(e))?;
            }
            if let Some(mark) = upstream {
                if let Some(cursor) = mark.cursor {
                    tx.execute(
                        "INSERT INTO upstream (source, cursor) VALUES (?1, ?2)
                         ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor",
                        params![mark.source, cursor as i64],
                    )
                    .map_err(|e| self.err(e))?;
                }
                let mut offsets = tx
                    .prepare_cached(
                        "INSERT INTO upstream_offsets (source, partition, next_offset) VALUES (?1, ?2, ?3)
                         ON CONFLICT(source, partition) DO UPDATE SET next_offset = excluded.next_offset",
                    )
                    .map_err(|e| self.err(e))?;
                for (partition, next) in &mark.next_offsets {
                    offsets
                        .execute(params![mark.source, *partition as i64, *next as i64])
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Up to `limit` entries with `time_us >= from`, in order.
    pub fn read_from(&self, from: i64, limit: usize) -> Result<Vec<Arc<Entry>>, LogError> {
        self.with_reader(|c| {
            // `LIMIT ?2 + 0`: a bare LIMIT parameter makes SQLite re-prepare on every run.
            let mut stmt = c.prepare_cached(
                "SELECT time_us, did, collection, json, zstd FROM events
                 WHERE time_us >= ?1 ORDER BY time_us LIMIT ?2 + 0",
            )?;
            let rows = stmt.query_map(params![from, limit as i64], |r| {
                Ok(Arc::new(Entry {
                    time_us: r.get(0)?,
                    did: r.get::<_, String>(1)?.into(),
                    collection: r.get::<_, Option<String>>(2)?.map(Into::into),
                    json: r.get::<_, String>(3)?.into(),
                    zstd: r.get::<_, Vec<u8>>(4)?.into(),
                }))
            })?;
            rows.collect()
        })
    }

    /// Deletes every entry with `time_us < cutoff`, a chunk at a time. Before each chunk is
    /// deleted, `about_to_delete` is told the newest `time_us` in it, so readers can tell that
    /// their position is gone before a read could silently step over the hole.
    pub fn trim_before(
        &self,
        cutoff: i64,
        about_to_delete: &dyn Fn(i64),
    ) -> Result<Trimmed, LogError> {
        let mut out = Trimmed::default();
        loop {
            let conn = self.writer.lock().map_err(|_| LogError::Poisoned)?;
            // The end of this chunk: the TRIM_CHUNK-th row below the cutoff, or the cutoff.
            let bound: i64 = conn
                .query_row(
                    "SELECT time_us FROM events WHERE time_us < ?1 ORDER BY time_us LIMIT 1 OFFSET ?2",
                    params![cutoff, TRIM_CHUNK],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?
                .unwrap_or(cutoff);
            let newest: Option<i64> = conn
                .query_row(
                    "SELECT MAX(time_us) FROM events WHERE time_us < ?1",
                    [bound],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if let Some(t) = newest {
                about_to_delete(t);
            }
            let n = conn
                .execute("DELETE FROM events WHERE time_us < ?1", [bound])
                .map_err(|e| self.err(e))?;
            drop(conn);
            out.removed += n as u64;
            if newest.is_some() {
                out.newest_removed = newest;
            }
            if bound >= cutoff || n == 0 {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: i64) -> Arc<Entry> {
        Arc::new(Entry {
            time_us: t,
            did: "did:plc:abc".into(),
            collection: (t % 2 == 0).then(|| "app.bsky.feed.post".into()),
            json: format!("{{\"time_us\":{t}}}").into(),
            zstd: vec![t as u8].into(),
        })
    }

    #[test]
    fn append_read_trim_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.sqlite");
        let log = Log::open(&path).expect("open");
        assert_eq!(log.bounds().expect("bounds"), None);
        let all: Vec<_> = (1..=50).map(entry).collect();
        let mark = |cursor, offsets: &[(u32, u64)]| UpstreamMark {
            source: "relay:x".into(),
            cursor: Some(cursor),
            next_offsets: offsets.iter().copied().collect(),
        };
        log.append(&all[..30], Some(&mark(7, &[(0, 5), (2, 9)])))
            .expect("append");
        log.append(&all[30..], Some(&mark(9, &[(2, 12)])))
            .expect("append");
        assert_eq!(
            log.upstream_offsets("relay:x").expect("offsets"),
            BTreeMap::from([(0, 5), (2, 12)])
        );
        assert!(log.upstream_offsets("other").expect("offsets").is_empty());
        assert_eq!(log.bounds().expect("bounds"), Some((1, 50)));
        assert_eq!(log.upstream_cursor("relay:x").expect("cursor"), Some(9));
        assert_eq!(log.upstream_cursor("other").expect("cursor"), None);
        let got = log.read_from(10, 5).expect("read");
        assert_eq!(got, all[9..14].to_vec());
        let t = log.trim_before(21, &|_| {}).expect("trim");
        assert_eq!(
            t,
            Trimmed {
                removed: 20,
                newest_removed: Some(20)
            }
        );
        assert_eq!(log.read_from(0, 1).expect("read")[0].time_us, 21);
        drop(log);
        let log = Log::open(&path).expect("reopen");
        assert_eq!(log.bounds().expect("bounds"), Some((21, 50)));
        assert_eq!(
            log.trim_before(0, &|_| {}).expect("trim"),
            Trimmed::default()
        );
    }

    #[test]
    fn size_counts_the_database_and_its_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.sqlite");
        let log = Log::open(&path).expect("open");
        let empty = log.size_bytes();
        let all: Vec<_> = (1..=500).map(entry).collect();
        log.append(&all, None).expect("append");
        let wal = std::fs::metadata(dir.path().join("log.sqlite-wal")).map_or(0, |m| m.len());
        let db = std::fs::metadata(&path).expect("database file").len();
        assert!(wal > 0, "a WAL-mode commit writes the WAL first");
        assert_eq!(log.size_bytes(), db + wal);
        assert!(log.size_bytes() > empty);
    }

    #[test]
    fn trims_in_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(&dir.path().join("log.sqlite")).expect("open");
        let all: Vec<_> = (1..=(TRIM_CHUNK * 2 + 5)).map(entry).collect();
        log.append(&all, None).expect("append");
        let t = log.trim_before(TRIM_CHUNK * 2 + 3, &|_| {}).expect("trim");
        assert_eq!(t.removed as i64, TRIM_CHUNK * 2 + 2);
        assert_eq!(t.newest_removed, Some(TRIM_CHUNK * 2 + 2));
        assert_eq!(
            log.bounds().expect("bounds"),
            Some((TRIM_CHUNK * 2 + 3, TRIM_CHUNK * 2 + 5))
        );
    }
}
