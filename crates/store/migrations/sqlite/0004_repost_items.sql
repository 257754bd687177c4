-- Reposts as feed items. A feed with `reposts = true` keeps a matching repost as a row of
-- posts of its own: uri, author and rkey are the repost record's, repost_of the reposted post's
-- uri. It gets a seq like any post, so it takes its place in the chronological order when the
-- repost is made, and pages serve the reposted post with the repost as the reason.
ALTER TABLE posts ADD COLUMN repost_of TEXT;
-- Deleting a post deletes the repost items of it. Partial: ordinary posts add no entry.
CREATE INDEX posts_repost_of ON posts (repost_of) WHERE repost_of IS NOT NULL;
