//! Analytics access rules, state machine and validation (SPEC section 4):
//! `user: "all"`, authorization by user and app, foreign sessions, invalid
//! transitions, bad times, pages and durations, and the public switches.

use serde_json::{Value, json};

use super::{APP, assert_fields, ok, report, server, start, step, user};
use crate::support::{Db, Resp, Server, create_admin};

crate::on_both_databases!(
    all_aggregates_for_admins_and_public_endpoints_only,
    authorization_by_user_and_app,
    state_machine_and_event_times,
    report_and_tracking_inputs_are_validated,
    public_endpoints_can_be_switched,
);

/// The reports that need a bearer token (every report that reads `from`,
/// `to` and `tz`).
pub(crate) const PROTECTED_REPORTS: [&str; 9] = [
    "/api/sessions/heatmap",
    "/api/sessions/most-active",
    "/api/sessions/stats",
    "/api/sessions/summary",
    "/api/sessions/timeline",
    "/api/sessions/daily-time-spent",
    "/api/sessions/time-by-page",
    "/api/sessions/session-timeline-detail",
    "/api/pages/stats",
];

/// A well-formed UUID no tracked session has.
const MISSING: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

/// Asserts a 422 naming `field` in `details`.
#[track_caller]
fn invalid(r: &Resp, field: &str) {
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(
        r.body["error"]["details"][field].is_string(),
        "details should name {field}: {}",
        r.text
    );
}

fn track(s: &Server, token: Option<&str>, body: Value) -> Resp {
    s.post("/api/pages/track", token, body)
}

// ---------------------------------------------------------------------------
// 3. `user: "all"`.

