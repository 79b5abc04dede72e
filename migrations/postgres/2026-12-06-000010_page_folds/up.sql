-- Page aggregates are folded in behind the raw visits instead of being
-- updated by every batch. Keep in step with
-- ../../sqlite/2026-12-06-000007_page_folds.
--
-- Before this, every batch of visits upserted a user's day row and
-- everyone's total, day and 15-minute rows: about ten WAL records per visit
-- besides the raw row, and every batch of an app queued on the same
-- all-users rows until the batch before it had committed. Now a batch
-- writes the raw visits alone, and a fold (sessiond_fold_pages) adds the
-- visits of an app dated before a watermark to the aggregates, many
-- batches at once, and moves the watermark up, in one transaction.
--
-- The invariant every reader relies on: the aggregates of an app hold
-- exactly its visits dated before page_folds.folded_ms. A report reads the
-- aggregates and adds the raw visits dated at or after the watermark, in
-- one statement (one snapshot), so it stays exact and never lags.
--
-- A visit dated before its app's watermark when it is written (a client's
-- own `time`, or a batch that waited out a fold) is aggregated in its own
-- transaction, as every visit was before.
--
-- Batches hold the advisory lock SESSIOND_PAGE_FOLD_LOCK shared and a fold
-- holds it exclusively: a fold sees every visit written under the old
-- watermark, and none arrives meanwhile.
CREATE TABLE page_folds (
    app TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    folded_ms BIGINT NOT NULL
);
-- Every visit stored so far is already aggregated.
INSERT INTO page_folds (app, folded_ms)
SELECT app, MAX(at_ms) + 1 FROM page_visits GROUP BY app;

