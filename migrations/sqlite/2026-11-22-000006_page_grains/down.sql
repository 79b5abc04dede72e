-- The users' totals and 15-minute rows again, from the raw visits.
DELETE FROM page_totals WHERE subject <> '*';
DELETE FROM page_buckets WHERE subject <> '*';
INSERT INTO page_totals (app, subject, page, visits, time_sum)
SELECT app, user_name, page, COUNT(*), SUM(timespent)
  FROM page_visits GROUP BY app, user_name, page;
INSERT INTO page_buckets (app, subject, bucket_ms, page, visits, time_sum)
SELECT app, user_name, at_ms - ((at_ms % 900000) + 900000) % 900000, page,
       COUNT(*), SUM(timespent)
  FROM page_visits
 GROUP BY app, user_name, at_ms - ((at_ms % 900000) + 900000) % 900000, page;
