//! [`FeedStore`] for [`SqliteStore`]: batches are one `BEGIN IMMEDIATE` transaction on the
//! writer; pages and lookups run on the reader pool. Arrays are JSON text.

use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::{
    clean_arg, engagement_score, engagement_weight, from_sql_count, min_likes_to_sql, prepare,
    record_uri_range, to_sql_count, AccountStatus, FeedItem, FeedStore, FeedWrite, PagePosition,
    PostRow,
};
use crate::sqlite::{query_error, Role};
use crate::{now_unix_ms, SqliteStore, StoreError};

/// The record key of the uri in `$x` (its last segment), as SQL: posts are looked up by
/// `(uri_key, uri)`, an index ordered by time for TID record keys (see migration 5).
macro_rules! key_of {
    ($x:literal) => {
        concat!(
            "substr(",
            $x,
            ", length(rtrim(",
            $x,
            ", replace(",
            $x,
            ", '/', ''))) + 1)"
        )
    };
}
/// `WHERE`-clause text finding the post whose uri is `$x`.
macro_rules! post_is {
    ($alias:literal, $x:literal) => {
        concat!(
            $alias,
            "uri_key = ",
            key_of!($x),
            " AND ",
            $alias,
            "uri = ",
            $x
        )
    };
}

// A post is inserted, or, when its uri is already stored (a replay, an edit), updated in
// place: two statements rather than one upsert so that the common case, a new post, skips
// clearing memberships it cannot have.
const INSERT_POST: &str = concat!(
    "INSERT INTO posts (uri, cid, author, rkey, created_at, indexed_at, langs, text, \
        reply_parent, reply_root, embed_kind, hashtags, mentions, labels, repost_of, uri_key) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ",
    key_of!("?1"),
    ") ON CONFLICT (uri_key, uri) DO NOTHING RETURNING seq"
);
// ?6 (indexed_at) is bound but unused: re-indexing keeps the first indexed_at.
const UPDATE_POST: &str = concat!(
    "UPDATE posts SET cid = ?2, author = ?3, rkey = ?4, created_at = ?5, \
        langs = ?7, text = ?8, reply_parent = ?9, reply_root = ?10, embed_kind = ?11, \
        hashtags = ?12, mentions = ?13, labels = ?14, repost_of = ?15 WHERE ",
    post_is!("", "?1"),
    " RETURNING seq, indexed_at, like_count, repost_count"
);
const CLEAR_MEMBERSHIPS: &str = "DELETE FROM feed_items WHERE post_seq = ?1";
const ADD_MEMBERSHIP: &str = "INSERT INTO feed_items (feed, post_seq, score, min_likes, \
        indexed_at, half_life) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
    ON CONFLICT (feed, post_seq) DO UPDATE SET score = excluded.score, \
        min_likes = excluded.min_likes, half_life = excluded.half_life";
// An engagement-ranked post's scores after its counts changed: ?1 = log2(1 + likes +
// 2 × reposts), ?2 = created_at in seconds (SQLite here has no log2 of its own).
const RESCORE: &str = "UPDATE feed_items SET score = ?1 + ?2 / half_life \
    WHERE post_seq = ?3 AND half_life IS NOT NULL";
const DELETE_POST: &str = concat!("DELETE FROM posts WHERE ", post_is!("", "?1"));
const DELETE_REPOST_ITEMS: &str = "DELETE FROM posts WHERE repost_of = ?1";
// There is no index on author (every insert would land at a random place in it): removing an
// account scans posts (once per batch, see `Removals`), which removals are rare enough to afford.
const DELETE_AUTHORS_POSTS: &str =
    "DELETE FROM posts WHERE author IN (SELECT value FROM json_each(?1))";
const SET_SCORE: &str = concat!(
    "UPDATE feed_items SET score = ?1 WHERE feed = ?2 AND post_seq = (SELECT seq FROM posts WHERE ",
    post_is!("", "?3"),
    ")"
);
const ACTIVATE: &str = "DELETE FROM accounts WHERE did = ?1";
const HIDE: &str = "INSERT INTO accounts (did, status, updated_at) VALUES (?1, ?2, ?3) \
    ON CONFLICT (did) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at";
const ADD_INTERACTION: &str = "INSERT INTO interactions \
    (feed, requester, item, event, feed_context, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The statements of one engagement table (likes or reposts).
struct Engagement {
    /// Inserts a record of a kept post; returns its post's seq only if it was new.
    add: &'static str,
    remove: &'static str,
    remove_range: &'static str,
    increment: &'static str,
    decrement: &'static str,
}

