//! A deterministic generator of realistic, validly signed firehose traffic, for offline demos
//! and load tests (the pure core of the `simulate:RATE` source; pacing lives with the source).
//!
//! A [`Simulator`] holds a population of accounts, each with its own signing key (K-256 or
//! P-256) and an in-memory repository ([`skystream_repo::RepoWriter`]). Every call to
//! [`Simulator::next_frame`] produces one relay frame, byte for byte as a relay sends it:
//! `#commit` frames whose commits are signed and whose diffs carry the MST proof (so
//! `prevData` inversion succeeds), and `#identity`, `#account` and `#sync` frames. The mix
//! follows the real network: mostly likes, then posts (in fourteen languages, with facets,
//! replies, quotes, images, video, external links and self-labels), reposts, follows, blocks,
//! profile updates, deletes of the account's own records, handle changes, deactivations and
//! account deletions (a deleted account is replaced by a fresh one, which announces itself
//! with `#identity`, `#account` and a profile commit). `#sync` frames mostly re-announce an
//! account's current commit; when an account reaches [`SimConfig::max_writes_per_account`]
//! its repository is reset to a fresh, empty one and the `#sync` carries that new commit.
//!
//! Cost: almost all the time goes into [`skystream_repo::RepoWriter::apply`] (re-encoding the
//! account's whole MST, then signing), so the rate depends on repository size, which
//! `max_writes_per_account` bounds.
//!
//! Everything derives from [`SimConfig::seed`] and the times passed in: the same seed and
//! times give the same bytes on every platform. The DID documents of every account ever
//! created are available from [`Simulator::directory`], so verifiers can check every commit.
//!
//! ```
//! use skystream_simulate::{SimConfig, SimKind, Simulator};
//!
//! let mut sim = Simulator::new(SimConfig { seed: 7, accounts: 50, ..SimConfig::default() });
//! let frame = sim.next_frame(1_767_225_600_000_000);
//! assert_eq!(frame.seq, 1);
//! assert!(matches!(frame.kind, SimKind::Commit | SimKind::Identity | SimKind::Account | SimKind::Sync));
//! let more: Vec<_> = sim.by_ref().take(10).collect();
//! assert_eq!(more.last().map(|f| f.seq), Some(11));
//! ```

mod account;
mod directory;
mod records;
mod rng;
mod text;

use std::collections::{BTreeMap, VecDeque};

use skystream_data::{cid_for, encode_to_vec, Map, Value, DAG_CBOR};
use skystream_firehose::write;
use skystream_identity::{DidDocument, MemoryDirectory};
use skystream_repo::{OpAction, RepoWriter, WriteOp};

use crate::account::{Account, Coll, Live};
pub use crate::directory::SimDirectory;
use crate::records::StrongRef;
use crate::rng::Rng;
use crate::text::{RichText, COMMON_TAGS, LANGS, NAMES};
use skystream_syntax::rfc3339_millis;

/// 2026-01-01T00:00:00Z, the default start of the simulated clock.
pub const DEFAULT_START_TIME_US: i64 = 1_767_225_600_000_000;

/// Relative weights of the kinds of event (the defaults are per ten thousand events, roughly
/// the real network's mix). A zero weight turns a kind off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMix {
    /// `app.bsky.feed.like` creates.
    pub like: u32,
    /// `app.bsky.feed.post` creates (some commits carry a self-thread or a post plus a like).
    pub post: u32,
    /// `app.bsky.feed.repost` creates.
    pub repost: u32,
    /// `app.bsky.graph.follow` creates (rarely a batch, as when following a starter pack).
    pub follow: u32,
    /// `app.bsky.graph.block` creates.
    pub block: u32,
    /// `app.bsky.actor.profile/self` creates and updates.
    pub profile: u32,
    /// Deletes of the account's own earlier posts, likes, reposts, follows and blocks.
    pub delete: u32,
    /// `#identity` frames (some change the handle).
    pub identity: u32,
    /// `#account` frames: deactivations (reactivated later), takedowns and deletions.
    pub account: u32,
    /// `#sync` frames.
    pub sync: u32,
}

impl Default for EventMix {
    fn default() -> Self {
        EventMix {
            like: 6000,
            post: 1500,
            repost: 800,
            follow: 700,
            block: 100,
            profile: 100,
            delete: 500,
            identity: 100,
            account: 50,
            sync: 20,
        }
    }
}

