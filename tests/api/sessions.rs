//! Device sessions of SPEC section 3 (the `/api/sessions` and `/api/v1` forms): listing, deleting,
//! deactivating, terminating everywhere, isolation between users, the admin
//! paths, lifetimes and idle timeouts.

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    CHROME_WINDOWS, Db, FIREFOX_LINUX, SAFARI_IPHONE, Server, Tokens, assert_timestamp,
    create_admin, millis, without_volatile,
};

crate::on_both_databases!(
    lists_sessions_newest_first_with_device_info,
    v1_listing,
    delete_one_session_revokes_it_at_once,
    deactivate_keeps_the_session_but_never_revives_it,
    delete_all_sessions_with_and_without_the_current_one,
    v1_termination_paths,
    logout_and_logout_all_keep_sessions_inactive,
    other_users_sessions_look_missing,
    admin_manages_any_users_sessions,
    non_admins_are_forbidden_on_admin_paths,
    sessions_expire_after_their_lifetime,
    idle_sessions_expire_and_used_ones_do_not,
    query_values_are_validated,
);

const PW: &str = "correct horse battery";

/// A well-formed UUID no session or user has.
const MISSING: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

/// `GET /api/sessions` (with `include_inactive=true` when `all`); asserts
/// 200 and returns the list.
#[track_caller]
fn list(s: &Server, token: &str, all: bool) -> Vec<Value> {
    let path = if all { "/api/sessions?include_inactive=true" } else { "/api/sessions" };
    let r = s.get(path, Some(token));
    r.expect(200, None);
    assert_eq!(r.body["message"], "Sessions retrieved successfully");
    r.body["data"].as_array().unwrap_or_else(|| panic!("data is not an array: {}", r.text)).clone()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter().map(|s| s["id"].as_str().unwrap_or_default().to_owned()).collect()
}

fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|s| s["id"] == id)
}

/// Neither the access token nor the refresh token of `t` works any more.
#[track_caller]
fn assert_dead(s: &Server, t: &Tokens) {
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}))
        .expect(401, Some("UNAUTHORIZED"));
}

/// The access token of `t` still works.
#[track_caller]
fn assert_alive(s: &Server, t: &Tokens) {
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
}

#[track_caller]
fn delete(s: &Server, path: &str, token: &str) -> crate::support::Resp {
    s.request("DELETE", path, Some(token), None)
}

#[track_caller]
fn patch(s: &Server, path: &str, token: &str) -> crate::support::Resp {
    s.request("PATCH", path, Some(token), None)
}

/// Every field of the session view, with the values that do not depend on
/// the device.
#[track_caller]
fn assert_session_view(v: &Value) {
    for field in [
        "id",
        "ip_address",
        "user_agent",
        "device_info",
        "device_name",
        "location",
        "login_method",
        "app",
        "created_at",
        "expires_at",
        "last_activity",
        "is_active",
        "is_current",
    ] {
        assert!(v.get(field).is_some(), "session view lacks {field}: {v}");
    }
    for field in ["browser", "os", "device"] {
        assert!(v["device_info"][field].is_string(), "device_info.{field}: {v}");
    }
    assert!(v["id"].as_str().is_some_and(|id| id.len() == 36), "id: {v}");
    assert_eq!(v["ip_address"], "127.0.0.1");
    assert!(v["location"].is_null(), "no GeoIP database, no location: {v}");
    assert_eq!(v["login_method"], "password");
    assert_eq!(v["app"], "default");
    for field in ["created_at", "expires_at", "last_activity"] {
        assert_timestamp(&v[field]);
    }
}

