//! [`FeedStore`] for [`PostgresStore`]: each batch is one transaction on a pooled connection,
//! its statements pipelined; reads take any free connection. Arrays are `text[]`.
//!
//! **Pipelining.** No statement of a batch needs the result of an earlier one on the client:
//! memberships find their post by uri, and like/repost bookkeeping is one statement each
//! (a data-modifying CTE). So a batch is sent whole, in order, and its replies are read after:
//! one round trip per batch instead of several per write. tokio-postgres sends a request when
//! its future is first polled, so [`run_in_order`] polls every statement's future once, in
//! order, before awaiting any; the server runs them in the order sent, each seeing the ones
//! before it, as if awaited one by one.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tokio_postgres::Statement;

use super::{
    clean_arg, from_sql_count, min_likes_to_sql, prepare, record_uri_range, to_sql_count,
    AccountStatus, FeedItem, FeedStore, FeedWrite, PagePosition, PostRow,
};
use crate::{now_unix_ms, PostgresStore, StoreError};

/// How often a batch is tried when the server aborts it for a deadlock or a serialization
/// failure with another writer (the whole transaction rolled back, so trying again is exact).
/// Each retry waits a little longer, with jitter, so two writers stop colliding.
const APPLY_ATTEMPTS: u32 = 10;

const UPSERT_POST: &str = "INSERT INTO posts (uri, cid, author, rkey, created_at, indexed_at, \
        langs, text, reply_parent, reply_root, embed_kind, hashtags, mentions, labels, \
        repost_of) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
    ON CONFLICT (uri) DO UPDATE SET cid = EXCLUDED.cid, author = EXCLUDED.author, \
        rkey = EXCLUDED.rkey, created_at = EXCLUDED.created_at, langs = EXCLUDED.langs, \
        text = EXCLUDED.text, reply_parent = EXCLUDED.reply_parent, \
        reply_root = EXCLUDED.reply_root, embed_kind = EXCLUDED.embed_kind, \
        hashtags = EXCLUDED.hashtags, mentions = EXCLUDED.mentions, labels = EXCLUDED.labels, \
        repost_of = EXCLUDED.repost_of";
const CLEAR_MEMBERSHIPS: &str =
    "DELETE FROM feed_items WHERE post_seq = (SELECT seq FROM posts WHERE uri = $1)";
// The post's seq and (kept) indexed_at come from its row; feeds arrive deduplicated.
// An engagement-ranked membership (a half-life) is scored from the post's stored counts.
const ADD_MEMBERSHIPS: &str = "INSERT INTO feed_items (feed, post_seq, score, min_likes, \
        indexed_at, half_life) \
    SELECT m.feed, p.seq, \
        CASE WHEN m.half_life IS NULL THEN m.score \
            ELSE ln((1 + p.like_count + 2 * p.repost_count)::float8) / ln(2::float8) \
                + p.created_at::float8 / 1000.0 / m.half_life END, \
        m.min_likes, p.indexed_at, m.half_life \
    FROM posts AS p \
        CROSS JOIN unnest($2::text[], $3::float8[], $4::int8[], $5::float8[]) \
            AS m (feed, score, min_likes, half_life) \
    WHERE p.uri = $1 \
    ON CONFLICT (feed, post_seq) DO UPDATE SET score = EXCLUDED.score, \
        min_likes = EXCLUDED.min_likes, half_life = EXCLUDED.half_life";
const DELETE_POST: &str = "DELETE FROM posts WHERE uri = $1";
const DELETE_REPOST_ITEMS: &str = "DELETE FROM posts WHERE repost_of = $1";
const DELETE_AUTHOR_POSTS: &str = "DELETE FROM posts WHERE author = $1";
const SET_SCORE: &str = "UPDATE feed_items SET score = $1 \
    WHERE feed = $2 AND post_seq = (SELECT seq FROM posts WHERE uri = $3)";
const ACTIVATE: &str = "DELETE FROM accounts WHERE did = $1";
const HIDE: &str = "INSERT INTO accounts (did, status, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (did) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at";
const ADD_INTERACTION: &str = "INSERT INTO interactions \
    (feed, requester, item, event, feed_context, at) VALUES ($1, $2, $3, $4, $5, $6)";

/// The statements of one engagement table (likes or reposts), each counting as it goes.
struct Engagement {
    /// Records a like of a kept post and, if the record is new, counts it.
    add: &'static str,
    /// Forgets a record and uncounts it, if it was counted.
    remove: &'static str,
    /// Forgets and uncounts every record in a uri range (an account's records).
    remove_range: &'static str,
}

