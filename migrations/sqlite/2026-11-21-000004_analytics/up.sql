-- Usage analytics (seed 004). SQLite flavour. Keep in step with
-- ../../postgres/<same name>.
--
-- Text keys compare with SQLite's BINARY collation (byte order); the
-- PostgreSQL flavour declares them COLLATE "C" to match.
--
-- Reports never scan raw rows: the store keeps aggregates per 15-minute UTC
-- bucket (and per UTC day for pages), per (app, user) and per (app, all
-- users: subject '*'), updated in the same transaction as every write. Raw
-- rows are read only to recompute a bucket that a range cuts in two.

-- Tracked sessions: a state machine active <-> paused -> ended. Transitions
-- are a compare-and-swap on (state, last_event_at_ms, events).
CREATE TABLE tracked_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    app TEXT NOT NULL,
    user_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'ended')),
    started_at_ms INTEGER NOT NULL,
        last_event_at_ms INTEGER NOT NULL,
    -- When the latest event arrived (server clock): the sweeper's measure.
    last_seen_at_ms INTEGER NOT NULL,
    -- Start of the running active interval, while active.
    active_since_ms INTEGER,
    -- Active time of the closed intervals; the duration once ended.
    active_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    events INTEGER NOT NULL
) STRICT;
-- Timelines (keyset on (started_at_ms, id)) and the start-keyed part of a
-- partial bucket, per user and per app.
CREATE INDEX tracked_sessions_user_started_idx
    ON tracked_sessions (app, user_name, started_at_ms, id);
CREATE INDEX tracked_sessions_app_started_idx ON tracked_sessions (app, started_at_ms, id);
-- The sweeper: open sessions, the longest unheard-from first. The store's
-- query spells the predicate exactly like this, so both planners match it.
CREATE INDEX tracked_sessions_open_idx
    ON tracked_sessions (last_seen_at_ms, id) WHERE state <> 'ended';

CREATE TABLE tracked_events (
    session_id TEXT NOT NULL REFERENCES tracked_sessions (id) ON DELETE CASCADE,
    -- 0 for the start, then 1, 2, ...
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('start', 'pause', 'resume', 'end')),
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT;

-- The closed active intervals, split at 15-minute UTC bucket edges: one
-- row per (interval, bucket) piece, so that the active time of a bucket a
-- range cuts in two is recomputed from that bucket's pieces alone, however
-- long the intervals are. Zero-length intervals are not stored.
CREATE TABLE tracked_intervals (
    session_id TEXT NOT NULL,
    app TEXT NOT NULL,
    user_name TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    CHECK (bucket_ms <= from_ms AND from_ms < to_ms AND to_ms <= bucket_ms + 900000)
) STRICT;
CREATE INDEX tracked_intervals_user_bucket_idx ON tracked_intervals (app, user_name, bucket_ms);
CREATE INDEX tracked_intervals_app_bucket_idx ON tracked_intervals (app, bucket_ms);

-- Session aggregates per 15-minute UTC bucket. starts/ended/dur_* are keyed
-- by the bucket the session STARTED in; active_ms is the closed active time
-- that fell in the bucket. subject: lowercased username, or '*' (all users).
CREATE TABLE track_buckets (
    app TEXT NOT NULL,
    subject TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    starts INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    dur_sum_ms INTEGER NOT NULL,
    dur_min_ms INTEGER,
    dur_max_ms INTEGER,
    active_ms INTEGER NOT NULL,
    PRIMARY KEY (app, subject, bucket_ms)
) STRICT;

-- Raw page visits: read only for the sub-bucket edges of a range.
CREATE TABLE page_visits (
    id TEXT NOT NULL PRIMARY KEY,
    app TEXT NOT NULL,
    user_name TEXT NOT NULL,
    page TEXT NOT NULL,
    timespent INTEGER NOT NULL,
    session_id TEXT,
    at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX page_visits_user_at_idx ON page_visits (app, user_name, at_ms);
CREATE INDEX page_visits_app_at_idx ON page_visits (app, at_ms);

-- Page aggregates at three grains: all time (unbounded ranges), UTC day
-- (the whole days of a range) and 15-minute bucket (the rest of its edge
-- days). Same subjects as track_buckets.
CREATE TABLE page_totals (
    app TEXT NOT NULL,
    subject TEXT NOT NULL,
    page TEXT NOT NULL,
    visits INTEGER NOT NULL,
    time_sum INTEGER NOT NULL,
    PRIMARY KEY (app, subject, page)
) STRICT;
CREATE TABLE page_days (
    app TEXT NOT NULL,
    subject TEXT NOT NULL,
    day_ms INTEGER NOT NULL,
    page TEXT NOT NULL,
    visits INTEGER NOT NULL,
    time_sum INTEGER NOT NULL,
    PRIMARY KEY (app, subject, day_ms, page)
) STRICT;
CREATE TABLE page_buckets (
    app TEXT NOT NULL,
    subject TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    page TEXT NOT NULL,
    visits INTEGER NOT NULL,
    time_sum INTEGER NOT NULL,
    PRIMARY KEY (app, subject, bucket_ms, page)
) STRICT;
