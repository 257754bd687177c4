//! The SQLite backend: the embedded default. See [`SqliteStore`] for the connection layout
//! and the durability settings. Everything runs through `SqliteStore::blocking`, on the writer
//! or on a connection of the reader pool; the feed queries are in `feed::sqlite`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::checkpoint::Checkpointer;
use crate::error::{cursor_from_sql, cursor_to_sql, StoreError};
use crate::migrations::{
    newer_schema_error, MigrationReport, LATEST_SCHEMA_VERSION, SQLITE_MIGRATIONS,
};
use crate::{now_unix_ms, CursorRow, CursorStore};

/// How long a statement waits for another connection's (or process's) lock before failing
/// with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections of a database file: feed pages are served by up to this many at once,
/// while the writer commits.
pub const SQLITE_READERS: usize = 4;

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    applied_at  INTEGER NOT NULL
) STRICT";

const LOAD_CURSOR: &str = "SELECT cursor FROM cursors WHERE source = ?1";
const SAVE_CURSOR: &str = "INSERT INTO cursors (source, cursor, updated_at) VALUES (?1, ?2, ?3)
    ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";
const LIST_CURSORS: &str = "SELECT source, cursor, updated_at FROM cursors ORDER BY source";

/// skystream's state in a SQLite database: a file (WAL mode, so it comes with `-wal` and
/// `-shm` files beside it) or a private in-memory database.
///
/// One writer connection and a pool of [`SQLITE_READERS`] query-only reader connections, used
/// only from `tokio::task::spawn_blocking`, so a slow disk never stalls the async runtime. WAL
/// lets the readers run while the writer commits, so feed pages never wait on the indexer;
/// every write (a cursor save, a [`FeedStore::apply`](crate::FeedStore::apply) batch, which is
/// one `BEGIN IMMEDIATE` transaction) goes through the one writer, in turn. A read waits
/// (asynchronously, holding no thread) for a free reader. Another process may open the same
/// file: locks wait up to 5 s (`busy_timeout`).
///
/// **Durability:** `journal_mode=WAL` with `synchronous=NORMAL`. A committed transaction is in
/// the WAL file before the call returns, so it survives the process being killed (`kill -9`, a
/// panic, the OOM killer): that is the threat model, and a test kills a writer to prove it.
/// What NORMAL gives up against FULL is the fsync at each commit, so a power cut or kernel
/// crash can lose the last transactions since the previous checkpoint. For the cursor that is
/// safe: WAL loses only a suffix of commits, so the saved cursor can only go *back* to an
/// earlier saved value, and the events after it are delivered again (at least once), never
/// skipped; feed data in the same database rolls back together with it. An fsync a second
/// would cost little for cursors, but the feed tables commit far more often on the same
/// connection and setting.
///
/// [`open`](Self::open) connects without touching the schema; call
/// [`migrate`](Self::migrate) before use, or use [`Store::open`](crate::Store::open), which
/// does both. Clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    /// Copies the WAL into the file off the writer's path; `None` in memory.
    _checkpointer: Option<Checkpointer>,
    /// `None` for `:memory:`, where every connection would see its own empty database.
    readers: Option<Readers>,
    path: Option<PathBuf>,
    describe: String,
}

