-- Aggregates again updated by every batch: first fold every visit still
-- outside them, so that the aggregates hold every visit, as the previous
-- version expects; then its functions as they were (000005, 000009).
DO $$
DECLARE
    r record;
BEGIN
    LOOP
        SELECT * INTO r FROM sessiond_fold_pages(9223372036854775807, 1000000);
        EXIT WHEN r.done;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION sessiond_record_visits(
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

CREATE FUNCTION sessiond_record_pages(
    v_id text[], v_app text[], v_user text[], v_page text[], v_timespent int8[],
    v_session text[], v_at int8[],
    a_part int2[], a_app text[], a_subject text[], a_at int8[], a_page text[],
    a_visits int8[], a_time int8[]
) RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_visits (id, app, user_name, page, timespent, session_id, at_ms)
    SELECT * FROM unnest(v_id, v_app, v_user, v_page, v_timespent, v_session, v_at);

    FOR k IN 0..5 LOOP
        CASE k % 3
        WHEN 0 THEN
            INSERT INTO page_totals AS t (app, subject, page, visits, time_sum)
            SELECT u.app, u.subject, u.page, u.visits, u.time_sum
              FROM unnest(a_part, a_app, a_subject, a_page, a_visits, a_time)
                   WITH ORDINALITY AS u (part, app, subject, page, visits, time_sum, n)
             WHERE u.part = k
             ORDER BY u.n
            ON CONFLICT (app, subject, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        WHEN 1 THEN
            INSERT INTO page_days AS t (app, subject, day_ms, page, visits, time_sum)
            SELECT u.app, u.subject, u.at_ms, u.page, u.visits, u.time_sum
              FROM unnest(a_part, a_app, a_subject, a_at, a_page, a_visits, a_time)
                   WITH ORDINALITY AS u (part, app, subject, at_ms, page, visits, time_sum, n)
             WHERE u.part = k
             ORDER BY u.n
            ON CONFLICT (app, subject, day_ms, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        ELSE
            INSERT INTO page_buckets AS t (app, subject, bucket_ms, page, visits, time_sum)
            SELECT u.app, u.subject, u.at_ms, u.page, u.visits, u.time_sum
              FROM unnest(a_part, a_app, a_subject, a_at, a_page, a_visits, a_time)
                   WITH ORDINALITY AS u (part, app, subject, at_ms, page, visits, time_sum, n)
             WHERE u.part = k
             ORDER BY u.n
            ON CONFLICT (app, subject, bucket_ms, page) DO UPDATE
            SET visits = t.visits + excluded.visits, time_sum = t.time_sum + excluded.time_sum;
        END CASE;
    END LOOP;
    RETURN cardinality(v_id);
END
$$;

DROP FUNCTION sessiond_fold_pages(int8, int8);
DROP FUNCTION sessiond_track_visits(text[], text[], text[], text[], int8[], text[], int8[]);
DROP FUNCTION sessiond_aggregate_visits(text[], text[], text[], int8[], int8[]);
DROP TABLE page_folds;
