-- One row per event source (e.g. a relay host): the highest cursor at or before which every
-- event has been durably handled by every consumer. Restart resumes from it.
-- cursor: the source's sequence number, 0 ..= i64::MAX.
-- updated_at: when the row was last written, Unix time in milliseconds (the same in SQLite).
CREATE TABLE cursors (
    source     TEXT   NOT NULL PRIMARY KEY,
    cursor     BIGINT NOT NULL CHECK (cursor >= 0),
    updated_at BIGINT NOT NULL
);