fn all_aggregates_for_admins_and_public_endpoints_only(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let erin = user(&s, "erin", APP);
    let frank = user(&s, "frank", "other_app");
    let admin = create_admin(&s, "root", super::PW);
    let (d, e, f, a) =
        (dana.access.as_str(), erin.access.as_str(), frank.access.as_str(), admin.access.as_str());

    // dana: D1 Mon 2024-05-06 10:00–10:30 (1800 s), D2 Tue 05-07 11:00–12:00
    // (3600 s). erin: E1 Mon 05-06 10:20–10:25 (300 s), overlapping D1.
    // frank, in other_app: 05-06 10:40–11:40; never part of my_app's data.
    let d1 = start(&s, d, "dana", APP, "2024-05-06T10:00:00Z");
    ok(&step(&s, d, "end", "dana", APP, &d1, "2024-05-06T10:30:00Z"));
    let d2 = start(&s, d, "dana", APP, "2024-05-07T11:00:00Z");
    ok(&step(&s, d, "end", "dana", APP, &d2, "2024-05-07T12:00:00Z"));
    let e1 = start(&s, e, "erin", APP, "2024-05-06T10:20:00Z");
    ok(&step(&s, e, "end", "erin", APP, &e1, "2024-05-06T10:25:00Z"));
    let f1 = start(&s, f, "frank", "other_app", "2024-05-06T10:40:00Z");
    ok(&step(&s, f, "end", "frank", "other_app", &f1, "2024-05-06T11:40:00Z"));
    for (user, app, page, secs, time) in [
        ("dana", APP, "/a", 10, "2024-05-06T10:05:00Z"),
        ("erin", APP, "/a", 20, "2024-05-06T10:21:00Z"),
        ("frank", "other_app", "/a", 1000, "2024-05-06T10:41:00Z"),
    ] {
        ok(&track(
            &s,
            None,
            json!({"user": user, "page": page, "timespent": secs, "app": app, "time": time}),
        ));
    }

    let all = json!({"app": APP, "user": "all"});
    // 3 sessions; ended 1800 + 3600 + 300 = 5700 s = 01:35:00; average 1900
    // s = 00:31:40; longest 01:00:00; shortest 00:05:00.
    let summary = json!({"total_sessions": 3, "total_duration": "01:35:00",
        "average_duration": "00:31:40", "longest_session": "01:00:00",
        "shortest_session": "00:05:00"});
    assert_fields("all summary", &report(&s, "/api/sessions/summary", Some(a), &all), &summary);
    assert_fields(
        "all stats",
        &report(&s, "/api/sessions/stats", Some(a), &all),
        &json!({"total_sessions": 3, "average_session_duration": "00:31:40",
                "total_time_spent": "01:35:00", "active_days": 2}),
    );
    let r = s.post("/api/sessions/heatmap", Some(a), all.clone());
    let heat = json!({"daily_sessions": {"2024-05-06": 2, "2024-05-07": 1},
        "weekly_hourly": {"0": {"10": 2}, "1": {"11": 1}}, "total_sessions": 3,
        "total_days_with_activity": 2,
        "date_range": {"start_date": "2024-05-06", "end_date": "2024-05-07"}});
    assert_fields("all heatmap", &ok(&r), &heat);
    assert_fields("all heatmap_data", &r.body["heatmap_data"], &heat);
    assert_fields(
        "all most-active",
        &report(&s, "/api/sessions/most-active", Some(a), &all),
        &json!({"most_active_day": "Monday", "most_active_hour": 10, "peak_sessions": 2}),
    );
    // Overlapping sessions add up: 05-06 1800 + 300 = 2100 s = 00:35:00.
    assert_fields(
        "all daily",
        &report(&s, "/api/sessions/daily-time-spent", Some(a), &all),
        &json!({"daily_time": {"2024-05-06": "00:35:00", "2024-05-07": "01:00:00"}}),
    );
    assert_fields(
        "all time-by-page",
        &report(&s, "/api/sessions/time-by-page", Some(a), &all),
        &json!({"page_time": {"/a": "00:00:30"}}),
    );
    assert_fields(
        "all pages/stats",
        &report(&s, "/api/pages/stats", Some(a), &all),
        &json!({"page_stats": {"/a": {"visits": 2, "total_time": "00:00:30",
                                      "average_time": "00:00:15"}}}),
    );
    let order = [d1.as_str(), e1.as_str(), d2.as_str()];
    for (path, token, key) in [
        ("/api/sessions/timeline", Some(a), "timeline"),
        ("/api/sessions/public-timeline", None, "timeline"),
        ("/api/sessions/session-timeline-detail", Some(a), "detailed_timeline"),
    ] {
        let data = report(&s, path, token, &all);
        let ids: Vec<&str> = data[key]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {data}"))
            .iter()
            .map(|e| e["session_id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, order, "{path}: both users' sessions in start order: {data}");
    }

    // The public endpoints accept `all` without a token.
    assert_fields(
        "public all summary",
        &report(&s, "/api/sessions/public-summary", None, &all),
        &summary,
    );
    // Admins see any one user too, and other apps.
    assert_fields(
        "admin on dana",
        &report(&s, "/api/sessions/summary", Some(a), &json!({"app": APP, "user": "dana"})),
        &json!({"total_sessions": 2, "total_duration": "01:30:00"}),
    );
    assert_fields(
        "admin on other_app",
        &report(&s, "/api/sessions/summary", Some(a), &json!({"app": "other_app", "user": "all"})),
        &json!({"total_sessions": 1, "total_duration": "01:00:00"}),
    );

    // `all` without the admin role: 403 on every protected report.
    for path in PROTECTED_REPORTS {
        let r = s.post(path, Some(d), all.clone());
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        r.expect(403, Some("FORBIDDEN"));
    }
}

// ---------------------------------------------------------------------------
// 4. Authorization, the state machine, validation.

fn authorization_by_user_and_app(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let erin = user(&s, "erin", APP);
    let dana_other = s.login_app("dana", super::PW, "other_app");
    let admin = create_admin(&s, "root", super::PW);
    let (d, e, dother) = (dana.access.as_str(), erin.access.as_str(), dana_other.access.as_str());

    // No token.
    let body = json!({"user": "dana", "time": "2024-04-01T10:00:00Z", "app": APP});
    s.post("/api/sessions/start", None, body.clone()).expect(401, Some("UNAUTHORIZED"));
    for path in PROTECTED_REPORTS {
        let r = s.post(path, None, json!({"app": APP, "user": "dana"}));
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        r.expect(401, Some("UNAUTHORIZED"));
    }

    // Another user, another app: 403.
    let r = s.post(
        "/api/sessions/start",
        Some(d),
        json!({"user": "erin", "time": "2024-04-01T10:00:00Z", "app": APP}),
    );
    r.expect(403, Some("FORBIDDEN"));
    let r = s.post(
        "/api/sessions/start",
        Some(d),
        json!({"user": "dana", "time": "2024-04-01T10:00:00Z", "app": "other_app"}),
    );
    r.expect(403, Some("FORBIDDEN"));
    for path in PROTECTED_REPORTS {
        let r = s.post(path, Some(d), json!({"app": APP, "user": "erin"}));
        assert_eq!(r.status, 403, "{path} for another user: {}", r.text);
        r.expect(403, Some("FORBIDDEN"));
        let r = s.post(path, Some(d), json!({"app": "other_app", "user": "dana"}));
        assert_eq!(r.status, 403, "{path} for another app: {}", r.text);
        r.expect(403, Some("FORBIDDEN"));
    }

    // Sessions of another user, of another app, unknown, not a UUID: 404.
    let erins = start(&s, e, "erin", APP, "2024-04-01T10:00:00Z");
    let other_app = start(&s, dother, "dana", "other_app", "2024-04-01T10:00:00Z");
    let mine = start(&s, d, "dana", APP, "2024-04-01T10:00:00Z");
    for action in ["pause", "resume", "end"] {
        for id in [erins.as_str(), other_app.as_str(), MISSING, "not-a-uuid"] {
            let r = step(&s, d, action, "dana", APP, id, "2024-04-01T10:30:00Z");
            assert_eq!(r.status, 404, "{action} {id}: {}", r.text);
            r.expect(404, Some("SESSION_NOT_FOUND"));
        }
    }
    // The same via the pages' session_id.
    for id in [erins.as_str(), other_app.as_str(), MISSING] {
        let r = s.post(
            "/api/pages/track",
            Some(d),
            json!({"user": "dana", "page": "/x", "timespent": 1, "app": APP, "session_id": id}),
        );
        assert_eq!(r.status, 404, "track with session {id}: {}", r.text);
        r.expect(404, Some("SESSION_NOT_FOUND"));
    }
    // Nothing was changed by those: the owners still step their sessions.
    ok(&step(&s, e, "pause", "erin", APP, &erins, "2024-04-01T10:10:00Z"));
    ok(&step(&s, dother, "end", "dana", "other_app", &other_app, "2024-04-01T10:10:00Z"));
    ok(&step(&s, d, "end", "dana", APP, &mine, "2024-04-01T10:10:00Z"));
    let r = s.post(
        "/api/pages/track",
        Some(d),
        json!({"user": "dana", "page": "/x", "timespent": 1, "app": APP, "session_id": mine}),
    );
    ok(&r);

    // The app of the token is the app of the data: dana's my_app token sees
    // one session of my_app, her other_app token one of other_app.
    assert_fields(
        "dana my_app",
        &report(&s, "/api/sessions/summary", Some(d), &json!({"app": APP, "user": "dana"})),
        &json!({"total_sessions": 1, "total_duration": "00:10:00"}),
    );
    assert_fields(
        "dana other_app",
        &report(
            &s,
            "/api/sessions/summary",
            Some(dother),
            &json!({"app": "other_app", "user": "dana"}),
        ),
        &json!({"total_sessions": 1, "total_duration": "00:10:00"}),
    );
    // Usernames compare case-insensitively (SPEC §2).
    let upper = start(&s, d, "DANA", APP, "2024-04-02T10:00:00Z");
    ok(&step(&s, d, "end", "Dana", APP, &upper, "2024-04-02T10:01:00Z"));
    assert_fields(
        "Dana",
        &report(&s, "/api/sessions/summary", Some(d), &json!({"app": APP, "user": "Dana"})),
        &json!({"total_sessions": 2, "total_duration": "00:11:00"}),
    );
    // An admin reads anyone's data in any app.
    assert_fields(
        "admin on erin",
        &report(
            &s,
            "/api/sessions/timeline",
            Some(&admin.access),
            &json!({"app": APP, "user": "erin"}),
        ),
        &json!({"timeline": [{"session_id": erins, "start_time": "2024-04-01T10:00:00.000Z",
                              "end_time": null, "duration": null, "status": "paused"}],
                "next_cursor": null}),
    );
}

fn state_machine_and_event_times(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let d = dana.access.as_str();
    let transition = |r: &Resp, what: &str| {
        assert_eq!(r.status, 409, "{what}: {}", r.text);
        r.expect(409, Some("INVALID_STATE_TRANSITION"));
    };

    let id = start(&s, d, "dana", APP, "2024-04-01T10:00:00Z");
    transition(&step(&s, d, "resume", "dana", APP, &id, "2024-04-01T10:05:00Z"), "resume active");
    ok(&step(&s, d, "pause", "dana", APP, &id, "2024-04-01T10:10:00Z"));
    transition(&step(&s, d, "pause", "dana", APP, &id, "2024-04-01T10:15:00Z"), "pause paused");
    // Earlier than the last event (the pause at 10:10): 422.
    invalid(&step(&s, d, "resume", "dana", APP, &id, "2024-04-01T10:09:59Z"), "time");
    invalid(&step(&s, d, "end", "dana", APP, &id, "2024-04-01T10:09:59.999Z"), "time");
    // Equal to it is not earlier.
    ok(&step(&s, d, "resume", "dana", APP, &id, "2024-04-01T10:10:00Z"));
    // Active 10:00–10:10 + 10:10–10:30 = 30 min.
    let data = ok(&step(&s, d, "end", "dana", APP, &id, "2024-04-01T10:30:00Z"));
    assert_eq!(data["total_duration"], "00:30:00", "{data}");
    for action in ["pause", "resume", "end"] {
        let r = step(&s, d, action, "dana", APP, &id, "2024-04-01T11:00:00Z");
        transition(&r, &format!("{action} ended"));
    }

    // End from paused: active 11:00–11:20 only.
    let id2 = start(&s, d, "dana", APP, "2024-04-01T11:00:00Z");
    ok(&step(&s, d, "pause", "dana", APP, &id2, "2024-04-01T11:20:00Z"));
    let data = ok(&step(&s, d, "end", "dana", APP, &id2, "2024-04-01T11:50:00Z"));
    assert_fields(
        "end paused",
        &data,
        &json!({"status": "ended", "end_time": "2024-04-01T11:50:00.000Z",
                "total_duration": "00:20:00"}),
    );

    // Concurrent ends of one session: exactly one wins, the rest are 409.
    let raced = start(&s, d, "dana", APP, "2024-04-01T11:55:00Z");
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    step(&s, d, "end", "dana", APP, &raced, "2024-04-01T11:59:00Z").status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "one end wins: {codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 5, "the others are 409: {codes:?}");

    // Bad times: no offset, not a time, not a string.
    for bad in [json!("2024-04-01T12:00:00"), json!("yesterday"), json!(12345)] {
        let r = s.post(
            "/api/sessions/start",
            Some(d),
            json!({"user": "dana", "time": bad, "status": "active", "app": APP}),
        );
        invalid(&r, "time");
    }
    let id3 = start(&s, d, "dana", APP, "2024-04-01T12:00:00Z");
    for bad in ["2024-04-01T12:30:00", "2024-04-01 12:30", "12:30"] {
        invalid(&step(&s, d, "pause", "dana", APP, &id3, bad), "time");
    }
    // A start's status, when given, must be "active".
    for bad in [json!("paused"), json!("ended"), json!("ACTIVE_NOT"), json!(1)] {
        let r = s.post(
            "/api/sessions/start",
            Some(d),
            json!({"user": "dana", "time": "2024-04-02T10:00:00Z", "status": bad, "app": APP}),
        );
        invalid(&r, "status");
    }
    // Without time and status: now, active.
    let r = s.post("/api/sessions/start", Some(d), json!({"user": "dana", "app": APP}));
    let data = ok(&r);
    assert_eq!(data["status"], "active", "{}", r.text);
    crate::support::assert_timestamp(&data["start_time"]);
    let at = crate::support::millis(&data["start_time"]);
    assert!(at > 1_700_000_000_000, "dated by the server's clock: {}", r.text);
    // The refused requests created nothing: 4 sessions in April 2024 (the
    // one just started is dated now, outside the range); the raced one was
    // ended once, 4 minutes: 30 + 20 + 4 minutes over the 3 ended.
    let data = report(
        &s,
        "/api/sessions/stats",
        Some(d),
        &json!({"app": APP, "user": "dana", "from": "2024-04-01", "to": "2024-04-30"}),
    );
    assert_fields(
        "after refusals",
        &data,
        &json!({"total_sessions": 4, "total_time_spent": "00:54:00"}),
    );
}

fn report_and_tracking_inputs_are_validated(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let admin = create_admin(&s, "root", super::PW);
    let d = dana.access.as_str();
    let base = json!({"app": APP, "user": "dana"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };

    for path in PROTECTED_REPORTS {
        invalid(&s.post(path, Some(d), with("tz", json!("Mars/Olympus"))), "tz");
        invalid(&s.post(path, Some(d), with("from", json!("2024-13-01"))), "from");
        invalid(&s.post(path, Some(d), with("from", json!("2024-03-01T00:00:00"))), "from");
        invalid(&s.post(path, Some(d), with("to", json!("yesterday"))), "to");
    }
    for path in ["/api/sessions/public-summary", "/api/sessions/public-timeline"] {
        invalid(&s.post(path, None, with("tz", json!("Not/AZone"))), "tz");
    }
    for path in [
        "/api/sessions/timeline",
        "/api/sessions/public-timeline",
        "/api/sessions/session-timeline-detail",
    ] {
        let token = (!path.contains("public")).then_some(d);
        invalid(&s.post(path, token, with("limit", json!(1001))), "limit");
        ok(&s.post(path, token, with("limit", json!(1000))));
    }
    // A cursor that no page handed out.
    for path in ["/api/sessions/timeline", "/api/sessions/session-timeline-detail"] {
        invalid(&s.post(path, Some(d), with("cursor", json!("not-a-cursor"))), "cursor");
    }
    // Missing or mistyped fields, a body that is not an object, not JSON.
    invalid(&s.post("/api/sessions/stats", Some(d), json!({"user": "dana"})), "app");
    invalid(&s.post("/api/sessions/stats", Some(d), json!({"app": APP, "user": 7})), "user");
    invalid(&s.post("/api/sessions/start", Some(d), json!({"app": APP})), "user");
    s.post("/api/sessions/stats", Some(d), json!([])).expect(422, Some("VALIDATION_ERROR"));
    let r = s.send(
        s.client()
            .post(s.url("/api/sessions/stats"))
            .bearer_auth(d)
            .header("Content-Type", "application/json")
            .body("{not json"),
    );
    r.expect(400, Some("BAD_REQUEST"));
    // An app with spaces (as admin, who may name any app).
    let r = s.post(
        "/api/sessions/heatmap",
        Some(&admin.access),
        json!({"app": "my app", "user": "dana"}),
    );
    invalid(&r, "app");

    // Page tracking (public by default).
    let visit = |page: Value, secs: Value, app: &str| json!({"user": "dana", "page": page, "timespent": secs, "app": app});
    invalid(&track(&s, None, visit(json!("dashboard"), json!(1), APP)), "page");
    invalid(&track(&s, None, visit(json!(""), json!(1), APP)), "page");
    let long = format!("/{}", "a".repeat(2048));
    invalid(&track(&s, None, visit(json!(long), json!(1), APP)), "page");
    let longest = format!("/{}", "a".repeat(2047));
    let data = ok(&track(&s, None, visit(json!(longest), json!(1), APP)));
    assert_eq!(data["page"], json!(longest));
    for bad in [json!(-1), json!(86401), json!(1.5), json!("120"), json!(null)] {
        invalid(&track(&s, None, visit(json!("/p"), bad, APP)), "timespent");
    }
    ok(&track(&s, None, visit(json!("/p"), json!(86400), APP)));
    ok(&track(&s, None, visit(json!("/p"), json!(0), APP)));
    for bad_app in ["my app", "", &"a".repeat(65)] {
        invalid(&track(&s, None, visit(json!("/p"), json!(1), bad_app)), "app");
    }
    let r = track(
        &s,
        None,
        json!({"user": "dana", "page": "/p", "timespent": 1, "app": APP,
               "time": "2024-04-01T10:00:00"}),
    );
    invalid(&r, "time");
    // What was refused was not recorded: /p has 86400 + 0 over 2 visits.
    assert_fields(
        "pages after refusals",
        &report(&s, "/api/pages/stats", Some(d), &base),
        &json!({"page_stats": {
            "/p": {"visits": 2, "total_time": "24:00:00", "average_time": "12:00:00"},
            (longest.as_str()): {"visits": 1, "total_time": "00:00:01", "average_time": "00:00:01"},
        }}),
    );
}

// ---------------------------------------------------------------------------
// 5. The public switches.

fn public_endpoints_can_be_switched(db: Db) {
    let visit = json!({"user": "dana", "page": "/dashboard", "timespent": 120, "app": APP});
    let body = json!({"app": APP, "user": "dana"});
    {
        let Some(s) = server(db, &[("SESSIOND_PUBLIC_TRACKING", "false")]) else { return };
        let dana = user(&s, "dana", APP);
        track(&s, None, visit.clone()).expect(401, Some("UNAUTHORIZED"));
        ok(&track(&s, Some(&dana.access), visit.clone()));
        // The public reports are unaffected.
        ok(&s.post("/api/sessions/public-summary", None, body.clone()));
        ok(&s.post("/api/sessions/public-timeline", None, body.clone()));
    }
    {
        let Some(s) = server(db, &[("SESSIOND_PUBLIC_ANALYTICS", "false")]) else { return };
        let dana = user(&s, "dana", APP);
        for path in ["/api/sessions/public-summary", "/api/sessions/public-timeline"] {
            let r = s.post(path, None, body.clone());
            assert_eq!(r.status, 404, "{path} switched off: {}", r.text);
            r.expect(404, None);
        }
        // Tracking and the authenticated reports are unaffected.
        ok(&track(&s, None, visit.clone()));
        ok(&s.post("/api/sessions/summary", Some(&dana.access), body.clone()));
        ok(&s.post("/api/sessions/timeline", Some(&dana.access), body.clone()));
    }
}
