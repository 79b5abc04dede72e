-- PostgreSQL flavour. Keep in step with ../../sqlite/<same name>.

-- Where a login came from ("New York, US"), when a GeoIP database is
-- configured; looked up once, at login.
ALTER TABLE device_sessions ADD COLUMN location TEXT;

-- The purge sweeper deletes sessions by the instant they died: ended, or
-- past their absolute expiry, whichever came first (a NULL ended_at_ms
-- compares as unknown, so the ELSE branch takes the expiry). The store's
-- purge query filters and orders by exactly this expression, so that one
-- index range scan finds the oldest dead rows and stops after a batch.
-- It replaces the (state, expires_at_ms) index, which no query used.
DROP INDEX device_sessions_state_expires_idx;
CREATE INDEX device_sessions_dead_at_idx ON device_sessions (
    (CASE WHEN ended_at_ms < expires_at_ms THEN ended_at_ms ELSE expires_at_ms END)
);
