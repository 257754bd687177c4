//! One behavioural suite for [`FeedStore`], run against every backend: `MemoryStore`, SQLite
//! (a file in a temporary directory) and PostgreSQL (a schema of its own in the test database;
//! ignored unless asked for, see `common`). Ends with two randomized checks: paging while other
//! tasks write, and every backend against `MemoryStore` as the model.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skystream_store::{
    AccountStatus, BackendKind, FeedItem, FeedStore, FeedWrite, Membership, MemoryStore, PostRow,
    Store, StoreErrorKind,
};

use common::{Fixture, Under};

fn uri(author: &str, rkey: &str) -> String {
    format!("at://{author}/app.bsky.feed.post/{rkey}")
}

fn post(author: &str, rkey: &str, indexed_at_ms: i64) -> PostRow {
    PostRow {
        uri: uri(author, rkey),
        cid: format!("bafy{rkey}"),
        author: author.to_owned(),
        rkey: rkey.to_owned(),
        created_at_ms: 1_700_000_000_000 - indexed_at_ms, // deliberately the reverse order
        indexed_at_ms,
        langs: vec!["en".into()],
        text: format!("post {rkey}"),
        reply_parent: None,
        reply_root: None,
        embed_kind: None,
        hashtags: Vec::new(),
        mentions: Vec::new(),
        labels: Vec::new(),
        repost_of: None,
    }
}

/// The row of a repost item: `reposter`'s repost `rkey` of `subject`.
fn repost_row(reposter: &str, rkey: &str, subject: &str, indexed_at_ms: i64) -> PostRow {
    PostRow {
        uri: format!("at://{reposter}/app.bsky.feed.repost/{rkey}"),
        cid: format!("bafyrepost{rkey}"),
        author: reposter.to_owned(),
        rkey: rkey.to_owned(),
        indexed_at_ms,
        repost_of: Some(subject.to_owned()),
        ..PostRow::default()
    }
}

fn member(feed: &str, score: f64, min_likes: u64) -> Membership {
    Membership {
        feed: feed.to_owned(),
        score,
        min_likes,
        half_life_s: None,
    }
}

fn upsert(post: PostRow, feeds: &[Membership]) -> FeedWrite {
    FeedWrite::UpsertPost {
        post,
        feeds: feeds.to_vec(),
    }
}

fn like_uri(liker: &str, n: u32) -> String {
    format!("at://{liker}/app.bsky.feed.like/{n}")
}

fn like(liker: &str, n: u32, subject: &str) -> FeedWrite {
    FeedWrite::AddLike {
        uri: like_uri(liker, n),
        subject: subject.to_owned(),
    }
}

fn status(did: &str, status: AccountStatus) -> FeedWrite {
    FeedWrite::SetAccountStatus {
        did: did.to_owned(),
        status,
    }
}

async fn page_uris(store: &Store, feed: &str) -> Vec<String> {
    uris(&store.chronological_page(feed, None, 1_000).await.unwrap())
}

async fn ranked_uris(store: &Store, feed: &str) -> Vec<String> {
    uris(&store.ranked_top(feed, 1_000).await.unwrap())
}

fn uris(items: &[FeedItem]) -> Vec<String> {
    items.iter().map(|i| i.uri.clone()).collect()
}

async fn counts(store: &Store, uri: &str) -> Option<(u64, u64)> {
    store.post(uri).await.unwrap().map(|(_, l, r)| (l, r))
}

const A: &str = "did:plc:alice";
const B: &str = "did:plc:bob";
const C: &str = "did:plc:carol";

/// The behaviours, each a function of a fresh fixture.
mod behaviour {
    use super::*;

    /// Engagement scores come from the store's counts (issue 15, item 5): an unlike lowers
    /// them, one account cycling like/unlike gains nothing, an account's removal takes its
    /// likes off, and a reopened store (a restart) has the same scores.
    pub async fn engagement_scores_follow_the_counts(fx: &Fixture) {
        let s = &fx.store;
        const HALF_LIFE: f64 = 3600.0;
        let hot = |score| Membership {
            feed: "hot".into(),
            score,
            min_likes: 0,
            half_life_s: Some(HALF_LIFE),
        };
        let (p1, p2) = (post(A, "1", 1_000), post(A, "2", 2_000));
        let (u1, u2) = (p1.uri.clone(), p2.uri.clone());
        let created = (p1.created_at_ms, p2.created_at_ms);
        // The score given is ignored: the store scores from its counts (none yet).
        s.apply(vec![upsert(p1, &[hot(1e9)]), upsert(p2, &[hot(-1e9)])])
            .await
            .unwrap();
        let score_of = |items: &[FeedItem], uri: &str| {
            items
                .iter()
                .find(|i| i.uri == uri)
                .map(|i| i.score)
                .unwrap()
        };
        let close = |got: f64, want: f64| {
            assert!((got - want).abs() < 1e-9, "score {got}, want {want}");
        };
        let top = s.ranked_top("hot", 10).await.unwrap();
        close(
            score_of(&top, &u1),
            skystream_store::engagement_score(0, 0, created.0, HALF_LIFE),
        );
        // Three likes and a repost of p1, then two unlikes; carol cycles like/unlike ten times.
        let mut writes = vec![like(B, 1, &u1), like(B, 2, &u1), like(C, 1, &u1)];
        writes.push(FeedWrite::AddRepost {
            uri: format!("at://{C}/app.bsky.feed.repost/1"),
            subject: u1.clone(),
        });
        writes.push(FeedWrite::RemoveLike {
            uri: like_uri(B, 1),
        });
        writes.push(FeedWrite::RemoveLike {
            uri: like_uri(B, 2),
        });
        for n in 10..20 {
            writes.push(like(C, n, &u2));
            writes.push(FeedWrite::RemoveLike {
                uri: like_uri(C, n),
            });
        }
        s.apply(writes).await.unwrap();
        let top = s.ranked_top("hot", 10).await.unwrap();
        assert_eq!(counts(s, &u1).await, Some((1, 1)));
        assert_eq!(counts(s, &u2).await, Some((0, 0)));
        let want1 = skystream_store::engagement_score(1, 1, created.0, HALF_LIFE);
        close(score_of(&top, &u1), want1);
        close(
            score_of(&top, &u2),
            skystream_store::engagement_score(0, 0, created.1, HALF_LIFE),
        );
        // Re-indexing the post keeps its counts, so its score.
        s.apply(vec![upsert(post(A, "1", 1_000), &[hot(0.0)])])
            .await
            .unwrap();
        close(
            score_of(&s.ranked_top("hot", 10).await.unwrap(), &u1),
            want1,
        );
        // Carol's account is removed: her like and repost go, and so does the score.
        s.apply(vec![status(C, AccountStatus::Removed)])
            .await
            .unwrap();
        assert_eq!(counts(s, &u1).await, Some((0, 0)));
        let want1 = skystream_store::engagement_score(0, 0, created.0, HALF_LIFE);
        close(
            score_of(&s.ranked_top("hot", 10).await.unwrap(), &u1),
            want1,
        );
        // A restart reads the same scores.
        if let Some(url) = &fx.url {
            let reopened = Store::open(url).await.unwrap();
            close(
                score_of(&reopened.ranked_top("hot", 10).await.unwrap(), &u1),
                want1,
            );
        }
    }

