//! The audit log of SPEC section 3: security events with time, user,
//! session, IP, user agent and request id; `GET /api/audit/me` and the
//! admin's `GET /api/audit`, filtered and paged.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::{
    CHROME_WINDOWS, Db, FIREFOX_LINUX, Resp, SAFARI_IPHONE, Server, Tokens, assert_timestamp,
    create_admin, millis,
};

crate::on_both_databases!(
    own_events_newest_first_with_every_field,
    filters_and_pages,
    admin_sees_everyone_users_only_themselves,
    session_management_is_audited,
);

const PW: &str = "correct horse battery";

/// Sends a request with a user agent and a request id.
fn send_as(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    user_agent: &str,
    request_id: &str,
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = s
        .client()
        .request(method, s.url(path))
        .header("User-Agent", user_agent)
        .header("X-Request-Id", request_id);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = s.send(req);
    assert_eq!(r.header("x-request-id"), Some(request_id));
    r
}

/// One page of an audit listing; asserts 200 and the shape.
#[track_caller]
fn page(s: &Server, path: &str, token: &str) -> (Vec<Value>, Option<String>) {
    let r = s.get(path, Some(token));
    r.expect(200, None);
    let data = &r.body["data"];
    let events = data["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: data.events is not an array: {}", r.text))
        .clone();
    assert!(data.get("next_cursor").is_some(), "{path}: no next_cursor: {}", r.text);
    let cursor = match &data["next_cursor"] {
        Value::Null => None,
        Value::String(c) => Some(c.clone()),
        other => panic!("{path}: next_cursor is {other}"),
    };
    for e in &events {
        assert_event_shape(e);
    }
    // Newest first.
    for w in events.windows(2) {
        assert!(millis(&w[0]["at"]) >= millis(&w[1]["at"]), "{path}: not newest first: {w:?}");
    }
    (events, cursor)
}

/// Every event of a listing, following `next_cursor` with pages of `limit`.
#[track_caller]
fn all_pages(s: &Server, path: &str, token: &str, limit: usize) -> (Vec<Value>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut events = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path}{sep}limit={limit}"),
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
        };
        let (page_events, next) = page(s, &url, token);
        pages += 1;
        assert!(page_events.len() <= limit, "{url}: page larger than the limit");
        if next.is_some() {
            assert_eq!(page_events.len(), limit, "{url}: a short page that is not the last");
        }
        for e in &page_events {
            assert!(
                !events.iter().any(|seen: &Value| seen["id"] == e["id"]),
                "{url}: event {} came back on page {pages}: the cursor must be exclusive",
                e["id"]
            );
        }
        events.extend(page_events);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 1000, "paging does not end");
    }
    (events, pages)
}

#[track_caller]
fn assert_event_shape(e: &Value) {
    for field in [
        "id",
        "at",
        "action",
        "user_id",
        "session_id",
        "ip_address",
        "user_agent",
        "request_id",
        "outcome",
    ] {
        assert!(e.get(field).is_some(), "event lacks {field}: {e}");
    }
    assert!(e["id"].as_str().is_some_and(|id| id.len() == 36), "id: {e}");
    assert!(e["action"].is_string(), "{e}");
    assert!(e["outcome"].is_string(), "{e}");
    assert_timestamp(&e["at"]);
}

fn actions(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["action"].as_str().unwrap_or_default()).collect()
}

fn event_ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["id"].as_str().unwrap_or_default()).collect()
}

fn user_id(user: &Value) -> String {
    user["_id"].as_str().expect("_id").to_owned()
}

fn login_as(s: &Server, username: &str, ua: &str, request_id: &str) -> Tokens {
    let r = send_as(
        s,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": username, "password": PW})),
        ua,
        request_id,
    );
    r.expect(200, None);
    Tokens {
        access: r.body["data"]["access_token"].as_str().expect("access_token").to_owned(),
        refresh: r.body["data"]["refresh_token"].as_str().expect("refresh_token").to_owned(),
        data: r.body["data"].clone(),
    }
}