/// How to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Everything random derives from this.
    pub seed: u64,
    /// How many accounts are live at once (at least 2; deleted ones are replaced).
    pub accounts: usize,
    /// Event time of the first frame the [`Iterator`] yields.
    pub start_time_us: i64,
    /// Microseconds between frames the [`Iterator`] yields.
    pub tick_us: i64,
    /// `seq` of the first frame.
    pub start_seq: i64,
    /// Once an account has created or updated this many records, its repository is reset:
    /// a `#sync` frame carries a signed commit of a fresh, empty repository (same DID, key
    /// and revision clock) and the profile is re-created (0: never). The repository writer
    /// keeps every record it has written and re-encodes the whole tree on each commit, so
    /// this bounds both memory and time per commit on long runs. The default, 200, keeps a
    /// release build near 5,000 frames/s on one core; 100 gives about 8,000, 300 about 3,500.
    pub max_writes_per_account: usize,
    /// The mix of events.
    pub mix: EventMix,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            accounts: 500,
            start_time_us: DEFAULT_START_TIME_US,
            tick_us: 1_000,
            start_seq: 1,
            max_writes_per_account: 200,
            mix: EventMix::default(),
        }
    }
}

/// The message type of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimKind {
    /// `#commit`.
    Commit,
    /// `#identity`.
    Identity,
    /// `#account`.
    Account,
    /// `#sync`.
    Sync,
}

impl SimKind {
    /// `commit`, `identity`, `account` or `sync` (as `Event::kind_name` says).
    pub fn as_str(self) -> &'static str {
        match self {
            SimKind::Commit => "commit",
            SimKind::Identity => "identity",
            SimKind::Account => "account",
            SimKind::Sync => "sync",
        }
    }
}

/// One generated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFrame {
    /// Its sequence number.
    pub seq: i64,
    /// Its event time (the frame's `time`, to the millisecond, says the same).
    pub time_us: i64,
    /// The account it is about.
    pub did: String,
    /// Its message type.
    pub kind: SimKind,
    /// The frame, exactly as a relay sends it over the WebSocket.
    pub bytes: Vec<u8>,
}

/// Counts of what has been generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Frames of every kind.
    pub frames: u64,
    /// `#commit` frames.
    pub commits: u64,
    /// `#identity` frames.
    pub identities: u64,
    /// `#account` frames.
    pub account_events: u64,
    /// `#sync` frames.
    pub syncs: u64,
    /// `#sync` frames that reset a repository to a fresh, empty one (see
    /// [`SimConfig::max_writes_per_account`]); the others re-announce the current commit.
    pub repo_resets: u64,
    /// Operations across all commits.
    pub ops: u64,
    /// Create operations.
    pub creates: u64,
    /// Update operations.
    pub updates: u64,
    /// Delete operations.
    pub deletes: u64,
    /// Commits with more than one operation.
    pub multi_op_commits: u64,
    /// The most operations in one commit.
    pub max_ops_per_commit: u64,
    /// Posts created.
    pub posts: u64,
    /// Posts that are replies.
    pub replies: u64,
    /// Posts quoting a post (`app.bsky.embed.record`).
    pub quotes: u64,
    /// Posts with images (`app.bsky.embed.images`, alone or as recordWithMedia's media).
    pub images: u64,
    /// Posts with a video (alone or as recordWithMedia's media).
    pub videos: u64,
    /// Posts with an external link card (alone or as recordWithMedia's media).
    pub externals: u64,
    /// Posts with `app.bsky.embed.recordWithMedia`.
    pub record_with_media: u64,
    /// Posts with self-labels.
    pub self_labels: u64,
    /// Hashtag facets.
    pub tag_facets: u64,
    /// Mention facets.
    pub mention_facets: u64,
    /// Link facets.
    pub link_facets: u64,
    /// Posts without `langs`.
    pub posts_without_langs: u64,
    /// Posts per `langs` value (a post with two languages counts under both).
    pub langs: BTreeMap<String, u64>,
    /// Likes created.
    pub likes: u64,
    /// Reposts created.
    pub reposts: u64,
    /// Follows created.
    pub follows: u64,
    /// Blocks created.
    pub blocks: u64,
    /// Profiles created.
    pub profile_creates: u64,
    /// Profiles updated.
    pub profile_updates: u64,
    /// `#identity` frames that changed the handle.
    pub handle_changes: u64,
    /// `#account` frames with status `deactivated`.
    pub deactivations: u64,
    /// `#account` frames with status `takendown` or `suspended`.
    pub takedowns: u64,
    /// `#account` frames making an account active again (reactivations and new accounts).
    pub activations: u64,
    /// `#account` frames with status `deleted`.
    pub account_deletions: u64,
    /// Accounts created to replace deleted ones.
    pub accounts_created: u64,
}

