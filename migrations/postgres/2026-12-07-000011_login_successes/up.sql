-- When each account last logged in successfully from each network (login
-- throttling, SPEC §2): the account-wide lock spares these addresses for the
-- retention period. Keys are SHA-256 hex of `login:<account> from <network>`,
-- so who logged in from where is not written down. Keep in step with
-- ../../sqlite/<same name>.
CREATE TABLE login_successes (
    key TEXT NOT NULL PRIMARY KEY,
    succeeded_ms BIGINT NOT NULL
);
-- The sweeper forgets them after the retention period.
CREATE INDEX login_successes_succeeded_idx ON login_successes (succeeded_ms);