fn lists_sessions_newest_first_with_device_info(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("alice", PW);
    let chrome = s.login("alice", PW, CHROME_WINDOWS);
    let safari = s.login("alice", PW, SAFARI_IPHONE);
    let firefox = s.login("alice", PW, FIREFOX_LINUX);
    s.get("/api/sessions", None).expect(401, Some("UNAUTHORIZED"));

    // Called with the middle session's token.
    let sessions = list(&s, &safari.access, false);
    assert_eq!(
        ids(&sessions),
        [firefox.session_id(), safari.session_id(), chrome.session_id()],
        "newest first: {sessions:?}"
    );
    let expected = [
        (FIREFOX_LINUX, "Firefox on Linux", "Firefox", "Linux", "Desktop"),
        (SAFARI_IPHONE, "Safari on iOS", "Safari", "iOS", "Mobile"),
        (CHROME_WINDOWS, "Chrome on Windows", "Chrome", "Windows", "Desktop"),
    ];
    for (v, (ua, name, browser, os, device)) in sessions.iter().zip(expected) {
        assert_session_view(v);
        assert_eq!(v["user_agent"], ua);
        assert_eq!(v["device_name"], name, "{v}");
        assert_eq!(v["device_info"]["browser"], browser, "{v}");
        assert_eq!(v["device_info"]["os"], os, "{v}");
        assert_eq!(v["device_info"]["device"], device, "{v}");
        assert_eq!(v["is_active"], true);
        // Default lifetime: 24 hours after login.
        assert_eq!(millis(&v["expires_at"]) - millis(&v["created_at"]), 86_400_000, "{v}");
        assert!(millis(&v["last_activity"]) >= millis(&v["created_at"]), "{v}");
    }
    let current: Vec<&Value> = sessions.iter().filter(|v| v["is_current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current session: {sessions:?}");
    assert_eq!(current[0]["id"], safari.session_id().as_str());
    assert!(sessions.iter().all(|v| v["is_current"].is_boolean()));

    // Another caller sees another current session; the trailing slash works.
    let r = s.get("/api/sessions/", Some(&chrome.access));
    r.expect(200, None);
    let current: Vec<&Value> = r.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["is_current"] == true)
        .collect();
    assert_eq!(current.len(), 1, "{}", r.text);
    assert_eq!(current[0]["id"], chrome.session_id().as_str());
    // Nothing inactive yet: the same three with include_inactive.
    assert_eq!(ids(&list(&s, &chrome.access, true)), ids(&sessions));
    let r = s.get("/api/sessions?include_inactive=false", Some(&chrome.access));
    r.expect(200, None);
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(3), "{}", r.text);

    // Another user's sessions never show up.
    s.register("bob", PW);
    let bob = s.login("bob", PW, CHROME_WINDOWS);
    let theirs = list(&s, &bob.access, true);
    assert_eq!(ids(&theirs), [bob.session_id()]);
    assert_eq!(list(&s, &chrome.access, true).len(), 3);
}

fn v1_listing(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("carol", PW);
    let chrome = s.login("carol", PW, CHROME_WINDOWS);
    let safari = s.login("carol", PW, SAFARI_IPHONE);
    let firefox = s.login("carol", PW, FIREFOX_LINUX);
    for path in ["/api/v1/auth/users/me/sessions/", "/api/v1/auth/users/me/sessions"] {
        let r = s.get(path, Some(&chrome.access));
        r.expect(200, None);
        let data = &r.body["data"];
        assert_eq!(data["total_count"], 3, "{path}: {}", r.text);
        let sessions = data["sessions"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            ids(&sessions),
            [firefox.session_id(), safari.session_id(), chrome.session_id()],
            "{path}: newest first"
        );
        for v in &sessions {
            assert_session_view(v);
            assert_eq!(v["is_current"], v["id"] == chrome.session_id().as_str(), "{v}");
        }
        assert_eq!(sessions[2]["device_name"], "Chrome on Windows");
        assert_eq!(
            sessions[2]["device_info"],
            json!({"browser": "Chrome", "os": "Windows", "device": "Desktop"})
        );
    }
    s.get("/api/v1/auth/users/me/sessions/", None).expect(401, Some("UNAUTHORIZED"));

    // No trusted proxy is configured: forwarding headers are ignored.
    let r = s.send(
        s.client()
            .post(s.url("/api/auth/login"))
            .header("User-Agent", FIREFOX_LINUX)
            .header("X-Forwarded-For", "203.0.113.7")
            .header("Forwarded", "for=203.0.113.8")
            .json(&json!({"username": "carol", "password": PW})),
    );
    r.expect(200, None);
    assert_eq!(r.body["data"]["session"]["ip_address"], "127.0.0.1", "{}", r.text);
}

