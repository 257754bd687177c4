//! The simulator's frames, checked by the reading side: every frame decodes, every commit's
//! signature and `prevData` inversion verify against the simulator's directory, and the
//! records are what the lexicons and the brief say (facet offsets, references to real posts,
//! blobs), with every promised feature showing up.

use std::collections::{BTreeSet, HashMap, HashSet};

use skystream_data::{Cid, Value, RAW};
use skystream_event::verify::check_commit;
use skystream_event::{from_frame, EventKind, FrameOptions, OpAction};
use skystream_firehose::{decode_frame, Frame};
use skystream_identity::{Directory, MemoryDirectory};
use skystream_simulate::{EventMix, SimConfig, SimFrame, SimKind, Simulator};
use skystream_syntax::{is_valid_datetime, is_valid_did, is_valid_handle, is_valid_language};
use skystream_syntax::{is_valid_tid, is_valid_uri, Tid};

/// What the checker saw in the decoded stream (independent of the simulator's own counters).
#[derive(Default, Debug)]
struct Seen {
    langs: BTreeSet<String>,
    features: BTreeSet<&'static str>,
    account_statuses: BTreeSet<String>,
}

#[derive(Default)]
struct Checker {
    last_seq: Option<i64>,
    last_rev: HashMap<String, String>,
    /// Posts live now: uri -> cid.
    posts: HashMap<String, String>,
    /// Posts ever created (a thread's root may since have been deleted, as on the network).
    ever_posts: HashMap<String, String>,
    /// Accounts deleted (must never appear again) and deactivated (no commits until active).
    deleted: HashSet<String>,
    inactive: HashSet<String>,
    seen: Seen,
}

fn get<'v>(v: &'v Value<'static>, key: &str) -> &'v Value<'static> {
    v.get(key)
        .unwrap_or_else(|| panic!("missing {key} in {v:?}"))
}

fn get_str<'v>(v: &'v Value<'static>, key: &str) -> &'v str {
    get(v, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} not a string in {v:?}"))
}

impl Checker {
    fn see(&mut self, feature: &'static str) {
        self.seen.features.insert(feature);
    }

    /// A strongRef pointing at a live post created earlier in the stream.
    fn check_post_ref(&self, r: &Value<'static>) {
        let uri = get_str(r, "uri");
        let cid = get_str(r, "cid");
        assert_eq!(
            self.posts.get(uri).map(String::as_str),
            Some(cid),
            "reference to a post not live: {uri}"
        );
    }

    /// A strongRef pointing at a post created earlier in the stream, perhaps deleted since.
    fn check_root_ref(&self, r: &Value<'static>) {
        let uri = get_str(r, "uri");
        let cid = get_str(r, "cid");
        assert_eq!(
            self.ever_posts.get(uri).map(String::as_str),
            Some(cid),
            "reference to a post never created: {uri}"
        );
    }

    fn check_blob(&mut self, b: &Value<'static>, mime_prefix: &str) {
        assert_eq!(get_str(b, "$type"), "blob");
        let cid = get(b, "ref").as_link().expect("blob ref is a link");
        assert_eq!(cid.codec(), RAW);
        assert!(get_str(b, "mimeType").starts_with(mime_prefix));
        assert!(get(b, "size").as_i64().expect("size") > 0);
    }

    fn check_media(&mut self, embed: &Value<'static>) {
        match get_str(embed, "$type") {
            "app.bsky.embed.images" => {
                self.see("images");
                let images = get(embed, "images").as_array().expect("images");
                assert!((1..=4).contains(&images.len()));
                for img in images {
                    get_str(img, "alt");
                    self.check_blob(get(img, "image"), "image/");
                    let ar = get(img, "aspectRatio");
                    assert!(get(ar, "width").as_i64().expect("w") > 0);
                    assert!(get(ar, "height").as_i64().expect("h") > 0);
                }
            }
            "app.bsky.embed.video" => {
                self.see("video");
                self.check_blob(get(embed, "video"), "video/mp4");
            }
            "app.bsky.embed.external" => {
                self.see("external");
                let ext = get(embed, "external");
                assert!(is_valid_uri(get_str(ext, "uri")));
                get_str(ext, "title");
                get_str(ext, "description");
                if let Some(t) = ext.get("thumb") {
                    self.check_blob(t, "image/");
                }
            }
            other => panic!("unexpected media embed {other}"),
        }
    }

