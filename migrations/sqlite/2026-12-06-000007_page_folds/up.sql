-- Page aggregates are folded in behind the raw visits instead of being
-- updated by every batch: the aggregates of an app hold exactly its visits
-- dated before page_folds.folded_ms, and reports add the raw visits from
-- there on. Keep in step with ../../postgres/2026-12-06-000010_page_folds,
-- which says why. SQLite has one writer at a time, so a fold's immediate
-- transaction already keeps batches out while it runs.
CREATE TABLE page_folds (
    app TEXT NOT NULL PRIMARY KEY,
    folded_ms INTEGER NOT NULL
) STRICT;
-- Every visit stored so far is already aggregated.
INSERT INTO page_folds (app, folded_ms)
SELECT app, MAX(at_ms) + 1 FROM page_visits GROUP BY app;
