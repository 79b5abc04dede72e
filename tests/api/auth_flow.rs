//! The authentication walk of SPEC section 2: register → login → me →
//! refresh → reuse detection → logout → logout-all.

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, FIREFOX_LINUX, SAFARI_IPHONE, Server};

crate::on_both_databases!(
    register_validates_and_refuses_duplicates,
    login_me_and_token_introspection,
    refresh_rotates_and_detects_reuse,
    the_bearer_only_refresh,
    logout_ends_the_current_session_at_once,
    logout_all_ends_every_session_on_both_paths,
    suspension_and_admin_updates,
    generated_secret_survives_a_restart,
    token_of_a_deleted_session_is_refused,
);

const PW: &str = "correct horse battery";

/// How long a change made by another process may take to be seen (SPEC:
/// within one second), plus scheduling slack.
const CROSS_PROCESS: std::time::Duration = std::time::Duration::from_millis(1200);

fn register_validates_and_refuses_duplicates(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let r = s.post(
        "/api/auth/register",
        None,
        json!({"username": "Alice", "password": PW, "email": "Alice@Example.com", "name": "Alice A."}),
    );
    r.expect(201, None);
    assert_eq!(r.body["message"], "User registered successfully");
    let u = &r.body["data"];
    for field in [
        "_id",
        "userId",
        "username",
        "name",
        "email",
        "role",
        "status",
        "lastActivity",
        "isOnline",
        "createdAt",
        "updatedAt",
    ] {
        assert!(u.get(field).is_some(), "user view lacks {field}: {u}");
    }
    assert_eq!(u["username"], "Alice");
    assert_eq!(u["email"], "Alice@Example.com");
    assert_eq!(u["role"], "user");
    assert_eq!(u["status"], "active");
    assert_eq!(u["isOnline"], false);
    assert!(u["_id"].as_str().is_some_and(|id| id.len() == 36));
    let code = u["userId"].as_str().unwrap_or_default();
    assert!(code.starts_with("USR-") && code.len() == "USR-2026-000001".len(), "{code}");

    let dup = s.post("/api/auth/register", None, json!({"username": "aLiCe", "password": PW}));
    dup.expect(409, Some("USERNAME_TAKEN"));
    let dup = s.post(
        "/api/auth/register",
        None,
        json!({"username": "bob", "password": PW, "email": "alice@example.COM"}),
    );
    dup.expect(409, Some("EMAIL_TAKEN"));

    let bad = s.post(
        "/api/auth/register",
        None,
        json!({"username": "x", "password": "short", "email": "nope", "name": "a\u{7}b"}),
    );
    bad.expect(422, Some("VALIDATION_ERROR"));
    let details = &bad.body["error"]["details"];
    for field in ["username", "password", "email", "name"] {
        assert!(details[field].is_string(), "no problem reported for {field}: {details}");
    }
    s.post("/api/auth/register", None, json!({"username": "all", "password": PW}))
        .expect(422, Some("VALIDATION_ERROR"));
    // Password length counts characters, not bytes: 8 × "é" is 16 bytes.
    s.post("/api/auth/register", None, json!({"username": "eee", "password": "éééééééé"}))
        .expect(201, None);
    s.post("/api/auth/register", None, json!({"username": "eee2", "password": "ééééééé"}))
        .expect(422, Some("VALIDATION_ERROR"));
}