fn delete_one_session_revokes_it_at_once(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("dave", PW);
    let a = s.login("dave", PW, CHROME_WINDOWS);
    let b = s.login("dave", PW, SAFARI_IPHONE);
    let c = s.login("dave", PW, FIREFOX_LINUX);

    let r = delete(&s, &format!("/api/sessions/{}", b.session_id()), &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session deleted successfully");
    // The very next request with its tokens fails.
    assert_dead(&s, &b);
    assert_alive(&s, &a);
    assert_alive(&s, &c);
    let all = list(&s, &a.access, true);
    assert_eq!(ids(&all), [c.session_id(), a.session_id()], "deleted ones are gone");

    let again = delete(&s, &format!("/api/sessions/{}", b.session_id()), &a.access);
    again.expect(404, Some("SESSION_NOT_FOUND"));

    // Trailing slash; and a session may delete itself.
    let r = delete(&s, &format!("/api/sessions/{}/", a.session_id()), &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session deleted successfully");
    assert_dead(&s, &a);
    assert_eq!(ids(&list(&s, &c.access, true)), [c.session_id()]);
    delete(&s, &format!("/api/sessions/{}", c.session_id()), &a.access)
        .expect(401, Some("UNAUTHORIZED"));
    s.request("DELETE", &format!("/api/sessions/{}", c.session_id()), None, None)
        .expect(401, Some("UNAUTHORIZED"));
    assert_alive(&s, &c);
}

fn deactivate_keeps_the_session_but_never_revives_it(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("erin", PW);
    let a = s.login("erin", PW, CHROME_WINDOWS);
    let b = s.login("erin", PW, SAFARI_IPHONE);

    let path = format!("/api/sessions/{}/deactivate", b.session_id());
    let r = patch(&s, &path, &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session deactivated successfully");
    assert_dead(&s, &b);
    assert_alive(&s, &a);

    assert_eq!(ids(&list(&s, &a.access, false)), [a.session_id()]);
    let all = list(&s, &a.access, true);
    assert_eq!(ids(&all), [b.session_id(), a.session_id()]);
    let gone = find(&all, &b.session_id()).expect("deactivated session listed");
    assert_session_view(gone);
    assert_eq!(gone["is_active"], false, "{gone}");
    assert_eq!(gone["is_current"], false, "{gone}");
    assert_eq!(gone["device_name"], "Safari on iOS");
    assert_eq!(find(&all, &a.session_id()).map(|v| v["is_active"].clone()), Some(json!(true)));

    // Repeating is fine, and nothing brings it back.
    let r = patch(&s, &format!("{path}/"), &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session deactivated successfully");
    assert_dead(&s, &b);
    assert_eq!(ids(&list(&s, &a.access, false)), [a.session_id()]);

    // A deactivated session can still be deleted; then it is gone.
    let r = delete(&s, &format!("/api/sessions/{}", b.session_id()), &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session deleted successfully");
    assert_eq!(ids(&list(&s, &a.access, true)), [a.session_id()]);
    patch(&s, &path, &a.access).expect(404, Some("SESSION_NOT_FOUND"));
    s.request("PATCH", &path, None, None).expect(401, Some("UNAUTHORIZED"));

    // Deactivating one's own session ends it too.
    patch(&s, &format!("/api/sessions/{}/deactivate", a.session_id()), &a.access).expect(200, None);
    assert_dead(&s, &a);
}

fn delete_all_sessions_with_and_without_the_current_one(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("frank", PW);
    s.register("grace", PW);
    let other = s.login("grace", PW, CHROME_WINDOWS);
    let a = s.login("frank", PW, CHROME_WINDOWS);
    let b = s.login("frank", PW, SAFARI_IPHONE);
    let c = s.login("frank", PW, FIREFOX_LINUX);

    let r = delete(&s, "/api/sessions?exclude_current=true", &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "All sessions deleted successfully");
    assert_eq!(r.body["data"]["terminated_count"], 2, "{}", r.text);
    assert_dead(&s, &b);
    assert_dead(&s, &c);
    assert_alive(&s, &a);
    let left = list(&s, &a.access, true);
    assert_eq!(ids(&left), [a.session_id()]);
    assert_eq!(left[0]["is_current"], true);

    let d = s.login("frank", PW, FIREFOX_LINUX);
    let r = delete(&s, "/api/sessions", &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "All sessions deleted successfully");
    assert_eq!(r.body["data"]["terminated_count"], 2, "{}", r.text);
    assert_dead(&s, &a);
    assert_dead(&s, &d);
    assert_alive(&s, &other);
    assert_eq!(ids(&list(&s, &other.access, true)), [other.session_id()]);

    let e = s.login("frank", PW, SAFARI_IPHONE);
    assert_eq!(ids(&list(&s, &e.access, true)), [e.session_id()], "deleted ones are gone");
    // Trailing slash; the caller is the only live session.
    let r = delete(&s, "/api/sessions/?exclude_current=true", &e.access);
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 0, "{}", r.text);
    let r = delete(&s, "/api/sessions/", &e.access);
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 1, "{}", r.text);
    assert_dead(&s, &e);
}

fn v1_termination_paths(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("heidi", PW);
    let a = s.login("heidi", PW, CHROME_WINDOWS);
    let b = s.login("heidi", PW, SAFARI_IPHONE);

    let r = delete(&s, &format!("/api/v1/auth/users/me/sessions/{}/", b.session_id()), &a.access);
    r.expect(200, None);
    assert_eq!(r.body["message"], "Session terminated successfully");
    assert_eq!(
        r.body["data"],
        json!({"session_id": b.session_id(), "device_name": "Safari on iOS"}),
        "{}",
        r.text
    );
    assert_dead(&s, &b);
    assert_alive(&s, &a);
    delete(&s, &format!("/api/v1/auth/users/me/sessions/{}/", b.session_id()), &a.access)
        .expect(404, Some("SESSION_NOT_FOUND"));
    let r = s.get("/api/v1/auth/users/me/sessions/", Some(&a.access));
    r.expect(200, None);
    assert_eq!(r.body["data"]["total_count"], 1, "{}", r.text);
    s.post("/api/auth/logout", Some(&a.access), json!({})).expect(200, None);

    // Delete-all, with and without exclude_current, on both paths and with
    // and without the trailing slash.
    for (path, keep) in [
        ("/api/v1/auth/users/me/sessions/?exclude_current=true", true),
        ("/api/v1/auth/users/me/sessions/all/?exclude_current=true", true),
        ("/api/v1/auth/users/me/sessions/all?exclude_current=true", true),
        ("/api/v1/auth/users/me/sessions/", false),
        ("/api/v1/auth/users/me/sessions/all/", false),
        ("/api/v1/auth/users/me/sessions", false),
        ("/api/v1/auth/users/me/sessions/all", false),
    ] {
        let me = s.login("heidi", PW, CHROME_WINDOWS);
        let x = s.login("heidi", PW, SAFARI_IPHONE);
        let y = s.login("heidi", PW, FIREFOX_LINUX);
        let live = if keep { 2 } else { 3 };
        let r = delete(&s, path, &me.access);
        r.expect(200, None);
        assert_eq!(r.body["message"], "All sessions terminated successfully", "{path}");
        assert_eq!(r.body["data"]["terminated_count"], live, "{path}: {}", r.text);
        assert_dead(&s, &x);
        assert_dead(&s, &y);
        if keep {
            assert_alive(&s, &me);
            let r = s.get("/api/v1/auth/users/me/sessions/", Some(&me.access));
            assert_eq!(r.body["data"]["total_count"], 1, "{path}: {}", r.text);
            s.post("/api/auth/logout", Some(&me.access), json!({})).expect(200, None);
        } else {
            assert_dead(&s, &me);
        }
    }
}

fn logout_and_logout_all_keep_sessions_inactive(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("ivan", PW);
    let a = s.login("ivan", PW, CHROME_WINDOWS);
    let b = s.login("ivan", PW, SAFARI_IPHONE);
    let c = s.login("ivan", PW, FIREFOX_LINUX);

    s.post("/api/auth/logout", Some(&a.access), json!({})).expect(200, None);
    assert_eq!(ids(&list(&s, &b.access, false)), [c.session_id(), b.session_id()]);
    let all = list(&s, &b.access, true);
    assert_eq!(ids(&all), [c.session_id(), b.session_id(), a.session_id()]);
    let out = find(&all, &a.session_id()).expect("logged-out session listed");
    assert_eq!(out["is_active"], false, "{out}");
    assert_session_view(out);

    let r = s.post("/api/auth/logout-all", Some(&b.access), json!({}));
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 2, "{}", r.text);
    let d = s.login("ivan", PW, CHROME_WINDOWS);
    assert_eq!(ids(&list(&s, &d.access, false)), [d.session_id()]);
    let all = list(&s, &d.access, true);
    assert_eq!(
        ids(&all),
        [d.session_id(), c.session_id(), b.session_id(), a.session_id()],
        "logged-out sessions stay listed, newest first"
    );
    for v in &all[1..] {
        assert_eq!(v["is_active"], false, "{v}");
        assert_eq!(v["is_current"], false, "{v}");
    }
    assert_eq!(all[0]["is_active"], true);
    assert_eq!(all[0]["is_current"], true);
    let r = s.get("/api/v1/auth/users/me/sessions/", Some(&d.access));
    r.expect(200, None);
    assert_eq!(r.body["data"]["total_count"], 1, "active ones only: {}", r.text);

    // An inactive session can be deleted, and is then gone; ended sessions
    // are not counted as terminated again.
    delete(&s, &format!("/api/sessions/{}", a.session_id()), &d.access).expect(200, None);
    assert!(find(&list(&s, &d.access, true), &a.session_id()).is_none());
    let r = delete(&s, "/api/sessions?exclude_current=true", &d.access);
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 0, "{}", r.text);
    assert_alive(&s, &d);
}

fn other_users_sessions_look_missing(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("judy", PW);
    s.register("mallory", PW);
    let judy = s.login("judy", PW, CHROME_WINDOWS);
    let mallory = s.login("mallory", PW, FIREFOX_LINUX);
    let victim = judy.session_id();

    type Path = fn(&str) -> (&'static str, String);
    let paths: [Path; 4] = [
        |id| ("DELETE", format!("/api/sessions/{id}")),
        |id| ("PATCH", format!("/api/sessions/{id}/deactivate")),
        |id| ("DELETE", format!("/api/v1/auth/users/me/sessions/{id}/")),
        |id| ("DELETE", format!("/api/v1/auth/users/me/sessions/{id}")),
    ];
    for make in paths {
        let (method, missing_path) = make(MISSING);
        let missing = s.request(method, &missing_path, Some(&mallory.access), None);
        missing.expect(404, Some("SESSION_NOT_FOUND"));
        let reference = without_volatile(&missing.body);
        for id in [victim.as_str(), "abc", "123", &victim.to_uppercase()] {
            let (_, path) = make(id);
            let r = s.request(method, &path, Some(&mallory.access), None);
            r.expect(404, Some("SESSION_NOT_FOUND"));
            assert_eq!(
                without_volatile(&r.body),
                reference,
                "{method} {path} must look exactly like a missing session"
            );
        }
    }
    // Judy's session is untouched.
    assert_alive(&s, &judy);
    let mine = list(&s, &judy.access, false);
    assert_eq!(ids(&mine), [judy.session_id()]);
    assert_eq!(mine[0]["is_active"], true);
    assert_eq!(ids(&list(&s, &mallory.access, true)), [mallory.session_id()]);
    s.post("/api/auth/refresh", None, json!({"refresh_token": judy.refresh})).expect(200, None);
    // Mallory's delete-all does not reach Judy.
    let r = delete(&s, "/api/sessions", &mallory.access);
    assert_eq!(r.body["data"]["terminated_count"], 1, "{}", r.text);
    assert_alive(&s, &judy);
}

fn admin_manages_any_users_sessions(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let admin = create_admin(&s, "root", PW);
    let karl = s.register("karl", PW);
    let karl_id = karl["_id"].as_str().expect("_id").to_owned();
    let lena = s.register("lena", PW);
    let lena_id = lena["_id"].as_str().expect("_id").to_owned();
    let k1 = s.login("karl", PW, CHROME_WINDOWS);
    let k2 = s.login("karl", PW, SAFARI_IPHONE);
    let k3 = s.login("karl", PW, FIREFOX_LINUX);
    let l1 = s.login("lena", PW, FIREFOX_LINUX);

    let base = format!("/api/admin/users/{karl_id}/sessions");
    let r = s.get(&base, Some(&admin.access));
    r.expect(200, None);
    let listed = r.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        ids(&listed),
        [k3.session_id(), k2.session_id(), k1.session_id()],
        "newest first: {}",
        r.text
    );
    for v in &listed {
        assert_session_view(v);
        assert_eq!(v["is_current"], false, "not the admin's session: {v}");
    }
    s.get(&format!("{base}/"), Some(&admin.access)).expect(200, None);

    let one = s.get(&format!("{base}/{}", k2.session_id()), Some(&admin.access));
    one.expect(200, None);
    assert_session_view(&one.body["data"]);
    assert_eq!(one.body["data"]["id"], k2.session_id().as_str());
    assert_eq!(one.body["data"]["device_name"], "Safari on iOS");

    // Unknown sessions of a known user, including another user's.
    for id in [MISSING, "abc", &l1.session_id()] {
        s.get(&format!("{base}/{id}"), Some(&admin.access)).expect(404, Some("SESSION_NOT_FOUND"));
        delete(&s, &format!("{base}/{id}"), &admin.access).expect(404, Some("SESSION_NOT_FOUND"));
    }
    assert_alive(&s, &l1);
    // Unknown users.
    for user in [MISSING, "not-a-uuid"] {
        let b = format!("/api/admin/users/{user}/sessions");
        s.get(&b, Some(&admin.access)).expect(404, Some("USER_NOT_FOUND"));
        delete(&s, &b, &admin.access).expect(404, Some("USER_NOT_FOUND"));
        s.get(&format!("{b}/{}", k1.session_id()), Some(&admin.access))
            .expect(404, Some("USER_NOT_FOUND"));
        delete(&s, &format!("{b}/{}", k1.session_id()), &admin.access)
            .expect(404, Some("USER_NOT_FOUND"));
    }

    let r = delete(&s, &format!("{base}/{}", k2.session_id()), &admin.access);
    r.expect(200, None);
    assert_dead(&s, &k2);
    assert_alive(&s, &k1);
    s.get(&format!("{base}/{}", k2.session_id()), Some(&admin.access))
        .expect(404, Some("SESSION_NOT_FOUND"));

    let r = delete(&s, &base, &admin.access);
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 2, "{}", r.text);
    assert_dead(&s, &k1);
    assert_dead(&s, &k3);
    assert_alive(&s, &l1);
    assert_alive(&s, &admin);
    let r = s.get(&base, Some(&admin.access));
    r.expect(200, None);
    assert_eq!(r.body["data"], json!([]), "{}", r.text);
    let r = s.get(&format!("/api/admin/users/{lena_id}/sessions"), Some(&admin.access));
    r.expect(200, None);
    assert_eq!(
        ids(r.body["data"].as_array().map(Vec::as_slice).unwrap_or_default()),
        [l1.session_id()]
    );
}

