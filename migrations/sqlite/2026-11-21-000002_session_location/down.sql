DROP INDEX device_sessions_dead_at_idx;
CREATE INDEX device_sessions_state_expires_idx ON device_sessions (state, expires_at_ms);
ALTER TABLE device_sessions DROP COLUMN location;