/// A post others can reply to, quote, like or repost.
#[derive(Clone, Debug)]
struct PostRef {
    me: StrongRef,
    /// The thread's root, when this post is a reply.
    root: Option<StrongRef>,
    /// The author's account number.
    author: u64,
}

impl PostRef {
    fn thread_root(&self) -> StrongRef {
        self.root.clone().unwrap_or_else(|| self.me.clone())
    }
}

/// How many recent posts are kept as targets.
const POOL_CAP: usize = 4096;

/// Frames owed before any random event (a new account announces itself).
#[derive(Clone, Copy, Debug)]
enum Pending {
    Identity(usize),
    Activate(usize),
    Profile(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Like,
    Post,
    Repost,
    Follow,
    Block,
    Profile,
    Delete,
    Identity,
    Account,
    Sync,
}

const ACTIONS: [Action; 10] = [
    Action::Like,
    Action::Post,
    Action::Repost,
    Action::Follow,
    Action::Block,
    Action::Profile,
    Action::Delete,
    Action::Identity,
    Action::Account,
    Action::Sync,
];

/// The frame being made.
struct Now {
    seq: i64,
    time_us: i64,
    time: String,
}

/// One commit being planned: its operations and the posts it creates.
#[derive(Default)]
struct Plan {
    ops: Vec<WriteOp>,
    /// (op index, uri, thread root) of each new post.
    posts: Vec<(usize, String, Option<StrongRef>)>,
}

/// The traffic generator.
#[derive(Debug)]
pub struct Simulator {
    cfg: SimConfig,
    rng: Rng,
    accounts: Vec<Account>,
    next_account_no: u64,
    pool: VecDeque<PostRef>,
    pending: VecDeque<Pending>,
    /// Inactive accounts and the frame number at which they come back.
    inactive: Vec<(usize, u64)>,
    next_seq: i64,
    last_time_us: Option<i64>,
    frame_no: u64,
    lang_weights: Vec<u64>,
    stats: SimStats,
    directory: SimDirectory,
    docs: BTreeMap<String, serde_json::Value>,
}

impl Simulator {
    /// A population of `cfg.accounts` accounts (at least 2) with empty repositories.
    pub fn new(cfg: SimConfig) -> Self {
        let n = cfg.accounts.max(2);
        let mut sim = Simulator {
            rng: Rng::new(rng::mix(cfg.seed ^ 0x51_u64.rotate_left(56))),
            accounts: Vec::with_capacity(n),
            next_account_no: 0,
            pool: VecDeque::with_capacity(POOL_CAP),
            pending: VecDeque::new(),
            inactive: Vec::new(),
            next_seq: cfg.start_seq,
            last_time_us: None,
            frame_no: 0,
            lang_weights: text::lang_weights(),
            stats: SimStats::default(),
            directory: SimDirectory::default(),
            docs: BTreeMap::new(),
            cfg,
        };
        for _ in 0..n {
            let acct = sim.new_account();
            sim.accounts.push(acct);
            sim.register(sim.accounts.len() - 1);
        }
        sim
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Counts of what has been generated so far.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// The DIDs of the accounts live now.
    pub fn dids(&self) -> impl Iterator<Item = &str> + '_ {
        self.accounts.iter().map(|a| a.did.as_str())
    }

    /// A shared directory of every account's DID document (deleted accounts included), kept
    /// current as accounts are created and handles change.
    pub fn directory(&self) -> SimDirectory {
        self.directory.clone()
    }

    /// A snapshot of every account's DID document (deleted accounts included).
    pub fn memory_directory(&self) -> MemoryDirectory {
        let mut dir = MemoryDirectory::new();
        for json in self.docs.values() {
            if let Ok(doc) = DidDocument::from_json(&json.to_string()) {
                dir.insert(doc);
            }
        }
        dir
    }

