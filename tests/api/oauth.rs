//! Token introspection (RFC 7662) and revocation (RFC 7009), SPEC §6: the
//! RFCs' shapes, client authentication, "inactive" that never says why,
//! and revocation seen at once (on another instance within a second).

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::{CHROME_WINDOWS, Db, Resp, Server, create_admin, fresh_url};

const PW: &str = "correct horse battery";
const SECRET: &str = "oauth-test-secret-of-at-least-32-bytes";
const CLIENTS: &str = "resource-server:rs secret,other:x";

on_both_databases!(
    active_tokens_are_described_in_the_rfc_shape,
    inactive_never_says_why,
    introspection_needs_a_client,
    introspection_is_not_activity_and_detects_no_reuse,
    revoking_an_access_token_ends_its_session_at_once,
    revoking_a_refresh_token_ends_its_session_at_once,
    revocation_answers_alike_for_unknown_tokens,
);

fn start(db: Db, extra: &[(&str, &str)]) -> Option<Server> {
    let mut env =
        vec![("SESSIOND_INTROSPECTION_CLIENTS", CLIENTS), ("SESSIOND_JWT_SECRET", SECRET)];
    env.extend_from_slice(extra);
    Server::start_with(db, &env)
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

enum Client<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

const RS: Client<'static> = Client::Basic("resource-server", "rs secret");

fn form_post(s: &Server, path: &str, client: &Client<'_>, body: &str) -> Resp {
    let mut req = s
        .client()
        .post(s.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    req = match client {
        Client::None => req,
        Client::Basic(id, secret) => {
            let raw = format!("{}:{}", enc(id), enc(secret));
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            req.header("Authorization", format!("Basic {b64}"))
        }
        Client::Bearer(t) => req.bearer_auth(t),
    };
    s.send(req)
}

/// Introspects `token` as `client`; asserts 200, the RFC headers and that
/// the answer is not enveloped.
#[track_caller]
fn introspect(s: &Server, client: &Client<'_>, token: &str) -> Value {
    let r = form_post(s, "/oauth/introspect", client, &format!("token={}", enc(token)));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("x-request-id").is_some());
    assert!(r.body.get("success").is_none() && r.body.get("requestId").is_none(), "{}", r.text);
    r.body
}

#[track_caller]
fn assert_inactive(s: &Server, token: &str, why: &str) {
    let r = form_post(s, "/oauth/introspect", &RS, &format!("token={}", enc(token)));
    assert_eq!(r.status, 200, "{why}: {}", r.text);
    assert_eq!(r.text, r#"{"active":false}"#, "{why}: exactly inactive, nothing more");
}

fn revoke(s: &Server, body: &str) -> Resp {
    form_post(s, "/oauth/revoke", &Client::None, body)
}

fn active_tokens_are_described_in_the_rfc_shape(db: Db) {
    let Some(s) = start(db, &[]) else { return };
    let user = s.register("oa_alice", PW);
    let t = s.login_app("oa_alice", PW, "web");
    let claims: Value = {
        let payload = t.access.split('.').nth(1).expect("a JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64");
        serde_json::from_slice(&bytes).expect("claims")
    };
    let access = introspect(&s, &RS, &t.access);
    assert_eq!(
        access,
        json!({
            "active": true, "token_type": "access_token", "sub": user["_id"],
            "username": "oa_alice", "sid": t.session_id(), "client_id": "web", "role": "user",
            "iat": claims["iat"], "exp": claims["exp"], "iss": claims["iss"], "jti": claims["jti"],
        })
    );
    // The hint is only a hint.
    let hinted = form_post(
        &s,
        "/oauth/introspect",
        &RS,
        &format!("token={}&token_type_hint=refresh_token", enc(&t.access)),
    );
    assert_eq!(hinted.body, access);

    let refresh = introspect(&s, &RS, &t.refresh);
    let exp = refresh["exp"].as_i64().expect("exp");
    assert_eq!(
        refresh,
        json!({
            "active": true, "token_type": "refresh_token", "sub": user["_id"],
            "sid": t.session_id(), "client_id": "web", "exp": exp,
        })
    );
    let now = claims["iat"].as_i64().expect("iat");
    assert!((now + 86_000..=now + 86_401).contains(&exp), "exp is the session's expiry: {exp}");
}

fn inactive_never_says_why(db: Db) {
    let Some(s) = start(db, &[("SESSIOND_REFRESH_GRACE_SECS", "30")]) else { return };
    s.register("oa_bob", PW);
    let t = s.login("oa_bob", PW, CHROME_WINDOWS);
    assert_eq!(introspect(&s, &RS, &t.access)["active"], true);

    // Unknown, malformed, tampered, empty.
    assert_inactive(&s, "", "empty");
    assert_inactive(&s, "no-such-token", "unknown refresh token");
    assert_inactive(&s, "a.b.c", "malformed JWT");
    let mut tampered = t.access.clone();
    tampered.pop();
    tampered.push(if t.access.ends_with('A') { 'B' } else { 'A' });
    assert_inactive(&s, &tampered, "bad signature");

    // Expired: the same claims, re-signed with an expiry past the leeway.
    let expired = resigned(&t.access, |c| {
        let iat = c["iat"].as_i64().expect("iat");
        c["iat"] = json!(iat - 7200);
        c["exp"] = json!(iat - 3600);
    });
    assert_inactive(&s, &expired, "expired");
    // The re-signing itself is sound: unchanged claims are active.
    assert_eq!(introspect(&s, &RS, &resigned(&t.access, |_| {}))["active"], true);

    // Superseded, even within the grace window.
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    r.expect(200, None);
    let new_refresh = r.body["data"]["refresh_token"].as_str().expect("refresh").to_owned();
    assert_inactive(&s, &t.refresh, "superseded refresh token");
    assert_eq!(introspect(&s, &RS, &new_refresh)["active"], true);

    // Revoked: its session deleted.
    let other = s.login("oa_bob", PW, CHROME_WINDOWS);
    let path = format!("/api/sessions/{}", t.session_id());
    s.request("DELETE", &path, Some(&other.access), None).expect(200, None);
    assert_inactive(&s, &t.access, "revoked access token");
    assert_inactive(&s, &new_refresh, "refresh token of a revoked session");
    assert_eq!(introspect(&s, &RS, &other.access)["active"], true);
}

/// `token` with its claims changed by `change`, signed again with the
/// server's secret under the same header (so a `kid` is kept).
fn resigned(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let part = |i: usize| -> Value {
        let b64 = token.split('.').nth(i).expect("a JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).expect("b64");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let (header, mut claims) = (part(0), part(1));
    change(&mut claims);
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&h, &claims, &key).expect("sign")
}

fn introspection_needs_a_client(db: Db) {
    let Some(s) = start(db, &[]) else { return };
    s.register("oa_carol", PW);
    let t = s.login("oa_carol", PW, CHROME_WINDOWS);
    let admin = create_admin(&s, "oa_admin", PW);
    let body = format!("token={}", enc(&t.access));
    let refused = [
        Client::None,
        Client::Basic("resource-server", "wrong"),
        Client::Basic("resource-server", "rs secre"),
        Client::Basic("nobody", "rs secret"),
        Client::Basic("other", "rs secret"),
        Client::Bearer(&t.access),
        Client::Bearer("garbage"),
    ];
    for client in &refused {
        let r = form_post(&s, "/oauth/introspect", client, &body);
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body, json!({"error": "invalid_client"}));
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"sessiond\""));
    }
    // Two Authorization headers are refused as well.
    let req = s
        .client()
        .post(s.url("/oauth/introspect"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .basic_auth("resource-server", Some("rs secret"))
        .header("Authorization", "Basic b3RoZXI6eA==")
        .body(body.clone());
    assert_eq!(s.send(req).status, 401);
    assert_eq!(introspect(&s, &Client::Basic("other", "x"), &t.access)["active"], true);
    assert_eq!(introspect(&s, &Client::Bearer(&admin.access), &t.access)["active"], true);
    // Well-authenticated but malformed requests.
    let r = form_post(&s, "/oauth/introspect", &RS, "token_type_hint=access_token");
    assert_eq!((r.status, r.body.clone()), (400, json!({"error": "invalid_request"})));
    let req = s
        .client()
        .post(s.url("/oauth/introspect"))
        .basic_auth("resource-server", Some("rs secret"))
        .json(&json!({"token": t.access}));
    let r = s.send(req);
    assert_eq!((r.status, r.body.clone()), (400, json!({"error": "invalid_request"})));
    let r = s.get("/oauth/introspect", None);
    assert_eq!((r.status, r.body.clone()), (405, json!({"error": "invalid_request"})));
    assert_eq!(r.header("allow"), Some("POST"));
}

fn introspection_is_not_activity_and_detects_no_reuse(db: Db) {
    let Some(s) = start(db, &[("SESSIOND_REFRESH_GRACE_SECS", "0")]) else { return };
    s.register("oa_dave", PW);
    let t = s.login("oa_dave", PW, CHROME_WINDOWS);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    r.expect(200, None);
    let access = r.body["data"]["access_token"].as_str().expect("access").to_owned();
    // The superseded token, past the grace window: presented to refresh it
    // would revoke the session; introspected, it is only inactive.
    for _ in 0..3 {
        assert_inactive(&s, &t.refresh, "superseded");
    }
    s.get("/api/auth/me", Some(&access)).expect(200, None);
    // Revocation does not detect reuse either: nothing happens.
    assert_eq!(revoke(&s, &format!("token={}", t.refresh)).status, 200);
    s.get("/api/auth/me", Some(&access)).expect(200, None);
}

fn revoking_an_access_token_ends_its_session_at_once(db: Db) {
    let Some(s) = start(db, &[]) else { return };
    s.register("oa_erin", PW);
    let t = s.login("oa_erin", PW, CHROME_WINDOWS);
    let keep = s.login("oa_erin", PW, CHROME_WINDOWS);
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    let r = revoke(&s, &format!("token={}&token_type_hint=access_token", enc(&t.access)));
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert!(r.header("x-request-id").is_some());
    // The very next request.
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
    assert_inactive(&s, &t.access, "revoked");
    assert_inactive(&s, &t.refresh, "its refresh token");
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}))
        .expect(401, Some("UNAUTHORIZED"));
    // Revoked, not deleted: listed as inactive; the other session lives.
    let listed = s.get("/api/sessions?include_inactive=true", Some(&keep.access));
    let sessions = listed.body["data"].as_array().cloned().unwrap_or_default();
    let revoked = sessions.iter().find(|x| x["id"] == t.session_id().as_str()).expect("listed");
    assert_eq!(revoked["is_active"], false, "{revoked}");
    // Audited as token_revoke.
    let audit = s.get("/api/audit/me?action=token_revoke", Some(&keep.access));
    let events = audit.body["data"]["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{}", audit.text);
    assert_eq!(events[0]["session_id"], t.session_id().as_str(), "{}", audit.text);
    // Revoking it again is as fine as it is useless.
    assert_eq!(revoke(&s, &format!("token={}", t.access)).status, 200);
    let audit = s.get("/api/audit/me?action=token_revoke", Some(&keep.access));
    assert_eq!(audit.body["data"]["events"].as_array().map(Vec::len), Some(1));
}

