-- SQLite's version 5 rebuilds its posts table around time-ordered keys and drops the author
-- index. PostgreSQL keeps its schema: its unique index on uri and its author index stay, and
-- a removed account's posts are still deleted at once. The step exists so both backends
-- number their versions alike.
SELECT 1;