/// Ends an engagement statement: the posts whose counts changed (`counted`) get their
/// engagement scores recomputed, `log2(1 + likes + 2 × reposts) + created_at / half_life`.
macro_rules! rescored {
    ($counted:literal) => {
        concat!(
            $counted,
            " RETURNING posts.seq, posts.like_count, posts.repost_count, posts.created_at) \
            UPDATE feed_items AS fi SET score = \
                ln((1 + c.like_count + 2 * c.repost_count)::float8) / ln(2::float8) \
                + c.created_at::float8 / 1000.0 / fi.half_life \
            FROM counted AS c WHERE fi.post_seq = c.seq AND fi.half_life IS NOT NULL"
        )
    };
}

const LIKES: Engagement = Engagement {
    add: rescored!(
        "WITH added AS (INSERT INTO likes (uri, post_seq) \
            SELECT $1::text, seq FROM posts WHERE uri = $2 \
            ON CONFLICT (uri) DO NOTHING RETURNING post_seq), \
        counted AS (UPDATE posts SET like_count = like_count + 1 FROM added \
            WHERE seq = added.post_seq"
    ),
    remove: rescored!(
        "WITH removed AS (DELETE FROM likes WHERE uri = $1 RETURNING post_seq), \
        counted AS (UPDATE posts SET like_count = like_count - 1 FROM removed \
            WHERE seq = removed.post_seq"
    ),
    remove_range: rescored!(
        "WITH removed AS (DELETE FROM likes WHERE uri >= $1 AND uri < $2 \
            RETURNING post_seq), \
        per_post AS (SELECT post_seq, COUNT(*) AS n FROM removed GROUP BY post_seq), \
        counted AS (UPDATE posts SET like_count = like_count - per_post.n FROM per_post \
            WHERE seq = per_post.post_seq"
    ),
};

const REPOSTS: Engagement = Engagement {
    add: rescored!(
        "WITH added AS (INSERT INTO reposts (uri, post_seq) \
            SELECT $1::text, seq FROM posts WHERE uri = $2 \
            ON CONFLICT (uri) DO NOTHING RETURNING post_seq), \
        counted AS (UPDATE posts SET repost_count = repost_count + 1 FROM added \
            WHERE seq = added.post_seq"
    ),
    remove: rescored!(
        "WITH removed AS (DELETE FROM reposts WHERE uri = $1 RETURNING post_seq), \
        counted AS (UPDATE posts SET repost_count = repost_count - 1 FROM removed \
            WHERE seq = removed.post_seq"
    ),
    remove_range: rescored!(
        "WITH removed AS (DELETE FROM reposts WHERE uri >= $1 AND uri < $2 \
            RETURNING post_seq), \
        per_post AS (SELECT post_seq, COUNT(*) AS n FROM removed GROUP BY post_seq), \
        counted AS (UPDATE posts SET repost_count = repost_count - per_post.n FROM per_post \
            WHERE seq = per_post.post_seq"
    ),
};

// Walks feed_items_score (feed, score DESC, post_seq DESC) from the cursor's position down.
// A repost item shows the reposted post, with its counts when it is stored.
const CHRONOLOGICAL: &str = "SELECT fi.post_seq, COALESCE(p.repost_of, p.uri), fi.score, \
        CASE WHEN p.repost_of IS NULL THEN p.like_count ELSE COALESCE( \
            (SELECT s.like_count FROM posts AS s WHERE s.uri = p.repost_of), 0) END, \
        CASE WHEN p.repost_of IS NULL THEN p.repost_count ELSE COALESCE( \
            (SELECT s.repost_count FROM posts AS s WHERE s.uri = p.repost_of), 0) END, \
        fi.indexed_at, CASE WHEN p.repost_of IS NOT NULL THEN p.uri END \
    FROM feed_items AS fi JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = $1 AND (fi.score, fi.post_seq) < ($2, $3) \
        AND p.like_count >= fi.min_likes \
        AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author) \
    ORDER BY fi.score DESC, fi.post_seq DESC LIMIT $4";
const RANKED: &str = "SELECT fi.post_seq, p.uri, fi.score, p.like_count, p.repost_count, \
        fi.indexed_at, NULL::text \
    FROM feed_items AS fi JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = $1 AND p.like_count >= fi.min_likes AND p.repost_of IS NULL \
        AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author) \
    ORDER BY fi.score DESC, fi.post_seq DESC LIMIT $2";