fn revoking_a_refresh_token_ends_its_session_at_once(db: Db) {
    let Some(s) = start(db, &[]) else { return };
    s.register("oa_frank", PW);
    let t = s.login("oa_frank", PW, CHROME_WINDOWS);
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    let r = revoke(&s, &format!("token={}&token_type_hint=refresh_token", enc(&t.refresh)));
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
    assert_inactive(&s, &t.refresh, "revoked refresh token");
}

fn revocation_answers_alike_for_unknown_tokens(db: Db) {
    let Some(s) = start(db, &[]) else { return };
    for body in ["token=unknown", "token=", "token=a.b.c", "token=x&token_type_hint=whatever"] {
        let r = revoke(&s, body);
        assert_eq!((r.status, r.text.as_str()), (200, ""), "{body}");
    }
    for body in ["", "token_type_hint=access_token", "token=a&token=b"] {
        let r = revoke(&s, body);
        assert_eq!(
            (r.status, r.body.clone()),
            (400, json!({"error": "invalid_request"})),
            "{body}"
        );
    }
    let r = s.post("/oauth/revoke", None, json!({"token": "x"}));
    assert_eq!((r.status, r.body.clone()), (400, json!({"error": "invalid_request"})));
}

/// Two processes on one PostgreSQL database: a token revoked through A is
/// inactive when introspected on B within a second.
#[test]
fn introspection_on_another_instance_sees_a_revocation_within_a_second() {
    let Some(url) = fresh_url(Db::Postgres) else { return };
    let env = [("SESSIOND_INTROSPECTION_CLIENTS", CLIENTS)];
    let a = Server::start_on(&url, &env);
    let b = Server::start_on(&url, &env);
    a.register("oa_mi", PW);
    let t = a.login("oa_mi", PW, CHROME_WINDOWS);
    // B caches the live session.
    assert_eq!(introspect(&b, &RS, &t.access)["active"], true);
    assert_eq!(revoke(&a, &format!("token={}", t.access)).status, 200);
    let since = Instant::now();
    while introspect(&b, &RS, &t.access)["active"] == true {
        assert!(since.elapsed() < Duration::from_secs(1), "still active on B after a second");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(introspect(&b, &RS, &t.access), json!({"active": false}));
}
