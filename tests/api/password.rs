//! Changing one's password (SPEC §7): the other sessions end at once, the
//! caller's stays, a wrong current password counts toward the lockout, and
//! the new password follows the registration rules.

use serde_json::{Value, json};

use crate::support::{
    CHROME_WINDOWS, Db, FIREFOX_LINUX, SAFARI_IPHONE, Server, assert_envelope, create_admin,
};

const PW: &str = "correct horse battery";
const NEW_PW: &str = "staple battery horse correct";

crate::on_both_databases!(
    a_password_change_ends_the_other_sessions_and_keeps_the_callers,
    a_password_change_can_keep_the_other_sessions,
    a_wrong_current_password_counts_toward_the_lockout,
    the_new_password_follows_the_registration_rules,
    an_admin_reset_ends_every_session_of_the_user,
    the_command_line_sets_a_password_and_ends_every_session,
);

fn change(s: &Server, token: &str, body: Value) -> crate::support::Resp {
    s.post("/api/auth/password", Some(token), body)
}

fn refresh_status(s: &Server, refresh: &str) -> u16 {
    s.post("/api/auth/refresh", None, json!({"refresh_token": refresh})).status
}

fn a_password_change_ends_the_other_sessions_and_keeps_the_callers(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("pat", PW);
    let mine = s.login("pat", PW, CHROME_WINDOWS);
    let phone = s.login("pat", PW, SAFARI_IPHONE);
    let laptop = s.login("pat", PW, FIREFOX_LINUX);
    // Warm the cache with the sessions about to end.
    s.get("/api/auth/me", Some(&phone.access)).expect(200, None);
    s.get("/api/auth/me", Some(&laptop.access)).expect(200, None);

    let r = change(&s, &mine.access, json!({"current_password": PW, "new_password": NEW_PW}));
    r.expect(200, None);
    assert_envelope(&r);
    assert_eq!(r.body["data"]["username"], "pat", "{}", r.text);
    assert!(r.body["data"].get("password_hash").is_none(), "{}", r.text);

    // The other sessions are refused on the very next request, their
    // refresh tokens too; the caller's session goes on.
    for other in [&phone, &laptop] {
        s.get("/api/auth/me", Some(&other.access)).expect(401, None);
        assert_eq!(refresh_status(&s, &other.refresh), 401);
    }
    s.get("/api/auth/me", Some(&mine.access)).expect(200, None);
    assert_eq!(refresh_status(&s, &mine.refresh), 200);
    // The ended sessions are kept, inactive.
    let list = s.get("/api/sessions?include_inactive=true", Some(&mine.access));
    list.expect(200, None);
    let sessions = list.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 3, "{}", list.text);
    let active = sessions.iter().filter(|x| x["is_active"] == true).count();
    assert_eq!(active, 1, "{}", list.text);

    // Only the new password logs in.
    let old = s.post("/api/auth/login", None, json!({"username": "pat", "password": PW}));
    old.expect(401, Some("INVALID_CREDENTIALS"));
    s.login("pat", NEW_PW, CHROME_WINDOWS);

    // Audited.
    let audit = s.get("/api/audit/me?action=password_change", Some(&mine.access));
    audit.expect(200, None);
    assert!(audit.text.contains("password_change"), "{}", audit.text);
}

fn a_password_change_can_keep_the_other_sessions(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("kim", PW);
    let mine = s.login("kim", PW, CHROME_WINDOWS);
    let phone = s.login("kim", PW, SAFARI_IPHONE);
    let body =
        json!({"current_password": PW, "new_password": NEW_PW, "sign_out_other_sessions": false});
    change(&s, &mine.access, body).expect(200, None);
    s.get("/api/auth/me", Some(&phone.access)).expect(200, None);
    s.get("/api/auth/me", Some(&mine.access)).expect(200, None);
    s.login("kim", NEW_PW, CHROME_WINDOWS);
}