    fn check_post(&mut self, post: &Value<'static>) {
        let text = get_str(post, "text");
        assert!(text.len() <= 3000 && text.chars().count() <= 300);
        if let Some(langs) = post.get("langs") {
            let langs = langs.as_array().expect("langs array");
            assert!(!langs.is_empty() && langs.len() <= 3);
            for l in langs {
                let l = l.as_str().expect("lang string");
                assert!(is_valid_language(l), "{l}");
                self.seen.langs.insert(l.to_owned());
            }
        } else {
            self.see("no langs");
        }
        if let Some(facets) = post.get("facets") {
            let bytes = text.as_bytes();
            for f in facets.as_array().expect("facets") {
                assert_eq!(get_str(f, "$type"), "app.bsky.richtext.facet");
                let idx = get(f, "index");
                let start = get(idx, "byteStart").as_i64().expect("start") as usize;
                let end = get(idx, "byteEnd").as_i64().expect("end") as usize;
                assert!(
                    start < end && end <= bytes.len(),
                    "{start}..{end} in {text:?}"
                );
                let slice = std::str::from_utf8(&bytes[start..end])
                    .expect("facet range falls on character boundaries");
                for feat in get(f, "features").as_array().expect("features") {
                    match get_str(feat, "$type") {
                        "app.bsky.richtext.facet#tag" => {
                            self.see("tag facet");
                            assert_eq!(slice, format!("#{}", get_str(feat, "tag")));
                            if !slice.is_ascii() {
                                self.see("non-ascii tag facet");
                            }
                        }
                        "app.bsky.richtext.facet#mention" => {
                            self.see("mention facet");
                            let did = get_str(feat, "did");
                            assert!(is_valid_did(did));
                            let handle = slice.strip_prefix('@').expect("@handle");
                            assert!(is_valid_handle(handle), "{handle}");
                        }
                        "app.bsky.richtext.facet#link" => {
                            self.see("link facet");
                            assert_eq!(format!("https://{slice}"), get_str(feat, "uri"));
                        }
                        other => panic!("unexpected facet feature {other}"),
                    }
                }
                if !text.is_ascii() && start > 0 {
                    self.see("facet after non-ascii text");
                }
            }
        }
        if let Some(reply) = post.get("reply") {
            self.see("reply");
            self.check_root_ref(get(reply, "root"));
            self.check_post_ref(get(reply, "parent"));
        }
        if let Some(embed) = post.get("embed") {
            match get_str(embed, "$type") {
                "app.bsky.embed.record" => {
                    self.see("quote");
                    self.check_post_ref(get(embed, "record"));
                }
                "app.bsky.embed.recordWithMedia" => {
                    self.see("recordWithMedia");
                    let rec = get(embed, "record");
                    assert_eq!(get_str(rec, "$type"), "app.bsky.embed.record");
                    self.check_post_ref(get(rec, "record"));
                    self.check_media(get(embed, "media"));
                }
                _ => self.check_media(embed),
            }
        }
        if let Some(labels) = post.get("labels") {
            self.see("self labels");
            assert_eq!(
                get_str(labels, "$type"),
                "com.atproto.label.defs#selfLabels"
            );
            let values = get(labels, "values").as_array().expect("values");
            get_str(&values[0], "val");
        }
    }

