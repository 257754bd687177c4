//! [`BackfillStore`] for [`PostgresStore`]. Claims are one `UPDATE … FOR UPDATE SKIP LOCKED`,
//! so processes sharing the database never claim the same repository.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{
    clip_error, status_from_sql, BackfillProgress, BackfillStore, RepoJob, RepoOutcome, RepoRow,
};
use crate::{now_unix_ms, PostgresStore, StoreError};

const ENQUEUE: &str = "INSERT INTO backfill_repos (did, status, updated_at) \
     SELECT d, 'pending', $2 FROM unnest($1::text[]) AS d ON CONFLICT (did) DO NOTHING";
const REQUEUE: &str =
    "INSERT INTO backfill_repos (did, status, updated_at) VALUES ($1, 'pending', $2) \
     ON CONFLICT (did) DO UPDATE SET status = 'pending', attempts = 0, last_error = NULL, \
     updated_at = excluded.updated_at";
const EXHAUSTED: &str = "UPDATE backfill_repos SET status = 'failed', \
     last_error = 'interrupted while being read ' || attempts || ' times (the process stopped mid-read: a crash or an out-of-memory kill?); skystream backfill retry reads it again', updated_at = $2 \
     WHERE status = 'pending' AND attempts >= $1";
const CLAIM: &str = "WITH picked AS (SELECT did, attempts, status = 'failed' AS retry \
         FROM backfill_repos WHERE status IN ('pending', 'failed') AND attempts < $1 \
         ORDER BY status = 'failed', did LIMIT $2 FOR UPDATE SKIP LOCKED) \
     UPDATE backfill_repos b SET status = 'in_progress', attempts = b.attempts + 1, \
         updated_at = $3 \
     FROM picked WHERE b.did = picked.did \
     RETURNING b.did, picked.attempts, picked.retry";
const DONE: &str = "UPDATE backfill_repos SET status = 'done', records = $2, rev = $3, \
     last_error = NULL, updated_at = $4 WHERE did = $1";
const FAILED: &str = "UPDATE backfill_repos SET status = 'failed', \
     last_error = $2, updated_at = $3 WHERE did = $1";
const STOPPED: &str = "UPDATE backfill_repos SET status = 'pending', \
     attempts = GREATEST(attempts - 1, 0), updated_at = $2 \
     WHERE did = $1 AND status = 'in_progress'";
const RESET: &str = "UPDATE backfill_repos SET status = 'pending', updated_at = $1 \
     WHERE status = 'in_progress'";
const PROGRESS: &str = "SELECT status, COUNT(*)::bigint, COALESCE(SUM(records), 0)::bigint \
     FROM backfill_repos GROUP BY status";
const REPO: &str = "SELECT did, status, attempts, records, rev, last_error FROM backfill_repos \
     WHERE did = $1";
const FAILED_ROWS: &str = "SELECT did, status, attempts, records, rev, last_error \
     FROM backfill_repos WHERE status = 'failed' ORDER BY attempts DESC, did LIMIT $1";
const VALUE: &str = "SELECT value FROM backfill_state WHERE key = $1";
const SET_VALUE: &str = "INSERT INTO backfill_state (key, value, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
const LEASE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $3 RETURNING holder";
const RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

fn to_row(r: &Row) -> Result<RepoRow, tokio_postgres::Error> {
    let status: String = r.try_get(1)?;
    let attempts: i64 = r.try_get(2)?;
    let records: i64 = r.try_get(3)?;
    Ok(RepoRow {
        did: r.try_get(0)?,
        // An unknown status is reported by the caller; this keeps the row readable.
        status: status_from_sql(&status).unwrap_or(super::RepoStatus::Failed),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        records: records.max(0) as u64,
        rev: r.try_get(4)?,
        last_error: r.try_get(5)?,
    })
}