fn login_me_and_token_introspection(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("carol", PW);
    s.post(
        "/api/auth/register",
        None,
        json!({"username": "dave", "password": PW, "email": "dave@example.com"}),
    )
    .expect(201, None);

    let wrong =
        s.post("/api/auth/login", None, json!({"username": "carol", "password": "wrong password"}));
    wrong.expect(401, Some("INVALID_CREDENTIALS"));
    let unknown = s.post(
        "/api/auth/login",
        None,
        json!({"username": "nobody", "password": "wrong password"}),
    );
    unknown.expect(401, Some("INVALID_CREDENTIALS"));
    assert_eq!(wrong.body["message"], unknown.body["message"]);
    assert_eq!(
        wrong.body["error"], unknown.body["error"],
        "unknown user and wrong password look alike"
    );

    let t = s.login("CAROL", PW, CHROME_WINDOWS);
    assert_eq!(t.data["token_type"], "Bearer");
    assert_eq!(t.data["expires_in"], 900);
    let session = &t.data["session"];
    assert_eq!(session["app"], "default");
    assert_eq!(session["ip_address"], "127.0.0.1");
    assert_eq!(session["user_agent"], CHROME_WINDOWS);
    assert_eq!(session["device_name"], "Chrome on Windows");
    assert_eq!(session["device_info"]["browser"], "Chrome");
    assert_eq!(session["is_active"], true);
    assert_eq!(session["is_current"], true);
    assert_eq!(session["login_method"], "password");
    assert_eq!(session["created_at"], session["last_activity"]);
    assert_eq!(t.data["user"]["username"], "carol");

    // Email login, case-insensitively, with an app.
    let r = s.post(
        "/api/auth/login",
        None,
        json!({"email": "DAVE@example.com", "password": PW, "app": "mobile"}),
    );
    r.expect(200, None);
    assert_eq!(r.body["data"]["session"]["app"], "mobile");
    s.post("/api/auth/login", None, json!({"username": "dave", "password": PW, "app": "bad app!"}))
        .expect(422, Some("VALIDATION_ERROR"));

    let me = s.get("/api/auth/me", Some(&t.access));
    me.expect(200, None);
    assert_eq!(me.body["message"], "User authenticated");
    assert_eq!(me.body["data"]["username"], "carol");
    assert_eq!(me.body["data"]["isOnline"], true);
    assert!(me.body["data"]["lastActivity"].is_string());
    s.get("/api/auth/me", None).expect(401, Some("UNAUTHORIZED"));

    let info = s.post("/api/auth/token-info", Some(&t.access), json!({}));
    info.expect(200, None);
    let claims = &info.body["data"];
    assert_eq!(claims["sub"], t.data["user"]["_id"]);
    assert_eq!(claims["sid"], session["id"]);
    assert_eq!(claims["username"], "carol");
    assert_eq!(claims["app"], "default");
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["iss"], "sessiond");
    assert_eq!(claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0), 900);
    assert!(claims["jti"].is_string());

    let v = s.post("/api/auth/validate-token", Some(&t.access), json!({"app": "default"}));
    v.expect(200, None);
    assert_eq!(v.body["message"], "Token is valid");
    assert_eq!(v.body["data"]["user"], "carol");
    assert_eq!(v.body["data"]["app"], "default");
    assert_eq!(v.body["data"]["token_info"]["sid"], session["id"]);
    s.post("/api/auth/validate-token", Some(&t.access), json!({"app": "other"}))
        .expect(403, Some("FORBIDDEN"));
    s.post("/api/auth/token-info", Some(&t.access), json!({"app": "other"}))
        .expect(403, Some("FORBIDDEN"));
    // No body at all is fine for the bearer-only endpoints.
    let bare = s.send(s.client().post(s.url("/api/auth/token-info")).bearer_auth(&t.access));
    bare.expect(200, None);
}