const LIKES: Engagement = Engagement {
    add: concat!(
        "INSERT INTO likes (uri, post_seq) SELECT ?1, seq FROM posts WHERE ",
        post_is!("", "?2"),
        " ON CONFLICT (uri) DO NOTHING RETURNING post_seq"
    ),
    remove: "DELETE FROM likes WHERE uri = ?1 RETURNING post_seq",
    remove_range: "DELETE FROM likes WHERE uri >= ?1 AND uri < ?2 RETURNING post_seq",
    increment: "UPDATE posts SET like_count = like_count + 1 WHERE seq = ?1 \
        RETURNING like_count, repost_count, created_at",
    decrement: "UPDATE posts SET like_count = like_count - ?2 WHERE seq = ?1 \
        RETURNING like_count, repost_count, created_at",
};

const REPOSTS: Engagement = Engagement {
    add: concat!(
        "INSERT INTO reposts (uri, post_seq) SELECT ?1, seq FROM posts WHERE ",
        post_is!("", "?2"),
        " ON CONFLICT (uri) DO NOTHING RETURNING post_seq"
    ),
    remove: "DELETE FROM reposts WHERE uri = ?1 RETURNING post_seq",
    remove_range: "DELETE FROM reposts WHERE uri >= ?1 AND uri < ?2 RETURNING post_seq",
    increment: "UPDATE posts SET repost_count = repost_count + 1 WHERE seq = ?1 \
        RETURNING like_count, repost_count, created_at",
    decrement: "UPDATE posts SET repost_count = repost_count - ?2 WHERE seq = ?1 \
        RETURNING like_count, repost_count, created_at",
};

// `LIMIT ?N + 0`, not `LIMIT ?N`: SQLite plans with a bare LIMIT parameter's value, so every
// new binding expires the prepared statement and it is parsed again on each run (12% of a
// feed page's CPU); an expression is not planned on.
// CROSS JOIN makes SQLite walk feed_items first, in index order, whatever its statistics say.
// A repost item shows the reposted post, with its counts when it is stored.
const CHRONOLOGICAL: &str = concat!(
    "SELECT fi.post_seq, COALESCE(p.repost_of, p.uri), fi.score, \
        CASE WHEN p.repost_of IS NULL THEN p.like_count ELSE COALESCE( \
            (SELECT s.like_count FROM posts AS s WHERE ",
    post_is!("s.", "p.repost_of"),
    "), 0) END, \
        CASE WHEN p.repost_of IS NULL THEN p.repost_count ELSE COALESCE( \
            (SELECT s.repost_count FROM posts AS s WHERE ",
    post_is!("s.", "p.repost_of"),
    "), 0) END, \
        fi.indexed_at, CASE WHEN p.repost_of IS NOT NULL THEN p.uri END \
    FROM feed_items AS fi CROSS JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = ?1 AND (fi.score, fi.post_seq) < (?2, ?3) \
        AND p.like_count >= fi.min_likes \
        AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author) \
    ORDER BY fi.score DESC, fi.post_seq DESC LIMIT ?4 + 0"
);
const RANKED: &str = "SELECT fi.post_seq, p.uri, fi.score, p.like_count, p.repost_count, \
        fi.indexed_at, NULL \
    FROM feed_items AS fi CROSS JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = ?1 AND p.like_count >= fi.min_likes AND p.repost_of IS NULL \
        AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author) \
    ORDER BY fi.score DESC, fi.post_seq DESC LIMIT ?2 + 0";
const RECENT: &str = "SELECT fi.post_seq, p.uri, fi.score, p.like_count, p.repost_count, \
        fi.indexed_at, NULL \
    FROM feed_items AS fi CROSS JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = ?1 AND fi.indexed_at >= ?2 AND p.repost_of IS NULL \
    ORDER BY fi.indexed_at DESC, fi.post_seq DESC LIMIT ?3 + 0";
const LIVE_POSTS: &str = concat!(
    "SELECT p.uri FROM json_each(?1) AS j JOIN posts AS p ON ",
    post_is!("p.", "j.value"),
    " WHERE NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author)"
);
const POST: &str = concat!(
    "SELECT uri, cid, author, rkey, created_at, indexed_at, langs, text, \
        reply_parent, reply_root, embed_kind, hashtags, mentions, labels, like_count, \
        repost_count, repost_of FROM posts WHERE ",
    post_is!("", "?1")
);
const SAVE_SNAPSHOT: &str = "INSERT INTO snapshots (id, feed, uris, created_at) \
    VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET feed = excluded.feed, \
        uris = excluded.uris, created_at = excluded.created_at";
