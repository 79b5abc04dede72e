-- A refresh-token rotation and its audit record in one statement (see
-- `PrincipalStore::rotate_refresh`): one round trip and one commit, where a
-- transaction of three statements takes five round trips. A PL/pgSQL
-- function rather than one CTE sent as text: its statements' plans are kept
-- for the life of the connection, and the call is a prepared statement, so
-- a rotation is neither parsed nor planned again.
--
-- The UPDATE is the compare-and-swap: a concurrent rotation blocks on the
-- row lock and then re-checks `refresh_hash = p_expected` against the
-- committed row (READ COMMITTED), so only one wins; the loser writes
-- nothing.
CREATE FUNCTION sessiond_rotate_refresh(
    p_session text, p_expected text, p_new text, p_now int8,
    a_id text, a_at int8, a_action text, a_user text, a_session text,
    a_ip text, a_agent text, a_request text, a_outcome text
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_sessions SET refresh_hash = p_new
     WHERE id = p_session AND refresh_hash = p_expected AND state = 'active'
       AND expires_at_ms > p_now;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO refresh_tokens (token_hash, session_id, superseded_at_ms)
    VALUES (p_expected, p_session, p_now);
    INSERT INTO audit_events
        (id, at_ms, action, user_id, session_id, ip_address, user_agent, request_id, outcome)
    VALUES (a_id, a_at, a_action, a_user, a_session, a_ip, a_agent, a_request, a_outcome);
    RETURN true;
END
$$;
