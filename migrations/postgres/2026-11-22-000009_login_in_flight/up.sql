-- Login attempts in flight per throttle key (claimed before the password
-- check, settled after), so that only confirmed failures lock a key and
-- concurrent right passwords take turns instead. `pending` counts only
-- until `pending_until_ms`: claims of a process that died expire.
-- Keep in step with ../../sqlite/<same name>.
ALTER TABLE login_failures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN pending_until_ms BIGINT;