const LOAD_SNAPSHOT: &str = "SELECT uris FROM snapshots WHERE id = ?1";
const EXPIRE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE created_at < ?1";
const PRUNE_MEMBERSHIPS: &str =
    "DELETE FROM feed_items WHERE feed = ?1 AND indexed_at < ?2 RETURNING post_seq";
const DELETE_IF_ORPHAN: &str = "DELETE FROM posts WHERE seq = ?1 \
    AND NOT EXISTS (SELECT 1 FROM feed_items WHERE post_seq = ?1)";
const PRUNE_INTERACTIONS: &str =
    "DELETE FROM interactions WHERE (feed = ?1 OR feed IS NULL) AND at < ?2";
const FEED_COUNTS: &str = "SELECT feed, COUNT(*) FROM feed_items GROUP BY feed ORDER BY feed";
const INTERACTION_COUNTS: &str = "SELECT COALESCE(feed, '') AS f, COUNT(*) FROM interactions \
    GROUP BY f ORDER BY f";
const SIZE: &str = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()";

#[async_trait]
impl FeedStore for SqliteStore {
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError> {
        let writes = prepare(writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        let now = now_unix_ms();
        self.blocking(Role::Write, move |conn, db| {
            let total = writes.len();
            let fail =
                |step: &str, e| query_error(db, &format!("applying feed writes ({step})"), e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| fail("starting the transaction", e))?;
            let mut removed = Removals::default();
            for (i, write) in writes.iter().enumerate() {
                apply_one(&tx, write, now, &mut removed).map_err(|e| {
                    fail(
                        &format!("write {} of {total}, {}", i + 1, write.kind_str()),
                        e,
                    )
                })?;
            }
            removed
                .flush(&tx)
                .map_err(|e| fail("deleting removed accounts' posts", e))?;
            tx.commit().map_err(|e| fail("committing", e))
        })
        .await
    }

    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed).into_owned();
        let after = after.unwrap_or(PagePosition {
            score: f64::MAX,
            seq: i64::MAX,
        });
        let limit = to_sql_count(limit);
        self.blocking(Role::Read, move |conn, db| {
            items(
                conn,
                CHRONOLOGICAL,
                params![feed, after.score, after.seq, limit],
            )
            .map_err(|e| query_error(db, "reading a chronological page", e))
        })
        .await
    }

    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed).into_owned();
        let max = to_sql_count(max);
        self.blocking(Role::Read, move |conn, db| {
            items(conn, RANKED, params![feed, max])
                .map_err(|e| query_error(db, "reading a ranking", e))
        })
        .await
    }

    async fn save_snapshot(
        &self,
        id: &str,
        feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let id = clean_arg(id).into_owned();
        let feed = clean_arg(feed).into_owned();
        let uris: Vec<String> = uris.iter().map(|u| clean_arg(u).into_owned()).collect();
        let uris = to_json(&uris);
        self.blocking(Role::Write, move |conn, db| {
            conn.prepare_cached(SAVE_SNAPSHOT)
                .and_then(|mut stmt| stmt.execute(params![id, feed, uris, at_ms]))
                .map_err(|e| query_error(db, "saving a ranking snapshot", e))?;
            Ok(())
        })
        .await
    }

    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let id = clean_arg(id).into_owned();
        self.blocking(Role::Read, move |conn, db| {
            let uris: Option<String> = conn
                .prepare_cached(LOAD_SNAPSHOT)
                .and_then(|mut stmt| stmt.query_row([&id], |row| row.get(0)).optional())
                .map_err(|e| query_error(db, "reading a ranking snapshot", e))?;
            let Some(uris) = uris else {
                return Ok(None);
            };
            let uris = from_json(&uris)
                .map_err(|e| query_error(db, "reading ranking snapshot uris", e))?;
            Ok(Some(uris.into_iter().skip(offset).take(limit).collect()))
        })
        .await
    }

    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        self.blocking(Role::Write, move |conn, db| {
            let n = conn
                .prepare_cached(EXPIRE_SNAPSHOTS)
                .and_then(|mut stmt| stmt.execute([older_than_ms]))
                .map_err(|e| query_error(db, "expiring ranking snapshots", e))?;
            Ok(n as u64)
        })
        .await
    }

    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError> {
        if uris.is_empty() {
            return Ok(HashSet::new());
        }
        let uris: Vec<String> = uris.iter().map(|u| clean_arg(u).into_owned()).collect();
        let uris = to_json(&uris);
        self.blocking(Role::Read, move |conn, db| {
            conn.prepare_cached(LIVE_POSTS)
                .and_then(|mut stmt| stmt.query_map([&uris], |row| row.get(0))?.collect())
                .map_err(|e| query_error(db, "checking which posts are live", e))
        })
        .await
    }

    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError> {
        let uri = clean_arg(uri).into_owned();
        self.blocking(Role::Read, move |conn, db| {
            conn.prepare_cached(POST)
                .and_then(|mut stmt| stmt.query_row([&uri], post_from_row).optional())
                .map_err(|e| query_error(db, "reading a post", e))
        })
        .await
    }

    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed).into_owned();
        let max = to_sql_count(max);
        self.blocking(Role::Read, move |conn, db| {
            items(conn, RECENT, params![feed, since_ms, max])
                .map_err(|e| query_error(db, "reading recent posts", e))
        })
        .await
    }

    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError> {
        let feed = clean_arg(feed).into_owned();
        self.blocking(Role::Write, move |conn, db| {
            let fail = |e| query_error(db, "pruning a feed", e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let removed = prune(&tx, &feed, older_than_ms).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(removed)
        })
        .await
    }

    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            counts(conn, FEED_COUNTS).map_err(|e| query_error(db, "counting feed items", e))
        })
        .await
    }

    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            counts(conn, INTERACTION_COUNTS)
                .map_err(|e| query_error(db, "counting interactions", e))
        })
        .await
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        self.blocking(Role::Read, |conn, db| {
            let bytes: i64 = conn
                .query_row(SIZE, [], |row| row.get(0))
                .map_err(|e| query_error(db, "reading the database size", e))?;
            Ok(from_sql_count(bytes))
        })
        .await
    }
}

