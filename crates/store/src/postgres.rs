//! The PostgreSQL backend, for when one machine is not enough. See [`PostgresStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use crate::error::{cursor_from_sql, cursor_to_sql, error_chain, StoreError};
use crate::migrations::{
    newer_schema_error, MigrationReport, LATEST_SCHEMA_VERSION, POSTGRES_MIGRATIONS,
};
use crate::url::{StoreUrl, Target};
use crate::{now_unix_ms, CursorRow, CursorStore};

/// Connect timeout used when the URL sets none (`connect_timeout=SECONDS` overrides it).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 8;

/// Serializes migrations of one schema across processes: the first key of
/// `pg_advisory_xact_lock(key, hashtext(current_schema()))`, "skys" in ASCII.
const MIGRATION_LOCK: i32 = 0x736b_7973;

const LOCK_FOR_MIGRATION: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))";

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    applied_at  BIGINT  NOT NULL
)";

const LOAD_CURSOR: &str = "SELECT cursor FROM cursors WHERE source = $1";
const SAVE_CURSOR: &str = "INSERT INTO cursors (source, cursor, updated_at) VALUES ($1, $2, $3)
    ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at";
// COLLATE "C": byte order, the same as SQLite and MemoryStore whatever the database's locale.
const LIST_CURSORS: &str =
    "SELECT source, cursor, updated_at FROM cursors ORDER BY source COLLATE \"C\"";

/// skystream's state in a PostgreSQL database, through a pool of up to 8 connections.
///
/// `tokio-postgres` without TLS (the server is expected on the same host or a private network)
/// behind a `deadpool-postgres` pool: reads take any free connection, and each
/// [`FeedStore::apply`](crate::FeedStore::apply) batch is one transaction on one, its
/// statements pipelined (sent together, one round trip per batch), and retried whole if the
/// server aborts it for a deadlock with another writer. Tables go in the first schema of the session's
/// `search_path`, so a deployment (or a test) can keep to a schema of its own with
/// `?options=-csearch_path%3DNAME` in the URL. Durability is the server's: with the default
/// `synchronous_commit=on`, a saved cursor is on disk when `save_cursor` returns.
///
/// [`connect`](Self::connect) checks that the server answers but does not touch the schema;
/// call [`migrate`](Self::migrate) before use, or use [`Store::open`](crate::Store::open),
/// which does both. Clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    describe: Arc<str>,
    /// `127.0.0.1:5432`, or a socket directory: where the server was expected, for hints.
    address: Arc<str>,
}

impl PostgresStore {
    /// Connects to the PostgreSQL server named by a `postgres://` or `postgresql://` URL and
    /// checks that it accepts a session. Fails with a
    /// [`Connect`](crate::StoreErrorKind::Connect) error within a second of the connect
    /// timeout ([`DEFAULT_CONNECT_TIMEOUT`] unless the URL sets `connect_timeout=SECONDS`).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let parsed = StoreUrl::parse(url)?;
        let Target::Postgres(config) = parsed.target() else {
            return Err(StoreError::config(format!(
                "{parsed} is not a PostgreSQL URL; expected \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            )));
        };
        Self::connect_config((**config).clone(), parsed.redacted()).await
    }

    pub(crate) async fn connect_config(
        mut config: tokio_postgres::Config,
        describe: &str,
    ) -> Result<PostgresStore, StoreError> {
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("skystream");
        }
        let address = address_of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            // The connect timeout covers reaching the socket; this bounds the whole session
            // start-up too (a server that accepts TCP but never answers).
            .create_timeout(Some(timeout + Duration::from_secs(1)))
            .build()
            .map_err(|e| StoreError::config(format!("{describe}: cannot build the pool: {e}")))?;
        let store = PostgresStore {
            pool,
            describe: describe.into(),
            address: address.into(),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// The URL with the password elided, for logs.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Applies the migrations this schema lacks, each in its own transaction holding an
    /// advisory lock (so concurrent migrators of one schema apply each step once). Running it
    /// again is a no-op; a database from a newer skystream is refused.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let db = &*self.describe;
        let fail = |what: &str, e: tokio_postgres::Error| {
            StoreError::migration(format!("migrating {db}: {what} failed: {}", chain(&e)))
        };
        let mut client = self.client().await?;
        {
            let tx = client
                .transaction()
                .await
                .map_err(|e| fail("creating schema_migrations", e))?;
            tx.execute(LOCK_FOR_MIGRATION, &[&MIGRATION_LOCK])
                .await
                .map_err(|e| fail("taking the migration lock", e))?;
            tx.batch_execute(BOOTSTRAP)
                .await
                .map_err(|e| fail("creating schema_migrations", e))?;
            tx.commit()
                .await
                .map_err(|e| fail("creating schema_migrations", e))?;
        }
        let from_version = schema_version(&client)
            .await
            .map_err(|e| fail("reading the schema version", e))?;
        if from_version > LATEST_SCHEMA_VERSION {
            return Err(newer_schema_error(db, from_version));
        }
        let mut applied = Vec::new();
        for migration in POSTGRES_MIGRATIONS {
            if is_applied(&client, migration.version)
                .await
                .map_err(|e| fail("reading schema_migrations", e))?
            {
                continue;
            }
            let step = format!(
                "migration {} ({})",
                migration.version, migration.description
            );
            let tx = client.transaction().await.map_err(|e| fail(&step, e))?;
            tx.execute(LOCK_FOR_MIGRATION, &[&MIGRATION_LOCK])
                .await
                .map_err(|e| fail(&step, e))?;
            // Another process may have applied it between the check and the lock.
            if is_applied(&tx, migration.version)
                .await
                .map_err(|e| fail(&step, e))?
            {
                continue;
            }
            tx.batch_execute(migration.sql)
                .await
                .map_err(|e| fail(&step, e))?;
            let version = version_to_sql(migration.version);
            tx.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) \
                 VALUES ($1, $2, $3)",
                &[&version, &migration.description, &now_unix_ms()],
            )
            .await
            .map_err(|e| fail(&step, e))?;
            tx.commit().await.map_err(|e| fail(&step, e))?;
            applied.push(migration.version);
        }
        let to_version = schema_version(&client)
            .await
            .map_err(|e| fail("reading the schema version", e))?;
        Ok(MigrationReport {
            from_version,
            to_version,
            applied,
        })
    }

