//! The indexer over realistic events: posts land in the feeds they match, deletes and account
//! removals take them out, likes are counted and gate min_likes feeds, and replays change
//! nothing.

use std::sync::{Arc, Mutex, RwLock};

use skystream_event::{Account, Commit, Event, EventKind, Op, OpAction, Origin};
use skystream_feeds::Config;
use skystream_indexer::{FeedSet, Indexer, RecentWindow, SharedFeeds};
use skystream_pipeline::{Batch, Consumer, Envelope};
use skystream_store::{FeedStore, MemoryStore};

const CONFIG: &str = r#"
[[feed]]
id = "bokmaal"
display_name = "Bokmål"
languages = ["nb"]

[[feed]]
id = "popular"
display_name = "Popular øl"
keywords = ["øl"]
min_likes = 2
"#;

fn post(rkey: &str, text: &str, langs: &[&str]) -> Op {
    let record = serde_json::json!({"$type": "app.bsky.feed.post", "text": text, "langs": langs,
        "createdAt": "2026-07-04T14:38:06.240Z"});
    Op {
        action: OpAction::Create,
        collection: "app.bsky.feed.post".into(),
        rkey: rkey.into(),
        cid: Some(
            "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"
                .parse()
                .expect("cid"),
        ),
        prev: None,
        record: Some(skystream_data::json::record_from_json(&record).expect("record")),
    }
}

fn like(rkey: &str, subject: &str) -> Op {
    let record = serde_json::json!({"$type": "app.bsky.feed.like", "createdAt": "2026-07-04T14:38:06.240Z",
        "subject": {"uri": subject, "cid": "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"}});
    Op {
        action: OpAction::Create,
        collection: "app.bsky.feed.like".into(),
        rkey: rkey.into(),
        cid: Some(
            "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"
                .parse()
                .expect("cid"),
        ),
        prev: None,
        record: Some(skystream_data::json::record_from_json(&record).expect("record")),
    }
}

fn delete(collection: &str, rkey: &str) -> Op {
    Op {
        action: OpAction::Delete,
        collection: collection.into(),
        rkey: rkey.into(),
        cid: None,
        prev: None,
        record: None,
    }
}

fn commit(cursor: u64, did: &str, ops: Vec<Op>) -> Envelope {
    Envelope::new(Event {
        cursor,
        time_us: 0,
        origin: Origin::Live,
        kind: EventKind::Commit(Commit {
            did: did.into(),
            rev: "3mptbypluud2a".into(),
            since: None,
            seq: cursor as i64,
            time: String::new(),
            ops,
        }),
    })
}

fn account(cursor: u64, did: &str, active: bool, status: Option<&str>) -> Envelope {
    Envelope::new(Event {
        cursor,
        time_us: 0,
        origin: Origin::Live,
        kind: EventKind::Account(Account {
            did: did.into(),
            seq: cursor as i64,
            time: String::new(),
            active,
            status: status.map(Into::into),
        }),
    })
}

async fn items(store: &MemoryStore, feed: &str) -> Vec<String> {
    store
        .chronological_page(feed, None, 100)
        .await
        .expect("page")
        .into_iter()
        .map(|i| i.uri)
        .collect()
}

/// An indexer over a fresh memory store with the feeds of `toml`; the feeds handle is for
/// reloading.
fn indexer_for(toml: &str) -> (MemoryStore, SharedFeeds, Indexer) {
    let config = Config::from_toml_str(toml, "test.toml").expect("config");
    let store = MemoryStore::new();
    let feeds: SharedFeeds = Arc::new(RwLock::new(Arc::new(FeedSet {
        version: 0,
        feeds: config.feeds,
    })));
    let idx = Indexer::new(
        Arc::new(store.clone()),
        feeds.clone(),
        Arc::new(Mutex::new(RecentWindow::new(1000))),
    );
    (store, feeds, idx)
}

