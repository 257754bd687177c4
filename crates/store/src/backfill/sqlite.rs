//! [`BackfillStore`] for [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{
    clip_error, status_from_sql, BackfillProgress, BackfillStore, RepoJob, RepoOutcome, RepoRow,
};
use crate::sqlite::{query_error, Role};
use crate::{now_unix_ms, SqliteStore, StoreError};

const ENQUEUE: &str =
    "INSERT INTO backfill_repos (did, status, updated_at) VALUES (?1, 'pending', ?2) \
     ON CONFLICT (did) DO NOTHING";
const REQUEUE: &str =
    "INSERT INTO backfill_repos (did, status, updated_at) VALUES (?1, 'pending', ?2) \
     ON CONFLICT (did) DO UPDATE SET status = 'pending', attempts = 0, last_error = NULL, \
     updated_at = excluded.updated_at";
// `LIMIT ?N + 0`: a bare LIMIT parameter makes SQLite re-prepare the statement on every run.
const EXHAUSTED: &str = "UPDATE backfill_repos SET status = 'failed', \
     last_error = 'interrupted while being read ' || attempts || ' times (the process stopped mid-read: a crash or an out-of-memory kill?); skystream backfill retry reads it again', updated_at = ?2 \
     WHERE status = 'pending' AND attempts >= ?1";
const CLAIMABLE: &str = "SELECT did, attempts FROM backfill_repos \
     WHERE status IN ('pending', 'failed') AND attempts < ?1 \
     ORDER BY status = 'failed', did LIMIT ?2 + 0";
const CLAIM: &str = "UPDATE backfill_repos SET status = 'in_progress', attempts = attempts + 1, \
     updated_at = ?2 WHERE did = ?1";
const DONE: &str = "UPDATE backfill_repos SET status = 'done', records = ?2, rev = ?3, \
     last_error = NULL, updated_at = ?4 WHERE did = ?1";
const FAILED: &str = "UPDATE backfill_repos SET status = 'failed', \
     last_error = ?2, updated_at = ?3 WHERE did = ?1";
const STOPPED: &str = "UPDATE backfill_repos SET status = 'pending', \
     attempts = MAX(attempts - 1, 0), updated_at = ?2 WHERE did = ?1 AND status = 'in_progress'";
const RESET: &str = "UPDATE backfill_repos SET status = 'pending', updated_at = ?1 \
     WHERE status = 'in_progress'";
const PROGRESS: &str = "SELECT status, COUNT(*), COALESCE(SUM(records), 0) FROM backfill_repos \
     GROUP BY status";
const REPO: &str = "SELECT did, status, attempts, records, rev, last_error FROM backfill_repos \
     WHERE did = ?1";
const FAILED_ROWS: &str = "SELECT did, status, attempts, records, rev, last_error \
     FROM backfill_repos WHERE status = 'failed' ORDER BY attempts DESC, did LIMIT ?1 + 0";
const VALUE: &str = "SELECT value FROM backfill_state WHERE key = ?1";
const SET_VALUE: &str = "INSERT INTO backfill_state (key, value, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
const LEASE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3";
const LEASE_HOLDER: &str = "SELECT holder FROM leases WHERE name = ?1";
const RELEASE: &str = "DELETE FROM leases WHERE name = ?1 AND holder = ?2";

type RowTuple = (String, String, i64, i64, Option<String>, Option<String>);

