-- sessiond schema, PostgreSQL flavour. Keep in step with ../../sqlite/<same name>.
-- Ids are UUID strings, instants are milliseconds since the epoch (`*_ms`),
-- enums are their storage names as TEXT: the same shapes in both databases.

-- Named monotonic counters (the user number `USR-<year>-<seq>`).
CREATE TABLE counters (
    name TEXT NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('user_seq', 0);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL CONSTRAINT users_seq_key UNIQUE,
    user_code TEXT NOT NULL,
    username TEXT NOT NULL,
    -- Lowercase copies carry the case-insensitive uniqueness; the store maps
    -- a violation by these constraint names.
    username_lower TEXT NOT NULL CONSTRAINT users_username_lower_key UNIQUE,
    email TEXT,
    email_lower TEXT CONSTRAINT users_email_lower_key UNIQUE,
    name TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    last_activity_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE device_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app TEXT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    login_method TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    last_activity_ms BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'logged_out', 'revoked', 'deactivated')),
    ended_at_ms BIGINT,
    -- Hash of the current refresh token; superseded ones are in refresh_tokens.
    refresh_hash TEXT NOT NULL CONSTRAINT device_sessions_refresh_hash_key UNIQUE
);
-- A user's sessions, newest first.
CREATE INDEX device_sessions_user_created_idx ON device_sessions (user_id, created_at_ms, id);
-- The purge sweeper: ended or expired rows.
CREATE INDEX device_sessions_state_expires_idx ON device_sessions (state, expires_at_ms);

-- Superseded refresh tokens, kept to recognise a late reuse as theft.
CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES device_sessions (id) ON DELETE CASCADE,
    superseded_at_ms BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Generated secrets shared by every instance (the JWT key).
CREATE TABLE settings (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Append-only audit trail. No foreign keys: events outlive sessions and users.
CREATE TABLE audit_events (
    id TEXT NOT NULL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    action TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    ip_address TEXT,
    user_agent TEXT,
    request_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure'))
);
CREATE INDEX audit_events_user_at_idx ON audit_events (user_id, at_ms);
CREATE INDEX audit_events_at_idx ON audit_events (at_ms);