fn own_events_newest_first_with_every_field(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let r = send_as(
        &s,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"username": "alice", "password": PW})),
        CHROME_WINDOWS,
        "reg-1",
    );
    r.expect(201, None);
    let alice = user_id(&r.body["data"]);
    let wrong = send_as(
        &s,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": "alice", "password": "not the password"})),
        FIREFOX_LINUX,
        "fail-1",
    );
    wrong.expect(401, Some("INVALID_CREDENTIALS"));
    let l = login_as(&s, "alice", SAFARI_IPHONE, "login-1");
    let refreshed = send_as(
        &s,
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": l.refresh})),
        SAFARI_IPHONE,
        "refresh-1",
    );
    refreshed.expect(200, None);
    let access = refreshed.body["data"]["access_token"].as_str().expect("access_token");
    send_as(
        &s,
        "POST",
        "/api/auth/logout",
        Some(access),
        Some(json!({})),
        SAFARI_IPHONE,
        "logout-1",
    )
    .expect(200, None);
    // Someone else's events must not show up.
    s.register("bob", PW);
    s.login("bob", PW, CHROME_WINDOWS);
    s.post("/api/auth/login", None, json!({"username": "bob", "password": "nope nope"}))
        .expect(401, Some("INVALID_CREDENTIALS"));

    let reader = login_as(&s, "alice", CHROME_WINDOWS, "login-2");
    s.get("/api/audit/me", None).expect(401, Some("UNAUTHORIZED"));
    let r = s.get("/api/audit/me", Some(&reader.access));
    r.expect(200, None);
    let (events, cursor) = page(&s, "/api/audit/me", &reader.access);
    assert_eq!(cursor, None, "everything fits in the default page");
    assert_eq!(
        actions(&events),
        ["login", "logout", "refresh", "login", "login_failed", "register"],
        "{events:#?}"
    );
    let unique: HashSet<&str> = event_ids(&events).into_iter().collect();
    assert_eq!(unique.len(), events.len(), "ids are unique");
    let l_sid = l.session_id();
    let expected = [
        ("login-2", CHROME_WINDOWS, Some(reader.session_id())),
        ("logout-1", SAFARI_IPHONE, Some(l_sid.clone())),
        ("refresh-1", SAFARI_IPHONE, Some(l_sid.clone())),
        ("login-1", SAFARI_IPHONE, Some(l_sid)),
        ("fail-1", FIREFOX_LINUX, None),
        ("reg-1", CHROME_WINDOWS, None),
    ];
    for (e, (rid, ua, sid)) in events.iter().zip(expected) {
        assert_eq!(e["request_id"], rid, "{e}");
        assert_eq!(e["user_agent"], ua, "{e}");
        assert_eq!(e["ip_address"], "127.0.0.1", "{e}");
        assert_eq!(e["user_id"], alice.as_str(), "{e}");
        match sid {
            Some(sid) => assert_eq!(e["session_id"], sid.as_str(), "{e}"),
            None => assert!(e["session_id"].is_null(), "{e}"),
        }
    }
    assert_ne!(events[3]["outcome"], events[4]["outcome"], "success and failure differ");
    assert_eq!(events[0]["outcome"], events[3]["outcome"]);
    // Trailing slash.
    let (again, _) = page(&s, "/api/audit/me/", &reader.access);
    assert_eq!(event_ids(&again), event_ids(&events), "listing is not itself audited");
}