    pub async fn upsert_is_idempotent_and_keeps_seq(fx: &Fixture) {
        let s = &fx.store;
        let (a1, a2, b1) = (uri(A, "1"), uri(A, "2"), uri(B, "1"));
        s.apply(vec![
            upsert(
                post(A, "1", 100),
                &[member("all", 1.0, 0), member("art", 5.0, 0)],
            ),
            upsert(post(A, "2", 200), &[member("all", 2.0, 0)]),
            upsert(post(B, "1", 300), &[member("all", 3.0, 0)]),
            like(C, 1, &a1),
        ])
        .await
        .unwrap();
        let before = s.chronological_page("all", None, 10).await.unwrap();
        assert_eq!(uris(&before), [b1.as_str(), a2.as_str(), a1.as_str()]);
        assert!(before[0].seq > before[1].seq && before[1].seq > before[2].seq);

        // A replay, later and with other content and feeds: the same seq and indexed_at,
        // the new fields, the new memberships, the likes kept.
        let mut replay = post(A, "1", 9_999);
        replay.text = "edited".into();
        replay.langs = vec!["de".into(), "en".into()];
        s.apply(vec![upsert(
            replay.clone(),
            &[member("all", 7.0, 0), member("music", 1.0, 0)],
        )])
        .await
        .unwrap();
        s.apply(vec![upsert(
            replay.clone(),
            &[member("all", 7.0, 0), member("music", 1.0, 0)],
        )])
        .await
        .unwrap();
        // Its new score (time) moves it up; its seq, indexed_at and likes are kept.
        let after = s.chronological_page("all", None, 10).await.unwrap();
        assert_eq!(uris(&after), [a1.as_str(), b1.as_str(), a2.as_str()]);
        assert_eq!(after[0].seq, before[2].seq);
        assert_eq!(after[0].score, 7.0);
        assert_eq!(after[0].indexed_at_ms, 100);
        assert_eq!(after[0].likes, 1);
        assert!(page_uris(s, "art").await.is_empty());
        assert_eq!(page_uris(s, "music").await, [a1.as_str()]);
        let (row, likes, reposts) = s.post(&a1).await.unwrap().unwrap();
        assert_eq!((likes, reposts), (1, 0));
        assert_eq!(
            row,
            PostRow {
                indexed_at_ms: 100,
                ..replay
            }
        );
        // A newer post goes on top.
        s.apply(vec![upsert(post(C, "1", 50), &[member("all", 8.0, 0)])])
            .await
            .unwrap();
        let top = s.chronological_page("all", None, 1).await.unwrap();
        assert_eq!(top[0].uri, uri(C, "1"));
        assert!(top[0].seq > after[0].seq);
    }