    fn check_frame(&mut self, f: &SimFrame, dir: &dyn Directory) {
        if let Some(last) = self.last_seq {
            assert!(f.seq > last, "seq {} after {last}", f.seq);
        }
        self.last_seq = Some(f.seq);
        assert!(
            !self.deleted.contains(&f.did),
            "deleted account {} spoke",
            f.did
        );

        let frame = decode_frame(&f.bytes).unwrap_or_else(|e| panic!("seq {}: {e}", f.seq));
        assert_eq!(frame.seq(), Some(f.seq));
        let outcome = from_frame(&frame, &FrameOptions::default()).expect("event");
        assert!(outcome.op_errors.is_empty(), "{:?}", outcome.op_errors);
        let event = outcome.event.expect("an event");
        assert_eq!(event.did(), Some(f.did.as_str()));
        assert_eq!(event.time_us, f.time_us - f.time_us % 1000);
        assert_eq!(event.kind_name(), f.kind.as_str());

        if let Frame::Commit(msg) = &frame {
            assert!(!msg.ops.is_empty() && msg.ops.len() <= 200);
            if msg.ops.len() > 1 {
                self.see("multi-op commit");
            }
            let check = check_commit(msg, dir);
            check
                .signature
                .unwrap_or_else(|e| panic!("seq {}: signature: {e}", f.seq));
            check
                .prev_data
                .expect("prevData present")
                .unwrap_or_else(|e| panic!("seq {}: prevData: {e}", f.seq));
        }

        match event.kind {
            EventKind::Commit(c) => {
                assert!(
                    !self.inactive.contains(&c.did),
                    "inactive account committed"
                );
                assert!(is_valid_tid(&c.rev));
                let prev = self.last_rev.insert(c.did.clone(), c.rev.clone());
                if let Some(prev) = &prev {
                    assert!(c.rev > *prev, "rev {} not after {prev}", c.rev);
                }
                assert_eq!(c.since, prev, "since is the previous rev");
                for op in &c.ops {
                    self.check_op(&c.did, op);
                }
            }
            EventKind::Sync(s) => {
                assert!(s.commit.is_some());
                let prev = self.last_rev.insert(s.did.clone(), s.rev.clone());
                let prev = prev.expect("a #sync follows a commit");
                if s.rev == prev {
                    // The current commit, announced again.
                    self.see("sync");
                } else {
                    // A reset to a fresh repository: what the account had is gone.
                    assert!(s.rev > prev, "sync rev {} before {prev}", s.rev);
                    self.see("sync reset");
                    let prefix = format!("at://{}/", s.did);
                    self.posts.retain(|uri, _| !uri.starts_with(&prefix));
                }
            }
            EventKind::Identity(i) => {
                self.see("identity");
                let doc = dir.lookup(&i.did).expect("document");
                if let Some(h) = &i.handle {
                    assert!(is_valid_handle(h));
                    assert_eq!(doc.handle(), Some(h.as_str()));
                }
            }
            EventKind::Account(a) => {
                let status = a.status.clone().unwrap_or_else(|| "active".into());
                self.seen.account_statuses.insert(status.clone());
                if a.active {
                    assert!(a.status.is_none());
                    self.inactive.remove(&a.did);
                } else if status == "deleted" {
                    let prefix = format!("at://{}/", a.did);
                    self.posts.retain(|uri, _| !uri.starts_with(&prefix));
                    self.deleted.insert(a.did.clone());
                } else {
                    self.inactive.insert(a.did.clone());
                }
            }
            EventKind::Info(_) => panic!("no info frames"),
        }
    }

    fn check_op(&mut self, did: &str, op: &skystream_event::Op) {
        let coll = op.collection.as_str();
        if coll == "app.bsky.actor.profile" {
            assert_eq!(op.rkey, "self");
        } else {
            assert!(is_valid_tid(&op.rkey), "{}", op.rkey);
            assert!(Tid::parse(&op.rkey).is_ok());
        }
        match op.action {
            OpAction::Delete => {
                self.see("delete");
                assert!(op.prev.is_some());
                if coll == "app.bsky.feed.post" {
                    self.posts.remove(&op.uri(did));
                }
                return;
            }
            OpAction::Update => {
                assert_eq!(coll, "app.bsky.actor.profile");
                self.see("profile update");
            }
            OpAction::Create => {}
        }
        let rec = op.record.as_ref().expect("record");
        assert_eq!(get_str(rec, "$type"), coll);
        assert!(is_valid_datetime(get_str(rec, "createdAt")));
        match coll {
            "app.bsky.feed.post" => {
                self.see("post");
                self.check_post(rec);
                let cid: Cid = op.cid.expect("cid");
                self.posts.insert(op.uri(did), cid.to_string());
                self.ever_posts.insert(op.uri(did), cid.to_string());
            }
            "app.bsky.feed.like" | "app.bsky.feed.repost" => {
                self.see(if coll == "app.bsky.feed.like" {
                    "like"
                } else {
                    "repost"
                });
                self.check_post_ref(get(rec, "subject"));
            }
            "app.bsky.graph.follow" | "app.bsky.graph.block" => {
                self.see(if coll == "app.bsky.graph.follow" {
                    "follow"
                } else {
                    "block"
                });
                let subject = get_str(rec, "subject");
                assert!(is_valid_did(subject));
                assert_ne!(subject, did);
            }
            "app.bsky.actor.profile" => {
                self.see("profile");
                get_str(rec, "displayName");
                self.check_blob(get(rec, "avatar"), "image/");
            }
            other => panic!("unexpected collection {other}"),
        }
    }
}

