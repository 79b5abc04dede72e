DROP TABLE signing_keys;
DROP FUNCTION sessiond_notify_keys();
