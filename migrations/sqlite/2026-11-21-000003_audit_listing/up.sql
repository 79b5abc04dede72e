-- SQLite flavour. Keep in step with ../../postgres/<same name>.

-- Audit events are listed newest first, ties at one millisecond broken by
-- id, with keyset pagination on (at_ms, id). Ids compare with SQLite's
-- BINARY collation (byte order); the PostgreSQL flavour sets the id
-- column's collation to "C" to match.

-- The listing's indexes end in id, so that every filter (none, user,
-- action) is one backward index scan in the listing's order, with no sort
-- even when many events share a millisecond.
DROP INDEX audit_events_user_at_idx;
DROP INDEX audit_events_at_idx;
CREATE INDEX audit_events_user_at_idx ON audit_events (user_id, at_ms, id);
CREATE INDEX audit_events_at_idx ON audit_events (at_ms, id);
CREATE INDEX audit_events_action_at_idx ON audit_events (action, at_ms, id);
