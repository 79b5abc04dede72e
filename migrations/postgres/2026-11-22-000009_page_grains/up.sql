-- Page aggregates per user shrink to one grain, the UTC day. A user's
-- report reads the user's whole days here and the user's own raw visits of
-- the (at most two) days a range cuts, which are few; user totals and
-- 15-minute rows cost every visit two more upserts (a third of the
-- database's work per visit) and saved a report next to nothing. Everyone's
-- aggregates keep all three grains: a day holds every user's visits.
DELETE FROM page_totals WHERE subject <> '*';
DELETE FROM page_buckets WHERE subject <> '*';

-- A batch of page visits in one statement, as sessiond_record_pages did
-- (migration 000005), with four aggregate parts instead of six, in the
-- store's order (part, then primary key): 0 the users' day rows, then
-- everyone's total (1), day (2) and 15-minute (3) rows, which every
-- concurrent batch of the app also updates, so they are locked last and
-- held for the shortest time. Every caller locks in that one order, so
-- concurrent batches (of several sessiond processes) cannot deadlock.
-- a_ends[k + 1] is where part k ends in the aggregate arrays (1-based,
-- inclusive): each statement unnests its own slice rather than all parts.
--
-- sessiond_record_pages stays for instances still on the previous version
-- during a rolling upgrade (their extra user rows are never read); a
-- later migration drops it.
CREATE FUNCTION sessiond_record_visits(
    v_id text[], v_app text[], v_user text[], v_page text[], v_timespent int8[],
    v_session text[], v_at int8[],
    a_ends int4[], a_app text[], a_subject text[], a_at int8[], a_page text[],
    a_visits int8[], a_time int8[]
) RETURNS int8 LANGUAGE plpgsql AS $$
DECLARE
    lo int4 := 1;
    hi int4;
BEGIN
    INSERT INTO page_visits (id, app, user_name, page, timespent, session_id, at_ms)
    SELECT * FROM unnest(v_id, v_app, v_user, v_page, v_timespent, v_session, v_at);

    FOR k IN 0..3 LOOP
        hi := a_ends[k + 1];
        CONTINUE WHEN hi < lo;
        CASE k
        WHEN 1 THEN
            INSERT INTO page_totals AS t (app, subject, page, visits, time_sum)
            SELECT u.app, u.subject, u.page, u.visits, u.time_sum
              FROM unnest(a_app[lo:hi], a_subject[lo:hi], a_page[lo:hi], a_visits[lo:hi],
                          a_time[lo:hi])
                   WITH ORDINALITY AS u (app, subject, page, visits, time_sum, n)
             ORDER BY u.n
            ON CONFLICT (app, subject, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        WHEN 3 THEN
            INSERT INTO page_buckets AS t (app, subject, bucket_ms, page, visits, time_sum)
            SELECT u.app, u.subject, u.at_ms, u.page, u.visits, u.time_sum
              FROM unnest(a_app[lo:hi], a_subject[lo:hi], a_at[lo:hi], a_page[lo:hi],
                          a_visits[lo:hi], a_time[lo:hi])
                   WITH ORDINALITY AS u (app, subject, at_ms, page, visits, time_sum, n)
             ORDER BY u.n
            ON CONFLICT (app, subject, bucket_ms, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        ELSE
            INSERT INTO page_days AS t (app, subject, day_ms, page, visits, time_sum)
            SELECT u.app, u.subject, u.at_ms, u.page, u.visits, u.time_sum
              FROM unnest(a_app[lo:hi], a_subject[lo:hi], a_at[lo:hi], a_page[lo:hi],
                          a_visits[lo:hi], a_time[lo:hi])
                   WITH ORDINALITY AS u (app, subject, at_ms, page, visits, time_sum, n)
             ORDER BY u.n
            ON CONFLICT (app, subject, day_ms, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        END CASE;
        lo := hi + 1;
    END LOOP;
    RETURN cardinality(v_id);
END
$$;