/// Accounts removed in a batch whose posts are not deleted yet. Without an author index each
/// deletion is a scan of posts, so a batch's removals (a wave of takedowns) share one scan,
/// made before anything that it would change (a post by one of them) and at the end.
#[derive(Default)]
struct Removals(Vec<String>);

impl Removals {
    fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if !self.0.is_empty() {
            tx.prepare_cached(DELETE_AUTHORS_POSTS)?
                .execute([to_json(&self.0)])?;
            self.0.clear();
        }
        Ok(())
    }
}

fn apply_one(
    tx: &Transaction<'_>,
    write: &FeedWrite,
    now: i64,
    removed: &mut Removals,
) -> rusqlite::Result<()> {
    if let FeedWrite::UpsertPost { post, .. } = write {
        if removed.0.contains(&post.author) {
            removed.flush(tx)?;
        }
    }
    match write {
        FeedWrite::UpsertPost { post, feeds } => {
            if feeds.is_empty() {
                tx.prepare_cached(DELETE_POST)?.execute([&post.uri])?;
                return Ok(());
            }
            let values = params![
                post.uri,
                post.cid,
                post.author,
                post.rkey,
                post.created_at_ms,
                post.indexed_at_ms,
                to_json(&post.langs),
                post.text,
                post.reply_parent,
                post.reply_root,
                post.embed_kind,
                to_json(&post.hashtags),
                to_json(&post.mentions),
                to_json(&post.labels),
                post.repost_of,
            ];
            let inserted: Option<i64> = tx
                .prepare_cached(INSERT_POST)?
                .query_row(values, |row| row.get(0))
                .optional()?;
            let (seq, indexed_at, likes, reposts) = match inserted {
                Some(seq) => (seq, post.indexed_at_ms, 0, 0),
                None => {
                    let kept: (i64, i64, i64, i64) =
                        tx.prepare_cached(UPDATE_POST)?.query_row(values, |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                        })?;
                    tx.prepare_cached(CLEAR_MEMBERSHIPS)?.execute([kept.0])?;
                    kept
                }
            };
            let mut add = tx.prepare_cached(ADD_MEMBERSHIP)?;
            for m in feeds {
                let score = m.half_life_s.map_or(m.score, |h| {
                    engagement_score(
                        from_sql_count(likes),
                        from_sql_count(reposts),
                        post.created_at_ms,
                        h,
                    )
                });
                add.execute(params![
                    m.feed,
                    seq,
                    score,
                    min_likes_to_sql(m.min_likes),
                    indexed_at,
                    m.half_life_s
                ])?;
            }
        }
        FeedWrite::DeletePost { uri } => {
            tx.prepare_cached(DELETE_POST)?.execute([uri])?;
            tx.prepare_cached(DELETE_REPOST_ITEMS)?.execute([uri])?;
        }
        FeedWrite::AddLike { uri, subject } => add_engagement(tx, &LIKES, uri, subject)?,
        FeedWrite::RemoveLike { uri } => remove_engagement(tx, &LIKES, uri)?,
        FeedWrite::AddRepost { uri, subject } => add_engagement(tx, &REPOSTS, uri, subject)?,
        FeedWrite::RemoveRepost { uri } => remove_engagement(tx, &REPOSTS, uri)?,
        FeedWrite::SetAccountStatus { did, status } => match status {
            AccountStatus::Active => {
                tx.prepare_cached(ACTIVATE)?.execute([did])?;
            }
            AccountStatus::Deactivated | AccountStatus::Removed => {
                tx.prepare_cached(HIDE)?
                    .execute(params![did, status.as_str(), now])?;
                if *status == AccountStatus::Removed {
                    removed.0.push(did.clone());
                    let (lo, hi) = record_uri_range(did);
                    for kind in [&LIKES, &REPOSTS] {
                        let seqs: Vec<i64> = tx
                            .prepare_cached(kind.remove_range)?
                            .query_map([&lo, &hi], |row| row.get(0))?
                            .collect::<Result<_, _>>()?;
                        decrement(tx, kind, seqs)?;
                    }
                }
            }
        },
        FeedWrite::SetScore { feed, uri, score } => {
            tx.prepare_cached(SET_SCORE)?
                .execute(params![score, feed, uri])?;
        }
        FeedWrite::Interaction {
            feed,
            requester,
            item,
            event,
            feed_context,
            at_ms,
        } => {
            tx.prepare_cached(ADD_INTERACTION)?.execute(params![
                feed,
                requester,
                item,
                event,
                feed_context,
                at_ms
            ])?;
        }
    }
    Ok(())
}