fn non_admins_are_forbidden_on_admin_paths(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let admin = create_admin(&s, "root", PW);
    let admin_id = admin.data["user"]["_id"].as_str().expect("_id").to_owned();
    let mike = s.register("mike", PW);
    let mike_id = mike["_id"].as_str().expect("_id").to_owned();
    let m = s.login("mike", PW, CHROME_WINDOWS);

    // Own id, the admin's id and an unknown id: all forbidden alike.
    for (user, sid) in [
        (mike_id.as_str(), m.session_id()),
        (admin_id.as_str(), admin.session_id()),
        (MISSING, MISSING.to_owned()),
    ] {
        let b = format!("/api/admin/users/{user}/sessions");
        s.get(&b, Some(&m.access)).expect(403, Some("FORBIDDEN"));
        delete(&s, &b, &m.access).expect(403, Some("FORBIDDEN"));
        s.get(&format!("{b}/{sid}"), Some(&m.access)).expect(403, Some("FORBIDDEN"));
        delete(&s, &format!("{b}/{sid}"), &m.access).expect(403, Some("FORBIDDEN"));
        s.get(&b, None).expect(401, Some("UNAUTHORIZED"));
    }
    assert_alive(&s, &m);
    assert_alive(&s, &admin);
    let r = s.get(&format!("/api/admin/users/{admin_id}/sessions"), Some(&admin.access));
    r.expect(200, None);
    let mine = r.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(ids(&mine), [admin.session_id()]);
    assert_eq!(mine[0]["is_current"], true, "the admin's own current session: {}", r.text);
}

