//! The stream checks a validating consumer applies beyond signatures: sequence numbers only
//! move forward, each repository's revisions only move forward, and inactive accounts do not
//! commit.

use std::collections::HashMap;

use skystream_firehose::Frame;

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The frame's seq is not after the previous frame's.
    SeqNotIncreasing,
    /// The commit's rev is not after the repository's previous rev.
    RevNotIncreasing,
    /// The account is not active (deactivated, taken down, deleted, …).
    AccountInactive,
    /// A commit without `prevData` where strict Sync 1.1 checking is on.
    MissingPrevData,
}

impl DropReason {
    /// A short snake_case name, suitable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SeqNotIncreasing => "seq_not_increasing",
            Self::RevNotIncreasing => "rev_not_increasing",
            Self::AccountInactive => "account_inactive",
            Self::MissingPrevData => "missing_prev_data",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct RepoState {
    rev: Option<String>,
    inactive: bool,
}

/// Per-stream and per-repository ordering state.
#[derive(Debug)]
pub struct Validator {
    strict: bool,
    last_seq: Option<i64>,
    repos: HashMap<String, RepoState>,
    max_repos: usize,
}

impl Validator {
    /// A validator; `strict` also requires `prevData` on every commit (Sync 1.1). Per-account
    /// state is kept for at most `max_repos` accounts (the oldest entries are forgotten in
    /// bulk when full, which only makes the checks more lenient).
    pub fn new(strict: bool, max_repos: usize) -> Self {
        Validator {
            strict,
            last_seq: None,
            repos: HashMap::new(),
            max_repos: max_repos.max(1),
        }
    }

    /// Starts from a known position (a resumed stream).
    pub fn with_last_seq(mut self, seq: Option<i64>) -> Self {
        self.last_seq = seq;
        self
    }

    /// Checks `frame` and, when it is accepted, records its effect.
    pub fn check(&mut self, frame: &Frame<'_>) -> Result<(), DropReason> {
        if let Some(seq) = frame.seq() {
            if self.last_seq.is_some_and(|last| seq <= last) {
                return Err(DropReason::SeqNotIncreasing);
            }
        }
        match frame {
            Frame::Commit(c) => {
                if self.strict && c.prev_data.is_none() {
                    return Err(DropReason::MissingPrevData);
                }
                if let Some(state) = self.repos.get(c.repo) {
                    if state.inactive {
                        return Err(DropReason::AccountInactive);
                    }
                    if state.rev.as_deref().is_some_and(|last| c.rev <= last) {
                        return Err(DropReason::RevNotIncreasing);
                    }
                }
                self.repo(c.repo).rev = Some(c.rev.to_owned());
            }
            Frame::Sync(s) => {
                // A sync resets the repository; its rev is the new baseline.
                self.repo(s.did).rev = Some(s.rev.to_owned());
            }
            Frame::Account(a) => self.repo(a.did).inactive = !a.active,
            _ => {}
        }
        if let Some(seq) = frame.seq() {
            self.last_seq = Some(seq);
        }
        Ok(())
    }

    fn repo(&mut self, did: &str) -> &mut RepoState {
        if self.repos.len() >= self.max_repos && !self.repos.contains_key(did) {
            // Bounded memory: forget everything rather than track an unbounded population.
            self.repos.clear();
        }
        self.repos.entry(did.to_owned()).or_default()
    }
}