fn add_engagement(
    tx: &Transaction<'_>,
    kind: &Engagement,
    uri: &str,
    subject: &str,
) -> rusqlite::Result<()> {
    let seq: Option<i64> = tx
        .prepare_cached(kind.add)?
        .query_row([uri, subject], |row| row.get(0))
        .optional()?;
    if let Some(seq) = seq {
        let counts = tx
            .prepare_cached(kind.increment)?
            .query_row([seq], counts_of)
            .optional()?;
        if let Some(counts) = counts {
            rescore(tx, seq, counts)?;
        }
    }
    Ok(())
}

/// A post's like and repost counts and `created_at`, as the count updates return them.
fn counts_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// Recomputes the post's engagement scores from its counts.
fn rescore(
    tx: &Transaction<'_>,
    seq: i64,
    (likes, reposts, created_at): (i64, i64, i64),
) -> rusqlite::Result<()> {
    let weight = engagement_weight(from_sql_count(likes), from_sql_count(reposts));
    tx.prepare_cached(RESCORE)?
        .execute(params![weight, created_at as f64 / 1000.0, seq])?;
    Ok(())
}

fn remove_engagement(tx: &Transaction<'_>, kind: &Engagement, uri: &str) -> rusqlite::Result<()> {
    let seq: Option<i64> = tx
        .prepare_cached(kind.remove)?
        .query_row([uri], |row| row.get(0))
        .optional()?;
    decrement(tx, kind, seq)
}

