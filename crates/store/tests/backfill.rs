//! One behavioural suite for [`BackfillStore`], run on every backend (PostgreSQL ignored
//! unless asked for, as `common` says).

#![allow(clippy::unwrap_used)]

mod common;

use skystream_store::{BackfillStore, RepoOutcome, RepoStatus};

use common::{Fixture, Under};

fn dids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("did:plc:repo{i:04}")).collect()
}

mod behaviour {
    use super::*;

    pub async fn enqueue_claim_finish(fx: &Fixture) {
        let s = &fx.store;
        assert_eq!(s.enqueue_repos(&dids(5)).await.unwrap(), 5);
        // Known repositories keep their state.
        assert_eq!(s.enqueue_repos(&dids(7)).await.unwrap(), 2);
        let first = s.claim_repos(3, 3).await.unwrap();
        let got: Vec<&str> = first.iter().map(|j| j.did.as_str()).collect();
        assert_eq!(
            got,
            ["did:plc:repo0000", "did:plc:repo0001", "did:plc:repo0002"]
        );
        // Claimed ones are not handed out twice.
        let second = s.claim_repos(10, 3).await.unwrap();
        assert_eq!(second.len(), 4);
        assert!(second.iter().all(|j| !got.contains(&j.did.as_str())));
        assert!(s.claim_repos(10, 3).await.unwrap().is_empty());

        s.finish_repo(
            "did:plc:repo0000",
            RepoOutcome::Done {
                records: 42,
                rev: "3l3qo2vutsw2b".into(),
            },
        )
        .await
        .unwrap();
        s.finish_repo(
            "did:plc:repo0001",
            RepoOutcome::Failed {
                error: "HTTP 502 from the PDS".into(),
            },
        )
        .await
        .unwrap();
        let p = s.backfill_progress().await.unwrap();
        assert_eq!((p.pending, p.in_progress, p.done, p.failed), (0, 5, 1, 1));
        assert_eq!((p.records, p.total()), (42, 7));
        let row = s.backfill_repo("did:plc:repo0000").await.unwrap().unwrap();
        assert_eq!(row.status, RepoStatus::Done);
        assert_eq!(row.rev.as_deref(), Some("3l3qo2vutsw2b"));
        let failed = s.backfill_repo("did:plc:repo0001").await.unwrap().unwrap();
        assert_eq!((failed.status, failed.attempts), (RepoStatus::Failed, 1));
        assert_eq!(failed.last_error.as_deref(), Some("HTTP 502 from the PDS"));
        assert!(s.backfill_repo("did:plc:nobody").await.unwrap().is_none());
    }

