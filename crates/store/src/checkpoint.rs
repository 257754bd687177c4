//! The SQLite checkpointer: a thread of its own that copies the WAL back into the database
//! file, so the writer never does.
//!
//! SQLite's default is an automatic checkpoint inside whichever commit takes the WAL past
//! 1,000 pages. A feed batch dirties more pages than that, so nearly every indexer commit ran a
//! checkpoint, with its fsyncs, on the writer: half of the indexer's time on a real disk went
//! there (200,000 posts: 10.6 s on disk against 5.6 s on tmpfs). Here the writer's automatic
//! checkpoint is off and this thread runs a PASSIVE checkpoint every [`INTERVAL`] on its own
//! connection; PASSIVE never blocks the writer or the readers, and the writer starts the WAL
//! over once a checkpoint has caught up. If readers keep it from catching up and the WAL
//! passes [`TRUNCATE_ABOVE`] bytes, a TRUNCATE checkpoint waits (up to the busy timeout) for a
//! moment without readers and empties the file, so disk use stays bounded.
//!
//! Durability is unchanged: commits are in the WAL either way (`synchronous=NORMAL`), and a
//! crash between checkpoints replays the WAL on open.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tracing::warn;

/// How often the checkpointer runs.
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);
/// A WAL larger than this is truncated even if that means waiting for readers.
pub(crate) const TRUNCATE_ABOVE: u64 = 256 << 20;

/// The running checkpointer; dropping it stops the thread after one last checkpoint.
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (which the writer has opened in WAL mode
    /// with `wal_autocheckpoint = 0`).
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> std::io::Result<Checkpointer> {
        let (stop, stopped) = mpsc::channel::<()>();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let conn = match open(&path, busy_timeout) {
                    Ok(conn) => conn,
                    Err(e) => {
                        warn!(path = %path.display(), error = %e, "cannot open the checkpoint connection; the WAL is checkpointed only when the store is reopened");
                        return;
                    }
                };
                let wal = wal_path(&path);
                loop {
                    let last = match stopped.recv_timeout(INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > TRUNCATE_ABOVE);
                    let mode = if big || last { "TRUNCATE" } else { "PASSIVE" };
                    let result = conn.query_row(
                        &format!("PRAGMA wal_checkpoint({mode})"),
                        [],
                        |row| row.get::<_, i64>(0),
                    );
                    if let Err(e) = result {
                        metrics::counter!("skystream_sqlite_checkpoint_errors_total").increment(1);
                        if !last {
                            warn!(path = %path.display(), mode, error = %e, "WAL checkpoint failed; retrying");
                        }
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_and_truncates_on_stop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let writer = Connection::open(&db).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x BLOB);",
            )
            .unwrap();
        let cp = Checkpointer::start(&db, Duration::from_secs(5)).unwrap();
        for _ in 0..200 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        // The checkpointer copies the frames into the database file.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&db).unwrap().len() < 200 * 4000 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(cp);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(wal_path(&db)).unwrap().len() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was not truncated"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
