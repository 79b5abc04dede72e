-- PostgreSQL flavour. Keep in step with ../../sqlite/<same name>.

-- Audit events are listed newest first, ties at one millisecond broken by
-- id, with keyset pagination on (at_ms, id). Ids are compared as text:
-- make that byte order whatever the database's default collation is (as
-- SQLite's BINARY does), so that both databases order and page alike and
-- the order of v7 ids is their time order. Changing only the collation
-- does not rewrite the table; it rebuilds the primary key index.
ALTER TABLE audit_events ALTER COLUMN id TYPE TEXT COLLATE "C";

-- The listing's indexes end in id, so that every filter (none, user,
-- action) is one backward index scan in the listing's order, with no sort
-- even when many events share a millisecond.
DROP INDEX audit_events_user_at_idx;
DROP INDEX audit_events_at_idx;
CREATE INDEX audit_events_user_at_idx ON audit_events (user_id, at_ms, id);
CREATE INDEX audit_events_at_idx ON audit_events (at_ms, id);
CREATE INDEX audit_events_action_at_idx ON audit_events (action, at_ms, id);