fn run(cfg: SimConfig, frames: usize) -> (Simulator, Checker) {
    let mut sim = Simulator::new(cfg);
    let dir = sim.directory();
    let mut checker = Checker::default();
    for _ in 0..frames {
        let f = sim.next().expect("endless");
        checker.check_frame(&f, &dir);
    }
    (sim, checker)
}

const FEATURES: &[&str] = &[
    "post",
    "reply",
    "quote",
    "images",
    "video",
    "external",
    "recordWithMedia",
    "tag facet",
    "non-ascii tag facet",
    "mention facet",
    "link facet",
    "facet after non-ascii text",
    "self labels",
    "no langs",
    "like",
    "repost",
    "follow",
    "block",
    "profile",
    "profile update",
    "delete",
    "multi-op commit",
    "identity",
    "sync",
];

const ACCOUNT_STATUSES: &[&str] = &["deactivated", "deleted", "active"];

fn missing(seen: &Seen) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = FEATURES
        .iter()
        .copied()
        .filter(|f| !seen.features.contains(f))
        .collect();
    out.extend(
        ACCOUNT_STATUSES
            .iter()
            .copied()
            .filter(|s| !seen.account_statuses.contains(*s)),
    );
    if seen.langs.len() < 10 {
        out.push("ten languages");
    }
    out
}

#[test]
fn every_frame_decodes_verifies_and_covers_the_brief() {
    let mut sim = Simulator::new(SimConfig {
        seed: 1,
        ..SimConfig::default()
    });
    let dir = sim.directory();
    let mut checker = Checker::default();
    for _ in 0..3000 {
        let f = sim.next().expect("endless");
        checker.check_frame(&f, &dir);
    }
    let stats = sim.stats().clone();
    println!("after 3000 frames: {stats:#?}\n{:#?}", checker.seen);
    assert_eq!(stats.frames, 3000);
    assert_eq!(
        stats.commits + stats.identities + stats.account_events + stats.syncs,
        stats.frames
    );
    assert!(stats.max_ops_per_commit <= 200);
    assert!(stats.handle_changes > 0);
    // Roughly the network's mix: likes dominate, then posts.
    assert!(stats.likes > stats.posts && stats.posts > stats.follows / 2);
    assert!(checker.seen.langs.len() >= 10, "{:?}", checker.seen.langs);

    // The rarest events (an account deletion comes about once in two thousand frames): keep
    // going, still checking every frame, until everything has shown up.
    let mut frames = 3000;
    while !missing(&checker.seen).is_empty() && frames < 20_000 {
        let f = sim.next().expect("endless");
        checker.check_frame(&f, &dir);
        frames += 1;
    }
    println!("everything seen after {frames} frames");
    assert_eq!(missing(&checker.seen), Vec::<&str>::new());
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let frames = |seed: u64| -> Vec<SimFrame> {
        Simulator::new(SimConfig {
            seed,
            accounts: 50,
            ..SimConfig::default()
        })
        .take(400)
        .collect()
    };
    let a = frames(42);
    assert_eq!(a, frames(42));
    let b = frames(43);
    assert_ne!(a, b);
    assert!(a.iter().zip(&b).all(|(x, y)| x.bytes != y.bytes));
    // Explicit times are honoured and never go backwards.
    let mut sim = Simulator::new(SimConfig::default());
    let f1 = sim.next_frame(2_000_000_000_000_000);
    let f2 = sim.next_frame(1_000_000_000_000_000);
    assert_eq!(f1.time_us, 2_000_000_000_000_000);
    assert_eq!(f2.time_us, f1.time_us);
    assert_eq!((f1.seq, f2.seq), (1, 2));
}