    pub async fn failures_retry_until_attempts_run_out(fx: &Fixture) {
        let s = &fx.store;
        s.enqueue_repos(&dids(2)).await.unwrap();
        for attempt in 1..=3u32 {
            let jobs = s.claim_repos(10, 3).await.unwrap();
            // Pending ones come before retries.
            if attempt == 1 {
                assert_eq!(jobs.len(), 2);
                s.finish_repo(
                    "did:plc:repo0001",
                    RepoOutcome::Done {
                        records: 1,
                        rev: "r".into(),
                    },
                )
                .await
                .unwrap();
            } else {
                assert_eq!(jobs.len(), 1, "attempt {attempt}");
                assert_eq!(jobs[0].attempts, attempt - 1);
            }
            s.finish_repo(
                "did:plc:repo0000",
                RepoOutcome::Failed {
                    error: format!("attempt {attempt}: {}", "é".repeat(400)),
                },
            )
            .await
            .unwrap();
        }
        // Three attempts used up: no more retries.
        assert!(s.claim_repos(10, 3).await.unwrap().is_empty());
        let failed = s.failed_repos(10).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].attempts, 3);
        // Long errors are cut at a character boundary.
        assert!(failed[0].last_error.as_ref().unwrap().len() <= 1000);
        // A #sync queues it again, attempts reset.
        s.requeue_repo("did:plc:repo0000").await.unwrap();
        s.requeue_repo("did:plc:newcomer").await.unwrap();
        let jobs = s.claim_repos(10, 3).await.unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(|j| j.attempts == 0));
    }

    pub async fn a_killed_run_is_resumed(fx: &Fixture) {
        let s = &fx.store;
        s.enqueue_repos(&dids(4)).await.unwrap();
        let jobs = s.claim_repos(2, 3).await.unwrap();
        assert_eq!(jobs.len(), 2);
        // The process dies here; the next run puts its claims back.
        assert_eq!(s.reset_in_progress().await.unwrap(), 2);
        let again = s.claim_repos(10, 3).await.unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(again[0].did, jobs[0].did);
    }

    /// Claiming counts as an attempt, so a repository whose read kills the process (an MST
    /// bomb before the walk was bounded, an OOM) is not claimed after every restart for ever:
    /// once its attempts are used up it is failed with a reason. A read stopped by a shutdown
    /// gives its attempt back.
    pub async fn interrupted_reads_count_and_stopped_ones_do_not(fx: &Fixture) {
        let s = &fx.store;
        s.enqueue_repos(&dids(1)).await.unwrap();
        for _ in 0..5 {
            let jobs = s.claim_repos(10, 3).await.unwrap();
            assert_eq!(jobs.len(), 1);
            s.finish_repo(&jobs[0].did, RepoOutcome::Stopped)
                .await
                .unwrap();
        }
        let row = s.backfill_repo("did:plc:repo0000").await.unwrap().unwrap();
        assert_eq!((row.status, row.attempts), (RepoStatus::Pending, 0));
        for kill in 0..3u32 {
            let jobs = s.claim_repos(10, 3).await.unwrap();
            assert_eq!(jobs.len(), 1, "claim after {kill} kills");
            assert_eq!(jobs[0].attempts, kill);
            // The process dies mid-read; the next run puts its claim back.
            assert_eq!(s.reset_in_progress().await.unwrap(), 1);
        }
        assert!(s.claim_repos(10, 3).await.unwrap().is_empty());
        let row = s.backfill_repo("did:plc:repo0000").await.unwrap().unwrap();
        assert_eq!((row.status, row.attempts), (RepoStatus::Failed, 3));
        let why = row.last_error.unwrap();
        assert!(
            why.contains("interrupted while being read 3 times"),
            "{why}"
        );
        // `backfill retry` (a requeue) gives it a fresh start.
        s.requeue_repo("did:plc:repo0000").await.unwrap();
        assert_eq!(s.claim_repos(10, 3).await.unwrap().len(), 1);
    }

    pub async fn run_state_values(fx: &Fixture) {
        let s = &fx.store;
        assert_eq!(s.backfill_value("list_repos_cursor").await.unwrap(), None);
        s.set_backfill_value("list_repos_cursor", "page-2")
            .await
            .unwrap();
        s.set_backfill_value("list_repos_cursor", "page-3")
            .await
            .unwrap();
        assert_eq!(
            s.backfill_value("list_repos_cursor")
                .await
                .unwrap()
                .as_deref(),
            Some("page-3")
        );
    }

    pub async fn one_lease_holder_at_a_time(fx: &Fixture) {
        let s = &fx.store;
        assert!(s.try_lease("backfill", "a", 1_000, 500).await.unwrap());
        assert!(!s.try_lease("backfill", "b", 1_200, 500).await.unwrap());
        // The holder renews.
        assert!(s.try_lease("backfill", "a", 1_400, 500).await.unwrap());
        assert!(!s.try_lease("backfill", "b", 1_800, 500).await.unwrap());
        // Expired: another takes it.
        assert!(s.try_lease("backfill", "b", 1_900, 500).await.unwrap());
        assert!(!s.try_lease("backfill", "a", 2_000, 500).await.unwrap());
        // Released: free at once; releasing what one does not hold does nothing.
        s.release_lease("backfill", "a").await.unwrap();
        assert!(!s.try_lease("backfill", "a", 2_000, 500).await.unwrap());
        s.release_lease("backfill", "b").await.unwrap();
        assert!(s.try_lease("backfill", "a", 2_000, 500).await.unwrap());
    }
}

macro_rules! suite {
    ($(#[$attr:meta])* $module:ident, $under:expr) => {
        mod $module {
            use super::*;

            suite!(@tests [$(#[$attr])*] $under;
                enqueue_claim_finish,
                failures_retry_until_attempts_run_out,
                a_killed_run_is_resumed,
                interrupted_reads_count_and_stopped_ones_do_not,
                run_state_values,
                one_lease_holder_at_a_time,
            );
        }
    };
    (@tests $attrs:tt $under:expr; $($name:ident),* $(,)?) => {
        $(
            suite!(@test $attrs $under; $name);
        )*
    };
    (@test [$(#[$attr:meta])*] $under:expr; $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            let fx = Fixture::new($under).await;
            behaviour::$name(&fx).await;
        }
    };
}

suite!(memory, Under::Memory);
suite!(sqlite, Under::Sqlite);
suite!(
    #[ignore = "needs PostgreSQL (SKYSTREAM_TEST_POSTGRES)"]
    postgres,
    Under::Postgres
);
