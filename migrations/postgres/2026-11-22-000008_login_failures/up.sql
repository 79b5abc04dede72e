-- Failed logins per account, typed name and client address (login
-- throttling, SPEC §2). Keys are SHA-256 hex of `kind:value`: what was typed
-- into a login form is never stored. Keep in step with ../../sqlite/<same name>.
CREATE TABLE login_failures (
    key TEXT NOT NULL PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    locked_until_ms BIGINT
);
-- The sweeper forgets old records.
CREATE INDEX login_failures_last_idx ON login_failures (last_failure_ms);
