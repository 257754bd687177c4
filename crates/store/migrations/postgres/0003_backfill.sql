-- Backfill: one row per repository to read, with where it stands; the listRepos page cursor and
-- other run state as key/value rows; and named leases, so that of several processes sharing a
-- database only one backfills.
CREATE TABLE backfill_repos (
    did        TEXT    NOT NULL PRIMARY KEY,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'in_progress', 'done', 'failed')),
    attempts   BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    records    BIGINT NOT NULL DEFAULT 0 CHECK (records >= 0),
    rev        TEXT,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX backfill_repos_status ON backfill_repos (status, did);

CREATE TABLE backfill_state (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT NOT NULL
);