fn sessions_expire_after_their_lifetime(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_SESSION_LIFETIME_SECS", "2")]) else {
        return;
    };
    s.register("nina", PW);
    let a = s.login("nina", PW, CHROME_WINDOWS);
    let v = &a.data["session"];
    assert_eq!(millis(&v["expires_at"]) - millis(&v["created_at"]), 2_000, "{v}");
    assert_alive(&s, &a);

    sleep(Duration::from_millis(3_000));
    // The JWT is good for 15 minutes, the session is not.
    assert_dead(&s, &a);
    let b = s.login("nina", PW, SAFARI_IPHONE);
    assert_eq!(ids(&list(&s, &b.access, false)), [b.session_id()]);
    let all = list(&s, &b.access, true);
    assert_eq!(ids(&all), [b.session_id(), a.session_id()]);
    assert_eq!(all[1]["is_active"], false, "expired: {}", all[1]);
    assert_eq!(all[0]["is_active"], true);
    let r = s.get("/api/v1/auth/users/me/sessions/", Some(&b.access));
    r.expect(200, None);
    assert_eq!(r.body["data"]["total_count"], 1, "{}", r.text);
    // Expired sessions are not terminated again by delete-all.
    let r = delete(&s, "/api/sessions?exclude_current=true", &b.access);
    r.expect(200, None);
    assert_eq!(r.body["data"]["terminated_count"], 0, "{}", r.text);
}