#[tokio::test]
async fn posts_likes_deletes_and_accounts() {
    let (store, _, mut idx) = indexer_for(CONFIG);
    let (a, b) = (
        "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb",
    );
    let a_post = |rkey: &str| format!("at://{a}/app.bsky.feed.post/{rkey}");

    let batch = Batch {
        id: 1,
        items: vec![
            commit(
                1,
                a,
                vec![post("3kaaaaaaaaa22", "Jeg tar en øl i kveld", &["nb"])],
            ),
            commit(
                2,
                a,
                vec![post("3kaaaaaaaab22", "An English post about øl", &["en"])],
            ),
            commit(
                3,
                b,
                vec![post("3kbbbbbbbba22", "Hei fra Oslo", &["nb-NO"])],
            ),
        ],
    };
    idx.handle(&batch).await.expect("handle");
    idx.handle(&batch).await.expect("a replay is harmless");
    assert_eq!(
        items(&store, "bokmaal").await,
        vec![
            format!("at://{b}/app.bsky.feed.post/3kbbbbbbbba22"),
            a_post("3kaaaaaaaaa22")
        ]
    );
    assert!(
        items(&store, "popular").await.is_empty(),
        "min_likes = 2 holds both øl posts back"
    );

    // Two likes (one replayed) bring the first øl post into the popular feed.
    let likes = Batch {
        id: 2,
        items: vec![
            commit(4, b, vec![like("3kllllllllla2", &a_post("3kaaaaaaaaa22"))]),
            commit(5, b, vec![like("3kllllllllla2", &a_post("3kaaaaaaaaa22"))]),
            commit(6, a, vec![like("3kllllllllll2", &a_post("3kaaaaaaaaa22"))]),
        ],
    };
    idx.handle(&likes).await.expect("likes");
    assert_eq!(
        items(&store, "popular").await,
        vec![a_post("3kaaaaaaaaa22")]
    );
    let (_, like_count, _) = store
        .post(&a_post("3kaaaaaaaaa22"))
        .await
        .expect("post")
        .expect("kept");
    assert_eq!(like_count, 2, "the replayed like counts once");

    // Unliking drops it below the minimum again.
    idx.handle(&Batch {
        id: 3,
        items: vec![commit(
            7,
            a,
            vec![delete("app.bsky.feed.like", "3kllllllllll2")],
        )],
    })
    .await
    .expect("unlike");
    assert!(items(&store, "popular").await.is_empty());

    // Deactivation hides, reactivation restores, deletion removes.
    idx.handle(&Batch {
        id: 4,
        items: vec![account(8, b, false, Some("deactivated"))],
    })
    .await
    .expect("deactivate");
    assert_eq!(
        items(&store, "bokmaal").await,
        vec![a_post("3kaaaaaaaaa22")]
    );
    idx.handle(&Batch {
        id: 5,
        items: vec![account(9, b, true, None)],
    })
    .await
    .expect("reactivate");
    assert_eq!(items(&store, "bokmaal").await.len(), 2);
    idx.handle(&Batch {
        id: 6,
        items: vec![account(10, b, false, Some("deleted"))],
    })
    .await
    .expect("delete account");
    assert_eq!(
        items(&store, "bokmaal").await,
        vec![a_post("3kaaaaaaaaa22")]
    );

    // A post delete takes it out of every feed.
    idx.handle(&Batch {
        id: 7,
        items: vec![commit(
            11,
            a,
            vec![delete("app.bsky.feed.post", "3kaaaaaaaaa22")],
        )],
    })
    .await
    .expect("delete");
    assert!(items(&store, "bokmaal").await.is_empty());
}

#[tokio::test]
async fn a_reload_reevaluates_recent_posts() {
    let (store, feeds, mut idx) = indexer_for(CONFIG);
    let a = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    idx.handle(&Batch {
        id: 1,
        items: vec![commit(
            1,
            a,
            vec![post("3kaaaaaaaaa22", "Hello there", &["en"])],
        )],
    })
    .await
    .expect("handle");
    assert!(items(&store, "english").await.is_empty());
    let reloaded = Config::from_toml_str(
        "[[feed]]\nid = \"english\"\ndisplay_name = \"English\"\nlanguages = [\"en\"]\n",
        "test.toml",
    )
    .expect("config");
    *feeds.write().expect("lock") = Arc::new(FeedSet {
        version: 1,
        feeds: reloaded.feeds,
    });
    idx.handle(&Batch {
        id: 2,
        items: vec![],
    })
    .await
    .expect("handle");
    assert_eq!(
        items(&store, "english").await,
        vec![format!("at://{a}/app.bsky.feed.post/3kaaaaaaaaa22")]
    );
}

