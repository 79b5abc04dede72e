DROP TABLE page_buckets;
DROP TABLE page_days;
DROP TABLE page_totals;
DROP TABLE page_visits;
DROP TABLE track_buckets;
DROP TABLE tracked_intervals;
DROP TABLE tracked_events;
DROP TABLE tracked_sessions;