const RECENT: &str = "SELECT fi.post_seq, p.uri, fi.score, p.like_count, p.repost_count, \
        fi.indexed_at, NULL::text \
    FROM feed_items AS fi JOIN posts AS p ON p.seq = fi.post_seq \
    WHERE fi.feed = $1 AND fi.indexed_at >= $2 AND p.repost_of IS NULL \
    ORDER BY fi.indexed_at DESC, fi.post_seq DESC LIMIT $3";
const LIVE_POSTS: &str = "SELECT p.uri FROM posts AS p WHERE p.uri = ANY($1) \
    AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.author)";
const POST: &str = "SELECT uri, cid, author, rkey, created_at, indexed_at, langs, text, \
        reply_parent, reply_root, embed_kind, hashtags, mentions, labels, like_count, \
        repost_count, repost_of \
    FROM posts WHERE uri = $1";
const SAVE_SNAPSHOT: &str = "INSERT INTO snapshots (id, feed, uris, created_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET feed = EXCLUDED.feed, \
        uris = EXCLUDED.uris, created_at = EXCLUDED.created_at";
// Array subscripts are 1-based and inclusive; a slice past the end is empty.
const SNAPSHOT_SLICE: &str = "SELECT uris[$2:$3] FROM snapshots WHERE id = $1";
const EXPIRE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE created_at < $1";
const PRUNE_MEMBERSHIPS: &str =
    "DELETE FROM feed_items WHERE feed = $1 AND indexed_at < $2 RETURNING post_seq";
const DELETE_ORPHANS: &str = "DELETE FROM posts AS p WHERE p.seq = ANY($1) \
    AND NOT EXISTS (SELECT 1 FROM feed_items AS fi WHERE fi.post_seq = p.seq)";
const PRUNE_INTERACTIONS: &str =
    "DELETE FROM interactions WHERE (feed = $1 OR feed IS NULL) AND at < $2";
const FEED_COUNTS: &str = "SELECT feed, COUNT(*) FROM feed_items GROUP BY feed ORDER BY feed";
const INTERACTION_COUNTS: &str = "SELECT COALESCE(feed, '') COLLATE \"C\" AS f, COUNT(*) \
    FROM interactions GROUP BY f ORDER BY f";
// The tables (with their indexes and TOAST) in the store's schema: the first of search_path.
const SIZE: &str = "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT \
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')";

#[async_trait]
impl FeedStore for PostgresStore {
    async fn apply(&self, writes: Vec<FeedWrite>) -> Result<(), StoreError> {
        let writes = prepare(writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        let now = now_unix_ms();
        let mut client = self.client().await?;
        let mut attempt = 1;
        loop {
            match apply_all(&mut client, &writes, now).await {
                Ok(()) => return Ok(()),
                Err((_, e)) if attempt < APPLY_ATTEMPTS && is_transient(&e) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err((step, e)) => {
                    return Err(self.query_error(&format!("applying feed writes ({step})"), &e))
                }
            }
        }
    }

    async fn chronological_page(
        &self,
        feed: &str,
        after: Option<PagePosition>,
        limit: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed);
        let after = after.unwrap_or(PagePosition {
            score: f64::MAX,
            seq: i64::MAX,
        });
        let limit = to_sql_count(limit);
        self.items(
            "reading a chronological page",
            CHRONOLOGICAL,
            &[&feed, &after.score, &after.seq, &limit],
        )
        .await
    }