fn repost(rkey: &str, subject: &str) -> Op {
    let mut op = like(rkey, subject);
    op.collection = "app.bsky.feed.repost".into();
    let record = serde_json::json!({"$type": "app.bsky.feed.repost", "createdAt": "2026-07-04T15:00:00.000Z",
        "subject": {"uri": subject, "cid": "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"}});
    op.record = Some(skystream_data::json::record_from_json(&record).expect("record"));
    op
}

#[tokio::test]
async fn reposts_become_items_of_the_feeds_that_take_them() {
    let (author, fan, other) = (
        "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "did:plc:ffffffffffffffffffffffff",
        "did:plc:oooooooooooooooooooooooo",
    );
    let (store, _, mut idx) = indexer_for(&format!(
        r#"
[[feed]]
id = "fan"
display_name = "The fan"
authors = ["{fan}"]
reposts = true

[[feed]]
id = "norsk"
display_name = "Norsk and reposts"
languages = ["nb"]
reposts = true

[[feed]]
id = "plain"
display_name = "Norsk, no reposts"
languages = ["nb"]
"#
    ));
    let norsk = format!("at://{author}/app.bsky.feed.post/3knorsk");
    let old = format!("at://{author}/app.bsky.feed.post/3kold");
    let fan_repost = |rkey: &str| format!("at://{fan}/app.bsky.feed.repost/{rkey}");
    let batch = Batch {
        id: 1,
        items: vec![
            commit(
                1,
                author,
                vec![post("3knorsk", "Jeg er ikke hjemme i dag", &["nb"])],
            ),
            // The fan reposts the Norwegian post and one the window never saw.
            commit(2, fan, vec![repost("3kr1", &norsk), repost("3kr2", &old)]),
            // Someone else's repost of the Norwegian post: only `norsk` takes it.
            commit(3, other, vec![repost("3kr3", &norsk)]),
        ],
    };
    idx.handle(&batch).await.expect("index");
    let page = |feed: &'static str| {
        let store = store.clone();
        async move {
            store
                .chronological_page(feed, None, 100)
                .await
                .expect("page")
                .into_iter()
                .map(|i| (i.uri, i.repost))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        page("fan").await,
        [
            (old.clone(), Some(fan_repost("3kr2"))),
            (norsk.clone(), Some(fan_repost("3kr1"))),
        ],
        "the fan's reposts, of a known post and of an unknown one"
    );
    assert_eq!(
        page("norsk").await,
        [
            (
                norsk.clone(),
                Some(format!("at://{other}/app.bsky.feed.repost/3kr3"))
            ),
            (norsk.clone(), Some(fan_repost("3kr1"))),
            (norsk.clone(), None),
        ],
        "reposts of a matching post; the unknown post cannot be judged on language"
    );
    assert_eq!(page("plain").await, [(norsk.clone(), None)]);
    // The repost counted toward the post as well.
    let (_, _, reposts) = store.post(&norsk).await.expect("post").expect("stored");
    assert_eq!(reposts, 2);

    // Undoing the repost removes its item; deleting the post removes the items of it.
    idx.handle(&Batch {
        id: 2,
        items: vec![commit(4, fan, vec![delete("app.bsky.feed.repost", "3kr2")])],
    })
    .await
    .expect("index");
    assert_eq!(
        page("fan").await,
        [(norsk.clone(), Some(fan_repost("3kr1")))]
    );
    idx.handle(&Batch {
        id: 3,
        items: vec![commit(
            5,
            author,
            vec![delete("app.bsky.feed.post", "3knorsk")],
        )],
    })
    .await
    .expect("index");
    assert!(page("fan").await.is_empty());
    assert!(page("norsk").await.is_empty());
}