-- Adds visits (one array per column) to the users' day rows and to
-- everyone's total, day and 15-minute rows, in that order and each in key
-- order: every writer locks aggregate rows in this one order, so concurrent
-- writers (of several sessiond processes) cannot deadlock.
CREATE FUNCTION sessiond_aggregate_visits(
    a_app text[], a_user text[], a_page text[], a_time int8[], a_at int8[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_days AS t (app, subject, day_ms, page, visits, time_sum)
    SELECT u.app COLLATE "C", u.usr COLLATE "C",
           u.at - ((u.at % 86400000) + 86400000) % 86400000, u.page COLLATE "C",
           count(*), sum(u.t)::int8
      FROM unnest(a_app, a_user, a_page, a_time, a_at) AS u (app, usr, page, t, at)
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (app, subject, day_ms, page) DO UPDATE
    SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;

    INSERT INTO page_totals AS t (app, subject, page, visits, time_sum)
    SELECT u.app COLLATE "C", '*', u.page COLLATE "C", count(*), sum(u.t)::int8
      FROM unnest(a_app, a_page, a_time) AS u (app, page, t)
     GROUP BY 1, 3
     ORDER BY 1, 3
    ON CONFLICT (app, subject, page) DO UPDATE
    SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;

    INSERT INTO page_days AS t (app, subject, day_ms, page, visits, time_sum)
    SELECT u.app COLLATE "C", '*', u.at - ((u.at % 86400000) + 86400000) % 86400000,
           u.page COLLATE "C", count(*), sum(u.t)::int8
      FROM unnest(a_app, a_page, a_time, a_at) AS u (app, page, t, at)
     GROUP BY 1, 3, 4
     ORDER BY 1, 3, 4
    ON CONFLICT (app, subject, day_ms, page) DO UPDATE
    SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;

    INSERT INTO page_buckets AS t (app, subject, bucket_ms, page, visits, time_sum)
    SELECT u.app COLLATE "C", '*', u.at - ((u.at % 900000) + 900000) % 900000,
           u.page COLLATE "C", count(*), sum(u.t)::int8
      FROM unnest(a_app, a_page, a_time, a_at) AS u (app, page, t, at)
     GROUP BY 1, 3, 4
     ORDER BY 1, 3, 4
    ON CONFLICT (app, subject, bucket_ms, page) DO UPDATE
    SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
END
$$;

-- A batch of page visits in one statement (one round trip, one commit):
-- the raw rows, a watermark for an app never seen before (nothing of it is
-- aggregated yet), and the aggregates of the visits dated before their
-- app's watermark.
CREATE FUNCTION sessiond_track_visits(
    v_id text[], v_app text[], v_user text[], v_page text[], v_timespent int8[],
    v_session text[], v_at int8[]
) RETURNS int8 LANGUAGE plpgsql AS $$
DECLARE
    l_app text[];
    l_user text[];
    l_page text[];
    l_time int8[];
    l_at int8[];
BEGIN
    -- The key is SESSIOND_PAGE_FOLD_LOCK (crates/store), taken before
    -- anything else so that no batch waits for a fold while holding a row.
    PERFORM pg_advisory_xact_lock_shared(103719447298051);

    INSERT INTO page_visits (id, app, user_name, page, timespent, session_id, at_ms)
    SELECT * FROM unnest(v_id, v_app, v_user, v_page, v_timespent, v_session, v_at);

    INSERT INTO page_folds (app, folded_ms)
    SELECT DISTINCT a, '-9223372036854775808'::int8
      FROM unnest(v_app) AS a
     WHERE NOT EXISTS (SELECT 1 FROM page_folds f WHERE f.app = a)
    ON CONFLICT (app) DO NOTHING;

    SELECT array_agg(u.app), array_agg(u.usr), array_agg(u.page), array_agg(u.t),
           array_agg(u.at)
      INTO l_app, l_user, l_page, l_time, l_at
      FROM unnest(v_app, v_user, v_page, v_timespent, v_at) AS u (app, usr, page, t, at)
      JOIN page_folds f ON f.app = u.app
     WHERE u.at < f.folded_ms;
    IF l_app IS NOT NULL THEN
        PERFORM sessiond_aggregate_visits(l_app, l_user, l_page, l_time, l_at);
    END IF;
    RETURN cardinality(v_id);
END
$$;

-- Folds the visits of every app dated before p_upto into the aggregates,
-- at most about p_budget of them per call (the rest is left for the next
-- call, in a transaction of its own, so batches are held up only briefly):
-- `done` says whether every app is folded up to p_upto. An app's chunk ends
-- before the visit that would exceed the budget (but holds at least every
-- visit of its first millisecond, which is never split, so each call makes
-- progress).
CREATE FUNCTION sessiond_fold_pages(
    p_upto int8, p_budget int8, OUT folded int8, OUT done boolean
) LANGUAGE plpgsql AS $$
DECLARE
    f record;
    first_ms int8;
    e int8;
    n int8;
    l_app text[];
    l_user text[];
    l_page text[];
    l_time int8[];
    l_at int8[];
BEGIN
    folded := 0;
    done := true;
    -- Exclusive: waits for the batches in flight, keeps new ones out until
    -- this commits (SESSIOND_PAGE_FOLD_LOCK).
    PERFORM pg_advisory_xact_lock(103719447298051);
    FOR f IN SELECT app, folded_ms FROM page_folds WHERE folded_ms < p_upto ORDER BY app LOOP
        IF folded >= p_budget THEN
            done := false;
            EXIT;
        END IF;
        SELECT min(v.at_ms) INTO first_ms FROM page_visits v
         WHERE v.app = f.app AND v.at_ms >= f.folded_ms AND v.at_ms < p_upto;
        -- An app with nothing new keeps its watermark: no write at all.
        CONTINUE WHEN first_ms IS NULL;
        SELECT v.at_ms INTO e FROM page_visits v
         WHERE v.app = f.app AND v.at_ms >= f.folded_ms AND v.at_ms < p_upto
         ORDER BY v.at_ms OFFSET p_budget - folded LIMIT 1;
        IF e IS NULL THEN
            e := p_upto;
        ELSIF e = first_ms THEN
            e := first_ms + 1;
        END IF;
        SELECT array_agg(v.app), array_agg(v.user_name), array_agg(v.page),
               array_agg(v.timespent), array_agg(v.at_ms), count(*)
          INTO l_app, l_user, l_page, l_time, l_at, n
          FROM page_visits v
         WHERE v.app = f.app AND v.at_ms >= f.folded_ms AND v.at_ms < e;
        PERFORM sessiond_aggregate_visits(l_app, l_user, l_page, l_time, l_at);
        UPDATE page_folds SET folded_ms = e WHERE app = f.app;
        folded := folded + n;
        IF e < p_upto THEN
            done := false;
            EXIT;
        END IF;
    END LOOP;
END
$$;

-- An instance still on the previous version during a rolling upgrade keeps
-- writing through sessiond_record_visits: it now does what
-- sessiond_track_visits does and ignores the aggregates the caller
-- computed, which would count the visits twice.
CREATE OR REPLACE FUNCTION sessiond_record_visits(
    v_id text[], v_app text[], v_user text[], v_page text[], v_timespent int8[],
    v_session text[], v_at int8[],
    a_ends int4[], a_app text[], a_subject text[], a_at int8[], a_page text[],
    a_visits int8[], a_time int8[]
) RETURNS int8 LANGUAGE sql AS $$
    SELECT sessiond_track_visits(v_id, v_app, v_user, v_page, v_timespent, v_session, v_at)
$$;

-- Versions before 000009 are past a rolling upgrade.
DROP FUNCTION sessiond_record_pages(text[], text[], text[], text[], int8[], text[], int8[],
    int2[], text[], text[], int8[], text[], int8[], int8[]);
