DROP TRIGGER users_invalidate_delete ON users;
DROP TRIGGER users_invalidate_update ON users;
DROP TRIGGER device_sessions_invalidate_delete ON device_sessions;
DROP TRIGGER device_sessions_invalidate_update ON device_sessions;
DROP FUNCTION sessiond_notify_user();
DROP FUNCTION sessiond_notify_session();
