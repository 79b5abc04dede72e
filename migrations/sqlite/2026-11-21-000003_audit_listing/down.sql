DROP INDEX audit_events_action_at_idx;
DROP INDEX audit_events_at_idx;
DROP INDEX audit_events_user_at_idx;
CREATE INDEX audit_events_user_at_idx ON audit_events (user_id, at_ms);
CREATE INDEX audit_events_at_idx ON audit_events (at_ms);