    async fn ranked_top(&self, feed: &str, max: usize) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed);
        let max = to_sql_count(max);
        self.items("reading a ranking", RANKED, &[&feed, &max])
            .await
    }

    async fn save_snapshot(
        &self,
        id: &str,
        feed: &str,
        uris: &[String],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let (id, feed) = (clean_arg(id), clean_arg(feed));
        let uris: Vec<_> = uris.iter().map(|u| clean_arg(u)).collect();
        let client = self.client().await?;
        let fail = |e| self.query_error("saving a ranking snapshot", &e);
        let stmt = client.prepare_cached(SAVE_SNAPSHOT).await.map_err(fail)?;
        client
            .execute(&stmt, &[&id, &feed, &uris, &at_ms])
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn snapshot_slice(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let id = clean_arg(id);
        let first = i32::try_from(offset.saturating_add(1)).unwrap_or(i32::MAX);
        let last = i32::try_from(offset.saturating_add(limit)).unwrap_or(i32::MAX);
        if limit == 0 || first == i32::MAX {
            // Nothing to slice (no snapshot is that long); only whether the id is known.
            let client = self.client().await?;
            let fail = |e| self.query_error("reading a ranking snapshot", &e);
            let row = client
                .query_opt("SELECT 1 FROM snapshots WHERE id = $1", &[&id])
                .await
                .map_err(fail)?;
            return Ok(row.map(|_| Vec::new()));
        }
        let client = self.client().await?;
        let fail = |e| self.query_error("reading a ranking snapshot", &e);
        let stmt = client.prepare_cached(SNAPSHOT_SLICE).await.map_err(fail)?;
        let row = client
            .query_opt(&stmt, &[&id, &first, &last])
            .await
            .map_err(fail)?;
        row.map(|row| row.try_get::<_, Vec<String>>(0).map_err(fail))
            .transpose()
    }

    async fn expire_snapshots(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("expiring ranking snapshots", &e);
        let stmt = client
            .prepare_cached(EXPIRE_SNAPSHOTS)
            .await
            .map_err(fail)?;
        client.execute(&stmt, &[&older_than_ms]).await.map_err(fail)
    }

    async fn live_posts(&self, uris: &[String]) -> Result<HashSet<String>, StoreError> {
        if uris.is_empty() {
            return Ok(HashSet::new());
        }
        let uris: Vec<_> = uris.iter().map(|u| clean_arg(u)).collect();
        let client = self.client().await?;
        let fail = |e| self.query_error("checking which posts are live", &e);
        let stmt = client.prepare_cached(LIVE_POSTS).await.map_err(fail)?;
        let rows = client.query(&stmt, &[&uris]).await.map_err(fail)?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).map_err(fail))
            .collect()
    }

    async fn post(&self, uri: &str) -> Result<Option<(PostRow, u64, u64)>, StoreError> {
        let uri = clean_arg(uri);
        let client = self.client().await?;
        let fail = |e| self.query_error("reading a post", &e);
        let stmt = client.prepare_cached(POST).await.map_err(fail)?;
        let row = client.query_opt(&stmt, &[&uri]).await.map_err(fail)?;
        row.map(|row| post_from_row(&row).map_err(fail)).transpose()
    }

    async fn recent_posts(
        &self,
        feed: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<FeedItem>, StoreError> {
        let feed = clean_arg(feed);
        let max = to_sql_count(max);
        self.items("reading recent posts", RECENT, &[&feed, &since_ms, &max])
            .await
    }

    async fn prune(&self, feed: &str, older_than_ms: i64) -> Result<u64, StoreError> {
        let feed = clean_arg(feed);
        let mut client = self.client().await?;
        let fail = |e| self.query_error("pruning a feed", &e);
        let tx = client.transaction().await.map_err(fail)?;
        let stmt = tx.prepare_cached(PRUNE_MEMBERSHIPS).await.map_err(fail)?;
        let seqs: Vec<i64> = tx
            .query(&stmt, &[&feed, &older_than_ms])
            .await
            .map_err(fail)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        if !seqs.is_empty() {
            let stmt = tx.prepare_cached(DELETE_ORPHANS).await.map_err(fail)?;
            tx.execute(&stmt, &[&seqs]).await.map_err(fail)?;
        }
        let stmt = tx.prepare_cached(PRUNE_INTERACTIONS).await.map_err(fail)?;
        tx.execute(&stmt, &[&feed, &older_than_ms])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(seqs.len() as u64)
    }

    async fn feed_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.counts("counting feed items", FEED_COUNTS).await
    }

    async fn interaction_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.counts("counting interactions", INTERACTION_COUNTS)
            .await
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error("reading the database size", &e);
        let row = client.query_one(SIZE, &[]).await.map_err(fail)?;
        Ok(from_sql_count(row.try_get(0).map_err(fail)?))
    }
}

impl PostgresStore {
    async fn items(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<FeedItem>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error(what, &e);
        let stmt = client.prepare_cached(sql).await.map_err(fail)?;
        let rows = client.query(&stmt, params).await.map_err(fail)?;
        rows.iter()
            .map(|row| {
                Ok(FeedItem {
                    seq: row.try_get(0)?,
                    uri: row.try_get(1)?,
                    score: row.try_get(2)?,
                    likes: from_sql_count(row.try_get(3)?),
                    reposts: from_sql_count(row.try_get(4)?),
                    indexed_at_ms: row.try_get(5)?,
                    repost: row.try_get(6)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(fail)
    }

    async fn counts(&self, what: &str, sql: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let fail = |e| self.query_error(what, &e);
        let stmt = client.prepare_cached(sql).await.map_err(fail)?;
        let rows = client.query(&stmt, &[]).await.map_err(fail)?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, from_sql_count(row.try_get(1)?))))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(fail)
    }
}

/// 2 ms per attempt so far, plus up to 5 ms of jitter (from the clock's nanoseconds: enough
/// to break the symmetry between two writers).
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(2 * u64::from(attempt)) + Duration::from_micros(u64::from(nanos % 5_000))
}

