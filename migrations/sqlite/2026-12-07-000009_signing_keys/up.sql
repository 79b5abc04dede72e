-- Signing keys (issue 18); see the PostgreSQL migration 000012. One process
-- serves a SQLite file, so there is no notification trigger.
CREATE TABLE signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    created_at_ms INTEGER NOT NULL,
    activated_at_ms INTEGER,
    retired_at_ms INTEGER,
    material BLOB NOT NULL,
    sealed INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

INSERT INTO signing_keys (kid, alg, state, created_at_ms, retired_at_ms, material, sealed)
SELECT 'legacy-hs256', 'HS256', 'retired',
       CAST(strftime('%s', 'now') AS INTEGER) * 1000,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000,
       CAST(value AS BLOB), 0
FROM settings WHERE name = 'jwt_secret';
