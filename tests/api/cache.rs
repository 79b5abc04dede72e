//! The session cache never outlives a revocation on the instance that made
//! it: for every way a session stops being valid, the token is used (so its
//! state is cached) right before, and refused right after.

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, SAFARI_IPHONE, Server, Tokens, create_admin};

crate::on_both_databases!(
    every_way_a_session_ends_is_seen_at_once,
    lifetimes_are_checked_on_cached_state
);

const PW: &str = "correct horse battery";

/// How long an entry is trusted; the checks below must happen well within
/// it for the test to be about the cache at all.
const TTL: Duration = Duration::from_secs(1);

/// Uses the token on the two cached paths (token-info, me); both succeed.
#[track_caller]
fn warm(s: &Server, t: &Tokens) -> Instant {
    s.post("/api/auth/token-info", Some(&t.access), json!({})).expect(200, None);
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    Instant::now()
}

/// The token is refused on both cached paths, and the cache was warm.
#[track_caller]
fn refused_at_once(s: &Server, t: &Tokens, warmed: Instant, how: &str) {
    s.post("/api/auth/token-info", Some(&t.access), json!({})).expect(401, Some("UNAUTHORIZED"));
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
    assert!(warmed.elapsed() < TTL, "{how}: too slow to have tested the cache");
}

fn every_way_a_session_ends_is_seen_at_once(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_REFRESH_GRACE_SECS", "0")]) else {
        return;
    };
    let admin = create_admin(&s, "cache_root", PW);
    let user = s.register("cache_user", PW);
    let user_id = user["_id"].as_str().expect("_id").to_owned();
    let login = || s.login("cache_user", PW, CHROME_WINDOWS);

    let t = login();
    let w = warm(&s, &t);
    s.post("/api/auth/logout", Some(&t.access), json!({})).expect(200, None);
    refused_at_once(&s, &t, w, "logout");

    let (t, other) = (login(), s.login("cache_user", PW, SAFARI_IPHONE));
    let w = warm(&s, &other);
    s.post("/api/auth/logout-all", Some(&t.access), json!({})).expect(200, None);
    refused_at_once(&s, &other, w, "logout-all");

    let (t, other) = (login(), login());
    let w = warm(&s, &other);
    s.request("DELETE", &format!("/api/sessions/{}", other.session_id()), Some(&t.access), None)
        .expect(200, None);
    refused_at_once(&s, &other, w, "delete");

    let other = login();
    let w = warm(&s, &other);
    let path = format!("/api/sessions/{}/deactivate", other.session_id());
    s.request("PATCH", &path, Some(&t.access), None).expect(200, None);
    refused_at_once(&s, &other, w, "deactivate");

    // Refresh reuse (no grace window): the session dies, and with it every
    // access token of it.
    let other = login();
    s.post("/api/auth/refresh", None, json!({"refresh_token": other.refresh})).expect(200, None);
    let w = warm(&s, &other);
    s.post("/api/auth/refresh", None, json!({"refresh_token": other.refresh}))
        .expect(401, Some("REFRESH_TOKEN_REUSED"));
    refused_at_once(&s, &other, w, "refresh reuse");

    let w = warm(&s, &t);
    s.request(
        "PATCH",
        &format!("/api/admin/users/{user_id}"),
        Some(&admin.access),
        Some(json!({"status": "suspended"})),
    )
    .expect(200, None);
    refused_at_once(&s, &t, w, "suspension");

    // A role change is seen at once too: the admin demoted is no admin.
    let second = s.register("cache_second_admin", PW);
    let second_id = second["_id"].as_str().expect("_id").to_owned();
    let promote = |role: &str| {
        s.request(
            "PATCH",
            &format!("/api/admin/users/{second_id}"),
            Some(&admin.access),
            Some(json!({"role": role})),
        )
        .expect(200, None);
    };
    promote("admin");
    let second = s.login("cache_second_admin", PW, CHROME_WINDOWS);
    s.get("/api/audit", Some(&second.access)).expect(200, None);
    promote("user");
    s.get("/api/audit", Some(&second.access)).expect(403, Some("FORBIDDEN"));
}

fn lifetimes_are_checked_on_cached_state(db: Db) {
    let Some(s) = Server::start_with(
        db,
        &[("SESSIOND_SESSION_LIFETIME_SECS", "3"), ("SESSIOND_SESSION_IDLE_TIMEOUT_SECS", "2")],
    ) else {
        return;
    };
    s.register("cache_lives", PW);
    let t = s.login("cache_lives", PW, CHROME_WINDOWS);
    let born = Instant::now();
    // Used every 100 ms for longer than the idle timeout: never idle, and
    // its state is always cached.
    let mut last_used = born;
    while born.elapsed() < Duration::from_millis(2600) {
        warm(&s, &t);
        last_used = Instant::now();
        sleep(Duration::from_millis(100));
    }
    // Past the absolute lifetime, right after a use.
    sleep(Duration::from_millis(3150).saturating_sub(born.elapsed()));
    refused_at_once(&s, &t, last_used, "absolute expiry");

    // Idle: left alone past the idle timeout.
    let t = s.login("cache_lives", PW, CHROME_WINDOWS);
    warm(&s, &t);
    sleep(Duration::from_millis(2200));
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
}