#[test]
fn churny_tiny_population_stays_valid() {
    // Two accounts, a repository cap of 15 writes and a storm of account events: accounts are
    // deactivated, deleted and replaced, and repositories reset, constantly; every frame must
    // still verify.
    let (sim, checker) = run(
        SimConfig {
            seed: 9,
            accounts: 2,
            start_seq: 1_000,
            max_writes_per_account: 15,
            mix: EventMix {
                account: 2_000,
                sync: 500,
                identity: 1_000,
                ..EventMix::default()
            },
            ..SimConfig::default()
        },
        1500,
    );
    let stats = sim.stats();
    assert!(stats.account_deletions > 10, "{stats:?}");
    assert!(stats.repo_resets > 10, "{stats:?}");
    assert!(checker.seen.features.contains("sync reset"));
    assert_eq!(stats.accounts_created, stats.account_deletions);
    assert_eq!(sim.dids().count(), 2);
    assert_eq!(sim.directory().len(), 2 + stats.accounts_created as usize);
    assert!(checker.seen.account_statuses.contains("takendown") || stats.takedowns == 0);
    assert_eq!(checker.last_seq, Some(1_000 + 1499));
}

#[test]
fn directories_cover_every_key_form() {
    let mut sim = Simulator::new(SimConfig {
        seed: 3,
        accounts: 300,
        ..SimConfig::default()
    });
    for _ in 0..200 {
        sim.next();
    }
    let live = sim.directory();
    let snapshot = sim.memory_directory();
    let from_json = MemoryDirectory::from_json_map(&sim.did_docs_json()).expect("did_docs.json");
    assert_eq!(snapshot.len(), live.len());
    assert_eq!(from_json.len(), live.len());
    let mut forms = BTreeSet::new();
    for did in sim.dids() {
        assert!(did.starts_with("did:plc:") && did.len() == 32 && is_valid_did(did));
        let doc = live.lookup(did).expect("doc");
        assert_eq!(from_json.lookup(did).as_deref(), Some(&*doc));
        let vm = &doc.verification_method[0];
        let key = doc.signing_key().expect("key");
        forms.insert((vm.kind.clone(), key.algorithm()));
        assert!(is_valid_handle(doc.handle().expect("handle")));
        assert!(doc.pds_endpoint().is_some());
    }
    use skystream_crypto::Algorithm::{K256, P256};
    for form in [
        ("Multikey".to_owned(), K256),
        ("Multikey".to_owned(), P256),
        ("EcdsaSecp256k1VerificationKey2019".to_owned(), K256),
    ] {
        assert!(forms.contains(&form), "no {form:?} in {forms:?}");
    }
}

#[test]
fn kinds_match_frames() {
    let sim = Simulator::new(SimConfig {
        seed: 5,
        accounts: 20,
        mix: EventMix {
            identity: 2000,
            account: 1000,
            sync: 1000,
            ..EventMix::default()
        },
        ..SimConfig::default()
    });
    let mut kinds = BTreeSet::new();
    for f in sim.take(300) {
        let frame = decode_frame(&f.bytes).expect("frame");
        let expected = match f.kind {
            SimKind::Commit => "#commit",
            SimKind::Identity => "#identity",
            SimKind::Account => "#account",
            SimKind::Sync => "#sync",
        };
        assert_eq!(frame.type_name(), expected);
        kinds.insert(f.kind);
    }
    assert_eq!(kinds.len(), 4);
}

#[test]
fn fits_an_async_source() {
    fn send<T: Send + 'static>() {}
    fn shared<T: Send + Sync + Clone + 'static>() {}
    send::<Simulator>();
    send::<SimFrame>();
    shared::<skystream_simulate::SimDirectory>();
    // A population is never smaller than two (follows and mentions need someone else).
    let sim = Simulator::new(SimConfig {
        accounts: 0,
        ..SimConfig::default()
    });
    assert_eq!(sim.dids().count(), 2);
}
