ALTER TABLE login_failures DROP COLUMN pending_until_ms;
ALTER TABLE login_failures DROP COLUMN pending;
