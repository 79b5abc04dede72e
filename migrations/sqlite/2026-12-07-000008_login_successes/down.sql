DROP TABLE login_successes;