    /// Every account's DID document as one JSON object keyed by DID, the `did_docs.json`
    /// layout [`MemoryDirectory::from_json_map`] reads.
    pub fn did_docs_json(&self) -> String {
        serde_json::Value::Object(
            self.docs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
        .to_string()
    }

    /// The next frame, at event time `time_us` (times earlier than the previous frame's are
    /// raised to it, so event times never go backwards).
    ///
    /// # Panics
    /// Only on a bug: every operation is planned against the repository's known contents.
    pub fn next_frame(&mut self, time_us: i64) -> SimFrame {
        let time_us = self.last_time_us.map_or(time_us, |t| time_us.max(t));
        self.last_time_us = Some(time_us);
        let now = Now {
            seq: self.next_seq,
            time_us,
            time: rfc3339_millis(time_us),
        };
        self.next_seq += 1;
        self.frame_no += 1;
        let frame = if let Some(p) = self.pending.pop_front() {
            self.pending_frame(p, &now)
        } else if let Some(slot) = self.due_reactivation() {
            self.reactivate(slot, &now)
        } else {
            self.random_frame(&now)
        };
        self.stats.frames += 1;
        match frame.kind {
            SimKind::Commit => self.stats.commits += 1,
            SimKind::Identity => self.stats.identities += 1,
            SimKind::Account => self.stats.account_events += 1,
            SimKind::Sync => self.stats.syncs += 1,
        }
        frame
    }

    // ---- accounts -------------------------------------------------------------------------

    fn new_account(&mut self) -> Account {
        let acct = Account::new(self.cfg.seed, self.next_account_no);
        self.next_account_no += 1;
        acct
    }

    /// Publishes `slot`'s current DID document.
    fn register(&mut self, slot: usize) {
        let acct = &self.accounts[slot];
        let json = acct.doc_json();
        let doc = DidDocument::from_json(&json.to_string())
            .expect("the simulator writes well-formed DID documents");
        self.directory.insert(doc);
        self.docs.insert(acct.did.clone(), json);
    }

    /// An active account, favouring a tenth of the population (a few accounts do most of the
    /// posting, as on the network).
    fn pick_active(&mut self) -> Option<usize> {
        let n = self.accounts.len();
        for _ in 0..8 {
            let slot = if self.rng.chance(400) {
                self.rng.index((n / 10).max(1))
            } else {
                self.rng.index(n)
            };
            if self.accounts[slot].active {
                return Some(slot);
            }
        }
        let start = self.rng.index(n);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&s| self.accounts[s].active)
    }

    /// Any account other than `slot`.
    fn pick_other(&mut self, slot: usize) -> usize {
        let n = self.accounts.len();
        (slot + 1 + self.rng.index(n - 1)) % n
    }

    fn due_reactivation(&mut self) -> Option<usize> {
        let i = self
            .inactive
            .iter()
            .position(|&(_, due)| due <= self.frame_no)?;
        Some(self.inactive.remove(i).0)
    }

    /// Brings an inactive account back with `#account active=true`.
    fn reactivate(&mut self, slot: usize, now: &Now) -> SimFrame {
        self.inactive.retain(|&(s, _)| s != slot);
        self.accounts[slot].active = true;
        self.stats.activations += 1;
        self.account_frame(slot, true, None, now)
    }

    /// When no account is active (tiny populations): reactivate one.
    fn no_active_account(&mut self, now: &Now) -> SimFrame {
        let slot = self
            .inactive
            .first()
            .map(|&(s, _)| s)
            .expect("an inactive account exists when none is active");
        self.reactivate(slot, now)
    }

    fn account_frame(
        &self,
        slot: usize,
        active: bool,
        status: Option<&str>,
        now: &Now,
    ) -> SimFrame {
        let did = &self.accounts[slot].did;
        let bytes = write::account_frame(now.seq, did, active, status, &now.time);
        self.frame(SimKind::Account, did, bytes, now)
    }

    fn frame(&self, kind: SimKind, did: &str, bytes: Vec<u8>, now: &Now) -> SimFrame {
        SimFrame {
            seq: now.seq,
            time_us: now.time_us,
            did: did.to_owned(),
            kind,
            bytes,
        }
    }

    /// `#account` deleted; the slot gets a fresh account that announces itself next.
    fn delete_account(&mut self, slot: usize, now: &Now) -> SimFrame {
        let frame = self.account_frame(slot, false, Some("deleted"), now);
        self.stats.account_deletions += 1;
        let gone = self.accounts[slot].no;
        self.pool.retain(|p| p.author != gone);
        self.inactive.retain(|&(s, _)| s != slot);
        self.accounts[slot] = self.new_account();
        self.register(slot);
        self.stats.accounts_created += 1;
        self.pending.extend([
            Pending::Identity(slot),
            Pending::Activate(slot),
            Pending::Profile(slot),
        ]);
        frame
    }

