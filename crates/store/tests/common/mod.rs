//! Helpers shared by the integration tests: a store under test on each backend ([`Fixture`]) and
//! a private PostgreSQL schema per test. Tests that need PostgreSQL are
//! `#[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]`: a plain `cargo test` lists them as
//! ignored, and `-- --include-ignored` runs them, failing when the server is not there.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use skystream_store::{MemoryStore, Store};
use tokio_postgres::NoTls;

/// Where the tests expect PostgreSQL unless `SKYSTREAM_TEST_POSTGRES` says otherwise.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL for tests.
pub fn postgres_url() -> String {
    std::env::var("SKYSTREAM_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A schema of its own in the test database, dropped (with everything in it) when this is
/// dropped, even if the test panicked.
pub struct PgSchema {
    base_url: String,
    name: String,
}

impl PgSchema {
    /// Creates a fresh schema. An unreachable PostgreSQL fails the test: only tests marked
    /// `#[ignore = "needs PostgreSQL …"]` call this, and they run only when asked for.
    pub async fn create() -> PgSchema {
        let base_url = postgres_url();
        let client = match admin(&base_url).await {
            Ok(client) => client,
            Err(e) => panic!(
                "this test needs PostgreSQL, which is not reachable at {base_url}: {}. \
                 Start it (bash .ci/run does) or set SKYSTREAM_TEST_POSTGRES to one that is",
                chain(&e)
            ),
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "skystream_test_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        PgSchema { base_url, name }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test database's URL with `search_path` set to this schema.
    pub fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options=-csearch_path%3D{}",
            self.base_url, self.name
        )
    }

    /// A connection of its own to this schema.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin(&self.url()).await.unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.base_url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop may run inside the test's runtime (which cannot block) or while unwinding: do
        // the work on a thread with a runtime of its own.
        let result = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = admin(&url).await.map_err(|e| e.to_string())?;
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = result {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// A store under test and what it takes to reopen and clean it up.
pub struct Fixture {
    // Dropped first: the store's connections go before the schema or directory they use.
    pub store: Store,
    /// The URL to open the same database again; `None` for memory.
    pub url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgSchema>,
}

#[derive(Clone, Copy)]
pub enum Under {
    Memory,
    Sqlite,
    Postgres,
}

impl Fixture {
    pub async fn new(under: Under) -> Fixture {
        match under {
            Under::Memory => Fixture {
                store: Store::from(MemoryStore::new()),
                url: None,
                _dir: None,
                _pg: None,
            },
            Under::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("skystream.db").display());
                Fixture {
                    store: Store::open(&url).await.unwrap(),
                    url: Some(url),
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Under::Postgres => {
                let pg = PgSchema::create().await;
                let url = pg.url();
                Fixture {
                    store: Store::open(&url).await.unwrap(),
                    url: Some(url),
                    _dir: None,
                    _pg: Some(pg),
                }
            }
        }
    }
}