    /// The schema version: the highest applied migration, 0 for a schema never migrated.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        let client = self.client().await?;
        schema_version(&client)
            .await
            .map_err(|e| self.query_error("reading the schema version", &e))
    }

    /// A pooled connection, or a [`Connect`](crate::StoreErrorKind::Connect) error that says
    /// where the server was expected.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            let (cause, reachable) = match &e {
                PoolError::Backend(e) => (chain(e), e.as_db_error().is_some()),
                PoolError::Timeout(TimeoutType::Create) => (
                    "timed out starting a session (is that a PostgreSQL server?)".to_owned(),
                    true,
                ),
                PoolError::Timeout(_) => (
                    "timed out waiting for a free connection in the pool".to_owned(),
                    true,
                ),
                other => (other.to_string(), true),
            };
            // A server error (bad password, no such database) means it is running; only
            // network failures get the hint.
            let hint = if reachable {
                String::new()
            } else {
                format!("; is PostgreSQL running on {}?", self.address)
            };
            StoreError::connect(format!(
                "could not connect to PostgreSQL at {}: {cause}{hint}",
                self.describe
            ))
        })
    }

    pub(crate) fn query_error(&self, what: &str, e: &tokio_postgres::Error) -> StoreError {
        StoreError::query(format!("{what} failed on {}: {}", self.describe, chain(e)))
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresStore")
            .field(&self.describe)
            .finish()
    }
}

#[async_trait]
impl CursorStore for PostgresStore {
    async fn load_cursor(&self, source: &str) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("loading a cursor", &e);
        let stmt = client.prepare_cached(LOAD_CURSOR).await.map_err(fail)?;
        let row = client.query_opt(&stmt, &[&source]).await.map_err(fail)?;
        row.map(|row| {
            let cursor: i64 = row.try_get(0).map_err(fail)?;
            cursor_from_sql(source, cursor)
        })
        .transpose()
    }

    async fn save_cursor(&self, source: &str, cursor: u64) -> Result<(), StoreError> {
        let cursor = cursor_to_sql(source, cursor)?;
        let client = self.client().await?;
        let fail = |e| self.query_error("saving a cursor", &e);
        let stmt = client.prepare_cached(SAVE_CURSOR).await.map_err(fail)?;
        client
            .execute(&stmt, &[&source, &cursor, &now_unix_ms()])
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn list_cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("listing cursors", &e);
        let stmt = client.prepare_cached(LIST_CURSORS).await.map_err(fail)?;
        let rows = client.query(&stmt, &[]).await.map_err(fail)?;
        rows.iter()
            .map(|row| {
                let source: String = row.try_get(0).map_err(fail)?;
                let cursor: i64 = row.try_get(1).map_err(fail)?;
                let updated_at_ms: i64 = row.try_get(2).map_err(fail)?;
                Ok(CursorRow {
                    cursor: cursor_from_sql(&source, cursor)?,
                    source,
                    updated_at_ms,
                })
            })
            .collect()
    }
}

async fn is_applied(
    client: &impl deadpool_postgres::GenericClient,
    version: u32,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
            &[&version_to_sql(version)],
        )
        .await?;
    row.try_get(0)
}

async fn schema_version(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<u32, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let version: i32 = row.try_get(0)?;
    // The column only ever holds versions from the migration lists.
    Ok(u32::try_from(version).unwrap_or(0))
}

/// Migration versions are small; the column is a 32-bit INTEGER.
fn version_to_sql(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

/// The error and its causes (tokio-postgres keeps the useful part, such as "Connection
/// refused" or the server's message, in the source chain).
fn chain(e: &tokio_postgres::Error) -> String {
    error_chain(e)
}

/// Where the server is expected: the first host and its port.
fn address_of(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]:{port}"),
        Some(Host::Tcp(host)) => format!("{host}:{port}"),
        #[cfg(unix)]
        Some(Host::Unix(dir)) => format!("the socket in {} (port {port})", dir.display()),
        None => format!("localhost:{port}"),
    }
}