#[async_trait]
impl BackfillStore for PostgresStore {
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("queueing repositories", &e);
        let stmt = client.prepare_cached(ENQUEUE).await.map_err(fail)?;
        client
            .execute(&stmt, &[&dids, &now_unix_ms()])
            .await
            .map_err(fail)
    }

    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("queueing a repository again", &e);
        let stmt = client.prepare_cached(REQUEUE).await.map_err(fail)?;
        client
            .execute(&stmt, &[&did, &now_unix_ms()])
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn claim_repos(
        &self,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<RepoJob>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("claiming repositories", &e);
        let exhausted = client.prepare_cached(EXHAUSTED).await.map_err(fail)?;
        client
            .execute(&exhausted, &[&i64::from(max_attempts), &now_unix_ms()])
            .await
            .map_err(fail)?;
        let stmt = client.prepare_cached(CLAIM).await.map_err(fail)?;
        let rows = client
            .query(
                &stmt,
                &[
                    &i64::from(max_attempts),
                    &(limit.min(i64::MAX as usize) as i64),
                    &now_unix_ms(),
                ],
            )
            .await
            .map_err(fail)?;
        let mut jobs = rows
            .iter()
            .map(|r| {
                let attempts: i64 = r.try_get(1)?;
                let retry: bool = r.try_get(2)?;
                Ok((
                    retry,
                    RepoJob {
                        did: r.try_get(0)?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    },
                ))
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(fail)?;
        // RETURNING gives no order; hand them out as the claim chose them.
        jobs.sort_by(|a, b| (a.0, &a.1.did).cmp(&(b.0, &b.1.did)));
        Ok(jobs.into_iter().map(|(_, j)| j).collect())
    }

    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("recording a repository's backfill", &e);
        let now = now_unix_ms();
        match outcome {
            RepoOutcome::Done { records, rev } => {
                let stmt = client.prepare_cached(DONE).await.map_err(fail)?;
                let records = records.min(i64::MAX as u64) as i64;
                client
                    .execute(&stmt, &[&did, &records, &rev, &now])
                    .await
                    .map_err(fail)?;
            }
            RepoOutcome::Failed { error } => {
                let stmt = client.prepare_cached(FAILED).await.map_err(fail)?;
                client
                    .execute(&stmt, &[&did, &clip_error(&error), &now])
                    .await
                    .map_err(fail)?;
            }
            RepoOutcome::Stopped => {
                let stmt = client.prepare_cached(STOPPED).await.map_err(fail)?;
                client.execute(&stmt, &[&did, &now]).await.map_err(fail)?;
            }
        }
        Ok(())
    }

    async fn reset_in_progress(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("resetting claimed repositories", &e);
        let stmt = client.prepare_cached(RESET).await.map_err(fail)?;
        client.execute(&stmt, &[&now_unix_ms()]).await.map_err(fail)
    }

    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("counting backfill progress", &e);
        let stmt = client.prepare_cached(PROGRESS).await.map_err(fail)?;
        let rows = client.query(&stmt, &[]).await.map_err(fail)?;
        let mut p = BackfillProgress::default();
        for r in rows {
            let status: String = r.try_get(0).map_err(fail)?;
            let n: i64 = r.try_get(1).map_err(fail)?;
            let records: i64 = r.try_get(2).map_err(fail)?;
            super::add_count(&mut p, status_from_sql(&status)?, n.max(0) as u64, records);
        }
        Ok(p)
    }

    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("reading a repository's backfill", &e);
        let stmt = client.prepare_cached(REPO).await.map_err(fail)?;
        let row = client.query_opt(&stmt, &[&did]).await.map_err(fail)?;
        row.map(|r| to_row(&r)).transpose().map_err(fail)
    }

    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("listing failed repositories", &e);
        let stmt = client.prepare_cached(FAILED_ROWS).await.map_err(fail)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client.query(&stmt, &[&limit]).await.map_err(fail)?;
        rows.iter()
            .map(to_row)
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("reading backfill state", &e);
        let stmt = client.prepare_cached(VALUE).await.map_err(fail)?;
        let row = client.query_opt(&stmt, &[&key]).await.map_err(fail)?;
        row.map(|r| r.try_get(0)).transpose().map_err(fail)
    }

    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("saving backfill state", &e);
        let stmt = client.prepare_cached(SET_VALUE).await.map_err(fail)?;
        client
            .execute(&stmt, &[&key, &value, &now_unix_ms()])
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("taking a lease", &e);
        let stmt = client.prepare_cached(LEASE).await.map_err(fail)?;
        let until = now_ms.saturating_add(ttl_ms);
        let row = client
            .query_opt(&stmt, &[&name, &holder, &now_ms, &until])
            .await
            .map_err(fail)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("releasing a lease", &e);
        let stmt = client.prepare_cached(RELEASE).await.map_err(fail)?;
        client
            .execute(&stmt, &[&name, &holder])
            .await
            .map_err(fail)?;
        Ok(())
    }
}