    /// Replaces `slot`'s repository with a fresh, empty one under a new signed commit and
    /// announces it with `#sync` (Sync 1.1: consumers drop what they knew of the repository).
    /// The profile is re-created next.
    fn reset_repo(&mut self, slot: usize, now: &Now) -> SimFrame {
        let a = &mut self.accounts[slot];
        a.repo = RepoWriter::new(a.did.clone(), a.repo.key().clone());
        let rev = a.next_tid(now.time_us);
        a.repo
            .apply(&[], rev.as_str())
            .expect("an empty commit fits an empty repository");
        let car = a
            .repo
            .commit_car()
            .expect("a repository with a commit has a commit CAR");
        a.live.clear();
        a.has_profile = false;
        a.writes = 0;
        let gone = a.no;
        let bytes = write::sync_frame(now.seq, &a.did, car, rev.as_str(), &now.time);
        let frame = self.frame(SimKind::Sync, &self.accounts[slot].did, bytes, now);
        self.pool.retain(|p| p.author != gone);
        self.pending.push_back(Pending::Profile(slot));
        self.stats.repo_resets += 1;
        frame
    }

    fn pending_frame(&mut self, p: Pending, now: &Now) -> SimFrame {
        match p {
            Pending::Identity(slot) => {
                let a = &self.accounts[slot];
                let bytes = write::identity_frame(now.seq, &a.did, Some(&a.handle), &now.time);
                self.frame(SimKind::Identity, &a.did, bytes, now)
            }
            Pending::Activate(slot) => {
                self.stats.activations += 1;
                self.account_frame(slot, true, None, now)
            }
            Pending::Profile(slot) => {
                let mut plan = Plan::default();
                self.plan_profile(slot, now, &mut plan);
                self.commit(slot, plan, now)
            }
        }
    }

    // ---- events ---------------------------------------------------------------------------

    fn random_frame(&mut self, now: &Now) -> SimFrame {
        let m = &self.cfg.mix;
        let weights = [
            m.like, m.post, m.repost, m.follow, m.block, m.profile, m.delete, m.identity,
            m.account, m.sync,
        ]
        .map(u64::from);
        match ACTIONS[self.rng.weighted(&weights)] {
            Action::Identity => self.identity_event(now),
            Action::Account => self.account_event(now),
            Action::Sync => self.sync_event(now),
            action => self.commit_event(action, now),
        }
    }

    fn identity_event(&mut self, now: &Now) -> SimFrame {
        let Some(slot) = self.pick_active() else {
            return self.no_active_account(now);
        };
        let change = self.rng.chance(300);
        if change {
            let a = &self.accounts[slot];
            let (no, old) = (a.no, a.handle.clone());
            let mut handle = old.clone();
            for _ in 0..4 {
                let name = self.rng.pick(NAMES);
                let domain = self
                    .rng
                    .pick(&["sim.test", "bsky.sim.test", "art.sim.test"]);
                handle = format!("{name}{no}.{domain}");
                if handle != old {
                    break;
                }
            }
            if handle == old {
                handle = format!("user{no}-{}.sim.test", self.rng.below(1000));
            }
            self.accounts[slot].handle = handle;
            self.register(slot);
            self.stats.handle_changes += 1;
        }
        // Relays include the handle; a few events (a key or PDS change) come without it.
        let with_handle = change || !self.rng.chance(100);
        let a = &self.accounts[slot];
        let handle = with_handle.then_some(a.handle.as_str());
        let bytes = write::identity_frame(now.seq, &a.did, handle, &now.time);
        self.frame(SimKind::Identity, &a.did, bytes, now)
    }

    fn account_event(&mut self, now: &Now) -> SimFrame {
        let Some(slot) = self.pick_active() else {
            return self.no_active_account(now);
        };
        let r = self.rng.below(100);
        if r < 10 {
            return self.delete_account(slot, now);
        }
        let status = if r < 94 {
            self.stats.deactivations += 1;
            "deactivated"
        } else {
            self.stats.takedowns += 1;
            if r < 97 {
                "takendown"
            } else {
                "suspended"
            }
        };
        self.accounts[slot].active = false;
        let due = self.frame_no + self.rng.range(20, 500);
        self.inactive.push((slot, due));
        self.account_frame(slot, false, Some(status), now)
    }

    fn sync_event(&mut self, now: &Now) -> SimFrame {
        for _ in 0..8 {
            let Some(slot) = self.pick_active() else {
                break;
            };
            let a = &self.accounts[slot];
            if let (Some(rev), Some(car)) = (a.repo.rev(), a.repo.commit_car()) {
                let bytes = write::sync_frame(now.seq, &a.did, car, rev, &now.time);
                return self.frame(SimKind::Sync, &a.did, bytes, now);
            }
        }
        self.commit_event(Action::Post, now)
    }