fn refresh_rotates_and_detects_reuse(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_REFRESH_GRACE_SECS", "1")]) else { return };
    s.register("erin", PW);
    let t = s.login("erin", PW, FIREFOX_LINUX);

    let r1 = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    r1.expect(200, None);
    assert_eq!(r1.body["message"], "Session refreshed");
    let d = &r1.body["data"];
    assert_eq!(d["username"], "erin");
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["expires_in"], 900);
    let (access1, refresh1) = (
        d["access_token"].as_str().unwrap_or_default(),
        d["refresh_token"].as_str().unwrap_or_default(),
    );
    assert_ne!(refresh1, t.refresh);
    s.get("/api/auth/me", Some(access1)).expect(200, None);
    // The old access token stays valid until it expires: same session.
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);

    // Within the grace window the superseded token still rotates (two tabs).
    let r2 = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    r2.expect(200, None);
    let refresh2 = r2.body["data"]["refresh_token"].as_str().unwrap_or_default().to_owned();

    // After it, presenting a superseded token is theft: the session dies.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let stolen = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    stolen.expect(401, Some("REFRESH_TOKEN_REUSED"));
    s.get("/api/auth/me", Some(access1)).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh2}))
        .expect(401, Some("UNAUTHORIZED"));

    s.post("/api/auth/refresh", None, json!({"refresh_token": "garbage"}))
        .expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({})).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": 42}))
        .expect(422, Some("VALIDATION_ERROR"));
}

fn the_bearer_only_refresh(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("frank", PW);
    let t = s.login("frank", PW, SAFARI_IPHONE);
    let r = s.send(s.client().post(s.url("/api/auth/refresh")).bearer_auth(&t.access));
    r.expect(200, None);
    let d = &r.body["data"];
    assert_eq!(d["username"], "frank");
    assert_eq!(d["isOnline"], true);
    assert!(d["lastActivity"].is_string());
    assert_eq!(d["token_type"], "Bearer");
    assert!(
        d.get("refresh_token").is_none_or(serde_json::Value::is_null),
        "bearer form keeps the refresh token"
    );
    let access = d["access_token"].as_str().unwrap_or_default();
    let me = s.get("/api/auth/me", Some(access));
    me.expect(200, None);
    // Same session: the original refresh token still rotates.
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh})).expect(200, None);
}

fn logout_ends_the_current_session_at_once(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("grace", PW);
    let a = s.login("grace", PW, CHROME_WINDOWS);
    let b = s.login("grace", PW, SAFARI_IPHONE);
    let r = s.post("/api/auth/logout", Some(&a.access), json!({}));
    r.expect(200, None);
    assert_eq!(r.body["message"], "Logged out successfully");
    assert!(r.body["data"].is_null());
    s.get("/api/auth/me", Some(&a.access)).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": a.refresh}))
        .expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/logout", Some(&a.access), json!({})).expect(401, Some("UNAUTHORIZED"));
    // The other device is untouched.
    s.get("/api/auth/me", Some(&b.access)).expect(200, None);
}

fn logout_all_ends_every_session_on_both_paths(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("heidi", PW);
    s.register("ivan", PW);
    for path in ["/api/auth/logout-all", "/api/v1/auth/logout-all"] {
        let a = s.login("heidi", PW, CHROME_WINDOWS);
        let b = s.login("heidi", PW, SAFARI_IPHONE);
        let other = s.login("ivan", PW, FIREFOX_LINUX);
        let r = s.post(path, Some(&a.access), json!({}));
        r.expect(200, None);
        assert_eq!(r.body["message"], "Logged out from all devices");
        assert_eq!(r.body["data"]["message"], "Logged out from all devices");
        assert_eq!(r.body["data"]["terminated_count"], 2, "{path}");
        for t in [&a, &b] {
            s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
            s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}))
                .expect(401, Some("UNAUTHORIZED"));
        }
        s.get("/api/auth/me", Some(&other.access)).expect(200, None);
    }
    // The documented curl: no body, no content type.
    let a = s.login("heidi", PW, CHROME_WINDOWS);
    let r = s.send(s.client().post(s.url("/api/v1/auth/logout-all")).bearer_auth(&a.access));
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 1);
}