    pub async fn duplicate_memberships_last_wins(fx: &Fixture) {
        let s = &fx.store;
        s.apply(vec![upsert(
            post(A, "1", 1),
            &[member("all", 1.0, 0), member("all", 4.0, 0)],
        )])
        .await
        .unwrap();
        let items = s.ranked_top("all", 10).await.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].score, 4.0);
        assert_eq!(s.feed_counts().await.unwrap(), [("all".to_owned(), 1)]);
    }

    pub async fn upsert_without_feeds_deletes(fx: &Fixture) {
        let s = &fx.store;
        let a1 = uri(A, "1");
        s.apply(vec![upsert(post(A, "1", 1), &[member("all", 1.0, 0)])])
            .await
            .unwrap();
        s.apply(vec![upsert(post(A, "1", 1), &[])]).await.unwrap();
        assert!(s.post(&a1).await.unwrap().is_none());
        assert!(page_uris(s, "all").await.is_empty());
        // Never stored in the first place.
        s.apply(vec![upsert(post(A, "2", 1), &[])]).await.unwrap();
        assert!(s.post(&uri(A, "2")).await.unwrap().is_none());
        assert!(s.feed_counts().await.unwrap().is_empty());
    }

    pub async fn repost_items_show_the_reposted_post(fx: &Fixture) {
        let s = &fx.store;
        let a1 = uri(A, "1");
        let known = repost_row(B, "r1", &a1, 20);
        let unknown_subject = uri(C, "old");
        let unknown = repost_row(B, "r2", &unknown_subject, 30);
        s.apply(vec![
            upsert(post(A, "1", 10), &[member("all", 1.0, 0)]),
            like(C, 1, &a1),
            upsert(known.clone(), &[member("all", 2.0, 0)]),
            upsert(unknown.clone(), &[member("all", 3.0, 0)]),
        ])
        .await
        .unwrap();
        // Newest first: each repost item in its own place, showing the reposted post, with
        // the repost as its reason and the reposted post's counts when it is stored.
        let page = s.chronological_page("all", None, 10).await.unwrap();
        let shown: Vec<(&str, Option<&str>, u64)> = page
            .iter()
            .map(|i| (i.uri.as_str(), i.repost.as_deref(), i.likes))
            .collect();
        assert_eq!(
            shown,
            [
                (unknown_subject.as_str(), Some(unknown.uri.as_str()), 0),
                (a1.as_str(), Some(known.uri.as_str()), 1),
                (a1.as_str(), None, 1),
            ]
        );
        // Paging by seq walks through them exactly once.
        let first = s.chronological_page("all", None, 2).await.unwrap();
        let rest = s
            .chronological_page("all", Some(first[1].position()), 2)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].repost, None);
        // Rankings and rescoring leave repost items out.
        assert_eq!(ranked_uris(s, "all").await, [a1.as_str()]);
        let recent = s.recent_posts("all", 0, 10).await.unwrap();
        assert_eq!(uris(&recent), [a1.as_str()]);
        // The row reads back whole.
        let (row, _, _) = s.post(&known.uri).await.unwrap().unwrap();
        assert_eq!(row, known);
        // Deleting the repost record removes its item; deleting the reposted post removes the
        // items of it.
        s.apply(vec![FeedWrite::DeletePost {
            uri: unknown.uri.clone(),
        }])
        .await
        .unwrap();
        let page = s.chronological_page("all", None, 10).await.unwrap();
        assert_eq!(page.len(), 2);
        s.apply(vec![FeedWrite::DeletePost { uri: a1.clone() }])
            .await
            .unwrap();
        assert!(page_uris(s, "all").await.is_empty());
        assert!(s.post(&known.uri).await.unwrap().is_none());
        // A deactivated reposter's items are hidden.
        s.apply(vec![
            upsert(post(A, "2", 40), &[member("all", 1.0, 0)]),
            upsert(
                repost_row(C, "r3", &uri(A, "2"), 50),
                &[member("all", 1.0, 0)],
            ),
            status(C, AccountStatus::Deactivated),
        ])
        .await
        .unwrap();
        let page = s.chronological_page("all", None, 10).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].repost, None);
    }

    pub async fn delete_removes_from_every_feed(fx: &Fixture) {
        let s = &fx.store;
        let (a1, a2) = (uri(A, "1"), uri(A, "2"));
        s.apply(vec![
            upsert(
                post(A, "1", 1),
                &[member("all", 1.0, 0), member("art", 1.0, 0)],
            ),
            upsert(post(A, "2", 2), &[member("all", 1.0, 0)]),
            like(B, 1, &a1),
            FeedWrite::AddRepost {
                uri: format!("at://{B}/app.bsky.feed.repost/1"),
                subject: a1.clone(),
            },
        ])
        .await
        .unwrap();
        let old_seq = s.chronological_page("art", None, 1).await.unwrap()[0].seq;
        s.apply(vec![FeedWrite::DeletePost { uri: a1.clone() }])
            .await
            .unwrap();
        assert_eq!(page_uris(s, "all").await, [a2.as_str()]);
        assert!(page_uris(s, "art").await.is_empty());
        assert_eq!(ranked_uris(s, "all").await, [a2.as_str()]);
        assert!(s.post(&a1).await.unwrap().is_none());
        assert_eq!(
            s.live_posts(&[a1.clone(), a2.clone()]).await.unwrap(),
            HashSet::from([a2.clone()])
        );
        // Deleting again, and removing the like of a deleted post: nothing happens.
        s.apply(vec![
            FeedWrite::DeletePost { uri: a1.clone() },
            FeedWrite::RemoveLike {
                uri: like_uri(B, 1),
            },
            FeedWrite::DeletePost {
                uri: uri(C, "never"),
            },
        ])
        .await
        .unwrap();
        // Stored again (a new record with the same uri): a new seq, counts from zero; the old
        // like record went with the post, so the same like counts again.
        s.apply(vec![
            upsert(post(A, "1", 3), &[member("all", 1.0, 0)]),
            like(B, 1, &a1),
        ])
        .await
        .unwrap();
        let top = s.chronological_page("all", None, 1).await.unwrap();
        assert_eq!(top[0].uri, a1);
        assert!(top[0].seq > old_seq);
        assert_eq!(counts(s, &a1).await, Some((1, 0)));
    }

    pub async fn likes_and_reposts_count_once(fx: &Fixture) {
        let s = &fx.store;
        let (a1, b1) = (uri(A, "1"), uri(B, "1"));
        let repost = |n: u32, subject: &str| FeedWrite::AddRepost {
            uri: format!("at://{C}/app.bsky.feed.repost/{n}"),
            subject: subject.to_owned(),
        };
        s.apply(vec![
            // Before the post exists: ignored.
            like(C, 0, &a1),
            upsert(post(A, "1", 1), &[member("all", 1.0, 0)]),
            upsert(post(B, "1", 2), &[member("all", 1.0, 0)]),
            like(C, 1, &a1),
            like(C, 1, &a1), // the same record twice
            like(B, 1, &a1),
            like(C, 2, &b1),
            repost(1, &a1),
            repost(1, &a1),
            like(C, 3, &uri(C, "unknown")),
        ])
        .await
        .unwrap();
        // A replayed batch counts nothing new.
        s.apply(vec![like(C, 1, &a1), like(B, 1, &a1), repost(1, &a1)])
            .await
            .unwrap();
        assert_eq!(counts(s, &a1).await, Some((2, 1)));
        assert_eq!(counts(s, &b1).await, Some((1, 0)));
        let page = s.chronological_page("all", None, 10).await.unwrap();
        assert_eq!(
            (page[1].uri.as_str(), page[1].likes, page[1].reposts),
            (a1.as_str(), 2, 1)
        );

        s.apply(vec![
            FeedWrite::RemoveLike {
                uri: like_uri(C, 1),
            },
            FeedWrite::RemoveLike {
                uri: like_uri(C, 1),
            },
            FeedWrite::RemoveLike {
                uri: like_uri(C, 3),
            },
            FeedWrite::RemoveLike {
                uri: like_uri(C, 99),
            },
            FeedWrite::RemoveRepost {
                uri: format!("at://{C}/app.bsky.feed.repost/1"),
            },
        ])
        .await
        .unwrap();
        assert_eq!(counts(s, &a1).await, Some((1, 0)));
        assert_eq!(counts(s, &b1).await, Some((1, 0)));
        // A removed like may come back (a replay of its creation).
        s.apply(vec![like(C, 1, &a1)]).await.unwrap();
        assert_eq!(counts(s, &a1).await, Some((2, 0)));
    }

    pub async fn min_likes_gates_memberships(fx: &Fixture) {
        let s = &fx.store;
        let a1 = uri(A, "1");
        s.apply(vec![upsert(
            post(A, "1", 1),
            &[member("all", 1.0, 0), member("hot", 1.0, 2)],
        )])
        .await
        .unwrap();
        assert_eq!(page_uris(s, "all").await, [a1.as_str()]);
        assert!(page_uris(s, "hot").await.is_empty());
        assert!(ranked_uris(s, "hot").await.is_empty());
        s.apply(vec![like(B, 1, &a1)]).await.unwrap();
        assert!(page_uris(s, "hot").await.is_empty());
        s.apply(vec![like(C, 1, &a1)]).await.unwrap();
        assert_eq!(page_uris(s, "hot").await, [a1.as_str()]);
        assert_eq!(ranked_uris(s, "hot").await, [a1.as_str()]);
        s.apply(vec![FeedWrite::RemoveLike {
            uri: like_uri(B, 1),
        }])
        .await
        .unwrap();
        assert!(page_uris(s, "hot").await.is_empty());
        // Still a member, still rescored, still counted.
        assert_eq!(
            uris(&s.recent_posts("hot", 0, 10).await.unwrap()),
            [a1.as_str()]
        );
        assert_eq!(
            s.feed_counts().await.unwrap(),
            [("all".to_owned(), 1), ("hot".to_owned(), 1)]
        );
    }

    pub async fn deactivated_hides_and_active_restores(fx: &Fixture) {
        let s = &fx.store;
        let (a1, b1) = (uri(A, "1"), uri(B, "1"));
        s.apply(vec![
            upsert(post(A, "1", 1), &[member("all", 1.0, 0)]),
            upsert(post(B, "1", 2), &[member("all", 2.0, 0)]),
            like(A, 1, &b1),
        ])
        .await
        .unwrap();
        s.apply(vec![status(A, AccountStatus::Deactivated)])
            .await
            .unwrap();
        assert_eq!(page_uris(s, "all").await, [b1.as_str()]);
        assert_eq!(ranked_uris(s, "all").await, [b1.as_str()]);
        let all = [a1.clone(), b1.clone()];
        assert_eq!(
            s.live_posts(&all).await.unwrap(),
            HashSet::from([b1.clone()])
        );
        // Kept: looked up, counted, rescored; its likes still count.
        assert!(s.post(&a1).await.unwrap().is_some());
        assert_eq!(s.feed_counts().await.unwrap(), [("all".to_owned(), 2)]);
        assert_eq!(s.recent_posts("all", 0, 10).await.unwrap().len(), 2);
        assert_eq!(counts(s, &b1).await, Some((1, 0)));
        // Posts it makes meanwhile are kept hidden too.
        s.apply(vec![
            upsert(post(A, "2", 3), &[member("all", 3.0, 0)]),
            status(A, AccountStatus::Deactivated),
        ])
        .await
        .unwrap();
        assert_eq!(page_uris(s, "all").await, [b1.as_str()]);
        s.apply(vec![status(A, AccountStatus::Active)])
            .await
            .unwrap();
        assert_eq!(
            page_uris(s, "all").await,
            [uri(A, "2"), b1.clone(), a1.clone()]
        );
        assert_eq!(s.live_posts(&all).await.unwrap().len(), 2);
        // Active for an account never seen: nothing to do.
        s.apply(vec![status(C, AccountStatus::Active)])
            .await
            .unwrap();
    }

    pub async fn removed_deletes_from_every_feed(fx: &Fixture) {
        let s = &fx.store;
        let (a1, b1) = (uri(A, "1"), uri(B, "1"));
        // An account whose DID extends A's must not be touched.
        let a_longer = format!("{A}x");
        let ax1 = uri(&a_longer, "1");
        s.apply(vec![
            upsert(
                post(A, "1", 1),
                &[member("all", 1.0, 0), member("art", 1.0, 0)],
            ),
            upsert(post(A, "2", 2), &[member("art", 1.0, 0)]),
            upsert(post(B, "1", 3), &[member("all", 1.0, 0)]),
            upsert(post(&a_longer, "1", 4), &[member("all", 1.0, 0)]),
            like(A, 1, &b1),
            like(C, 1, &b1),
            like(&a_longer, 1, &b1),
            FeedWrite::AddRepost {
                uri: format!("at://{A}/app.bsky.feed.repost/1"),
                subject: b1.clone(),
            },
            like(B, 1, &a1),
        ])
        .await
        .unwrap();
        assert_eq!(counts(s, &b1).await, Some((3, 1)));
        s.apply(vec![status(A, AccountStatus::Removed)])
            .await
            .unwrap();
        assert_eq!(page_uris(s, "all").await, [ax1.as_str(), b1.as_str()]);
        assert!(page_uris(s, "art").await.is_empty());
        assert!(s.post(&a1).await.unwrap().is_none());
        assert!(s.post(&uri(A, "2")).await.unwrap().is_none());
        // Its likes and reposts stopped counting; others' did not.
        assert_eq!(counts(s, &b1).await, Some((2, 0)));
        // Removing its like again later is harmless.
        s.apply(vec![FeedWrite::RemoveLike {
            uri: like_uri(A, 1),
        }])
        .await
        .unwrap();
        assert_eq!(counts(s, &b1).await, Some((2, 0)));
        // A post while removed stays hidden; back to active, new posts show, old ones are gone.
        s.apply(vec![upsert(post(A, "3", 5), &[member("all", 1.0, 0)])])
            .await
            .unwrap();
        assert_eq!(page_uris(s, "all").await, [ax1.as_str(), b1.as_str()]);
        s.apply(vec![status(A, AccountStatus::Active)])
            .await
            .unwrap();
        assert_eq!(page_uris(s, "all").await, [uri(A, "3"), ax1, b1]);
        assert_eq!(s.feed_counts().await.unwrap(), [("all".to_owned(), 3)]);
    }

    /// Pages follow the membership's score (a chronological feed's: the post's time), ties
    /// by the newer insertion; the cursor is a keyset, so posts inserted below the reader's
    /// position (a backfill's older posts) come on later pages exactly once, and newer ones
    /// above it never do (issue 15, item 6: a backfilled post no longer lands on top).
    pub async fn chronological_pages_follow_time_with_stable_cursors(fx: &Fixture) {
        let s = &fx.store;
        // Inserted 0..25 with times 100 + i % 3: ties broken by the later insertion.
        let mut writes = Vec::new();
        for i in 0..25 {
            let p = post(A, &format!("{i:02}"), 1_000 + i);
            writes.push(upsert(p, &[member("all", (100 + i % 3) as f64, 0)]));
        }
        s.apply(writes).await.unwrap();
        let mut order: Vec<i64> = (0..25).collect();
        order.sort_by_key(|i| std::cmp::Reverse((i % 3, *i)));
        let mut expected: Vec<String> = order.iter().map(|i| uri(A, &format!("{i:02}"))).collect();
        let mut got = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let page = s.chronological_page("all", before, 10).await.unwrap();
            if page.is_empty() {
                break;
            }
            pages += 1;
            assert!(page.len() <= 10);
            before = Some(page.last().unwrap().position());
            got.extend(uris(&page));
            if pages == 1 {
                // While the reader is on page one: a week-old post (a backfill) and a new one.
                s.apply(vec![
                    upsert(post(B, "old", 5_000), &[member("all", 50.0, 0)]),
                    upsert(post(B, "new", 5_001), &[member("all", 500.0, 0)]),
                ])
                .await
                .unwrap();
            }
        }
        expected.push(uri(B, "old"));
        assert_eq!(pages, 3);
        assert_eq!(
            got, expected,
            "each item once, the old post at its time, the new one not"
        );
        // From the top, the new post leads and the backfilled one is last.
        let top = uris(&s.chronological_page("all", None, 100).await.unwrap());
        assert_eq!(top.first(), Some(&uri(B, "new")));
        assert_eq!(top.last(), Some(&uri(B, "old")));
        assert!(s
            .chronological_page("all", None, 0)
            .await
            .unwrap()
            .is_empty());
        assert!(s
            .chronological_page(
                "all",
                Some(skystream_store::PagePosition {
                    score: f64::MIN,
                    seq: i64::MIN
                }),
                10
            )
            .await
            .unwrap()
            .is_empty());
        assert!(s
            .chronological_page("nope", None, 10)
            .await
            .unwrap()
            .is_empty());
        let first = s.chronological_page("all", None, 3).await.unwrap();
        let next = s
            .chronological_page("all", Some(first[1].position()), 1)
            .await
            .unwrap();
        assert_eq!(next[0].uri, first[2].uri);
        assert_eq!(first[0].indexed_at_ms, 5_001);
    }

    pub async fn ranking_by_score_then_seq(fx: &Fixture) {
        let s = &fx.store;
        let mut writes = Vec::new();
        for (i, score) in [3.0, 1.0, 3.0, -2.5, 10.0, 0.0].into_iter().enumerate() {
            writes.push(upsert(
                post(A, &i.to_string(), i as i64),
                &[member("top", score, 0), member("other", -score, 0)],
            ));
        }
        s.apply(writes).await.unwrap();
        let u = |i: u32| uri(A, &i.to_string());
        assert_eq!(
            ranked_uris(s, "top").await,
            [u(4), u(2), u(0), u(1), u(5), u(3)]
        );
        let top2 = s.ranked_top("top", 2).await.unwrap();
        assert_eq!(uris(&top2), [u(4), u(2)]);
        assert_eq!(top2[0].score, 10.0);
        assert!(s.ranked_top("top", 0).await.unwrap().is_empty());
        // Rescoring moves the item (pages follow the score); unknown targets are ignored.
        s.apply(vec![
            FeedWrite::SetScore {
                feed: "top".into(),
                uri: u(3),
                score: 100.0,
            },
            FeedWrite::SetScore {
                feed: "nope".into(),
                uri: u(1),
                score: 100.0,
            },
            FeedWrite::SetScore {
                feed: "top".into(),
                uri: uri(B, "nope"),
                score: 100.0,
            },
        ])
        .await
        .unwrap();
        assert_eq!(ranked_uris(s, "top").await[0], u(3));
        assert_eq!(page_uris(s, "top").await[0], u(3));
        assert_eq!(ranked_uris(s, "other").await[0], u(3));
        assert!(page_uris(s, "nope").await.is_empty());
    }

    pub async fn snapshots_round_trip_and_expire(fx: &Fixture) {
        let s = &fx.store;
        let list: Vec<String> = (0..7).map(|i| uri(A, &i.to_string())).collect();
        s.save_snapshot("snap-1", "top", &list, 1_000)
            .await
            .unwrap();
        s.save_snapshot("snap-2", "top", &list[..2], 2_000)
            .await
            .unwrap();
        s.save_snapshot("empty", "top", &[], 3_000).await.unwrap();
        assert_eq!(
            s.snapshot_slice("snap-1", 0, 3).await.unwrap().unwrap(),
            list[..3]
        );
        assert_eq!(
            s.snapshot_slice("snap-1", 3, 3).await.unwrap().unwrap(),
            list[3..6]
        );
        assert_eq!(
            s.snapshot_slice("snap-1", 6, 3).await.unwrap().unwrap(),
            list[6..]
        );
        assert_eq!(
            s.snapshot_slice("snap-1", 7, 3).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(
            s.snapshot_slice("snap-1", usize::MAX, 3).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(
            s.snapshot_slice("snap-1", 2, 0).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(
            s.snapshot_slice("snap-1", 5, usize::MAX)
                .await
                .unwrap()
                .unwrap(),
            list[5..]
        );
        assert_eq!(
            s.snapshot_slice("empty", 0, 10).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(s.snapshot_slice("nope", 0, 10).await.unwrap(), None);
        assert_eq!(s.snapshot_slice("nope", 0, 0).await.unwrap(), None);
        assert_eq!(s.snapshot_slice("snap\0", 0, 1).await.unwrap(), None);
        // Saving under an existing id replaces it.
        s.save_snapshot("snap-2", "top", &list[4..], 2_500)
            .await
            .unwrap();
        assert_eq!(
            s.snapshot_slice("snap-2", 0, 10).await.unwrap().unwrap(),
            list[4..]
        );

        assert_eq!(s.expire_snapshots(1_000).await.unwrap(), 0);
        assert_eq!(s.expire_snapshots(2_501).await.unwrap(), 2);
        assert_eq!(s.snapshot_slice("snap-1", 0, 1).await.unwrap(), None);
        assert_eq!(s.snapshot_slice("snap-2", 0, 1).await.unwrap(), None);
        assert_eq!(s.snapshot_slice("empty", 0, 1).await.unwrap(), Some(vec![]));
        assert_eq!(s.expire_snapshots(i64::MAX).await.unwrap(), 1);
        assert_eq!(s.expire_snapshots(i64::MAX).await.unwrap(), 0);
    }

    pub async fn live_posts_checks_a_list(fx: &Fixture) {
        let s = &fx.store;
        s.apply(vec![
            upsert(post(A, "1", 1), &[member("all", 1.0, 0)]),
            upsert(post(B, "1", 1), &[member("hot", 1.0, 5)]),
            upsert(post(C, "1", 1), &[member("all", 1.0, 0)]),
            status(C, AccountStatus::Deactivated),
        ])
        .await
        .unwrap();
        let asked = [
            uri(A, "1"),
            uri(B, "1"), // below min_likes: still live (not deleted, author fine)
            uri(C, "1"),
            uri(A, "gone"),
            uri(A, "1"),
            "it's \"quoted\"'); DROP TABLE posts; --".to_owned(),
        ];
        assert_eq!(
            s.live_posts(&asked).await.unwrap(),
            HashSet::from([uri(A, "1"), uri(B, "1")])
        );
        assert!(s.live_posts(&[]).await.unwrap().is_empty());
    }

    pub async fn recent_posts_for_rescoring(fx: &Fixture) {
        let s = &fx.store;
        let mut writes = Vec::new();
        for i in 0..10 {
            writes.push(upsert(
                post(A, &i.to_string(), 100 * i),
                &[member("all", i as f64, if i == 8 { 50 } else { 0 })],
            ));
        }
        writes.push(status(B, AccountStatus::Deactivated));
        writes.push(upsert(post(B, "x", 950), &[member("all", 0.0, 0)]));
        writes.push(upsert(post(B, "y", 950), &[member("other", 0.0, 0)]));
        s.apply(writes).await.unwrap();
        let recent = s.recent_posts("all", 700, 100).await.unwrap();
        // Newest first, hidden and gated ones included, other feeds not.
        assert_eq!(
            uris(&recent),
            [uri(B, "x"), uri(A, "9"), uri(A, "8"), uri(A, "7")]
        );
        assert_eq!(recent[1].score, 9.0);
        assert_eq!(recent[1].indexed_at_ms, 900);
        assert_eq!(
            uris(&s.recent_posts("all", 700, 2).await.unwrap()),
            [uri(B, "x"), uri(A, "9")]
        );
        assert!(s.recent_posts("all", 2_000, 10).await.unwrap().is_empty());
        assert_eq!(
            s.recent_posts("all", i64::MIN, 100).await.unwrap().len(),
            11
        );
    }

    pub async fn prune_applies_retention(fx: &Fixture) {
        let s = &fx.store;
        let (old_both, old_all, new_all) = (uri(A, "1"), uri(A, "2"), uri(A, "3"));
        let interaction = |feed: Option<&str>, at_ms| FeedWrite::Interaction {
            feed: feed.map(str::to_owned),
            requester: B.into(),
            item: old_all.clone(),
            event: "app.bsky.feed.defs#requestLess".into(),
            feed_context: None,
            at_ms,
        };
        s.apply(vec![
            upsert(
                post(A, "1", 100),
                &[member("all", 1.0, 0), member("art", 1.0, 0)],
            ),
            upsert(post(A, "2", 200), &[member("all", 1.0, 0)]),
            upsert(post(A, "3", 300), &[member("all", 1.0, 0)]),
            like(B, 1, &old_all),
            like(B, 2, &old_both),
            interaction(Some("all"), 100),
            interaction(Some("all"), 300),
            interaction(Some("art"), 100),
            interaction(None, 100),
        ])
        .await
        .unwrap();
        assert_eq!(s.prune("all", 100).await.unwrap(), 0);
        assert_eq!(s.prune("all", 300).await.unwrap(), 2);
        assert_eq!(page_uris(s, "all").await, [new_all.as_str()]);
        // In another feed: the post stays, with its like.
        assert_eq!(page_uris(s, "art").await, [old_both.as_str()]);
        assert_eq!(counts(s, &old_both).await, Some((1, 0)));
        // In no feed any more: gone, with its like record (a replayed like is ignored).
        assert!(s.post(&old_all).await.unwrap().is_none());
        s.apply(vec![like(B, 1, &old_all)]).await.unwrap();
        assert!(s.post(&old_all).await.unwrap().is_none());
        assert_eq!(
            s.feed_counts().await.unwrap(),
            [("all".to_owned(), 1), ("art".to_owned(), 1)]
        );
        // Interactions of that feed (and of none) before the horizon went too.
        assert_eq!(
            s.interaction_counts().await.unwrap(),
            [("all".to_owned(), 1), ("art".to_owned(), 1)]
        );
        assert_eq!(s.prune("art", i64::MAX).await.unwrap(), 1);
        assert!(s.post(&old_both).await.unwrap().is_none());
        assert_eq!(s.prune("art", i64::MAX).await.unwrap(), 0);
        assert_eq!(s.prune("nope", i64::MAX).await.unwrap(), 0);
        assert_eq!(s.feed_counts().await.unwrap(), [("all".to_owned(), 1)]);
    }

    pub async fn counts_per_feed(fx: &Fixture) {
        let s = &fx.store;
        assert!(s.feed_counts().await.unwrap().is_empty());
        assert!(s.interaction_counts().await.unwrap().is_empty());
        let interaction = |feed: Option<&str>| FeedWrite::Interaction {
            feed: feed.map(str::to_owned),
            requester: B.into(),
            item: uri(A, "1"),
            event: "app.bsky.feed.defs#interactionLike".into(),
            feed_context: Some("ctx".into()),
            at_ms: 5,
        };
        let mut writes = vec![
            interaction(Some("b")),
            interaction(None),
            interaction(Some("b")),
            interaction(Some("B")),
            interaction(Some("ä")),
        ];
        for i in 0..5 {
            let mut feeds = vec![member("b", 0.0, 0)];
            if i % 2 == 0 {
                feeds.push(member("B", 0.0, 0));
            }
            if i == 0 {
                feeds.push(member("ä", 0.0, 0));
            }
            writes.push(upsert(post(A, &i.to_string(), i), &feeds));
        }
        s.apply(writes).await.unwrap();
        // Byte order, whatever the database's collation.
        assert_eq!(
            s.feed_counts().await.unwrap(),
            [
                ("B".to_owned(), 3),
                ("b".to_owned(), 5),
                ("ä".to_owned(), 1)
            ]
        );
        assert_eq!(
            s.interaction_counts().await.unwrap(),
            [
                (String::new(), 1),
                ("B".to_owned(), 1),
                ("b".to_owned(), 2),
                ("ä".to_owned(), 1)
            ]
        );
    }

    pub async fn size_is_reported(fx: &Fixture) {
        let s = &fx.store;
        let empty = s.size_bytes().await.unwrap();
        let mut writes = Vec::new();
        for i in 0..300 {
            let mut p = post(A, &i.to_string(), i);
            p.text = "x".repeat(500);
            writes.push(upsert(p, &[member("all", 0.0, 0)]));
        }
        s.apply(writes).await.unwrap();
        let full = s.size_bytes().await.unwrap();
        if s.backend() == BackendKind::Memory {
            assert_eq!((empty, full), (0, 0));
        } else {
            assert!(empty > 0, "{empty}");
            // 300 posts of 500 bytes: well over 100 kB more.
            assert!(full > empty + 100_000, "{empty} -> {full}");
        }
    }

    pub async fn bad_batches_change_nothing(fx: &Fixture) {
        let s = &fx.store;
        s.apply(Vec::new()).await.unwrap();
        s.apply(vec![upsert(post(A, "0", 0), &[member("all", 1.0, 0)])])
            .await
            .unwrap();
        for bad in [
            upsert(post(A, "2", 2), &[member("all", f64::NAN, 0)]),
            upsert(post(A, "2", 2), &[member("all", f64::INFINITY, 0)]),
            upsert(post(A, "2", 2), &[member("all", 1.0, u64::MAX)]),
            FeedWrite::SetScore {
                feed: "all".into(),
                uri: uri(A, "0"),
                score: f64::NAN,
            },
        ] {
            let err = s
                .apply(vec![
                    upsert(post(A, "1", 1), &[member("all", 1.0, 0)]),
                    like(B, 1, &uri(A, "0")),
                    bad,
                ])
                .await
                .unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::InvalidValue, "{err}");
            assert!(
                err.to_string().contains("feed write 3 of the batch"),
                "{err}"
            );
        }
        assert_eq!(page_uris(s, "all").await, [uri(A, "0")]);
        assert_eq!(counts(s, &uri(A, "0")).await, Some((0, 0)));
        assert_eq!(s.ranked_top("all", 5).await.unwrap()[0].score, 1.0);
        // The largest min_likes the schema holds is fine.
        s.apply(vec![upsert(
            post(A, "3", 3),
            &[member("all", 1.0, i64::MAX as u64)],
        )])
        .await
        .unwrap();
        assert_eq!(page_uris(s, "all").await, [uri(A, "0")]);
    }

    pub async fn odd_values_round_trip(fx: &Fixture) {
        let s = &fx.store;
        let mut p = post(A, "odd", -5);
        p.created_at_ms = i64::MIN;
        p.text = "it's \"quoted\", 日本語 🦋\n\ttabs, and a NUL: \0!".into();
        p.langs = vec![String::new(), "pt-BR".into(), "a,b".into(), "{x}".into()];
        p.hashtags = vec!["\"".into(), "NULL".into(), "\\".into()];
        p.mentions = vec![B.into(), C.into()];
        p.labels = Vec::new();
        p.reply_parent = Some(uri(B, "1"));
        p.reply_root = Some(String::new());
        p.embed_kind = None;
        s.apply(vec![upsert(p.clone(), &[member("o'feed", -0.0, 0)])])
            .await
            .unwrap();
        let (row, likes, reposts) = s.post(&p.uri).await.unwrap().unwrap();
        p.text = p.text.replace('\0', "\u{FFFD}");
        assert_eq!(row, p);
        assert_eq!((likes, reposts), (0, 0));
        assert_eq!(page_uris(s, "o'feed").await, [p.uri.as_str()]);
        assert!(s.post(&uri(A, "other")).await.unwrap().is_none());
        // Extreme finite scores order correctly.
        s.apply(vec![
            upsert(post(A, "max", 1), &[member("o'feed", f64::MAX, 0)]),
            upsert(post(A, "min", 1), &[member("o'feed", f64::MIN, 0)]),
        ])
        .await
        .unwrap();
        assert_eq!(
            ranked_uris(s, "o'feed").await,
            [uri(A, "max"), p.uri.clone(), uri(A, "min")]
        );
        // A NUL in an interaction, too, cannot fail the batch.
        s.apply(vec![FeedWrite::Interaction {
            feed: Some("o'feed".into()),
            requester: "\0".into(),
            item: p.uri.clone(),
            event: "e\0".into(),
            feed_context: Some("\0".into()),
            at_ms: 0,
        }])
        .await
        .unwrap();
        assert_eq!(
            s.interaction_counts().await.unwrap(),
            [("o'feed".to_owned(), 1)]
        );
    }

    pub async fn usable_as_dyn_feed_store(fx: &Fixture) {
        let dynamic: Arc<dyn FeedStore> = Arc::new(fx.store.clone());
        dynamic
            .apply(vec![upsert(post(A, "1", 1), &[member("all", 1.0, 0)])])
            .await
            .unwrap();
        assert_eq!(page_uris(&fx.store, "all").await, [uri(A, "1")]);
        // Reopened: the data is in the database.
        if let Some(url) = &fx.url {
            let reopened = Store::open(url).await.unwrap();
            assert_eq!(page_uris(&reopened, "all").await, [uri(A, "1")]);
        }
    }

    /// While writers insert, delete, replay and rescore, a reader pages with `before_seq`:
    /// every item that existed at the first page and was never deleted comes back exactly
    /// once, positions (score, seq) strictly fall from page to page, and no uri repeats.
    pub async fn paging_is_exact_under_concurrent_writes(fx: &Fixture) {
        const SEEDS: usize = 240;
        const WRITERS: usize = 2;
        for round in 0..3u64 {
            let feed = format!("live-{round}");
            let seed_uri = move |i: usize| {
                uri(
                    &format!("did:plc:seed{round}w{}", i % WRITERS),
                    &i.to_string(),
                )
            };
            let mut writes = Vec::new();
            for i in 0..SEEDS {
                let mut p = post(
                    &format!("did:plc:seed{round}w{}", i % WRITERS),
                    &i.to_string(),
                    i as i64,
                );
                p.uri = seed_uri(i);
                writes.push(upsert(
                    p,
                    &[member(&feed, 0.0, 0), member("elsewhere", 0.0, 0)],
                ));
            }
            for chunk in writes.chunks(60) {
                fx.store.apply(chunk.to_vec()).await.unwrap();
            }
            let committed = Arc::new(Mutex::new(Vec::<String>::new()));
            let deleted = Arc::new(Mutex::new(HashSet::<String>::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let mut writers = Vec::new();
            for w in 0..WRITERS {
                let (store, feed) = (fx.store.clone(), feed.clone());
                let (committed, deleted, stop) = (
                    Arc::clone(&committed),
                    Arc::clone(&deleted),
                    Arc::clone(&stop),
                );
                let mine: Vec<usize> = (0..SEEDS).filter(|i| i % WRITERS == w).collect();
                writers.push(tokio::spawn(async move {
                    let mut rng = Rng(round * 1_000 + w as u64 + 1);
                    let mut gone = HashSet::new();
                    let mut batch_no = 0;
                    while !stop.load(Ordering::Relaxed) && batch_no < 400 {
                        batch_no += 1;
                        let author = format!("did:plc:writer{round}w{w}");
                        let mut batch = Vec::new();
                        let mut new = Vec::new();
                        for k in 0..rng.below(3) + 1 {
                            let p = post(&author, &format!("{batch_no}-{k}"), 10_000);
                            new.push(p.uri.clone());
                            batch.push(upsert(p, &[member(&feed, rng.below(10) as f64, 0)]));
                        }
                        let target = mine[rng.below(mine.len() as u64) as usize];
                        let target_uri = seed_uri(target);
                        match rng.below(4) {
                            0 if !gone.contains(&target) => {
                                gone.insert(target);
                                deleted.lock().unwrap().insert(target_uri.clone());
                                batch.push(FeedWrite::DeletePost { uri: target_uri });
                            }
                            1 if !gone.contains(&target) => {
                                // A replay (the post's time is its own, so its score is
                                // too): must not move the post.
                                let mut p = post(
                                    &format!("did:plc:seed{round}w{w}"),
                                    &target.to_string(),
                                    99_999,
                                );
                                p.uri = target_uri;
                                batch.push(upsert(
                                    p,
                                    &[member(&feed, 0.0, 0), member("elsewhere", 1.0, 0)],
                                ));
                            }
                            // Rescoring elsewhere (a chronological item's time never
                            // changes, so pages here stay put).
                            2 => batch.push(FeedWrite::SetScore {
                                feed: "elsewhere".into(),
                                uri: target_uri,
                                score: rng.below(100) as f64,
                            }),
                            _ => batch.push(like(&author, batch_no as u32, &target_uri)),
                        }
                        store.apply(batch).await.unwrap();
                        committed.lock().unwrap().extend(new);
                        if rng.below(2) == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    batch_no
                }));
            }
            // Let the writers get going, then page through.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut rng = Rng(round + 77);
            let limit = 5 + rng.below(9) as usize;
            let existed: HashSet<String> = (0..SEEDS)
                .map(seed_uri)
                .chain(committed.lock().unwrap().iter().cloned())
                .collect();
            let mut seen = Vec::new();
            let mut seqs = Vec::new();
            let mut before = None;
            let mut pages = 0;
            loop {
                let page = fx
                    .store
                    .chronological_page(&feed, before, limit)
                    .await
                    .unwrap();
                pages += 1;
                if page.is_empty() {
                    break;
                }
                assert!(page.len() <= limit);
                before = Some(page.last().unwrap().position());
                seqs.extend(page.iter().map(|i| (i.score, i.seq)));
                seen.extend(uris(&page));
                if rng.below(3) == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let mut batches = 0;
            for w in writers {
                batches += w.await.unwrap();
            }
            assert!(
                seqs.windows(2).all(|w| w[0] > w[1]),
                "positions (score, seq) not strictly falling"
            );
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "a uri repeated");
            let deleted = deleted.lock().unwrap();
            let mut missing: Vec<&String> = existed
                .iter()
                .filter(|u| !deleted.contains(*u) && !unique.contains(u))
                .collect();
            missing.sort();
            assert!(
                missing.is_empty(),
                "round {round}: never returned: {missing:?}"
            );
            let all_known: HashSet<String> = existed
                .iter()
                .cloned()
                .chain(committed.lock().unwrap().iter().cloned())
                .collect();
            assert!(seen.iter().all(|u| all_known.contains(u)));
            assert!(pages > SEEDS / limit / 2, "{pages} pages");
            assert!(batches > 0);
        }
    }

    /// Random batches against the backend and against a fresh [`MemoryStore`] (the model):
    /// every read agrees after every batch (seqs aside: PostgreSQL spends identity values on
    /// upserts that update).
    pub async fn agrees_with_the_model(fx: &Fixture) {
        let scenarios = if fx.store.backend() == BackendKind::Memory {
            5
        } else {
            25
        };
        for scenario in 0..scenarios {
            let model = Store::from(MemoryStore::new());
            let mut rng = Rng(0x5eed + scenario);
            let authors: Vec<String> = (0..3).map(|a| format!("did:plc:m{scenario}a{a}")).collect();
            let feeds: Vec<String> = (0..3).map(|f| format!("m{scenario}f{f}")).collect();
            let post_uris: Vec<String> = (0..8)
                .map(|p| uri(&authors[p % 3], &p.to_string()))
                .collect();
            for step in 0..25 {
                let mut batch = Vec::new();
                for _ in 0..rng.below(5) + 1 {
                    batch.push(random_write(&mut rng, &authors, &feeds, &post_uris));
                }
                fx.store.apply(batch.clone()).await.unwrap();
                model.apply(batch.clone()).await.unwrap();
                if rng.below(6) == 0 {
                    let feed = &feeds[rng.below(3) as usize];
                    let horizon = rng.below(1_000) as i64;
                    assert_eq!(
                        fx.store.prune(feed, horizon).await.unwrap(),
                        model.prune(feed, horizon).await.unwrap(),
                        "prune, scenario {scenario} step {step}"
                    );
                }
                let at = format!("scenario {scenario} step {step}, after {batch:?}");
                for feed in &feeds {
                    let limit = rng.below(12) as usize;
                    assert_eq!(
                        strip(
                            fx.store
                                .chronological_page(feed, None, limit)
                                .await
                                .unwrap()
                        ),
                        strip(model.chronological_page(feed, None, limit).await.unwrap()),
                        "chronological {feed}, {at}"
                    );
                    assert_eq!(
                        strip(fx.store.ranked_top(feed, limit).await.unwrap()),
                        strip(model.ranked_top(feed, limit).await.unwrap()),
                        "ranked {feed}, {at}"
                    );
                    let since = rng.below(1_000) as i64;
                    assert_eq!(
                        strip(fx.store.recent_posts(feed, since, 100).await.unwrap()),
                        strip(model.recent_posts(feed, since, 100).await.unwrap()),
                        "recent {feed}, {at}"
                    );
                }
                for u in &post_uris {
                    assert_eq!(
                        fx.store.post(u).await.unwrap(),
                        model.post(u).await.unwrap(),
                        "post {u}, {at}"
                    );
                }
                assert_eq!(
                    fx.store.live_posts(&post_uris).await.unwrap(),
                    model.live_posts(&post_uris).await.unwrap(),
                    "live, {at}"
                );
                let mine = |counts: Vec<(String, u64)>| -> Vec<(String, u64)> {
                    counts
                        .into_iter()
                        .filter(|(f, _)| feeds.contains(f))
                        .collect()
                };
                assert_eq!(
                    mine(fx.store.feed_counts().await.unwrap()),
                    mine(model.feed_counts().await.unwrap()),
                    "feed counts, {at}"
                );
                assert_eq!(
                    mine(fx.store.interaction_counts().await.unwrap()),
                    mine(model.interaction_counts().await.unwrap()),
                    "interaction counts, {at}"
                );
            }
        }
    }

    fn random_write(
        rng: &mut Rng,
        authors: &[String],
        feeds: &[String],
        posts: &[String],
    ) -> FeedWrite {
        let pick =
            |rng: &mut Rng, list: &[String]| list[rng.below(list.len() as u64) as usize].clone();
        let record = |rng: &mut Rng, kind: &str| {
            format!(
                "at://{}/app.bsky.feed.{kind}/{}",
                pick(rng, authors),
                rng.below(4)
            )
        };
        match rng.below(12) {
            0..=3 => {
                let n = rng.below(posts.len() as u64) as usize;
                let author = &authors[n % 3];
                let mut p = post(author, &n.to_string(), rng.below(1_000) as i64);
                p.text = format!("v{}", rng.below(3));
                p.langs = (0..rng.below(3)).map(|l| format!("l{l}")).collect();
                let mut memberships = Vec::new();
                for _ in 0..rng.below(4) {
                    memberships.push(member(
                        &pick(rng, feeds),
                        rng.below(4) as f64 / 2.0,
                        if rng.below(3) == 0 { rng.below(3) } else { 0 },
                    ));
                }
                upsert(p, &memberships)
            }
            4 => FeedWrite::DeletePost {
                uri: pick(rng, posts),
            },
            5 => FeedWrite::AddLike {
                uri: record(rng, "like"),
                subject: pick(rng, posts),
            },
            6 => FeedWrite::RemoveLike {
                uri: record(rng, "like"),
            },
            7 => FeedWrite::AddRepost {
                uri: record(rng, "repost"),
                subject: pick(rng, posts),
            },
            8 => FeedWrite::RemoveRepost {
                uri: record(rng, "repost"),
            },
            9 => FeedWrite::SetAccountStatus {
                did: pick(rng, authors),
                status: [
                    AccountStatus::Active,
                    AccountStatus::Active,
                    AccountStatus::Deactivated,
                    AccountStatus::Removed,
                ][rng.below(4) as usize],
            },
            10 => FeedWrite::SetScore {
                feed: pick(rng, feeds),
                uri: pick(rng, posts),
                score: rng.below(8) as f64 - 2.0,
            },
            _ => FeedWrite::Interaction {
                feed: Some(pick(rng, feeds)),
                requester: pick(rng, authors),
                item: pick(rng, posts),
                event: "app.bsky.feed.defs#requestMore".into(),
                feed_context: None,
                at_ms: rng.below(1_000) as i64,
            },
        }
    }

    /// Items without their seqs.
    fn strip(items: Vec<FeedItem>) -> Vec<(String, u64, u64, u64, i64)> {
        items
            .into_iter()
            .map(|i| {
                (
                    i.uri,
                    i.score.to_bits(),
                    i.likes,
                    i.reposts,
                    i.indexed_at_ms,
                )
            })
            .collect()
    }

    /// xorshift64*: small, deterministic, good enough to pick test cases.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
        }
    }
}

macro_rules! suite {
    ($(#[$attr:meta])* $module:ident, $under:expr) => {
        mod $module {
            use super::*;

            suite!(@tests [$(#[$attr])*] $under;
                engagement_scores_follow_the_counts,
                upsert_is_idempotent_and_keeps_seq,
                duplicate_memberships_last_wins,
                upsert_without_feeds_deletes,
                delete_removes_from_every_feed,
                repost_items_show_the_reposted_post,
                likes_and_reposts_count_once,
                min_likes_gates_memberships,
                deactivated_hides_and_active_restores,
                removed_deletes_from_every_feed,
                chronological_pages_follow_time_with_stable_cursors,
                ranking_by_score_then_seq,
                snapshots_round_trip_and_expire,
                live_posts_checks_a_list,
                recent_posts_for_rescoring,
                prune_applies_retention,
                counts_per_feed,
                size_is_reported,
                bad_batches_change_nothing,
                odd_values_round_trip,
                usable_as_dyn_feed_store,
                paging_is_exact_under_concurrent_writes,
                agrees_with_the_model,
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