fn a_wrong_current_password_counts_toward_the_lockout(db: Db) {
    let env = [("SESSIOND_LOGIN_MAX_FAILURES", "3"), ("SESSIOND_LOGIN_LOCKOUT_SECS", "60")];
    let Some(s) = Server::start_with(db, &env) else { return };
    s.register("lee", PW);
    let mine = s.login("lee", PW, CHROME_WINDOWS);
    let phone = s.login("lee", PW, SAFARI_IPHONE);
    let wrong = json!({"current_password": "not my password", "new_password": NEW_PW});
    for _ in 0..3 {
        let r = change(&s, &mine.access, wrong.clone());
        r.expect(401, Some("INVALID_CREDENTIALS"));
        assert_envelope(&r);
    }
    // Locked now: even the right password is refused, here and at login
    // from the same address, and nothing was changed or ended.
    let r = change(&s, &mine.access, json!({"current_password": PW, "new_password": NEW_PW}));
    r.expect(429, Some("RATE_LIMITED"));
    assert!(r.header("retry-after").is_some(), "{}", r.text);
    let login = s.post("/api/auth/login", None, json!({"username": "lee", "password": PW}));
    login.expect(429, Some("RATE_LIMITED"));
    s.get("/api/auth/me", Some(&phone.access)).expect(200, None);
    s.get("/api/auth/me", Some(&mine.access)).expect(200, None);
}

fn the_new_password_follows_the_registration_rules(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("ned", PW);
    let mine = s.login("ned", PW, CHROME_WINDOWS);
    for (body, field) in [
        (json!({"current_password": PW, "new_password": "short"}), "new_password"),
        (json!({"current_password": PW, "new_password": "bad\u{202e}password"}), "new_password"),
        (json!({"current_password": "", "new_password": NEW_PW}), "current_password"),
        (json!({"new_password": NEW_PW}), "current_password"),
        (json!({"current_password": PW}), "new_password"),
    ] {
        let r = change(&s, &mine.access, body.clone());
        r.expect(422, Some("VALIDATION_ERROR"));
        assert!(r.body["error"]["details"].get(field).is_some(), "{body}: {}", r.text);
    }
    // No token: 401; the password is unchanged.
    let r =
        s.post("/api/auth/password", None, json!({"current_password": PW, "new_password": NEW_PW}));
    r.expect(401, None);
    s.login("ned", PW, CHROME_WINDOWS);
}

fn an_admin_reset_ends_every_session_of_the_user(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let admin = create_admin(&s, "root", PW);
    let user = s.register("uma", PW);
    let id = user["_id"].as_str().map(str::to_owned).expect("the user id");
    let (a, b) = (s.login("uma", PW, CHROME_WINDOWS), s.login("uma", PW, SAFARI_IPHONE));
    s.get("/api/auth/me", Some(&a.access)).expect(200, None);
    let path = format!("/api/admin/users/{id}");
    // A non-admin cannot; a bad password is a 422 naming the field.
    s.request("PATCH", &path, Some(&a.access), Some(json!({"password": NEW_PW}))).expect(403, None);
    let r = s.request("PATCH", &path, Some(&admin.access), Some(json!({"password": "short"})));
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(r.body["error"]["details"].get("password").is_some(), "{}", r.text);
    s.get("/api/auth/me", Some(&a.access)).expect(200, None);

    let r = s.request("PATCH", &path, Some(&admin.access), Some(json!({"password": NEW_PW})));
    r.expect(200, None);
    assert_eq!(r.body["data"]["status"], "active", "{}", r.text);
    for t in [&a, &b] {
        s.get("/api/auth/me", Some(&t.access)).expect(401, None);
        assert_eq!(refresh_status(&s, &t.refresh), 401);
    }
    s.get("/api/auth/me", Some(&admin.access)).expect(200, None);
    let old = s.post("/api/auth/login", None, json!({"username": "uma", "password": PW}));
    old.expect(401, Some("INVALID_CREDENTIALS"));
    s.login("uma", NEW_PW, CHROME_WINDOWS);
}

fn the_command_line_sets_a_password_and_ends_every_session(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("cli", PW);
    let t = s.login("cli", PW, CHROME_WINDOWS);
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    let out = s.cli(&["user", "set-password", "--username", "cli", "--password", "short"], None);
    assert!(!out.status.success(), "a password under the rules' length is refused");
    let out = s.cli(
        &["user", "set-password", "--username", "cli", "--password-stdin"],
        Some(&format!("{NEW_PW}\n")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Another process ended the session: refused within the cache's second.
    let start = std::time::Instant::now();
    while s.get("/api/auth/me", Some(&t.access)).status == 200 {
        assert!(start.elapsed() < std::time::Duration::from_millis(2500), "still accepted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    s.login("cli", NEW_PW, CHROME_WINDOWS);
    let out = s.cli(&["user", "set-password", "--username", "nobody", "--password", NEW_PW], None);
    assert!(!out.status.success());
}