    fn commit_event(&mut self, action: Action, now: &Now) -> SimFrame {
        let Some(slot) = self.pick_active() else {
            return self.no_active_account(now);
        };
        let limit = self.cfg.max_writes_per_account;
        if limit > 0 && self.accounts[slot].writes >= limit {
            return self.reset_repo(slot, now);
        }
        let mut plan = Plan::default();
        let planned = match action {
            Action::Like => self.plan_subject(slot, Coll::Like, now, &mut plan),
            Action::Repost => self.plan_subject(slot, Coll::Repost, now, &mut plan),
            Action::Follow => {
                self.plan_graph(slot, Coll::Follow, now, &mut plan);
                true
            }
            Action::Block => {
                self.plan_graph(slot, Coll::Block, now, &mut plan);
                true
            }
            Action::Profile => {
                self.plan_profile(slot, now, &mut plan);
                true
            }
            Action::Delete => self.plan_delete(slot, &mut plan),
            _ => false,
        };
        if !planned {
            self.plan_posts(slot, now, &mut plan);
        }
        self.commit(slot, plan, now)
    }

    // ---- planning commits -----------------------------------------------------------------

    fn created_at(&mut self, now: &Now) -> String {
        // Clients stamp records a little before the relay sees them.
        let lag = self.rng.range(20_000, 3_000_000) as i64;
        rfc3339_millis(now.time_us - lag)
    }

    /// Adds a create of `record` in `coll` under a fresh TID; returns the record's AT-URI.
    fn plan_create(
        &mut self,
        slot: usize,
        coll: Coll,
        record: Value<'static>,
        now: &Now,
        plan: &mut Plan,
    ) -> String {
        let a = &mut self.accounts[slot];
        let path = format!("{}/{}", coll.nsid(), a.next_tid(now.time_us));
        let uri = format!("at://{}/{path}", a.did);
        a.writes += 1;
        a.live.push(Live {
            path: path.clone(),
            coll,
        });
        plan.ops.push(WriteOp::Create { path, record });
        uri
    }

    /// A recent post, favouring the newest.
    fn pick_post(&mut self) -> Option<PostRef> {
        let n = self.pool.len();
        if n == 0 {
            return None;
        }
        let i = if self.rng.chance(600) {
            n - 1 - self.rng.index(n.min(256))
        } else {
            self.rng.index(n)
        };
        self.pool.get(i).cloned()
    }

    /// A like or repost of a recent post; false when there is none yet.
    fn plan_subject(&mut self, slot: usize, coll: Coll, now: &Now, plan: &mut Plan) -> bool {
        let Some(target) = self.pick_post() else {
            return false;
        };
        let created_at = self.created_at(now);
        let record = records::subject_record(coll.nsid(), &target.me, created_at);
        self.plan_create(slot, coll, record, now, plan);
        match coll {
            Coll::Like => self.stats.likes += 1,
            _ => self.stats.reposts += 1,
        }
        true
    }

    /// A follow or block of another account; one follow in a hundred is a batch (a starter
    /// pack followed in one go).
    fn plan_graph(&mut self, slot: usize, coll: Coll, now: &Now, plan: &mut Plan) {
        let n = if coll == Coll::Follow && self.rng.chance(10) {
            self.rng.range(10, 61) as usize
        } else {
            1
        };
        for _ in 0..n {
            let other = self.pick_other(slot);
            let subject = self.accounts[other].did.clone();
            let created_at = self.created_at(now);
            let record = records::graph_record(coll.nsid(), &subject, created_at);
            self.plan_create(slot, coll, record, now, plan);
            match coll {
                Coll::Follow => self.stats.follows += 1,
                _ => self.stats.blocks += 1,
            }
        }
    }

    /// Creates the profile, or updates it when it exists.
    fn plan_profile(&mut self, slot: usize, now: &Now, plan: &mut Plan) {
        let created_at = self.created_at(now);
        let a = &self.accounts[slot];
        let lang = &LANGS[a.home_lang];
        let mut display = String::with_capacity(a.name.len() + 8);
        let mut chars = a.name.chars();
        if let Some(c) = chars.next() {
            display.extend(c.to_uppercase());
            display.push_str(chars.as_str());
        }
        if self.rng.chance(300) {
            display.push_str(" ✨");
        }
        let record = records::profile(&mut self.rng, display, lang, created_at);
        let a = &mut self.accounts[slot];
        let path = "app.bsky.actor.profile/self".to_owned();
        a.writes += 1;
        if a.has_profile {
            plan.ops.push(WriteOp::Update { path, record });
            self.stats.profile_updates += 1;
        } else {
            a.has_profile = true;
            plan.ops.push(WriteOp::Create { path, record });
            self.stats.profile_creates += 1;
        }
    }

