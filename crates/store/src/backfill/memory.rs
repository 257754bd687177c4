//! [`BackfillStore`] for [`MemoryStore`]: the same rules as the SQL backends, in maps.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::{
    clip_error, BackfillProgress, BackfillStore, RepoJob, RepoOutcome, RepoRow, RepoStatus,
};
use crate::{MemoryStore, StoreError};

/// The backfill tables of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct BackfillState {
    repos: BTreeMap<String, RepoRow>,
    values: HashMap<String, String>,
    /// name → (holder, expires_at_ms).
    leases: HashMap<String, (String, i64)>,
}

fn pending(did: &str) -> RepoRow {
    RepoRow {
        did: did.to_owned(),
        status: RepoStatus::Pending,
        attempts: 0,
        records: 0,
        rev: None,
        last_error: None,
    }
}

#[async_trait]
impl BackfillStore for MemoryStore {
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError> {
        let mut s = self.backfill_state();
        let mut added = 0;
        for did in dids {
            if !s.repos.contains_key(did) {
                s.repos.insert(did.clone(), pending(did));
                added += 1;
            }
        }
        Ok(added)
    }

    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError> {
        let mut s = self.backfill_state();
        let row = s
            .repos
            .entry(did.to_owned())
            .or_insert_with(|| pending(did));
        row.status = RepoStatus::Pending;
        row.attempts = 0;
        row.last_error = None;
        Ok(())
    }

    async fn claim_repos(
        &self,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<RepoJob>, StoreError> {
        let mut s = self.backfill_state();
        for r in s.repos.values_mut() {
            if r.status == RepoStatus::Pending && r.attempts >= max_attempts {
                r.status = RepoStatus::Failed;
                r.last_error = Some(format!(
                    "interrupted while being read {} times (the process stopped mid-read: a crash or an out-of-memory kill?); skystream backfill retry reads it again",
                    r.attempts
                ));
            }
        }
        let mut picked: Vec<String> = s
            .repos
            .values()
            .filter(|r| r.status == RepoStatus::Pending)
            .map(|r| r.did.clone())
            .take(limit)
            .collect();
        if picked.len() < limit {
            picked.extend(
                s.repos
                    .values()
                    .filter(|r| r.status == RepoStatus::Failed && r.attempts < max_attempts)
                    .map(|r| r.did.clone())
                    .take(limit - picked.len()),
            );
        }
        Ok(picked
            .into_iter()
            .filter_map(|did| {
                let row = s.repos.get_mut(&did)?;
                row.status = RepoStatus::InProgress;
                let before = row.attempts;
                row.attempts = row.attempts.saturating_add(1);
                Some(RepoJob {
                    did,
                    attempts: before,
                })
            })
            .collect())
    }

    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError> {
        let mut s = self.backfill_state();
        let Some(row) = s.repos.get_mut(did) else {
            return Ok(());
        };
        match outcome {
            RepoOutcome::Done { records, rev } => {
                row.status = RepoStatus::Done;
                row.records = records;
                row.rev = Some(rev);
                row.last_error = None;
            }
            RepoOutcome::Failed { error } => {
                row.status = RepoStatus::Failed;
                row.last_error = Some(clip_error(&error));
            }
            RepoOutcome::Stopped => {
                if row.status == RepoStatus::InProgress {
                    row.status = RepoStatus::Pending;
                    row.attempts = row.attempts.saturating_sub(1);
                }
            }
        }
        Ok(())
    }

    async fn reset_in_progress(&self) -> Result<u64, StoreError> {
        let mut s = self.backfill_state();
        let mut n = 0;
        for row in s.repos.values_mut() {
            if row.status == RepoStatus::InProgress {
                row.status = RepoStatus::Pending;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError> {
        let s = self.backfill_state();
        let mut p = BackfillProgress::default();
        for row in s.repos.values() {
            super::add_count(&mut p, row.status, 1, row.records as i64);
        }
        Ok(p)
    }

    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError> {
        Ok(self.backfill_state().repos.get(did).cloned())
    }

    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError> {
        let s = self.backfill_state();
        let mut rows: Vec<RepoRow> = s
            .repos
            .values()
            .filter(|r| r.status == RepoStatus::Failed)
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.attempts.cmp(&a.attempts).then_with(|| a.did.cmp(&b.did)));
        rows.truncate(limit);
        Ok(rows)
    }

    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.backfill_state().values.get(key).cloned())
    }

    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.backfill_state()
            .values
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.backfill_state();
        let free = match s.leases.get(name) {
            None => true,
            Some((h, until)) => h == holder || *until <= now_ms,
        };
        if free {
            s.leases.insert(
                name.to_owned(),
                (holder.to_owned(), now_ms.saturating_add(ttl_ms)),
            );
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.backfill_state();
        if s.leases.get(name).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }
}
