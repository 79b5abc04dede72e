-- Page aggregates per user shrink to one grain, the UTC day: a user's
-- report reads the user's whole days and the user's own raw visits of the
-- (at most two) days a range cuts. Keep in step with
-- ../../postgres/2026-11-22-000009_page_grains.
DELETE FROM page_totals WHERE subject <> '*';
DELETE FROM page_buckets WHERE subject <> '*';
