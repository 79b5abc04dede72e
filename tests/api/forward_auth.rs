//! Forward authentication (SPEC §6): `/api/auth/verify` for reverse
//! proxies, any method, bearer token or cookie, identity headers, `?app=`,
//! and a revocation seen on the very next request.

use serde_json::json;

use crate::on_both_databases;
use crate::support::{CHROME_WINDOWS, Db, Resp, Server, assert_envelope};

const PW: &str = "correct horse battery";
const COOKIE: &str = "sessiond_at";

on_both_databases!(
    every_method_answers_with_the_identity_headers,
    refusals_are_401_with_www_authenticate,
    app_mismatch_is_403_and_a_bad_app_name_422,
    the_cookie_carries_the_token_when_configured,
    a_revoked_session_is_refused_on_the_next_request,
    checks_are_counted_by_outcome,
);

fn start(db: Db) -> Option<Server> {
    Server::start_with(db, &[("SESSIOND_VERIFY_COOKIE", COOKIE)])
}

fn verify(s: &Server, method: &str, path: &str, token: Option<&str>) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = s.client().request(method, s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    s.send(req)
}

fn every_method_answers_with_the_identity_headers(db: Db) {
    let Some(s) = start(db) else { return };
    let user = s.register("fa_alice", PW);
    let t = s.login("fa_alice", PW, CHROME_WINDOWS);
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
        for path in ["/api/auth/verify", "/api/auth/verify/"] {
            let r = verify(&s, method, path, Some(&t.access));
            assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
            assert_eq!(r.header("x-auth-user-id"), user["_id"].as_str(), "{method}");
            assert_eq!(r.header("x-auth-username"), Some("fa_alice"));
            assert_eq!(r.header("x-auth-session-id"), Some(t.session_id().as_str()));
            assert_eq!(r.header("x-auth-app"), Some("default"));
            assert_eq!(r.header("x-auth-role"), Some("user"));
            assert_eq!(r.header("cache-control"), Some("no-store"));
            if method != "HEAD" {
                assert_envelope(&r);
                assert!(r.body["data"].is_null(), "{}", r.text);
            }
        }
    }
    // A POST with a body (a proxy passing the request on) is fine too.
    let req = s.client().post(s.url("/api/auth/verify")).bearer_auth(&t.access).body("x=1");
    assert_eq!(s.send(req).status, 200);
}

fn refusals_are_401_with_www_authenticate(db: Db) {
    let Some(s) = start(db) else { return };
    s.register("fa_bob", PW);
    let t = s.login("fa_bob", PW, CHROME_WINDOWS);
    let mut tampered = t.access.clone();
    tampered.pop();
    tampered.push(if t.access.ends_with('A') { 'B' } else { 'A' });
    for token in [None, Some("not-a-token"), Some(tampered.as_str()), Some(t.refresh.as_str())] {
        for method in ["GET", "POST", "DELETE"] {
            let r = verify(&s, method, "/api/auth/verify", token);
            r.expect(401, Some("UNAUTHORIZED"));
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert!(r.header("x-auth-user-id").is_none());
        }
    }
    // Several Authorization headers: refused, never guessed at.
    let req = s
        .client()
        .get(s.url("/api/auth/verify"))
        .header("Authorization", format!("Bearer {}", t.access))
        .header("Authorization", format!("Bearer {}", t.access));
    s.send(req).expect(401, Some("UNAUTHORIZED"));
}

fn app_mismatch_is_403_and_a_bad_app_name_422(db: Db) {
    let Some(s) = start(db) else { return };
    s.register("fa_carol", PW);
    let t = s.login_app("fa_carol", PW, "web");
    let ok = verify(&s, "GET", "/api/auth/verify?app=web", Some(&t.access));
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.header("x-auth-app"), Some("web"));
    verify(&s, "GET", "/api/auth/verify?app=mobile", Some(&t.access))
        .expect(403, Some("FORBIDDEN"));
    verify(&s, "POST", "/api/auth/verify?app=mobile", Some(&t.access))
        .expect(403, Some("FORBIDDEN"));
    verify(&s, "GET", "/api/auth/verify?app=no%20spaces", Some(&t.access))
        .expect(422, Some("VALIDATION_ERROR"));
    // No token comes first: 401 whatever the app.
    verify(&s, "GET", "/api/auth/verify?app=mobile", None).expect(401, Some("UNAUTHORIZED"));
}

