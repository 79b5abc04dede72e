-- One batch of page visits in one statement: the raw visits and the six
-- aggregate upserts that the store computed from them. A single call is one
-- round trip and commits on its own (no BEGIN/COMMIT), which is what makes
-- group commit pay on PostgreSQL: the batch costs one fsync and one round
-- trip, where BEGIN, seven prepared statements and COMMIT took sixteen.
--
-- The aggregate rows arrive in the store's order (part, then primary key):
-- parts 0-2 are the user's total/day/bucket rows, parts 3-5 the all-users
-- rows, which every concurrent batch of the app also updates, so they are
-- locked last and held for the shortest time. Every caller locks in that one
-- order, so concurrent batches (of several sessiond processes) cannot
-- deadlock. PL/pgSQL runs the statements in order and keeps their plans for
-- the life of the connection.
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