    /// Deletes one of the account's own records (rarely a handful); false when it has none.
    fn plan_delete(&mut self, slot: usize, plan: &mut Plan) -> bool {
        let n = if self.rng.chance(20) {
            self.rng.range(2, 11) as usize
        } else {
            1
        };
        for _ in 0..n {
            let live_len = self.accounts[slot].live.len();
            if live_len == 0 {
                break;
            }
            let i = self.rng.index(live_len);
            let gone = self.accounts[slot].live.swap_remove(i);
            if gone.coll == Coll::Post {
                let uri = format!("at://{}/{}", self.accounts[slot].did, gone.path);
                self.pool.retain(|p| p.me.uri != uri);
            }
            plan.ops.push(WriteOp::Delete { path: gone.path });
            self.stats.deletes += 1;
        }
        !plan.ops.is_empty()
    }

    /// A post; sometimes a self-thread of several, or a post and a like, in one commit.
    fn plan_posts(&mut self, slot: usize, now: &Now, plan: &mut Plan) {
        let thread = if self.rng.chance(20) {
            self.rng.range(2, 5)
        } else {
            1
        };
        let mut parent: Option<PostRef> = None;
        for _ in 0..thread {
            let (record, root) = self.build_post(slot, parent.as_ref(), now);
            let cid = (thread > 1).then(|| cid_for(DAG_CBOR, &encode_to_vec(&record)));
            let uri = self.plan_create(slot, Coll::Post, record, now, plan);
            plan.posts
                .push((plan.ops.len() - 1, uri.clone(), root.clone()));
            parent = cid.map(|cid| PostRef {
                me: StrongRef {
                    uri,
                    cid: cid.to_string(),
                },
                root,
                author: self.accounts[slot].no,
            });
        }
        if thread == 1 && self.rng.chance(30) {
            self.plan_subject(slot, Coll::Like, now, plan);
        }
    }

