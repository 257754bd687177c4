-- The feed generator's data. Times are Unix milliseconds. Arrays of strings (langs, hashtags,
-- mentions, labels, a snapshot's uris) are JSON text: '["en","de"]'.

-- Every post some feed holds (a post in no feed is not kept). seq is the insertion sequence:
-- the order of a chronological feed and its cursor. AUTOINCREMENT, so a seq is never reused,
-- even after its post is deleted; re-indexing a uri keeps its seq (and indexed_at).
-- like_count / repost_count: the rows of likes / reposts that point here.
CREATE TABLE posts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    uri          TEXT    NOT NULL UNIQUE,
    cid          TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    rkey         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    indexed_at   INTEGER NOT NULL,
    langs        TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    reply_parent TEXT,
    reply_root   TEXT,
    embed_kind   TEXT,
    hashtags     TEXT    NOT NULL,
    mentions     TEXT    NOT NULL,
    labels       TEXT    NOT NULL,
    like_count   INTEGER NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    repost_count INTEGER NOT NULL DEFAULT 0 CHECK (repost_count >= 0)
) STRICT;
-- Removing an account's posts.
CREATE INDEX posts_author ON posts (author);

-- A post's membership of a feed. The primary key serves the chronological page
-- (WHERE feed = ? AND post_seq < ? ORDER BY post_seq DESC LIMIT ?); indexed_at is the post's.
CREATE TABLE feed_items (
    feed       TEXT    NOT NULL,
    post_seq   INTEGER NOT NULL REFERENCES posts (seq) ON DELETE CASCADE,
    score      REAL    NOT NULL,
    min_likes  INTEGER NOT NULL CHECK (min_likes >= 0),
    indexed_at INTEGER NOT NULL,
    PRIMARY KEY (feed, post_seq)
) STRICT, WITHOUT ROWID;
-- Ranked feeds: ORDER BY score DESC, post_seq DESC.
CREATE INDEX feed_items_score ON feed_items (feed, score DESC, post_seq DESC);
-- Retention and rescoring: WHERE feed = ? AND indexed_at < ? (or >= ? ORDER BY indexed_at DESC,
-- post_seq DESC).
CREATE INDEX feed_items_indexed_at ON feed_items (feed, indexed_at, post_seq);
-- Replacing or cascading a post's memberships.
CREATE INDEX feed_items_post ON feed_items (post_seq);

-- Like and repost records of kept posts: record uri -> the post, so a removal finds the post
-- it counted for. Records of posts not kept are not stored; they go with their post.
CREATE TABLE likes (
    uri      TEXT    NOT NULL PRIMARY KEY,
    post_seq INTEGER NOT NULL REFERENCES posts (seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX likes_post ON likes (post_seq);

CREATE TABLE reposts (
    uri      TEXT    NOT NULL PRIMARY KEY,
    post_seq INTEGER NOT NULL REFERENCES posts (seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX reposts_post ON reposts (post_seq);

-- Accounts whose posts are hidden from every feed; an active account has no row.
CREATE TABLE accounts (
    did        TEXT    NOT NULL PRIMARY KEY,
    status     TEXT    NOT NULL CHECK (status IN ('deactivated', 'removed')),
    updated_at INTEGER NOT NULL
) STRICT;

-- Ranking snapshots: the ordered uris of a ranked feed at created_at, so paging through it is
-- stable (and works across servers sharing the database). uris: JSON array.
CREATE TABLE snapshots (
    id         TEXT    NOT NULL PRIMARY KEY,
    feed       TEXT    NOT NULL,
    uris       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX snapshots_created_at ON snapshots (created_at);

-- app.bsky.feed.sendInteractions, one row per interaction; feed is NULL when unknown.
CREATE TABLE interactions (
    id           INTEGER PRIMARY KEY,
    feed         TEXT,
    requester    TEXT    NOT NULL,
    item         TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    feed_context TEXT,
    at           INTEGER NOT NULL
) STRICT;
CREATE INDEX interactions_feed_at ON interactions (feed, at);
