DROP TABLE audit_events;
DROP TABLE settings;
DROP TABLE refresh_tokens;
DROP TABLE device_sessions;
DROP TABLE users;
DROP TABLE counters;
