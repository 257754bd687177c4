//! Backfill state ([`BackfillStore`]): which repositories a backfill has yet to read, is
//! reading, has read or failed to read; run state such as the `listRepos` page cursor; and named
//! leases, so that of several processes sharing one database only one backfills.

pub(crate) mod memory;
mod postgres;
mod sqlite;

use async_trait::async_trait;

use crate::StoreError;

/// Where one repository's backfill stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoStatus {
    /// Not read yet (or queued again: a `#sync`, a desynchronized account, a failure retried).
    Pending,
    /// Claimed by a running backfill. A backfill that starts finds its predecessor's claims and
    /// puts them back to pending (see [`BackfillStore::reset_in_progress`]).
    InProgress,
    /// Read, every kept record sent on.
    Done,
    /// The last attempt failed; retried until the attempts run out.
    Failed,
}

impl RepoStatus {
    /// The name kept in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoStatus::Pending => "pending",
            RepoStatus::InProgress => "in_progress",
            RepoStatus::Done => "done",
            RepoStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RepoStatus> {
        Some(match s {
            "pending" => RepoStatus::Pending,
            "in_progress" => RepoStatus::InProgress,
            "done" => RepoStatus::Done,
            "failed" => RepoStatus::Failed,
            _ => return None,
        })
    }
}

/// A repository claimed for reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoJob {
    /// The repository's DID.
    pub did: String,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// How reading a repository ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoOutcome {
    /// Read; `records` were kept and sent on; the repository was at `rev`.
    Done {
        /// Records kept.
        records: u64,
        /// The commit revision read.
        rev: String,
    },
    /// Failed with this error (the attempt, counted when it was claimed, stands).
    Failed {
        /// What went wrong, for `backfill status`.
        error: String,
    },
    /// The run stopped before the read ended (a shutdown, not the repository's fault): back
    /// to pending, and the attempt its claim counted is given back.
    Stopped,
}

/// One repository's row, for `backfill status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRow {
    /// The DID.
    pub did: String,
    /// Where it stands.
    pub status: RepoStatus,
    /// Failed attempts.
    pub attempts: u32,
    /// Records kept.
    pub records: u64,
    /// The revision read, when done.
    pub rev: Option<String>,
    /// The last error, when one failed.
    pub last_error: Option<String>,
}

/// Counts over every repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// Not read yet.
    pub pending: u64,
    /// Being read.
    pub in_progress: u64,
    /// Read.
    pub done: u64,
    /// Failed, retries left or not.
    pub failed: u64,
    /// Records kept, over the done repositories.
    pub records: u64,
}

impl BackfillProgress {
    /// Every repository known.
    pub fn total(&self) -> u64 {
        self.pending + self.in_progress + self.done + self.failed
    }
}

/// The backfill's state, on every backend.
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Adds repositories as pending; ones already known keep their state. Returns how many were
    /// new.
    async fn enqueue_repos(&self, dids: &[String]) -> Result<u64, StoreError>;

    /// Queues a repository to be read again (after a `#sync`, or an account marked
    /// desynchronized), whatever its state, with its attempts reset.
    async fn requeue_repo(&self, did: &str) -> Result<(), StoreError>;

    /// Claims up to `limit` repositories, pending ones first (by DID), then failed ones, with
    /// fewer than `max_attempts` attempts, and marks them in progress. Claiming counts as an
    /// attempt: a repository whose reads keep killing the process (memory, a crash) is not
    /// claimed for ever; a pending one that has used up its attempts that way is marked failed
    /// with a reason instead. [`RepoJob::attempts`] is the count before this claim.
    async fn claim_repos(
        &self,
        limit: usize,
        max_attempts: u32,
    ) -> Result<Vec<RepoJob>, StoreError>;

    /// Records how reading a claimed repository ended.
    async fn finish_repo(&self, did: &str, outcome: RepoOutcome) -> Result<(), StoreError>;

    /// Puts repositories left in progress (by a run that was killed) back to pending; returns
    /// how many.
    async fn reset_in_progress(&self) -> Result<u64, StoreError>;

    /// Counts by status.
    async fn backfill_progress(&self) -> Result<BackfillProgress, StoreError>;

    /// One repository's row.
    async fn backfill_repo(&self, did: &str) -> Result<Option<RepoRow>, StoreError>;

    /// Up to `limit` failed repositories, most attempts first.
    async fn failed_repos(&self, limit: usize) -> Result<Vec<RepoRow>, StoreError>;

    /// A run-state value (e.g. `list_repos_cursor`).
    async fn backfill_value(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Sets a run-state value.
    async fn set_backfill_value(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; true when
    /// `holder` holds it (it was free, expired, or already theirs).
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up, if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

fn status_from_sql(s: &str) -> Result<RepoStatus, StoreError> {
    RepoStatus::parse(s).ok_or_else(|| {
        StoreError::new(
            crate::StoreErrorKind::Query,
            format!("backfill_repos holds an unknown status {s:?}"),
        )
    })
}

/// Errors kept for `backfill status` are cut to this many bytes (at a character boundary).
const MAX_ERROR: usize = 1000;

fn clip_error(e: &str) -> String {
    let mut end = e.len().min(MAX_ERROR);
    while !e.is_char_boundary(end) {
        end -= 1;
    }
    e[..end].to_owned()
}

fn add_count(p: &mut BackfillProgress, status: RepoStatus, n: u64, records: i64) {
    match status {
        RepoStatus::Pending => p.pending += n,
        RepoStatus::InProgress => p.in_progress += n,
        RepoStatus::Done => p.done += n,
        RepoStatus::Failed => p.failed += n,
    }
    p.records += records.max(0) as u64;
}