fn idle_sessions_expire_and_used_ones_do_not(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_SESSION_IDLE_TIMEOUT_SECS", "3")]) else {
        return;
    };
    s.register("oscar", PW);
    let idle = s.login("oscar", PW, SAFARI_IPHONE);
    let busy = s.login("oscar", PW, CHROME_WINDOWS);
    let started = Instant::now();
    // `busy` is used every second for six seconds, past the idle timeout
    // twice; `idle` is left alone.
    for i in 1..=6 {
        sleep(Duration::from_secs(1));
        s.get("/api/auth/me", Some(&busy.access)).expect(200, None);
        if i == 4 {
            assert!(started.elapsed() >= Duration::from_secs(4));
            assert_dead(&s, &idle);
        }
    }
    assert!(started.elapsed() > Duration::from_secs(5));
    assert_alive(&s, &busy);
    assert_eq!(ids(&list(&s, &busy.access, false)), [busy.session_id()]);
    let all = list(&s, &busy.access, true);
    assert_eq!(ids(&all), [busy.session_id(), idle.session_id()]);
    assert_eq!(all[1]["is_active"], false, "idle: {}", all[1]);
    // Its refresh token still works too.
    s.post("/api/auth/refresh", None, json!({"refresh_token": busy.refresh})).expect(200, None);
}