/// Takes one off the count of each seq, once per occurrence.
fn decrement(
    tx: &Transaction<'_>,
    kind: &Engagement,
    seqs: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<()> {
    let mut per_post = std::collections::BTreeMap::<i64, i64>::new();
    for seq in seqs {
        *per_post.entry(seq).or_default() += 1;
    }
    for (seq, n) in per_post {
        let counts = tx
            .prepare_cached(kind.decrement)?
            .query_row([seq, n], counts_of)
            .optional()?;
        if let Some(counts) = counts {
            rescore(tx, seq, counts)?;
        }
    }
    Ok(())
}

fn prune(tx: &Transaction<'_>, feed: &str, older_than_ms: i64) -> rusqlite::Result<u64> {
    let seqs: Vec<i64> = tx
        .prepare_cached(PRUNE_MEMBERSHIPS)?
        .query_map(params![feed, older_than_ms], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut orphan = tx.prepare_cached(DELETE_IF_ORPHAN)?;
    for &seq in &seqs {
        orphan.execute([seq])?;
    }
    tx.prepare_cached(PRUNE_INTERACTIONS)?
        .execute(params![feed, older_than_ms])?;
    Ok(seqs.len() as u64)
}

fn items(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<FeedItem>> {
    conn.prepare_cached(sql)?
        .query_map(params, |row| {
            Ok(FeedItem {
                seq: row.get(0)?,
                uri: row.get(1)?,
                score: row.get(2)?,
                likes: from_sql_count(row.get(3)?),
                reposts: from_sql_count(row.get(4)?),
                indexed_at_ms: row.get(5)?,
                repost: row.get(6)?,
            })
        })?
        .collect()
}

fn counts(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare_cached(sql)?
        .query_map([], |row| Ok((row.get(0)?, from_sql_count(row.get(1)?))))?
        .collect()
}

fn post_from_row(row: &Row<'_>) -> rusqlite::Result<(PostRow, u64, u64)> {
    let list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let text: String = row.get(i)?;
        from_json(&text)
    };
    let post = PostRow {
        uri: row.get(0)?,
        cid: row.get(1)?,
        author: row.get(2)?,
        rkey: row.get(3)?,
        created_at_ms: row.get(4)?,
        indexed_at_ms: row.get(5)?,
        langs: list(6)?,
        text: row.get(7)?,
        reply_parent: row.get(8)?,
        reply_root: row.get(9)?,
        embed_kind: row.get(10)?,
        hashtags: list(11)?,
        mentions: list(12)?,
        labels: list(13)?,
        repost_of: row.get(16)?,
    };
    Ok((
        post,
        from_sql_count(row.get(14)?),
        from_sql_count(row.get(15)?),
    ))
}

/// A list of strings as JSON text (serializing strings cannot fail).
fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::migrations::SQLITE_MIGRATIONS;

    /// `EXPLAIN QUERY PLAN`, one detail line per step.
    fn plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn feed_queries_walk_indexes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for m in SQLITE_MIGRATIONS {
            conn.execute_batch(m.sql).unwrap();
        }
        let ordered = [
            (
                CHRONOLOGICAL,
                "feed_items_score",
                params!["f", 1.5e9, 10, 30].to_vec(),
            ),
            (RANKED, "feed_items_score", params!["f", 30].to_vec()),
        ];
        for (sql, index, params) in ordered {
            let steps = plan(&conn, sql, params.as_slice());
            let all = steps.join(" | ");
            // feed_items is searched by feed, in the order wanted: no sort, no full scan.
            assert!(
                steps[0].starts_with("SEARCH fi USING") && steps[0].contains(index),
                "{all}"
            );
            assert!(!all.contains("TEMP B-TREE"), "{all}");
            assert!(all.contains("SEARCH p USING INTEGER PRIMARY KEY"), "{all}");
            assert!(all.contains("SEARCH a USING"), "{all}");
        }
        let all = plan(&conn, RECENT, params!["f", 0, 10]).join(" | ");
        assert!(
            all.starts_with("SEARCH fi USING INDEX feed_items_indexed_at"),
            "{all}"
        );
        assert!(!all.contains("TEMP B-TREE"), "{all}");
        for (sql, params) in [
            (PRUNE_MEMBERSHIPS, params!["f", 0].to_vec()),
            (
                POST,
                params!["at://did:plc:a/app.bsky.feed.post/1"].to_vec(),
            ),
            (DELETE_POST, params!["u"].to_vec()),
            (LIKES.add, params!["l", "u"].to_vec()),
            (
                UPDATE_POST,
                params![
                    "u",
                    "c",
                    "a",
                    "r",
                    1,
                    2,
                    "[]",
                    "t",
                    None::<String>,
                    None::<String>,
                    None::<String>,
                    "[]",
                    "[]",
                    "[]",
                    None::<String>
                ]
                .to_vec(),
            ),
            (LIKES.remove_range, params!["a", "b"].to_vec()),
            (REPOSTS.remove, params!["a"].to_vec()),
            (LIVE_POSTS, params!["[]"].to_vec()),
            (SET_SCORE, params![1.0, "f", "u"].to_vec()),
            (PRUNE_INTERACTIONS, params!["f", 0].to_vec()),
        ] {
            let all = plan(&conn, sql, params.as_slice()).join(" | ");
            for table in ["posts", "feed_items", "likes", "reposts", "interactions"] {
                assert!(!all.contains(&format!("SCAN {table}")), "{sql}: {all}");
            }
            assert!(
                !all.contains("SCAN p ") && !all.contains("SCAN fi"),
                "{sql}: {all}"
            );
        }
    }
}
