-- Engagement scores come from the store's own like and repost counts: a membership of an
-- engagement-ranked feed carries the feed's half-life (seconds), and every change of the
-- post's counts recomputes its score as log2(1 + likes + 2 * reposts) + created_at / half_life
-- (created_at in seconds). NULL: the score is fixed (chronological feeds: the post's time).
-- Memberships written before this keep their score until the post is indexed again.
ALTER TABLE feed_items ADD COLUMN half_life DOUBLE PRECISION
    CHECK (half_life IS NULL OR half_life > 0);
