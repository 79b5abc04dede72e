-- Aggregates again updated by every batch: first add every visit still
-- outside them (dated at or after its app's watermark), as the previous
-- version expects aggregates to hold every visit.
INSERT INTO page_days (app, subject, day_ms, page, visits, time_sum)
SELECT v.app, v.user_name, v.at_ms - ((v.at_ms % 86400000) + 86400000) % 86400000, v.page,
       COUNT(*), SUM(v.timespent)
  FROM page_visits v JOIN page_folds f ON f.app = v.app
 WHERE v.at_ms >= f.folded_ms
 GROUP BY 1, 2, 3, 4
ON CONFLICT (app, subject, day_ms, page) DO UPDATE
SET visits = visits + excluded.visits, time_sum = time_sum + excluded.time_sum;
INSERT INTO page_totals (app, subject, page, visits, time_sum)
SELECT v.app, '*', v.page, COUNT(*), SUM(v.timespent)
  FROM page_visits v JOIN page_folds f ON f.app = v.app
 WHERE v.at_ms >= f.folded_ms
 GROUP BY 1, 3
ON CONFLICT (app, subject, page) DO UPDATE
SET visits = visits + excluded.visits, time_sum = time_sum + excluded.time_sum;
INSERT INTO page_days (app, subject, day_ms, page, visits, time_sum)
SELECT v.app, '*', v.at_ms - ((v.at_ms % 86400000) + 86400000) % 86400000, v.page,
       COUNT(*), SUM(v.timespent)
  FROM page_visits v JOIN page_folds f ON f.app = v.app
 WHERE v.at_ms >= f.folded_ms
 GROUP BY 1, 3, 4
ON CONFLICT (app, subject, day_ms, page) DO UPDATE
SET visits = visits + excluded.visits, time_sum = time_sum + excluded.time_sum;
INSERT INTO page_buckets (app, subject, bucket_ms, page, visits, time_sum)
SELECT v.app, '*', v.at_ms - ((v.at_ms % 900000) + 900000) % 900000, v.page,
       COUNT(*), SUM(v.timespent)
  FROM page_visits v JOIN page_folds f ON f.app = v.app
 WHERE v.at_ms >= f.folded_ms
 GROUP BY 1, 3, 4
ON CONFLICT (app, subject, bucket_ms, page) DO UPDATE
SET visits = visits + excluded.visits, time_sum = time_sum + excluded.time_sum;
DROP TABLE page_folds;