/// A deadlock or serialization failure: the server rolled the transaction back, and running
/// it again may well succeed.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

/// One attempt at a batch; on failure, which step failed and why (the transaction is rolled
/// back when dropped).
async fn apply_all(
    client: &mut Object,
    writes: &[FeedWrite],
    now: i64,
) -> Result<(), (String, tokio_postgres::Error)> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| ("starting the transaction".to_owned(), e))?;
    let st = Statements::prepare(&tx)
        .await
        .map_err(|e| ("preparing statements".to_owned(), e))?;
    let mut pending = Vec::new();
    for (i, write) in writes.iter().enumerate() {
        queue(&mut pending, &tx, &st, i, write, now);
    }
    run_in_order(pending).await.map_err(|(i, e)| {
        let kind = writes.get(i).map_or("?", FeedWrite::kind_str);
        (format!("write {} of {}, {kind}", i + 1, writes.len()), e)
    })?;
    tx.commit().await.map_err(|e| ("committing".to_owned(), e))
}

/// The write statements, prepared (and cached on the connection) before a batch is sent.
struct Statements {
    upsert_post: Statement,
    clear_memberships: Statement,
    add_memberships: Statement,
    delete_post: Statement,
    delete_repost_items: Statement,
    delete_author_posts: Statement,
    set_score: Statement,
    activate: Statement,
    hide: Statement,
    add_interaction: Statement,
    likes: [Statement; 3],
    reposts: [Statement; 3],
}

impl Statements {
    async fn prepare(tx: &Transaction<'_>) -> Result<Statements, tokio_postgres::Error> {
        let engagement = |kind: &'static Engagement| async move {
            Ok::<_, tokio_postgres::Error>([
                tx.prepare_cached(kind.add).await?,
                tx.prepare_cached(kind.remove).await?,
                tx.prepare_cached(kind.remove_range).await?,
            ])
        };
        Ok(Statements {
            upsert_post: tx.prepare_cached(UPSERT_POST).await?,
            clear_memberships: tx.prepare_cached(CLEAR_MEMBERSHIPS).await?,
            add_memberships: tx.prepare_cached(ADD_MEMBERSHIPS).await?,
            delete_post: tx.prepare_cached(DELETE_POST).await?,
            delete_repost_items: tx.prepare_cached(DELETE_REPOST_ITEMS).await?,
            delete_author_posts: tx.prepare_cached(DELETE_AUTHOR_POSTS).await?,
            set_score: tx.prepare_cached(SET_SCORE).await?,
            activate: tx.prepare_cached(ACTIVATE).await?,
            hide: tx.prepare_cached(HIDE).await?,
            add_interaction: tx.prepare_cached(ADD_INTERACTION).await?,
            likes: engagement(&LIKES).await?,
            reposts: engagement(&REPOSTS).await?,
        })
    }
}

/// A statement on its way: the index of the write it belongs to, and its future.
type Pending<'a> = (
    usize,
    Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>,
);