fn the_cookie_carries_the_token_when_configured(db: Db) {
    let Some(s) = start(db) else { return };
    s.register("fa_dave", PW);
    let t = s.login("fa_dave", PW, CHROME_WINDOWS);
    let with_cookie =
        |cookie: String| s.send(s.client().get(s.url("/api/auth/verify")).header("Cookie", cookie));
    let r = with_cookie(format!("theme=dark; {COOKIE}={}; lang=en", t.access));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-auth-username"), Some("fa_dave"));
    with_cookie(format!("other_cookie={}", t.access)).expect(401, Some("UNAUTHORIZED"));
    with_cookie(format!("{COOKIE}=garbage")).expect(401, Some("UNAUTHORIZED"));
    // A bad bearer token is not rescued by a good cookie.
    let req = s
        .client()
        .get(s.url("/api/auth/verify"))
        .bearer_auth("garbage")
        .header("Cookie", format!("{COOKIE}={}", t.access));
    s.send(req).expect(401, Some("UNAUTHORIZED"));

    // Without the setting, no cookie is read.
    let Some(plain) = Server::start(db) else { return };
    plain.register("fa_dave", PW);
    let t = plain.login("fa_dave", PW, CHROME_WINDOWS);
    let req = plain
        .client()
        .get(plain.url("/api/auth/verify"))
        .header("Cookie", format!("{COOKIE}={}", t.access));
    plain.send(req).expect(401, Some("UNAUTHORIZED"));
}

fn a_revoked_session_is_refused_on_the_next_request(db: Db) {
    let Some(s) = start(db) else { return };
    s.register("fa_erin", PW);
    let a = s.login("fa_erin", PW, CHROME_WINDOWS);
    let b = s.login("fa_erin", PW, CHROME_WINDOWS);
    // Both are cached and live.
    for t in [&a, &b] {
        assert_eq!(verify(&s, "GET", "/api/auth/verify", Some(&t.access)).status, 200);
    }
    let r =
        s.request("DELETE", &format!("/api/sessions/{}", a.session_id()), Some(&b.access), None);
    r.expect(200, None);
    // The very next request, no waiting.
    verify(&s, "GET", "/api/auth/verify", Some(&a.access)).expect(401, Some("UNAUTHORIZED"));
    assert_eq!(verify(&s, "GET", "/api/auth/verify", Some(&b.access)).status, 200);
    // Logout is seen at once too.
    s.post("/api/auth/logout", Some(&b.access), json!({})).expect(200, None);
    verify(&s, "POST", "/api/auth/verify", Some(&b.access)).expect(401, Some("UNAUTHORIZED"));
}

/// `sessiond_token_verifications_total{outcome}` counts forward-auth and
/// introspection answers.
fn checks_are_counted_by_outcome(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_INTROSPECTION_CLIENTS", "rs:secret")]) else {
        return;
    };
    let count = |outcome: &str| -> u64 {
        let text = s.get("/metrics", None).text;
        let series = format!("sessiond_token_verifications_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(
        ["verified", "refused", "active", "inactive"].map(count),
        [0, 0, 0, 0],
        "every outcome is shown from the start"
    );
    s.register("fa_gina", PW);
    let t = s.login("fa_gina", PW, CHROME_WINDOWS);
    for _ in 0..3 {
        assert_eq!(verify(&s, "GET", "/api/auth/verify", Some(&t.access)).status, 200);
    }
    verify(&s, "GET", "/api/auth/verify", None).expect(401, None);
    let introspect = |token: &str| {
        let req = s
            .client()
            .post(s.url("/oauth/introspect"))
            .basic_auth("rs", Some("secret"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"));
        s.send(req).body["active"].clone()
    };
    assert_eq!(introspect(&t.access), true);
    assert_eq!(introspect("unknown"), false);
    assert_eq!(introspect("a.b.c"), false);
    assert_eq!(["verified", "refused", "active", "inactive"].map(count), [3, 1, 1, 2]);
}