fn to_row(t: RowTuple) -> Result<RepoRow, StoreError> {
    Ok(RepoRow {
        did: t.0,
        status: status_from_sql(&t.1)?,
        attempts: u32::try_from(t.2).unwrap_or(u32::MAX),
        records: t.3.max(0) as u64,
        rev: t.4,
        last_error: t.5,
    })
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowTuple> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

#[async_trait]
impl BackfillStore for SqliteStore {
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError> {
        let dids = dids.to_vec();
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            let fail = |e| query_error(db, "queueing repositories", e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let mut added = 0;
            {
                let mut stmt = tx.prepare_cached(ENQUEUE).map_err(fail)?;
                for did in &dids {
                    added += stmt.execute(params![did, now]).map_err(fail)? as u64;
                }
            }
            tx.commit().map_err(fail)?;
            Ok(added)
        })
        .await
    }

    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError> {
        let did = did.to_owned();
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            conn.prepare_cached(REQUEUE)
                .and_then(|mut s| s.execute(params![did, now]))
                .map_err(|e| query_error(db, "queueing a repository again", e))?;
            Ok(())
        })
        .await
    }

    async fn claim_repos(
        &self,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<RepoJob>, StoreError> {
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            let fail = |e| query_error(db, "claiming repositories", e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            tx.prepare_cached(EXHAUSTED)
                .and_then(|mut s| s.execute(params![max_attempts, now]))
                .map_err(fail)?;
            let jobs: Vec<(String, i64)> = tx
                .prepare_cached(CLAIMABLE)
                .and_then(|mut s| {
                    s.query_map(params![max_attempts, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect()
                })
                .map_err(fail)?;
            {
                let mut claim = tx.prepare_cached(CLAIM).map_err(fail)?;
                for (did, _) in &jobs {
                    claim.execute(params![did, now]).map_err(fail)?;
                }
            }
            tx.commit().map_err(fail)?;
            Ok(jobs
                .into_iter()
                .map(|(did, attempts)| RepoJob {
                    did,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
                .collect())
        })
        .await
    }

    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError> {
        let did = did.to_owned();
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            let fail = |e| query_error(db, "recording a repository's backfill", e);
            match outcome {
                RepoOutcome::Done { records, rev } => conn
                    .prepare_cached(DONE)
                    .and_then(|mut s| {
                        s.execute(params![did, records.min(i64::MAX as u64) as i64, rev, now])
                    })
                    .map_err(fail)?,
                RepoOutcome::Failed { error } => conn
                    .prepare_cached(FAILED)
                    .and_then(|mut s| s.execute(params![did, clip_error(&error), now]))
                    .map_err(fail)?,
                RepoOutcome::Stopped => conn
                    .prepare_cached(STOPPED)
                    .and_then(|mut s| s.execute(params![did, now]))
                    .map_err(fail)?,
            };
            Ok(())
        })
        .await
    }

    async fn reset_in_progress(&self) -> Result<u64, StoreError> {
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            let n = conn
                .prepare_cached(RESET)
                .and_then(|mut s| s.execute(params![now]))
                .map_err(|e| query_error(db, "resetting claimed repositories", e))?;
            Ok(n as u64)
        })
        .await
    }

    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            let rows: Vec<(String, i64, i64)> = conn
                .prepare_cached(PROGRESS)
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect()
                })
                .map_err(|e| query_error(db, "counting backfill progress", e))?;
            let mut p = BackfillProgress::default();
            for (status, n, records) in rows {
                super::add_count(&mut p, status_from_sql(&status)?, n.max(0) as u64, records);
            }
            Ok(p)
        })
        .await
    }

    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError> {
        let did = did.to_owned();
        self.blocking(Role::Read, move |conn, db| {
            let row = conn
                .prepare_cached(REPO)
                .and_then(|mut s| s.query_row(params![did], read_row).optional())
                .map_err(|e| query_error(db, "reading a repository's backfill", e))?;
            row.map(to_row).transpose()
        })
        .await
    }

    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError> {
        self.blocking(Role::Read, move |conn, db| {
            let rows: Vec<RowTuple> = conn
                .prepare_cached(FAILED_ROWS)
                .and_then(|mut s| s.query_map(params![limit as i64], read_row)?.collect())
                .map_err(|e| query_error(db, "listing failed repositories", e))?;
            rows.into_iter().map(to_row).collect()
        })
        .await
    }

    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.blocking(Role::Read, move |conn, db| {
            conn.prepare_cached(VALUE)
                .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                .map_err(|e| query_error(db, "reading backfill state", e))
        })
        .await
    }

    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            conn.prepare_cached(SET_VALUE)
                .and_then(|mut s| s.execute(params![key, value, now]))
                .map_err(|e| query_error(db, "saving backfill state", e))?;
            Ok(())
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.blocking(Role::Write, move |conn, db| {
            let fail = |e| query_error(db, "taking a lease", e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            tx.prepare_cached(LEASE)
                .and_then(|mut s| {
                    s.execute(params![name, holder, now_ms, now_ms.saturating_add(ttl_ms)])
                })
                .map_err(fail)?;
            let current: Option<String> = tx
                .prepare_cached(LEASE_HOLDER)
                .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(current.as_deref() == Some(holder.as_str()))
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.blocking(Role::Write, move |conn, db| {
            conn.prepare_cached(RELEASE)
                .and_then(|mut s| s.execute(params![name, holder]))
                .map_err(|e| query_error(db, "releasing a lease", e))?;
            Ok(())
        })
        .await
    }
}