fn suspension_and_admin_updates(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let out = s.cli(
        &["user", "create", "--username", "root", "--password-stdin", "--role", "admin"],
        Some(&format!("{PW}\n")),
    );
    assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    let judy = s.register("judy", PW);
    let judy_id = judy["_id"].as_str().unwrap_or_default().to_owned();
    let admin = s.login("root", PW, CHROME_WINDOWS);
    let user = s.login("judy", PW, SAFARI_IPHONE);

    s.request(
        "PATCH",
        &format!("/api/admin/users/{judy_id}"),
        Some(&user.access),
        Some(json!({"role": "admin"})),
    )
    .expect(403, Some("FORBIDDEN"));
    s.request(
        "PATCH",
        "/api/admin/users/not-a-uuid",
        Some(&admin.access),
        Some(json!({"status": "suspended"})),
    )
    .expect(404, Some("USER_NOT_FOUND"));
    s.request(
        "PATCH",
        "/api/admin/users/00000000-0000-7000-8000-000000000000",
        Some(&admin.access),
        Some(json!({"status": "suspended"})),
    )
    .expect(404, Some("USER_NOT_FOUND"));
    s.request(
        "PATCH",
        &format!("/api/admin/users/{judy_id}"),
        Some(&admin.access),
        Some(json!({"status": "banned"})),
    )
    .expect(422, Some("VALIDATION_ERROR"));

    let r = s.request(
        "PATCH",
        &format!("/api/admin/users/{judy_id}"),
        Some(&admin.access),
        Some(json!({"status": "suspended"})),
    );
    r.expect(200, None);
    assert_eq!(r.body["data"]["status"], "suspended");
    s.get("/api/auth/me", Some(&user.access)).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": user.refresh}))
        .expect(401, Some("UNAUTHORIZED"));
    let refused = s.post("/api/auth/login", None, json!({"username": "judy", "password": PW}));
    assert!(matches!(refused.status, 401 | 403), "suspended login: {}", refused.text);
    // A wrong password for a suspended account says nothing about suspension.
    s.post("/api/auth/login", None, json!({"username": "judy", "password": "not her password"}))
        .expect(401, Some("INVALID_CREDENTIALS"));

    // The command line reinstates; old sessions stay ended.
    let out = s.cli(&["user", "activate", "--username", "judy"], None);
    assert!(out.status.success(), "activate: {}", String::from_utf8_lossy(&out.stderr));
    s.get("/api/auth/me", Some(&user.access)).expect(401, Some("UNAUTHORIZED"));
    let again = s.login("judy", PW, SAFARI_IPHONE);
    let out = s.cli(&["user", "suspend", "--username", "JUDY"], None);
    assert!(out.status.success(), "suspend: {}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(CROSS_PROCESS);

    s.get("/api/auth/me", Some(&again.access)).expect(401, Some("UNAUTHORIZED"));

    let r = s.request(
        "PATCH",
        &format!("/api/admin/users/{judy_id}"),
        Some(&admin.access),
        Some(json!({"role": "agent", "status": "active"})),
    );
    r.expect(200, None);
    assert_eq!(r.body["data"]["role"], "agent");
    let t = s.login("judy", PW, SAFARI_IPHONE);
    assert_eq!(s.get("/api/auth/me", Some(&t.access)).body["data"]["role"], "agent");
}

fn generated_secret_survives_a_restart(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("kim", PW);
    let t = s.login("kim", PW, CHROME_WINDOWS);
    let s = s.restart();
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
}

fn token_of_a_deleted_session_is_refused(db: Db) {
    use sessions::SessionStore as _;
    let Some(s) = Server::start(db) else { return };
    s.register("lena", PW);
    let t = s.login("lena", PW, CHROME_WINDOWS);
    let sid = t.data["session"]["id"]
        .as_str()
        .and_then(|id| kernel::Uuid::parse_str(id).ok())
        .expect("sid");
    let store =
        store::Store::connect(&s.database_url, &store::StoreOptions::default()).expect("store");
    assert!(store.delete_session(sid).expect("delete"));
    // A change made by another process (here: directly in the database) is
    // seen within the cache's one-second bound.
    std::thread::sleep(CROSS_PROCESS);

    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}))
        .expect(401, Some("UNAUTHORIZED"));
}