fn filters_and_pages(db: Db) {
    let Some(s) = Server::start(db) else { return };
    // Seven events: register, two failures, three logins, one refresh.
    s.register("quinn", PW);
    for _ in 0..2 {
        s.post("/api/auth/login", None, json!({"username": "quinn", "password": "wrong wrong"}))
            .expect(401, Some("INVALID_CREDENTIALS"));
    }
    let t1 = s.login("quinn", PW, CHROME_WINDOWS);
    s.login("quinn", PW, SAFARI_IPHONE);
    let t = s.login("quinn", PW, FIREFOX_LINUX);
    s.post("/api/auth/refresh", None, json!({"refresh_token": t1.refresh})).expect(200, None);

    let (full, cursor) = page(&s, "/api/audit/me", &t.access);
    assert_eq!(cursor, None);
    assert_eq!(full.len(), 7, "{full:#?}");
    let (paged, pages) = all_pages(&s, "/api/audit/me", &t.access, 2);
    assert_eq!(pages, 4, "7 events in pages of 2");
    assert_eq!(event_ids(&paged), event_ids(&full), "every event exactly once, in order");

    let (logins, cursor) = page(&s, "/api/audit/me?action=login", &t.access);
    assert_eq!(cursor, None);
    assert_eq!(actions(&logins), ["login", "login", "login"]);
    let expected: Vec<&str> = full
        .iter()
        .filter(|e| e["action"] == "login")
        .map(|e| e["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(event_ids(&logins), expected);
    let (paged, pages) = all_pages(&s, "/api/audit/me?action=login", &t.access, 2);
    assert_eq!(pages, 2);
    assert_eq!(event_ids(&paged), expected);
    let (failed, _) = page(&s, "/api/audit/me?action=login_failed", &t.access);
    assert_eq!(actions(&failed), ["login_failed", "login_failed"]);
    let (none, cursor) = page(&s, "/api/audit/me?action=logout", &t.access);
    assert!(none.is_empty() && cursor.is_none());
    let (one, cursor) = page(&s, "/api/audit/me?limit=1", &t.access);
    assert_eq!(event_ids(&one), event_ids(&full[..1]));
    assert!(cursor.is_some());
    let (all, cursor) = page(&s, "/api/audit/me?limit=1000", &t.access);
    assert_eq!(all.len(), 7);
    assert!(cursor.is_none());

    // Time filters.
    let (future, cursor) = page(&s, "/api/audit/me?from=2999-01-01T00:00:00Z", &t.access);
    assert!(future.is_empty() && cursor.is_none());
    let (past, _) = page(&s, "/api/audit/me?to=2000-01-01T00:00:00Z", &t.access);
    assert!(past.is_empty());
    let (since, _) = page(&s, "/api/audit/me?from=2000-01-01T02:00:00%2B02:00", &t.access);
    assert_eq!(since.len(), 7);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "from=2024-01-01T00:00:00",
        "to=yesterday",
        "cursor=not-a-cursor",
    ] {
        let r = s.get(&format!("/api/audit/me?{bad}"), Some(&t.access));
        r.expect(422, Some("VALIDATION_ERROR"));
        let field = bad.split('=').next().unwrap_or_default();
        assert!(r.body["error"]["details"][field].is_string(), "{bad}: {}", r.text);
    }
}

fn admin_sees_everyone_users_only_themselves(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let admin = create_admin(&s, "root", PW);
    let alice = user_id(&s.register("alice", PW));
    let bob = user_id(&s.register("bob", PW));
    let a = s.login("alice", PW, CHROME_WINDOWS);
    let b = s.login("bob", PW, SAFARI_IPHONE);
    s.post("/api/auth/login", None, json!({"username": "bob", "password": "wrong wrong"}))
        .expect(401, Some("INVALID_CREDENTIALS"));
    s.post("/api/auth/login", None, json!({"username": "nobody", "password": "wrong wrong"}))
        .expect(401, Some("INVALID_CREDENTIALS"));

    // Users see only themselves.
    for (t, me) in [(&a, &alice), (&b, &bob)] {
        s.get("/api/audit", Some(&t.access)).expect(403, Some("FORBIDDEN"));
        s.get(&format!("/api/audit?user_id={me}"), Some(&t.access)).expect(403, Some("FORBIDDEN"));
        let (mine, _) = page(&s, "/api/audit/me", &t.access);
        assert!(!mine.is_empty());
        assert!(mine.iter().all(|e| e["user_id"] == me.as_str()), "{mine:#?}");
    }
    let (alices, _) = page(&s, "/api/audit/me", &a.access);
    assert_eq!(actions(&alices), ["login", "register"]);
    // A user_id filter on /me never shows another user's events.
    let r = s.get(&format!("/api/audit/me?user_id={bob}"), Some(&a.access));
    if r.status == 200 {
        let (events, _) = page(&s, &format!("/api/audit/me?user_id={bob}"), &a.access);
        assert!(events.iter().all(|e| e["user_id"] == alice.as_str()), "{}", r.text);
    } else {
        assert!(matches!(r.status, 403 | 422), "{}", r.text);
        assert_eq!(r.body["success"], false);
    }
    s.get("/api/audit", None).expect(401, Some("UNAUTHORIZED"));

    // The admin sees everyone.
    let (everything, _) = page(&s, "/api/audit", &admin.access);
    let users: HashSet<&str> = everything.iter().filter_map(|e| e["user_id"].as_str()).collect();
    let admin_id = admin.data["user"]["_id"].as_str().unwrap_or_default();
    for u in [alice.as_str(), bob.as_str(), admin_id] {
        assert!(users.contains(u), "admin sees events of {u}: {everything:#?}");
    }
    assert!(
        everything.iter().any(|e| e["action"] == "login_failed" && e["user_id"].is_null()),
        "a failed login for an unknown user is audited without a user: {everything:#?}"
    );
    let (bobs, _) = page(&s, &format!("/api/audit?user_id={bob}"), &admin.access);
    assert!(bobs.iter().all(|e| e["user_id"] == bob.as_str()), "{bobs:#?}");
    assert_eq!(actions(&bobs), ["login_failed", "login", "register"]);
    let (own, _) = page(&s, "/api/audit/me", &b.access);
    assert_eq!(event_ids(&bobs), event_ids(&own));
    let (alice_logins, _) =
        page(&s, &format!("/api/audit?user_id={alice}&action=login"), &admin.access);
    assert_eq!(actions(&alice_logins), ["login"]);
    assert_eq!(alice_logins[0]["session_id"], a.session_id().as_str());
    let (paged, _) = all_pages(&s, "/api/audit", &admin.access, 2);
    assert_eq!(event_ids(&paged), event_ids(&everything));
    s.get("/api/audit?limit=0", Some(&admin.access)).expect(422, Some("VALIDATION_ERROR"));
    s.get("/api/audit?limit=1001", Some(&admin.access)).expect(422, Some("VALIDATION_ERROR"));
}

fn session_management_is_audited(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let dana = user_id(&s.register("dana", PW));
    let a = s.login("dana", PW, CHROME_WINDOWS);
    let b = s.login("dana", PW, SAFARI_IPHONE);
    let c = s.login("dana", PW, FIREFOX_LINUX);
    let e = s.login("dana", PW, FIREFOX_LINUX);

    let path = format!("/api/sessions/{}", b.session_id());
    send_as(&s, "DELETE", &path, Some(&a.access), None, CHROME_WINDOWS, "del-1").expect(200, None);
    let path = format!("/api/v1/auth/users/me/sessions/{}/", e.session_id());
    send_as(&s, "DELETE", &path, Some(&a.access), None, CHROME_WINDOWS, "del-2").expect(200, None);
    let path = format!("/api/sessions/{}/deactivate", c.session_id());
    send_as(&s, "PATCH", &path, Some(&a.access), None, CHROME_WINDOWS, "deact-1").expect(200, None);
    send_as(
        &s,
        "POST",
        "/api/auth/logout-all",
        Some(&a.access),
        Some(json!({})),
        CHROME_WINDOWS,
        "all-1",
    )
    .expect(200, None);

    let t = s.login("dana", PW, CHROME_WINDOWS);
    let (deleted, _) = page(&s, "/api/audit/me?action=session_delete", &t.access);
    assert_eq!(actions(&deleted), ["session_delete", "session_delete"], "{deleted:#?}");
    assert_eq!(deleted[0]["session_id"], e.session_id().as_str());
    assert_eq!(deleted[0]["request_id"], "del-2");
    assert_eq!(deleted[1]["session_id"], b.session_id().as_str());
    assert_eq!(deleted[1]["request_id"], "del-1");
    let (deactivated, _) = page(&s, "/api/audit/me?action=session_deactivate", &t.access);
    assert_eq!(actions(&deactivated), ["session_deactivate"], "{deactivated:#?}");
    assert_eq!(deactivated[0]["session_id"], c.session_id().as_str());
    assert_eq!(deactivated[0]["request_id"], "deact-1");
    let (all, _) = page(&s, "/api/audit/me?action=logout_all", &t.access);
    assert_eq!(actions(&all), ["logout_all"], "{all:#?}");
    assert_eq!(all[0]["request_id"], "all-1");
    for ev in deleted.iter().chain(&deactivated).chain(&all) {
        assert_eq!(ev["user_id"], dana.as_str(), "{ev}");
        assert_eq!(ev["user_agent"], CHROME_WINDOWS, "{ev}");
        assert_eq!(ev["ip_address"], "127.0.0.1", "{ev}");
    }
    // Unknown sessions change nothing and are not security events of the user.
    s.request("DELETE", "/api/sessions/abc", Some(&t.access), None)
        .expect(404, Some("SESSION_NOT_FOUND"));
    let (deleted_again, _) = page(&s, "/api/audit/me?action=session_delete", &t.access);
    assert_eq!(deleted_again.len(), 2);
}