/// The reader pool: a permit per idle connection, so waiting for one takes no thread.
struct Readers {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

#[derive(Clone, Copy)]
pub(crate) enum Role {
    Read,
    Write,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`: sets WAL mode,
    /// `synchronous=NORMAL`, a 5 s busy timeout and foreign keys, and opens
    /// [`SQLITE_READERS`] more, query-only connections for reads. The directory must exist.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let describe = format!("sqlite:{}", path.display());
        let task_describe = describe.clone();
        let task_path = path.clone();
        let (writer, readers, checkpointer) = unblock(&describe, move || {
            let writer = open_writer(Some(&task_path), &task_describe)?;
            let readers = (0..SQLITE_READERS)
                .map(|_| open_reader(&task_path, &task_describe))
                .collect::<Result<Vec<_>, _>>()?;
            let checkpointer = Checkpointer::start(&task_path, BUSY_TIMEOUT).map_err(|e| {
                StoreError::connect(format!(
                    "{task_describe}: cannot start the WAL checkpoint thread: {e}"
                ))
            })?;
            Ok((writer, readers, checkpointer))
        })
        .await?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                _checkpointer: Some(checkpointer),
                readers: Some(Readers {
                    permits: Arc::new(Semaphore::new(readers.len())),
                    idle: Mutex::new(readers),
                }),
                path: Some(path),
                describe,
            }),
        })
    }

    /// Opens a private in-memory database (one connection, which does reads and writes). Its
    /// contents go when the last clone is dropped.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let describe = "sqlite::memory:".to_owned();
        let task_describe = describe.clone();
        let writer = unblock(&describe, move || open_writer(None, &task_describe)).await?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                _checkpointer: None,
                readers: None,
                path: None,
                describe,
            }),
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// `sqlite:PATH` or `sqlite::memory:`, for logs.
    pub fn describe(&self) -> &str {
        &self.inner.describe
    }

    /// Applies the migrations this database lacks, each in its own `BEGIN IMMEDIATE`
    /// transaction (so two processes migrating one file at once apply each step once).
    /// Running it again is a no-op; a database from a newer skystream is refused.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.blocking(Role::Write, migrate).await
    }

    /// The schema version: the highest applied migration, 0 for a database never migrated.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            schema_version(conn).map_err(|e| query_error(db, "reading the schema version", e))
        })
        .await
    }

    /// Runs `f` on a connection on the blocking thread pool. Reads go to a free connection of
    /// the reader pool (waiting for one without holding a thread; the writer in memory),
    /// writes to the writer.
    pub(crate) async fn blocking<T, F>(&self, role: Role, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let permit = match (role, &self.inner.readers) {
            (Role::Read, Some(readers)) => Some(
                Arc::clone(&readers.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| {
                        StoreError::query(format!(
                            "{}: the reader pool is closed",
                            self.inner.describe
                        ))
                    })?,
            ),
            _ => None,
        };
        unblock(&self.inner.describe, move || {
            // A permit guarantees an idle reader (it is released after the reader is back).
            let mut reader = match (&permit, &inner.readers) {
                (Some(_), Some(readers)) => Some(PooledReader {
                    conn: readers
                        .idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop(),
                    readers,
                }),
                _ => None,
            };
            let result = match reader.as_mut().and_then(|r| r.conn.as_mut()) {
                Some(conn) => f(conn, &inner.describe),
                None => {
                    // A panic inside `f` unwinds through rusqlite's `Transaction`, which rolls
                    // back on drop, so the connection is fine to use after a poisoning.
                    let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
                    f(&mut conn, &inner.describe)
                }
            };
            drop(reader);
            drop(permit);
            result
        })
        .await
    }
}

/// A reader taken from the pool; goes back on drop (also when `f` panics).
struct PooledReader<'a> {
    conn: Option<Connection>,
    readers: &'a Readers,
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SqliteStore")
            .field(&self.inner.describe)
            .finish()
    }
}

#[async_trait]
impl CursorStore for SqliteStore {
    async fn load_cursor(&self, source: &str) -> Result<Option<u64>, StoreError> {
        let source = source.to_owned();
        self.blocking(Role::Read, move |conn, db| {
            let cursor: Option<i64> = conn
                .prepare_cached(LOAD_CURSOR)
                .and_then(|mut stmt| stmt.query_row([&source], |row| row.get(0)).optional())
                .map_err(|e| query_error(db, "loading a cursor", e))?;
            cursor.map(|c| cursor_from_sql(&source, c)).transpose()
        })
        .await
    }

    async fn save_cursor(&self, source: &str, cursor: u64) -> Result<(), StoreError> {
        let cursor = cursor_to_sql(source, cursor)?;
        let source = source.to_owned();
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            conn.prepare_cached(SAVE_CURSOR)
                .and_then(|mut stmt| stmt.execute(params![source, cursor, now]))
                .map_err(|e| query_error(db, "saving a cursor", e))?;
            Ok(())
        })
        .await
    }

    async fn list_cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            let rows: Vec<(String, i64, i64)> = conn
                .prepare_cached(LIST_CURSORS)
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                        .collect()
                })
                .map_err(|e| query_error(db, "listing cursors", e))?;
            rows.into_iter()
                .map(|(source, cursor, updated_at_ms)| {
                    Ok(CursorRow {
                        cursor: cursor_from_sql(&source, cursor)?,
                        source,
                        updated_at_ms,
                    })
                })
                .collect()
        })
        .await
    }
}

/// Runs blocking work on tokio's blocking pool; a panic in it resumes in the caller.
async fn unblock<T, F>(describe: &str, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::query(format!(
            "{describe}: the database task was cancelled (the runtime is shutting down)"
        ))),
    }
}

fn open_writer(path: Option<&Path>, db: &str) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_URI: a path is a path, even if it starts with `file:`.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match path {
        Some(path) => Connection::open_with_flags(path, flags),
        None => Connection::open_in_memory_with_flags(flags),
    }
    .map_err(|e| open_error(db, "opening", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(db, "setting the busy timeout", e))?;
    // The first statement that reads the file: this is where "not a database" shows up.
    let mode = set_wal(&conn).map_err(|e| open_error(db, "switching to WAL mode", e))?;
    if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::connect(format!(
            "could not open the SQLite database {db} in WAL mode (journal_mode is {mode:?})"
        )));
    }
    // The default page cache (2 MB) is outgrown by the feed indexes at a few hundred thousand
    // posts, after which every insert reads index pages back from the OS; 64 MB keeps them.
    // Checkpoints run on their own thread (crate::checkpoint), not inside the writer's commits.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(|e| open_error(db, "setting synchronous, foreign_keys and the cache", e))?;
    Ok(conn)
}

/// `PRAGMA journal_mode = WAL`, retried for up to [`BUSY_TIMEOUT`]: when several connections
/// open a new file at once, the switch can fail with SQLITE_BUSY without waiting on the busy
/// handler.
fn set_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                // On a blocking-pool thread: sleeping here stalls no async task.
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

fn open_reader(path: &Path, db: &str) -> Result<Connection, StoreError> {
    // Opened after the writer created the file and set WAL mode, which is stored in the file.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| open_error(db, "opening the reader", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(db, "setting the busy timeout", e))?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA foreign_keys = ON;")
        .map_err(|e| open_error(db, "setting query_only", e))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, db: &str) -> Result<MigrationReport, StoreError> {
    let fail = |what: &str, e: rusqlite::Error| {
        StoreError::migration(format!("migrating {db}: {what} failed: {e}"))
    };
    conn.execute_batch(BOOTSTRAP)
        .map_err(|e| fail("creating schema_migrations", e))?;
    let from_version = schema_version(conn).map_err(|e| fail("reading the schema version", e))?;
    if from_version > LATEST_SCHEMA_VERSION {
        return Err(newer_schema_error(db, from_version));
    }
    let mut applied = Vec::new();
    for migration in SQLITE_MIGRATIONS {
        if is_applied(conn, migration.version).map_err(|e| fail("reading schema_migrations", e))? {
            continue;
        }
        let step = format!(
            "migration {} ({})",
            migration.version, migration.description
        );
        // A migration that rebuilds a table runs with foreign keys off (dropping the old table
        // would otherwise cascade into its children); they are checked before the commit. The
        // pragma has no effect inside a transaction, so it is set around it.
        let fk_off = migration.sql.starts_with(FOREIGN_KEYS_OFF);
        if fk_off {
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(|e| fail(&step, e))?;
        }
        let result = apply_migration(conn, migration, fk_off);
        if fk_off {
            conn.execute_batch("PRAGMA foreign_keys = ON")
                .map_err(|e| fail(&step, e))?;
        }
        if !result.map_err(|e| fail(&step, e))? {
            continue;
        }
        applied.push(migration.version);
    }
    let to_version = schema_version(conn).map_err(|e| fail("reading the schema version", e))?;
    Ok(MigrationReport {
        from_version,
        to_version,
        applied,
    })
}

/// The first line of a migration that must run with foreign keys off.
const FOREIGN_KEYS_OFF: &str = "-- skystream: foreign_keys off";

/// Runs one migration in its own transaction; `false` when another process applied it first.
fn apply_migration(
    conn: &mut Connection,
    migration: &crate::migrations::Migration,
    check_foreign_keys: bool,
) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have applied it between the check and the lock.
    if is_applied(&tx, migration.version)? {
        return Ok(false);
    }
    tx.execute_batch(migration.sql)?;
    if check_foreign_keys {
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some(format!("{broken} rows would break a foreign key")),
            ));
        }
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
        params![migration.version, migration.description, now_unix_ms()],
    )?;
    tx.commit()?;
    Ok(true)
}

fn is_applied(conn: &Connection, version: u32) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
        [version],
        |row| row.get(0),
    )
}

fn schema_version(conn: &Connection) -> rusqlite::Result<u32> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master \
         WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )
}

fn open_error(db: &str, step: &str, e: rusqlite::Error) -> StoreError {
    let hint = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "; the file exists but is not a SQLite database",
        Some(ErrorCode::CannotOpen) => "; does its directory exist, and may skystream write there?",
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            "; skystream needs to write the file and the -wal and -shm files beside it"
        }
        _ => "",
    };
    StoreError::connect(format!(
        "could not open the SQLite database {db} ({step}): {e}{hint}"
    ))
}

pub(crate) fn query_error(db: &str, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::query(format!("{what} failed on {db}: {e}"))
}