/// Adds the statements of write `i` to `pending`, in the order they must run.
fn queue<'a>(
    pending: &mut Vec<Pending<'a>>,
    tx: &'a Transaction<'a>,
    st: &'a Statements,
    i: usize,
    write: &'a FeedWrite,
    now: i64,
) {
    // Each statement's future owns its parameter list (the values borrow from `write`).
    macro_rules! push {
        ($statement:expr, [$($param:expr),* $(,)?]) => {
            pending.push((i, Box::pin(async move { tx.execute($statement, &[$($param),*]).await })))
        };
    }
    match write {
        FeedWrite::UpsertPost { post, feeds } if feeds.is_empty() => {
            push!(&st.delete_post, [&post.uri]);
        }
        FeedWrite::UpsertPost { post, feeds } => {
            push!(
                &st.upsert_post,
                [
                    &post.uri,
                    &post.cid,
                    &post.author,
                    &post.rkey,
                    &post.created_at_ms,
                    &post.indexed_at_ms,
                    &post.langs,
                    &post.text,
                    &post.reply_parent,
                    &post.reply_root,
                    &post.embed_kind,
                    &post.hashtags,
                    &post.mentions,
                    &post.labels,
                    &post.repost_of,
                ]
            );
            push!(&st.clear_memberships, [&post.uri]);
            // One row per feed, the last membership of a feed winning (as in one statement a
            // row cannot be inserted and then updated).
            let mut names: Vec<&str> = Vec::with_capacity(feeds.len());
            let mut scores = Vec::with_capacity(feeds.len());
            let mut min_likes = Vec::with_capacity(feeds.len());
            let mut half_lives: Vec<Option<f64>> = Vec::with_capacity(feeds.len());
            for m in feeds {
                match names.iter().position(|f| *f == m.feed) {
                    Some(j) => {
                        scores[j] = m.score;
                        min_likes[j] = min_likes_to_sql(m.min_likes);
                        half_lives[j] = m.half_life_s;
                    }
                    None => {
                        names.push(&m.feed);
                        scores.push(m.score);
                        min_likes.push(min_likes_to_sql(m.min_likes));
                        half_lives.push(m.half_life_s);
                    }
                }
            }
            push!(
                &st.add_memberships,
                [&post.uri, &names, &scores, &min_likes, &half_lives]
            );
        }
        FeedWrite::DeletePost { uri } => {
            push!(&st.delete_post, [uri]);
            push!(&st.delete_repost_items, [uri]);
        }
        FeedWrite::AddLike { uri, subject } => {
            push!(&st.likes[0], [uri, subject]);
        }
        FeedWrite::RemoveLike { uri } => push!(&st.likes[1], [uri]),
        FeedWrite::AddRepost { uri, subject } => {
            push!(&st.reposts[0], [uri, subject]);
        }
        FeedWrite::RemoveRepost { uri } => push!(&st.reposts[1], [uri]),
        FeedWrite::SetAccountStatus { did, status } => match status {
            AccountStatus::Active => push!(&st.activate, [did]),
            AccountStatus::Deactivated | AccountStatus::Removed => {
                let name = status.as_str();
                push!(&st.hide, [did, &name, &now]);
                if *status == AccountStatus::Removed {
                    push!(&st.delete_author_posts, [did]);
                    for kind in [&st.likes, &st.reposts] {
                        let (lo, hi) = record_uri_range(did);
                        push!(&kind[2], [&lo, &hi]);
                    }
                }
            }
        },
        FeedWrite::SetScore { feed, uri, score } => {
            push!(&st.set_score, [score, feed, uri]);
        }
        FeedWrite::Interaction {
            feed,
            requester,
            item,
            event,
            feed_context,
            at_ms,
        } => push!(
            &st.add_interaction,
            [feed, requester, item, event, feed_context, at_ms]
        ),
    }
}

/// Sends every statement before reading any reply: polls each future once, in order (which
/// sends its request), then awaits them in order. Stops at the first failure, with the index
/// of its write; the server has then aborted the transaction, so later statements fail too
/// and only the first error says why.
async fn run_in_order(pending: Vec<Pending<'_>>) -> Result<(), (usize, tokio_postgres::Error)> {
    let mut pending: Vec<_> = pending
        .into_iter()
        .map(|(i, future)| (i, future, None))
        .collect();
    std::future::poll_fn(|cx| {
        for (_, future, done) in pending.iter_mut() {
            if let Poll::Ready(result) = future.as_mut().poll(cx) {
                *done = Some(result);
            }
        }
        Poll::Ready(())
    })
    .await;
    for (i, future, done) in pending {
        let result = match done {
            Some(result) => result,
            None => future.await,
        };
        result.map_err(|e| (i, e))?;
    }
    Ok(())
}

fn post_from_row(row: &Row) -> Result<(PostRow, u64, u64), tokio_postgres::Error> {
    let post = PostRow {
        uri: row.try_get(0)?,
        cid: row.try_get(1)?,
        author: row.try_get(2)?,
        rkey: row.try_get(3)?,
        created_at_ms: row.try_get(4)?,
        indexed_at_ms: row.try_get(5)?,
        langs: row.try_get(6)?,
        text: row.try_get(7)?,
        reply_parent: row.try_get(8)?,
        reply_root: row.try_get(9)?,
        embed_kind: row.try_get(10)?,
        hashtags: row.try_get(11)?,
        mentions: row.try_get(12)?,
        labels: row.try_get(13)?,
        repost_of: row.try_get(16)?,
    };
    Ok((
        post,
        from_sql_count(row.try_get(14)?),
        from_sql_count(row.try_get(15)?),
    ))
}