fn query_values_are_validated(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("peggy", PW);
    let a = s.login("peggy", PW, CHROME_WINDOWS);
    let b = s.login("peggy", PW, SAFARI_IPHONE);
    let r = s.get("/api/sessions?include_inactive=maybe", Some(&a.access));
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(r.body["error"]["details"]["include_inactive"].is_string(), "{}", r.text);
    for path in [
        "/api/sessions?exclude_current=maybe",
        "/api/v1/auth/users/me/sessions/?exclude_current=maybe",
        "/api/v1/auth/users/me/sessions/all/?exclude_current=maybe",
    ] {
        let r = delete(&s, path, &a.access);
        r.expect(422, Some("VALIDATION_ERROR"));
        assert!(r.body["error"]["details"]["exclude_current"].is_string(), "{path}: {}", r.text);
    }
    // Nothing was deleted by the refused requests.
    assert_alive(&s, &a);
    assert_alive(&s, &b);
    assert_eq!(list(&s, &a.access, false).len(), 2);
    // Other methods on known paths.
    s.request("PUT", "/api/sessions", Some(&a.access), None)
        .expect(405, Some("METHOD_NOT_ALLOWED"));
    s.request("GET", &format!("/api/sessions/{}/deactivate", b.session_id()), None, None)
        .expect(405, Some("METHOD_NOT_ALLOWED"));
}