    /// One post record, replying to `parent` when given (else sometimes to a recent post).
    /// Returns the record and its thread root when it is a reply.
    fn build_post(
        &mut self,
        slot: usize,
        parent: Option<&PostRef>,
        now: &Now,
    ) -> (Value<'static>, Option<StrongRef>) {
        let created_at = self.created_at(now);
        let rng = &mut self.rng;
        let stats = &mut self.stats;
        let author = &self.accounts[slot];

        // Languages: mostly the author's own, sometimes another, sometimes two, sometimes none.
        let primary = if rng.chance(900) {
            author.home_lang
        } else {
            rng.weighted(&self.lang_weights)
        };
        let lang = &LANGS[primary];
        let mut langs: Vec<&'static str> = Vec::with_capacity(2);
        if !rng.chance(50) {
            langs.push(lang.code);
            if rng.chance(30) {
                let second = if lang.code == "en" {
                    LANGS[rng.weighted(&self.lang_weights)].code
                } else {
                    "en"
                };
                if second != lang.code {
                    langs.push(second);
                }
            }
        }

        // Reply target.
        let parent = match parent {
            Some(p) => Some(p.clone()),
            None if rng.chance(300) && !self.pool.is_empty() => {
                let n = self.pool.len();
                let i = n - 1 - rng.index(n.min(512));
                self.pool.get(i).cloned()
            }
            None => None,
        };

        // Embed.
        let quoted = |rng: &mut Rng| {
            let n = self.pool.len();
            (n > 0).then(|| self.pool[rng.index(n)].me.clone())
        };
        let mut link_in_text: Option<String> = None;
        let e = rng.below(1000);
        let embed = if e < 50 {
            quoted(rng).map(|q| {
                stats.quotes += 1;
                records::quote(&q)
            })
        } else if e < 170 {
            stats.images += 1;
            Some(records::images(rng, lang))
        } else if e < 200 {
            stats.videos += 1;
            Some(records::video(rng, lang))
        } else if e < 250 {
            stats.externals += 1;
            let uri = records::link_uri(rng);
            let ext = records::external(rng, lang, &uri);
            if rng.chance(600) {
                link_in_text = Some(uri);
            }
            Some(ext)
        } else if e < 275 {
            quoted(rng).map(|q| {
                stats.record_with_media += 1;
                let m = rng.below(10);
                let media = if m < 7 {
                    stats.images += 1;
                    records::images(rng, lang)
                } else if m < 9 {
                    stats.videos += 1;
                    records::video(rng, lang)
                } else {
                    stats.externals += 1;
                    let uri = records::link_uri(rng);
                    records::external(rng, lang, &uri)
                };
                records::record_with_media(&q, media)
            })
        } else {
            None
        };
        if link_in_text.is_none() && rng.chance(50) {
            link_in_text = Some(records::link_uri(rng));
        }

        // Text: [@mention ]phrase[ link][ #tag…]
        let mut rt = RichText::default();
        if rng.chance(if parent.is_some() { 200 } else { 60 }) {
            let n = self.accounts.len();
            let other = &self.accounts[(slot + 1 + rng.index(n - 1)) % n];
            rt.mention(&other.handle, &other.did);
            rt.push(" ");
            stats.mention_facets += 1;
        }
        let phrase = *rng.pick(lang.phrases);
        rt.push(phrase);
        if let Some(uri) = &link_in_text {
            rt.push(" ");
            rt.link(uri);
            stats.link_facets += 1;
        }
        if rng.chance(150) {
            let mut used: Vec<&str> = Vec::new();
            for _ in 0..1 + rng.index(3) {
                let tag = if rng.chance(800) {
                    *rng.pick(lang.tags)
                } else {
                    *rng.pick(COMMON_TAGS)
                };
                if !used.contains(&tag) {
                    used.push(tag);
                    rt.push(" ");
                    rt.tag(tag);
                    stats.tag_facets += 1;
                }
            }
        }

        let mut post = Map::new()
            .with("$type", "app.bsky.feed.post")
            .with("text", rt.text)
            .with("createdAt", created_at);
        stats.posts += 1;
        if langs.is_empty() {
            stats.posts_without_langs += 1;
        } else {
            for l in &langs {
                *stats.langs.entry((*l).to_owned()).or_default() += 1;
            }
            post.insert(
                "langs",
                Value::Array(langs.into_iter().map(Value::from).collect()),
            );
        }
        if !rt.facets.is_empty() {
            post.insert("facets", Value::Array(rt.facets));
        }
        let root = parent.as_ref().map(|p| {
            let root = p.thread_root();
            post.insert("reply", records::reply_ref(&root, &p.me));
            stats.replies += 1;
            root
        });
        if let Some(embed) = embed {
            post.insert("embed", embed);
        }
        if rng.chance(15) {
            let val = *rng.pick(&["nsfw", "sexual", "porn", "graphic-media", "nudity"]);
            post.insert("labels", records::self_labels(val));
            stats.self_labels += 1;
        }
        (Value::Map(post), root)
    }

    /// Signs and frames the planned commit.
    fn commit(&mut self, slot: usize, plan: Plan, now: &Now) -> SimFrame {
        let a = &mut self.accounts[slot];
        let rev = a.next_tid(now.time_us);
        let diff = a
            .repo
            .apply(&plan.ops, rev.as_str())
            .expect("the simulator's operations fit its repository");
        for (i, uri, root) in plan.posts {
            if let Some(cid) = diff.ops.get(i).and_then(|o| o.cid) {
                if self.pool.len() == POOL_CAP {
                    self.pool.pop_front();
                }
                self.pool.push_back(PostRef {
                    me: StrongRef {
                        uri,
                        cid: cid.to_string(),
                    },
                    root,
                    author: a.no,
                });
            }
        }
        let n = diff.ops.len() as u64;
        self.stats.ops += n;
        self.stats.max_ops_per_commit = self.stats.max_ops_per_commit.max(n);
        if n > 1 {
            self.stats.multi_op_commits += 1;
        }
        for op in &diff.ops {
            match op.action {
                OpAction::Create => self.stats.creates += 1,
                OpAction::Update => self.stats.updates += 1,
                OpAction::Delete => {}
            }
        }
        let bytes = write::commit_frame(now.seq, &a.did, &diff, &now.time);
        let a = &self.accounts[slot];
        self.frame(SimKind::Commit, &a.did, bytes, now)
    }
}

impl Iterator for Simulator {
    type Item = SimFrame;

    /// The next frame on the simulated clock: the first at [`SimConfig::start_time_us`], then
    /// every [`SimConfig::tick_us`]. Never ends.
    fn next(&mut self) -> Option<SimFrame> {
        let t = self.last_time_us.map_or(self.cfg.start_time_us, |t| {
            t.saturating_add(self.cfg.tick_us)
        });
        Some(self.next_frame(t))
    }
}