#[tokio::test]
async fn a_large_batch_lands_whole_and_in_order() {
    let (store, _, mut idx) = indexer_for(CONFIG);
    let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let events: Vec<Envelope> = (0..1000u64)
        .map(|i| {
            commit(
                i + 1,
                did,
                vec![post(&format!("3k{i:011}"), "Jeg er hjemme", &["nb"])],
            )
        })
        .collect();
    idx.handle(&Batch {
        id: 1,
        items: events,
    })
    .await
    .expect("index");
    let want: Vec<String> = (0..1000u64)
        .rev()
        .map(|i| format!("at://{did}/app.bsky.feed.post/3k{i:011}"))
        .collect();
    assert_eq!(items(&store, "bokmaal").await.len(), 100, "a page of 100");
    let all: Vec<String> = store
        .chronological_page("bokmaal", None, 5000)
        .await
        .expect("page")
        .into_iter()
        .map(|i| i.uri)
        .collect();
    assert_eq!(all, want);
}

/// Engagement scores are the store's, from its counts (issue 15, item 5): before, they came
/// from the indexer's in-memory window, so an unlike never lowered them, one account cycling
/// like/unlike pumped a post up, and a restarted indexer (an empty window) froze them.
#[tokio::test]
async fn engagement_scores_follow_likes_unlikes_and_restarts() {
    const HOT: &str = r#"
[[feed]]
id = "hot"
display_name = "Hot"
languages = ["nb"]
ranking = "engagement"
half_life = "1h"
"#;
    let (store, feeds, mut idx) = indexer_for(HOT);
    let (a, b) = (
        "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb",
    );
    let (p1, p2) = (
        format!("at://{a}/app.bsky.feed.post/3kaaaaaaaaa22"),
        format!("at://{a}/app.bsky.feed.post/3kaaaaaaaab22"),
    );
    let mut cursor = 0;
    let mut next = || {
        cursor += 1;
        cursor
    };
    let mut items = vec![
        commit(next(), a, vec![post("3kaaaaaaaaa22", "Hei", &["nb"])]),
        commit(next(), a, vec![post("3kaaaaaaaab22", "Hallo", &["nb"])]),
        // p2: one lasting like.
        commit(next(), b, vec![like("3lbbbbbbbbb00", &p2)]),
    ];
    // b cycles like/unlike on p1 twenty times.
    for i in 0..20 {
        let rkey = format!("3lbbbbbbbbc{i:02}");
        items.push(commit(next(), b, vec![like(&rkey, &p1)]));
        items.push(commit(next(), b, vec![delete("app.bsky.feed.like", &rkey)]));
    }
    idx.handle(&Batch { id: 1, items }).await.expect("handle");
    let top = store.ranked_top("hot", 10).await.expect("top");
    let uris: Vec<&str> = top.iter().map(|i| i.uri.as_str()).collect();
    assert_eq!(
        uris,
        [p2.as_str(), p1.as_str()],
        "the liked post ranks first"
    );
    check_scores(&store, &top).await;

    // A restart: a new indexer with an empty window; p1 gets two likes, p2 loses its one.
    let mut idx = Indexer::new(
        Arc::new(store.clone()),
        feeds,
        Arc::new(Mutex::new(RecentWindow::new(1000))),
    );
    let items = vec![
        commit(next(), b, vec![like("3lbbbbbbbbd00", &p1)]),
        commit(next(), a, vec![like("3laaaaaaaad00", &p1)]),
        commit(
            next(),
            b,
            vec![delete("app.bsky.feed.like", "3lbbbbbbbbb00")],
        ),
    ];
    idx.handle(&Batch { id: 2, items }).await.expect("handle");
    let top = store.ranked_top("hot", 10).await.expect("top");
    let uris: Vec<&str> = top.iter().map(|i| i.uri.as_str()).collect();
    assert_eq!(
        uris,
        [p1.as_str(), p2.as_str()],
        "the order follows the counts"
    );
    check_scores(&store, &top).await;
}

/// Each item's score is the one the store's counts give.
async fn check_scores(store: &MemoryStore, top: &[skystream_store::FeedItem]) {
    for item in top {
        let (row, likes, reposts) = store
            .post(&item.uri)
            .await
            .expect("lookup")
            .expect("stored");
        let want = skystream_store::engagement_score(likes, reposts, row.created_at_ms, 3600.0);
        assert!(
            (item.score - want).abs() < 1e-9,
            "{}: score {} against the counts' {want}",
            item.uri,
            item.score
        );
    }
}
