-- Cache invalidation across sessiond processes sharing this database.
--
-- Every process caches session and user state for at most one second. To
-- make a revocation on one process visible on the others at once, not up
-- to a second later, every change that can end a session or alter what a
-- cached user looks like sends a notification on the channel
-- `sessiond_invalidate`: `s:<session id>` or `u:<user id>`. Triggers, not
-- application code, send them, so that they are part of the transaction
-- that makes the change (delivered exactly when it commits, never lost by
-- a process dying between its commit and its notify) and cover every
-- writer, the `sessiond user suspend` command included.
--
-- Changes that do not matter to a cache (`last_activity_ms`, written
-- behind; `refresh_hash`, rotated on every refresh) send nothing, so the
-- hot write paths stay free of the notification queue's commit lock.
CREATE FUNCTION sessiond_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sessiond_invalidate', 's:' || OLD.id);
    RETURN NULL;
END
$$;

CREATE FUNCTION sessiond_notify_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sessiond_invalidate', 'u:' || OLD.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER device_sessions_invalidate_update
    AFTER UPDATE ON device_sessions FOR EACH ROW
    WHEN ((OLD.state, OLD.expires_at_ms, OLD.ended_at_ms, OLD.user_id, OLD.app)
          IS DISTINCT FROM (NEW.state, NEW.expires_at_ms, NEW.ended_at_ms, NEW.user_id, NEW.app))
    EXECUTE FUNCTION sessiond_notify_session();

CREATE TRIGGER device_sessions_invalidate_delete
    AFTER DELETE ON device_sessions FOR EACH ROW
    EXECUTE FUNCTION sessiond_notify_session();

CREATE TRIGGER users_invalidate_update
    AFTER UPDATE ON users FOR EACH ROW
    WHEN ((OLD.username, OLD.email, OLD.name, OLD.password_hash, OLD.role, OLD.status,
           OLD.user_code, OLD.updated_at_ms)
          IS DISTINCT FROM (NEW.username, NEW.email, NEW.name, NEW.password_hash, NEW.role,
                            NEW.status, NEW.user_code, NEW.updated_at_ms))
    EXECUTE FUNCTION sessiond_notify_user();

CREATE TRIGGER users_invalidate_delete
    AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION sessiond_notify_user();
