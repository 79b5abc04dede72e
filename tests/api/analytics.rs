//! Usage tracking and analytics of SPEC section 4: the documented
//! examples verbatim, and a hand-computed scenario checked report by report,
//! field by field, in three time zones with and without a range. Access
//! rules, validation and configuration are in `analytics_access.rs`.

#[path = "analytics_access.rs"]
pub(crate) mod access;

use serde_json::{Value, json};

use crate::support::{Db, Resp, Server, Tokens, millis};

crate::on_both_databases!(
    the_documented_examples_verbatim,
    hand_computed_reports_in_three_zones,
    dst_end_and_sessions_longer_than_a_day,
    page_reports_of_a_user_with_many_pages_are_paged,
);

pub(crate) const PW: &str = "correct horse battery";
pub(crate) const APP: &str = "my_app";

/// Starts sessiond for analytics tests. The scenarios post back-dated
/// events (2024), and the sweeper closes open sessions whose last event is
/// older than the tracking idle timeout: a 20-year timeout keeps the
/// scenarios' deliberately open sessions open however long a run takes.
pub(crate) fn server(db: Db, env: &[(&str, &str)]) -> Option<Server> {
    let mut all = vec![("SESSIOND_TRACKING_IDLE_TIMEOUT_SECS", "631152000")];
    all.extend_from_slice(env);
    Server::start_with(db, &all)
}

/// Registers `name` and logs it in for `app`.
pub(crate) fn user(s: &Server, name: &str, app: &str) -> Tokens {
    s.register(name, PW);
    s.login_app(name, PW, app)
}

/// Asserts a 200 in the envelope and returns `data`.
#[track_caller]
pub(crate) fn ok(r: &Resp) -> Value {
    r.expect(200, None);
    r.body["data"].clone()
}

/// `POST /api/sessions/start` for `user` at `time`; returns the session id.
#[track_caller]
pub(crate) fn start(s: &Server, token: &str, user: &str, app: &str, time: &str) -> String {
    let r = s.post(
        "/api/sessions/start",
        Some(token),
        json!({"user": user, "time": time, "status": "active", "app": app}),
    );
    let data = ok(&r);
    assert_eq!(r.body["message"], "Session started successfully", "{}", r.text);
    assert_eq!(data["status"], "active", "{}", r.text);
    let id = data["session_id"].as_str().expect("session_id").to_owned();
    assert_eq!(id.len(), 36, "session_id is a UUID: {}", r.text);
    id
}

/// `POST /api/sessions/{action}` (pause, resume, end); returns the answer.
pub(crate) fn step(
    s: &Server,
    token: &str,
    action: &str,
    user: &str,
    app: &str,
    id: &str,
    time: &str,
) -> Resp {
    s.post(
        &format!("/api/sessions/{action}"),
        Some(token),
        json!({"user": user, "session_id": id, "time": time, "app": app}),
    )
}

/// Asserts that every field of `want` (an object) is in `got` with that
/// value (a `null` in `want` means present and null).
#[track_caller]
pub(crate) fn assert_fields(ctx: &str, got: &Value, want: &Value) {
    let want = want.as_object().expect("expected value is an object");
    assert!(got.is_object(), "{ctx}: not an object: {got}");
    for (k, v) in want {
        assert!(got.get(k).is_some(), "{ctx}: field {k} is missing from {got}");
        assert_eq!(&got[k], v, "{ctx}: field {k} (left: got, right: expected); whole: {got}");
    }
}

/// Posts a report and returns its `data` (asserting 200).
#[track_caller]
pub(crate) fn report(s: &Server, path: &str, token: Option<&str>, body: &Value) -> Value {
    let r = s.post(path, token, body.clone());
    assert_eq!(r.status, 200, "{path} {body}: {}", r.text);
    ok(&r)
}

/// Follows a paged report (`timeline`, `detailed_timeline`) with `limit`
/// through every page; returns the pages. Asserts that every page but the
/// last is full and carries a cursor, and that the last one has a null
/// `next_cursor`.
#[track_caller]
pub(crate) fn pages(
    s: &Server,
    path: &str,
    token: Option<&str>,
    body: &Value,
    key: &str,
    limit: Option<u64>,
) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut b = body.clone();
        if let Some(l) = limit {
            b["limit"] = json!(l);
        }
        if let Some(c) = &cursor {
            b["cursor"] = json!(c);
        }
        let data = report(s, path, token, &b);
        let items = data[key]
            .as_array()
            .unwrap_or_else(|| panic!("{path} {b}: data.{key} is not an array: {data}"))
            .clone();
        assert!(data.get("next_cursor").is_some(), "{path} {b}: no next_cursor: {data}");
        let next = match &data["next_cursor"] {
            Value::Null => None,
            Value::String(c) => Some(c.clone()),
            other => panic!("{path} {b}: next_cursor is {other}"),
        };
        if let Some(l) = limit {
            assert!(items.len() as u64 <= l, "{path} {b}: page larger than the limit: {data}");
            if next.is_some() {
                assert_eq!(items.len() as u64, l, "{path} {b}: short page with a cursor: {data}");
            }
        }
        out.push(items);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(out.len() < 100, "{path}: paging does not end");
    }
    out
}

// ---------------------------------------------------------------------------
// 1. The documented usage examples, verbatim.

/// Sends `raw` exactly as the documented curl does (`-H "Content-Type:
/// application/json" -d '…'`).
fn curl(s: &Server, path: &str, token: Option<&str>, raw: &str) -> Resp {
    let mut req = s
        .client()
        .post(s.url(path))
        .header("Content-Type", "application/json")
        .body(raw.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    s.send(req)
}

fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn the_documented_examples_verbatim(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let john = user(&s, "john_doe", APP);
    let t = john.access.as_str();

    // "Starting a Session", verbatim.
    let r = curl(
        &s,
        "/api/sessions/start",
        Some(t),
        r#"{
    "user": "john_doe",
    "time": "2024-01-01T12:00:00.000Z",
    "status": "active",
    "app": "my_app"
  }"#,
    );
    let data = ok(&r);
    assert_eq!(r.body["message"], "Session started successfully");
    let id = data["session_id"].as_str().expect("session_id").to_owned();
    assert_eq!(id.len(), 36, "a UUID: {}", r.text);
    assert_fields(
        "start",
        &data,
        &json!({"user": "john_doe", "start_time": "2024-01-01T12:00:00.000Z", "status": "active"}),
    );

    // The documented pause / resume / end bodies (its times) for that session.
    let r = step(&s, t, "pause", "john_doe", APP, &id, "2024-01-01T12:30:00.000Z");
    assert_fields(
        "pause",
        &ok(&r),
        &json!({"session_id": id, "status": "paused", "pause_time": "2024-01-01T12:30:00.000Z"}),
    );
    assert_eq!(r.body["message"], "Session paused successfully");
    let r = step(&s, t, "resume", "john_doe", APP, &id, "2024-01-01T12:45:00.000Z");
    assert_fields(
        "resume",
        &ok(&r),
        &json!({"session_id": id, "status": "active", "resume_time": "2024-01-01T12:45:00.000Z"}),
    );
    assert_eq!(r.body["message"], "Session resumed successfully");
    let r = step(&s, t, "end", "john_doe", APP, &id, "2024-01-01T13:00:00.000Z");
    // The documented example says "01:00:00", but SPEC §4: pauses do not count:
    // 12:00–12:30 (30 min) + 12:45–13:00 (15 min) = 45 min.
    assert_fields(
        "end",
        &ok(&r),
        &json!({"session_id": id, "status": "ended", "end_time": "2024-01-01T13:00:00.000Z",
                "total_duration": "00:45:00"}),
    );
    assert_eq!(r.body["message"], "Session ended successfully");

    // "Getting Session Analytics", verbatim: heatmap_data at the top level
    // and the same object in data. 2024-01-01 is a Monday ("0"), hour 12.
    let r = curl(
        &s,
        "/api/sessions/heatmap",
        Some(t),
        r#"{
    "app": "my_app",
    "user": "john_doe"
  }"#,
    );
    let data = ok(&r);
    let want = json!({
        "daily_sessions": {"2024-01-01": 1},
        "weekly_hourly": {"0": {"12": 1}},
        "total_sessions": 1,
        "total_days_with_activity": 1,
        "date_range": {"start_date": "2024-01-01", "end_date": "2024-01-01"},
    });
    assert_fields("heatmap data", &data, &want);
    assert_fields("heatmap_data", &r.body["heatmap_data"], &want);
    assert_eq!(r.body["heatmap_data"], data, "top-level heatmap_data equals data");

    // "Tracking Page Visits", verbatim, without a token.
    let before = now_ms();
    let r = curl(
        &s,
        "/api/pages/track",
        None,
        r#"{
    "user": "john_doe",
    "page": "/dashboard",
    "timespent": 120,
    "app": "my_app"
  }"#,
    );
    let data = ok(&r);
    assert_eq!(r.body["message"], "Page visit tracked successfully");
    assert_fields("track", &data, &json!({"page": "/dashboard", "time_spent": 120}));
    crate::support::assert_timestamp(&data["timestamp"]);
    let at = millis(&data["timestamp"]);
    assert!(
        (before - 60_000..=now_ms() + 60_000).contains(&at),
        "no time given: the visit is dated by the server's clock: {}",
        r.text
    );

    // Every other report with the documented body {"app", "user"}.
    let body = json!({"app": "my_app", "user": "john_doe"});
    assert_fields(
        "most-active",
        &report(&s, "/api/sessions/most-active", Some(t), &body),
        &json!({"most_active_day": "Monday", "most_active_hour": 12, "peak_sessions": 1}),
    );
    assert_fields(
        "stats",
        &report(&s, "/api/sessions/stats", Some(t), &body),
        &json!({"total_sessions": 1, "average_session_duration": "00:45:00",
                "total_time_spent": "00:45:00", "active_days": 1}),
    );
    let summary = json!({"total_sessions": 1, "total_duration": "00:45:00",
        "average_duration": "00:45:00", "longest_session": "00:45:00",
        "shortest_session": "00:45:00"});
    assert_fields("summary", &report(&s, "/api/sessions/summary", Some(t), &body), &summary);
    assert_fields(
        "public-summary",
        &report(&s, "/api/sessions/public-summary", None, &body),
        &summary,
    );
    let entry = json!({"session_id": id, "start_time": "2024-01-01T12:00:00.000Z",
        "end_time": "2024-01-01T13:00:00.000Z", "duration": "00:45:00", "status": "ended"});
    for (path, token) in
        [("/api/sessions/timeline", Some(t)), ("/api/sessions/public-timeline", None)]
    {
        let data = report(&s, path, token, &body);
        assert_eq!(data["next_cursor"], Value::Null, "{path}: {data}");
        let list = data["timeline"].as_array().expect("timeline array");
        assert_eq!(list.len(), 1, "{path}: {data}");
        assert_fields(path, &list[0], &entry);
    }
    assert_fields(
        "daily-time-spent",
        &report(&s, "/api/sessions/daily-time-spent", Some(t), &body),
        &json!({"daily_time": {"2024-01-01": "00:45:00"}}),
    );
    assert_fields(
        "time-by-page",
        &report(&s, "/api/sessions/time-by-page", Some(t), &body),
        &json!({"page_time": {"/dashboard": "00:02:00"}}),
    );
    let detail = report(&s, "/api/sessions/session-timeline-detail", Some(t), &body);
    assert_eq!(detail["next_cursor"], Value::Null, "{detail}");
    assert_eq!(
        detail["detailed_timeline"],
        json!([{"session_id": id, "events": [
            {"type": "start", "timestamp": "2024-01-01T12:00:00.000Z"},
            {"type": "pause", "timestamp": "2024-01-01T12:30:00.000Z"},
            {"type": "resume", "timestamp": "2024-01-01T12:45:00.000Z"},
            {"type": "end", "timestamp": "2024-01-01T13:00:00.000Z"},
        ]}]),
        "{detail}"
    );
    assert_fields(
        "pages/stats",
        &report(&s, "/api/pages/stats", Some(t), &body),
        &json!({"page_stats": {"/dashboard":
            {"visits": 1, "total_time": "00:02:00", "average_time": "00:02:00"}}}),
    );

    // SPEC §1: every path answers with a trailing slash too.
    let data = report(&s, "/api/sessions/heatmap/", Some(t), &body);
    assert_eq!(data["total_sessions"], 1, "{data}");
}

// ---------------------------------------------------------------------------
// 2. The hand-computed scenario.
//
// User dana, app my_app. Seven tracked sessions (canonical UTC times; some
// are posted with other offsets), in start order:
//
//   A  2024-03-04 (Mon) 14:10:00 start, 14:40:00 pause, 15:05:30 resume,
//      15:20:45 end. Active 30:00 + 15:15 = 45:15 = 2715 s.
//   B  2024-03-05 (Tue) 23:20:00 → 2024-03-06 00:50:00: 5400 s, crosses
//      UTC midnight (40 min on 03-05, 50 min on 03-06).
//   C  2024-03-09 (Sat) 18:00:00 → 19:00:00: 3600 s; in Kolkata 23:30 →
//      00:30, crossing local midnight (30 min each side).
//   D  2024-03-09 22:00:00 → 22:30:00: 1800 s.
//   E  2024-03-09 22:10:00 start, 22:25:00 pause, 22:40:00 resume, left
//      OPEN (status active): 15 min of closed active time (an open session
//      counts up to its last event). D and E start in the same hour.
//   F  2024-03-10 (Sun) 07:15:00 → 08:25:00: 4200 s. 2024-03-10 is the
//      DST start in New York (02:00 EST → 03:00 EDT at 07:00Z): F starts at
//      03:15 EDT (hour 3; a fixed −05:00 would say 02:15).
//   G  2024-03-11 (Mon) 03:30:00 → 04:45:00: 4500 s; in New York (EDT)
//      23:30 Sun 03-10 → 00:45 Mon 03-11, crossing local midnight (30 + 45
//      min); a fixed −05:00 would put it all on 03-10.
//
// Local start (weekday "0" = Monday … "6" = Sunday, hour):
//
//   |   | UTC              | America/New_York       | Asia/Kolkata (+05:30) |
//   | A | 03-04 Mon(0) 14  | 03-04 09:10 Mon(0) 9   | 03-04 19:40 Mon(0) 19 |
//   | B | 03-05 Tue(1) 23  | 03-05 18:20 Tue(1) 18  | 03-06 04:50 Wed(2) 4  |
//   | C | 03-09 Sat(5) 18  | 03-09 13:00 Sat(5) 13  | 03-09 23:30 Sat(5) 23 |
//   | D | 03-09 Sat(5) 22  | 03-09 17:00 Sat(5) 17  | 03-10 03:30 Sun(6) 3  |
//   | E | 03-09 Sat(5) 22  | 03-09 17:10 Sat(5) 17  | 03-10 03:40 Sun(6) 3  |
//   | F | 03-10 Sun(6) 7   | 03-10 03:15 Sun(6) 3   | 03-10 12:45 Sun(6) 12 |
//   | G | 03-11 Mon(0) 3   | 03-10 23:30 Sun(6) 23  | 03-11 09:00 Mon(0) 9  |
//
// Ended: A B C D F G. Sum 2715 + 5400 + 3600 + 1800 + 4200 + 4500 = 22215 s
// = 06:10:15; average 22215 / 6 = 3702.5 → 3702 s = 01:01:42; longest B
// 01:30:00; shortest D 00:30:00.
//
// Page visits (timespent seconds, canonical UTC visit time):
//
//   P1 /dashboard 120    2024-03-04 14:15:00 (with session_id A)
//   P2 /dashboard  45    2024-03-05 23:50:00
//   P3 /profile   300    2024-03-06 00:10:00
//   P4 /dashboard  61    2024-03-09 18:40:00 (posted as 03-10 00:10+05:30)
//   P5 /settings    0    2024-03-09 22:06:59 (just before the `from` below)
//   P6 /profile     7    2024-03-09 22:07:00 (exactly the `from`: inclusive)
//   P7 /settings 86400   2024-03-10 07:20:00
//   P8 /dashboard  10    2024-03-11 03:52:30 (exactly the `to`: exclusive)
//
// Ranges:
//   All:    none.
//   Dates:  from "2024-03-05", to "2024-03-09" (the whole of 03-09, in tz):
//           UTC [03-05 00:00Z, 03-10 00:00Z); New York (EST both ends)
//           [03-05 05:00Z, 03-10 05:00Z); Kolkata [03-04 18:30Z, 03-09 18:30Z).
//           Sessions: UTC and NY B C D E; Kolkata B C (D starts 22:00Z).
//   Stamps: from "2024-03-09T22:07:00Z", to "2024-03-11T09:22:30+05:30"
//           (= 03:52:30Z): neither on a 15-minute boundary. Sessions E F G
//           (D starts 22:00, before `from`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Utc,
    NewYork,
    Kolkata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    All,
    Dates,
    Stamps,
}

/// Canonical events of each session, in order (type, timestamp).
const EVENTS: [(char, &[(&str, &str)]); 7] = [
    (
        'A',
        &[
            ("start", "2024-03-04T14:10:00.000Z"),
            ("pause", "2024-03-04T14:40:00.000Z"),
            ("resume", "2024-03-04T15:05:30.000Z"),
            ("end", "2024-03-04T15:20:45.000Z"),
        ],
    ),
    ('B', &[("start", "2024-03-05T23:20:00.000Z"), ("end", "2024-03-06T00:50:00.000Z")]),
    ('C', &[("start", "2024-03-09T18:00:00.000Z"), ("end", "2024-03-09T19:00:00.000Z")]),
    ('D', &[("start", "2024-03-09T22:00:00.000Z"), ("end", "2024-03-09T22:30:00.000Z")]),
    (
        'E',
        &[
            ("start", "2024-03-09T22:10:00.000Z"),
            ("pause", "2024-03-09T22:25:00.000Z"),
            ("resume", "2024-03-09T22:40:00.000Z"),
        ],
    ),
    ('F', &[("start", "2024-03-10T07:15:00.000Z"), ("end", "2024-03-10T08:25:00.000Z")]),
    ('G', &[("start", "2024-03-11T03:30:00.000Z"), ("end", "2024-03-11T04:45:00.000Z")]),
];

/// Durations of the ended sessions (see the table above); E is open.
fn duration(letter: char) -> Option<&'static str> {
    match letter {
        'A' => Some("00:45:15"),
        'B' => Some("01:30:00"),
        'C' => Some("01:00:00"),
        'D' => Some("00:30:00"),
        'F' => Some("01:10:00"),
        'G' => Some("01:15:00"),
        _ => None,
    }
}

fn events_of(letter: char) -> &'static [(&'static str, &'static str)] {
    EVENTS.iter().find(|(l, _)| *l == letter).map(|(_, e)| *e).expect("a scenario letter")
}

/// The posts, in the order sent (not start order, so the timelines must
/// sort): session, action, time as posted (offsets vary; the canonical
/// time is in [`EVENTS`]).
const POSTS: [(char, &str, &str); 17] = [
    ('G', "start", "2024-03-11T03:30:00Z"),
    ('G', "end", "2024-03-11T00:45:00-04:00"),
    ('A', "start", "2024-03-04T14:10:00Z"),
    ('A', "pause", "2024-03-04T14:40:00.000Z"),
    ('C', "start", "2024-03-09T23:30:00+05:30"),
    ('A', "resume", "2024-03-04T20:35:30+05:30"),
    ('A', "end", "2024-03-04T15:20:45Z"),
    ('C', "end", "2024-03-09T14:00:00-05:00"),
    ('B', "start", "2024-03-05T23:20:00Z"),
    ('B', "end", "2024-03-06T00:50:00Z"),
    ('D', "start", "2024-03-09T22:00:00Z"),
    ('E', "start", "2024-03-09T22:10:00Z"),
    ('E', "pause", "2024-03-09T22:25:00Z"),
    ('D', "end", "2024-03-09T22:30:00Z"),
    ('E', "resume", "2024-03-09T22:40:00Z"),
    ('F', "start", "2024-03-10T03:15:00-04:00"),
    ('F', "end", "2024-03-10T08:25:00Z"),
];

/// Page visits: page, timespent, time as posted, canonical time, with
/// dana's token, with session A.
const VISITS: [(&str, i64, &str, &str, bool, bool); 8] = [
    ("/dashboard", 120, "2024-03-04T14:15:00Z", "2024-03-04T14:15:00.000Z", true, true),
    ("/dashboard", 45, "2024-03-05T23:50:00Z", "2024-03-05T23:50:00.000Z", false, false),
    ("/profile", 300, "2024-03-06T00:10:00Z", "2024-03-06T00:10:00.000Z", true, false),
    ("/dashboard", 61, "2024-03-10T00:10:00+05:30", "2024-03-09T18:40:00.000Z", false, false),
    ("/settings", 0, "2024-03-09T22:06:59Z", "2024-03-09T22:06:59.000Z", true, false),
    ("/profile", 7, "2024-03-09T22:07:00Z", "2024-03-09T22:07:00.000Z", false, false),
    ("/settings", 86400, "2024-03-10T07:20:00Z", "2024-03-10T07:20:00.000Z", true, false),
    ("/dashboard", 10, "2024-03-10T23:52:30-04:00", "2024-03-11T03:52:30.000Z", false, false),
];

/// Sessions selected (by start time) by a range in a zone.
fn selected(zone: Zone, range: Range) -> &'static str {
    match (range, zone) {
        (Range::All, _) => "ABCDEFG",
        (Range::Dates, Zone::Kolkata) => "BC",
        (Range::Dates, _) => "BCDE",
        (Range::Stamps, _) => "EFG",
    }
}

fn heatmap(zone: Zone, range: Range) -> Value {
    // Counted from the start table above.
    match (range, zone) {
        (Range::All, Zone::Utc) => json!({
            "daily_sessions": {"2024-03-04": 1, "2024-03-05": 1, "2024-03-09": 3,
                               "2024-03-10": 1, "2024-03-11": 1},
            "weekly_hourly": {"0": {"3": 1, "14": 1}, "1": {"23": 1},
                              "5": {"18": 1, "22": 2}, "6": {"7": 1}},
            "total_sessions": 7, "total_days_with_activity": 5,
            "date_range": {"start_date": "2024-03-04", "end_date": "2024-03-11"},
        }),
        (Range::All, Zone::NewYork) => json!({
            "daily_sessions": {"2024-03-04": 1, "2024-03-05": 1, "2024-03-09": 3,
                               "2024-03-10": 2},
            "weekly_hourly": {"0": {"9": 1}, "1": {"18": 1},
                              "5": {"13": 1, "17": 2}, "6": {"3": 1, "23": 1}},
            "total_sessions": 7, "total_days_with_activity": 4,
            "date_range": {"start_date": "2024-03-04", "end_date": "2024-03-10"},
        }),
        (Range::All, Zone::Kolkata) => json!({
            "daily_sessions": {"2024-03-04": 1, "2024-03-06": 1, "2024-03-09": 1,
                               "2024-03-10": 3, "2024-03-11": 1},
            "weekly_hourly": {"0": {"9": 1, "19": 1}, "2": {"4": 1}, "5": {"23": 1},
                              "6": {"3": 2, "12": 1}},
            "total_sessions": 7, "total_days_with_activity": 5,
            "date_range": {"start_date": "2024-03-04", "end_date": "2024-03-11"},
        }),
        // B C D E.
        (Range::Dates, Zone::Utc) => json!({
            "daily_sessions": {"2024-03-05": 1, "2024-03-09": 3},
            "weekly_hourly": {"1": {"23": 1}, "5": {"18": 1, "22": 2}},
            "total_sessions": 4, "total_days_with_activity": 2,
            "date_range": {"start_date": "2024-03-05", "end_date": "2024-03-09"},
        }),
        (Range::Dates, Zone::NewYork) => json!({
            "daily_sessions": {"2024-03-05": 1, "2024-03-09": 3},
            "weekly_hourly": {"1": {"18": 1}, "5": {"13": 1, "17": 2}},
            "total_sessions": 4, "total_days_with_activity": 2,
            "date_range": {"start_date": "2024-03-05", "end_date": "2024-03-09"},
        }),
        // B C.
        (Range::Dates, Zone::Kolkata) => json!({
            "daily_sessions": {"2024-03-06": 1, "2024-03-09": 1},
            "weekly_hourly": {"2": {"4": 1}, "5": {"23": 1}},
            "total_sessions": 2, "total_days_with_activity": 2,
            "date_range": {"start_date": "2024-03-06", "end_date": "2024-03-09"},
        }),
        // E F G.
        (Range::Stamps, Zone::Utc) => json!({
            "daily_sessions": {"2024-03-09": 1, "2024-03-10": 1, "2024-03-11": 1},
            "weekly_hourly": {"0": {"3": 1}, "5": {"22": 1}, "6": {"7": 1}},
            "total_sessions": 3, "total_days_with_activity": 3,
            "date_range": {"start_date": "2024-03-09", "end_date": "2024-03-11"},
        }),
        (Range::Stamps, Zone::NewYork) => json!({
            "daily_sessions": {"2024-03-09": 1, "2024-03-10": 2},
            "weekly_hourly": {"5": {"17": 1}, "6": {"3": 1, "23": 1}},
            "total_sessions": 3, "total_days_with_activity": 2,
            "date_range": {"start_date": "2024-03-09", "end_date": "2024-03-10"},
        }),
        (Range::Stamps, Zone::Kolkata) => json!({
            "daily_sessions": {"2024-03-10": 2, "2024-03-11": 1},
            "weekly_hourly": {"0": {"9": 1}, "6": {"3": 1, "12": 1}},
            "total_sessions": 3, "total_days_with_activity": 2,
            "date_range": {"start_date": "2024-03-10", "end_date": "2024-03-11"},
        }),
    }
}

/// SPEC §4: the weekday with the most starts and the hour with the most
/// starts (each summed over the other), ties to the earlier; the peak is
/// the busiest weekday-and-hour cell.
fn most_active(zone: Zone, range: Range) -> Value {
    let (day, hour, peak) = match (range, zone) {
        // Days: Mon 2 (A, G), Tue 1, Sat 3 (C D E), Sun 1. Hours: 22 twice.
        (Range::All, Zone::Utc) => ("Saturday", 22, 2),
        // Days: Mon 1, Tue 1, Sat 3, Sun 2. Hours: 17 twice (D, E).
        (Range::All, Zone::NewYork) => ("Saturday", 17, 2),
        // Days: Mon 2, Wed 1, Sat 1, Sun 3. Hours: 3 twice (D, E).
        (Range::All, Zone::Kolkata) => ("Sunday", 3, 2),
        // Tue 1, Sat 3; hour 22 twice.
        (Range::Dates, Zone::Utc) => ("Saturday", 22, 2),
        // Tue 1, Sat 3; hour 17 twice.
        (Range::Dates, Zone::NewYork) => ("Saturday", 17, 2),
        // Wed 1, Sat 1: tie → Wednesday; hours 4 and 23: tie → 4.
        (Range::Dates, Zone::Kolkata) => ("Wednesday", 4, 1),
        // Sat 1, Sun 1, Mon 1: tie → Monday (Monday first); hours 22, 7, 3
        // → 3.
        (Range::Stamps, Zone::Utc) => ("Monday", 3, 1),
        // Sat 1, Sun 2 → Sunday; hours 17, 3, 23 (1 each) → 3.
        (Range::Stamps, Zone::NewYork) => ("Sunday", 3, 1),
        // Sun 2, Mon 1 → Sunday; hours 3, 12, 9 → 3.
        (Range::Stamps, Zone::Kolkata) => ("Sunday", 3, 1),
    };
    json!({"most_active_day": day, "most_active_hour": hour, "peak_sessions": peak})
}

/// (total started, total of ended, average of ended, longest, shortest).
fn totals(
    zone: Zone,
    range: Range,
) -> (u64, &'static str, &'static str, &'static str, &'static str) {
    match (range, zone) {
        // See the header: 22215 s over 6 ended, average 3702 s.
        (Range::All, _) => (7, "06:10:15", "01:01:42", "01:30:00", "00:30:00"),
        // B C: 5400 + 3600 = 9000 = 02:30:00, average 4500 = 01:15:00.
        (Range::Dates, Zone::Kolkata) => (2, "02:30:00", "01:15:00", "01:30:00", "01:00:00"),
        // B C D (+ E open): 5400 + 3600 + 1800 = 10800 = 03:00:00, avg 3600.
        (Range::Dates, _) => (4, "03:00:00", "01:00:00", "01:30:00", "00:30:00"),
        // F G (+ E open): 4200 + 4500 = 8700 = 02:25:00, average 4350 s =
        // 01:12:30.
        (Range::Stamps, _) => (3, "02:25:00", "01:12:30", "01:15:00", "01:10:00"),
    }
}

fn stats(zone: Zone, range: Range) -> Value {
    let (total, sum, avg, _, _) = totals(zone, range);
    // Distinct local start days, from the heatmap's daily_sessions.
    let days = heatmap(zone, range)["total_days_with_activity"].clone();
    json!({"total_sessions": total, "average_session_duration": avg,
           "total_time_spent": sum, "active_days": days})
}

fn summary(zone: Zone, range: Range) -> Value {
    let (total, sum, avg, longest, shortest) = totals(zone, range);
    json!({"total_sessions": total, "total_duration": sum, "average_duration": avg,
           "longest_session": longest, "shortest_session": shortest})
}

/// Active time per local day. Closed active intervals (UTC):
///   A [14:10, 14:40) + [15:05:30, 15:20:45) on 03-04   = 2715
///   B [03-05 23:20, 03-06 00:50)                        = 2400 + 3000
///   C [03-09 18:00, 19:00)                              = 3600
///   D [03-09 22:00, 22:30)                              = 1800
///   E [03-09 22:10, 22:25) (open since the resume)      =  900
///   F [03-10 07:15, 08:25)                              = 4200
///   G [03-11 03:30, 04:45)                              = 4500
/// With a range, the active time falling in [from, to) counts.
fn daily(zone: Zone, range: Range) -> Value {
    let days = match (range, zone) {
        // 03-09: C 3600 + D 1800 + E 900 = 6300 = 01:45:00.
        (Range::All, Zone::Utc) => json!({
            "2024-03-04": "00:45:15", "2024-03-05": "00:40:00", "2024-03-06": "00:50:00",
            "2024-03-09": "01:45:00", "2024-03-10": "01:10:00", "2024-03-11": "01:15:00"}),
        // B all on 03-05 (18:20–19:50); 03-09: 6300; 03-10: F 4200 + G's
        // 23:30–00:00 1800 = 6000 = 01:40:00; 03-11: G's 00:00–00:45 = 2700.
        (Range::All, Zone::NewYork) => json!({
            "2024-03-04": "00:45:15", "2024-03-05": "01:30:00", "2024-03-09": "01:45:00",
            "2024-03-10": "01:40:00", "2024-03-11": "00:45:00"}),
        // A 19:40–20:50:45 on 03-04; B 04:50–06:20 on 03-06; C 23:30–00:30
        // splits 1800 / 1800; 03-10: C 1800 + D 1800 + E 900 + F 4200 = 8700
        // = 02:25:00; G 09:00–10:15 on 03-11.
        (Range::All, Zone::Kolkata) => json!({
            "2024-03-04": "00:45:15", "2024-03-06": "01:30:00", "2024-03-09": "00:30:00",
            "2024-03-10": "02:25:00", "2024-03-11": "01:15:00"}),
        // [03-05, 03-10): B 2400 + 3000, C D E 6300.
        (Range::Dates, Zone::Utc) => json!({
            "2024-03-05": "00:40:00", "2024-03-06": "00:50:00", "2024-03-09": "01:45:00"}),
        // [03-05 05:00Z, 03-10 05:00Z): B 5400 on 03-05, C D E 6300 on 03-09.
        (Range::Dates, Zone::NewYork) => json!({
            "2024-03-05": "01:30:00", "2024-03-09": "01:45:00"}),
        // [03-04 18:30Z, 03-09 18:30Z): A is before; B 5400 on 03-06; C's
        // [18:00, 18:30) = 1800 on 03-09 (its 03-10 half is past `to`).
        (Range::Dates, Zone::Kolkata) => json!({
            "2024-03-06": "01:30:00", "2024-03-09": "00:30:00"}),
        // [22:07Z, 03:52:30Z): D [22:07, 22:30) 1380 + E 900 = 2280 =
        // 00:38:00 on 03-09; F 4200 on 03-10; G [03:30, 03:52:30) = 1350 =
        // 00:22:30 on 03-11.
        (Range::Stamps, Zone::Utc) => json!({
            "2024-03-09": "00:38:00", "2024-03-10": "01:10:00", "2024-03-11": "00:22:30"}),
        // D + E 2280 on 03-09 (17:07–17:30 EST); F 4200 + G 1350 (23:30–
        // 23:52:30 EDT) = 5550 = 01:32:30 on 03-10.
        (Range::Stamps, Zone::NewYork) => json!({
            "2024-03-09": "00:38:00", "2024-03-10": "01:32:30"}),
        // D 1380 + E 900 + F 4200 = 6480 = 01:48:00 on 03-10; G 1350 on
        // 03-11 (09:00–09:22:30).
        (Range::Stamps, Zone::Kolkata) => json!({
            "2024-03-10": "01:48:00", "2024-03-11": "00:22:30"}),
    };
    json!({"daily_time": days})
}

/// Page visits by visit time: (page_time, page_stats).
fn page_reports(zone: Zone, range: Range) -> (Value, Value) {
    let rows: &[(&str, u64, &str, &str)] = match (range, zone) {
        // /dashboard 120 + 45 + 61 + 10 = 236 = 00:03:56 over 4, avg 59;
        // /profile 300 + 7 = 307 = 00:05:07 over 2, avg 153 (153.5 down);
        // /settings 0 + 86400 = 24:00:00 over 2, avg 43200 = 12:00:00.
        (Range::All, _) => &[
            ("/dashboard", 4, "00:03:56", "00:00:59"),
            ("/profile", 2, "00:05:07", "00:02:33"),
            ("/settings", 2, "24:00:00", "12:00:00"),
        ],
        // Kolkata [03-04 18:30Z, 03-09 18:30Z): P2, P3 (P4 at 18:40Z is out).
        (Range::Dates, Zone::Kolkata) => {
            &[("/dashboard", 1, "00:00:45", "00:00:45"), ("/profile", 1, "00:05:00", "00:05:00")]
        }
        // UTC and NY: P2..P6. /dashboard 45 + 61 = 106 = 00:01:46, avg 53;
        // /profile 300 + 7 = 307, avg 153; /settings 0 over 1.
        (Range::Dates, _) => &[
            ("/dashboard", 2, "00:01:46", "00:00:53"),
            ("/profile", 2, "00:05:07", "00:02:33"),
            ("/settings", 1, "00:00:00", "00:00:00"),
        ],
        // [22:07:00Z, 03:52:30Z): P6 (inclusive from) and P7; not P5
        // (22:06:59) nor P8 (exclusive to).
        (Range::Stamps, _) => {
            &[("/profile", 1, "00:00:07", "00:00:07"), ("/settings", 1, "24:00:00", "24:00:00")]
        }
    };
    let mut time = serde_json::Map::new();
    let mut stats = serde_json::Map::new();
    for (page, visits, total, avg) in rows {
        time.insert((*page).to_owned(), json!(total));
        stats.insert(
            (*page).to_owned(),
            json!({"visits": visits, "total_time": total, "average_time": avg}),
        );
    }
    (json!({"page_time": time}), json!({"page_stats": stats}))
}

/// The body of a report for `zone` and `range` (UTC without a range omits
/// `tz`, to exercise the default).
fn body(zone: Zone, range: Range) -> Value {
    let mut b = json!({"app": APP, "user": "dana"});
    match (zone, range) {
        (Zone::Utc, Range::All) => {}
        (Zone::Utc, _) => b["tz"] = json!("UTC"),
        (Zone::NewYork, _) => b["tz"] = json!("America/New_York"),
        (Zone::Kolkata, _) => b["tz"] = json!("Asia/Kolkata"),
    }
    match range {
        Range::All => {}
        Range::Dates => {
            b["from"] = json!("2024-03-05");
            b["to"] = json!("2024-03-09");
        }
        Range::Stamps => {
            b["from"] = json!("2024-03-09T22:07:00Z");
            b["to"] = json!("2024-03-11T09:22:30+05:30");
        }
    }
    b
}

fn hand_computed_reports_in_three_zones(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let t = dana.access.as_str();

    // Post the sessions; check each answer's canonical time and duration.
    let mut ids: Vec<(char, String)> = Vec::new();
    let mut seen: Vec<(char, usize)> = Vec::new();
    for (letter, action, time) in POSTS {
        let n = match seen.iter_mut().find(|(l, _)| *l == letter) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((letter, 0));
                0
            }
        };
        let (kind, canonical) = events_of(letter)[n];
        assert_eq!(kind, action, "scenario table");
        let ctx = format!("{letter} {action} {time}");
        if action == "start" {
            let r = s.post(
                "/api/sessions/start",
                Some(t),
                json!({"user": "dana", "time": time, "status": "active", "app": APP}),
            );
            let data = ok(&r);
            assert_fields(
                &ctx,
                &data,
                &json!({"user": "dana", "start_time": canonical, "status": "active"}),
            );
            ids.push((letter, data["session_id"].as_str().expect("session_id").to_owned()));
            continue;
        }
        let id = ids.iter().find(|(l, _)| *l == letter).map(|(_, id)| id.clone()).expect("id");
        let want = match action {
            "pause" => json!({"session_id": id, "status": "paused", "pause_time": canonical}),
            "resume" => json!({"session_id": id, "status": "active", "resume_time": canonical}),
            _ => json!({"session_id": id, "status": "ended", "end_time": canonical,
                        "total_duration": duration(letter)}),
        };
        assert_fields(&ctx, &ok(&step(&s, t, action, "dana", APP, &id, time)), &want);
    }
    let id_of = |letter: char| -> String {
        ids.iter().find(|(l, _)| *l == letter).map(|(_, id)| id.clone()).expect("id")
    };

    for (page, secs, time, canonical, with_token, with_session) in VISITS {
        let mut b = json!({"user": "dana", "page": page, "timespent": secs, "app": APP,
                           "time": time});
        if with_session {
            b["session_id"] = json!(id_of('A'));
        }
        let r = s.post("/api/pages/track", with_token.then_some(t), b);
        assert_fields(
            &format!("track {page} {time}"),
            &ok(&r),
            &json!({"page": page, "time_spent": secs, "timestamp": canonical}),
        );
    }

    let timeline_entry = |letter: char| -> Value {
        let ev = events_of(letter);
        let ended = ev.last().is_some_and(|(k, _)| *k == "end");
        json!({
            "session_id": id_of(letter),
            "start_time": ev[0].1,
            "end_time": if ended { json!(ev[ev.len() - 1].1) } else { Value::Null },
            "duration": duration(letter),
            "status": if ended { "ended" } else { "active" },
        })
    };
    let detail_entry = |letter: char| -> Value {
        let events: Vec<Value> =
            events_of(letter).iter().map(|(k, at)| json!({"type": k, "timestamp": at})).collect();
        json!({"session_id": id_of(letter), "events": events})
    };

    for zone in [Zone::Utc, Zone::NewYork, Zone::Kolkata] {
        for range in [Range::All, Range::Dates, Range::Stamps] {
            let b = body(zone, range);
            let ctx = |what: &str| format!("{what} {zone:?} {range:?} {b}");

            let r = s.post("/api/sessions/heatmap", Some(t), b.clone());
            let data = ok(&r);
            let want = heatmap(zone, range);
            assert_fields(&ctx("heatmap data"), &data, &want);
            assert_fields(&ctx("heatmap_data"), &r.body["heatmap_data"], &want);

            let data = report(&s, "/api/sessions/most-active", Some(t), &b);
            assert_fields(&ctx("most-active"), &data, &most_active(zone, range));

            let data = report(&s, "/api/sessions/stats", Some(t), &b);
            assert_fields(&ctx("stats"), &data, &stats(zone, range));

            let data = report(&s, "/api/sessions/summary", Some(t), &b);
            assert_fields(&ctx("summary"), &data, &summary(zone, range));
            let data = report(&s, "/api/sessions/public-summary", None, &b);
            assert_fields(&ctx("public-summary"), &data, &summary(zone, range));

            let data = report(&s, "/api/sessions/daily-time-spent", Some(t), &b);
            assert_fields(&ctx("daily-time-spent"), &data, &daily(zone, range));

            let (page_time, page_stats) = page_reports(zone, range);
            let data = report(&s, "/api/sessions/time-by-page", Some(t), &b);
            assert_fields(&ctx("time-by-page"), &data, &page_time);
            let data = report(&s, "/api/pages/stats", Some(t), &b);
            assert_fields(&ctx("pages/stats"), &data, &page_stats);

            // Timelines: the selected sessions in start order, in one page
            // by default and in pages of 2 with a cursor.
            let letters: Vec<char> = selected(zone, range).chars().collect();
            let want_pages = letters.len().div_ceil(2);
            for (path, token, key) in [
                ("/api/sessions/timeline", Some(t), "timeline"),
                ("/api/sessions/public-timeline", None, "timeline"),
                ("/api/sessions/session-timeline-detail", Some(t), "detailed_timeline"),
            ] {
                let entry = |l: char| {
                    if key == "timeline" { timeline_entry(l) } else { detail_entry(l) }
                };
                for limit in [None, Some(2)] {
                    let got = pages(&s, path, token, &b, key, limit);
                    let n_pages = if limit.is_some() { want_pages } else { 1 };
                    assert_eq!(got.len(), n_pages, "{}: pages: {got:?}", ctx(path));
                    let flat: Vec<Value> = got.into_iter().flatten().collect();
                    let got_ids: Vec<&Value> = flat.iter().map(|e| &e["session_id"]).collect();
                    let want_ids: Vec<Value> = letters.iter().map(|l| json!(id_of(*l))).collect();
                    let want_ids: Vec<&Value> = want_ids.iter().collect();
                    assert_eq!(
                        got_ids,
                        want_ids,
                        "{} limit {limit:?}: sessions {letters:?} in start order",
                        ctx(path)
                    );
                    for (e, l) in flat.iter().zip(&letters) {
                        assert_fields(&format!("{} session {l}", ctx(path)), e, &entry(*l));
                        if key == "detailed_timeline" {
                            assert_eq!(e["events"], entry(*l)["events"], "{}", ctx(path));
                        }
                    }
                }
            }
        }
    }

    // A range with nothing in it: empty maps, nulls and zeros.
    let b = json!({"app": APP, "user": "dana", "from": "2023-01-01", "to": "2023-01-31"});
    let r = s.post("/api/sessions/heatmap", Some(t), b.clone());
    let want = json!({"daily_sessions": {}, "weekly_hourly": {}, "total_sessions": 0,
        "total_days_with_activity": 0, "date_range": {"start_date": null, "end_date": null}});
    assert_fields("empty heatmap", &ok(&r), &want);
    assert_fields("empty heatmap_data", &r.body["heatmap_data"], &want);
    assert_fields(
        "empty most-active",
        &report(&s, "/api/sessions/most-active", Some(t), &b),
        &json!({"most_active_day": null, "most_active_hour": null, "peak_sessions": 0}),
    );
    assert_fields(
        "empty stats",
        &report(&s, "/api/sessions/stats", Some(t), &b),
        &json!({"total_sessions": 0, "average_session_duration": "00:00:00",
                "total_time_spent": "00:00:00", "active_days": 0}),
    );
    assert_fields(
        "empty summary",
        &report(&s, "/api/sessions/summary", Some(t), &b),
        &json!({"total_sessions": 0, "total_duration": "00:00:00", "average_duration": "00:00:00",
                "longest_session": "00:00:00", "shortest_session": "00:00:00"}),
    );
    for (path, want) in [
        ("/api/sessions/daily-time-spent", json!({"daily_time": {}})),
        ("/api/sessions/time-by-page", json!({"page_time": {}})),
        ("/api/pages/stats", json!({"page_stats": {}})),
        ("/api/sessions/timeline", json!({"timeline": [], "next_cursor": null})),
        (
            "/api/sessions/session-timeline-detail",
            json!({"detailed_timeline": [], "next_cursor": null}),
        ),
    ] {
        assert_fields(path, &report(&s, path, Some(t), &b), &want);
    }

    // Only a `from`: E, F, G again (the open session E counts as started,
    // not as ended; the totals are F and G's).
    let b = json!({"app": APP, "user": "dana", "from": "2024-03-09T22:07:00Z"});
    assert_fields(
        "from only",
        &report(&s, "/api/sessions/summary", Some(t), &b),
        &summary(Zone::Utc, Range::Stamps),
    );
}

// ---------------------------------------------------------------------------
// Daylight-saving END in New York (2024-11-03: 02:00 EDT → 01:00 EST at
// 06:00Z, so local 11-03 is 25 hours, [04:00Z, 05:00Z next day)), and a
// session longer than a day (hours past 24 in durations).
//
//   L  2024-11-02 20:00 EDT (11-03 00:00Z) → 2024-11-04 02:00 EST (07:00Z):
//      31 h = 111600 s.
//   M1 11-03 01:30 EDT (05:30Z) → 01:45 EDT (05:45Z): 900 s.
//   M2 11-03 01:30 EST (06:30Z, the repeated hour) → 01:50 EST (06:50Z):
//      1200 s.
//
// Ended sum 111600 + 900 + 1200 = 113700 s = 31:35:00; average 37900 s =
// 10:31:40; longest 31:00:00; shortest 00:15:00.

fn dst_end_and_sessions_longer_than_a_day(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let dana = user(&s, "dana", APP);
    let t = dana.access.as_str();
    for (from, to, dur) in [
        ("2024-11-02T20:00:00-04:00", "2024-11-04T02:00:00-05:00", "31:00:00"),
        ("2024-11-03T01:30:00-04:00", "2024-11-03T01:45:00-04:00", "00:15:00"),
        ("2024-11-03T01:30:00-05:00", "2024-11-03T01:50:00-05:00", "00:20:00"),
    ] {
        let id = start(&s, t, "dana", APP, from);
        let data = ok(&step(&s, t, "end", "dana", APP, &id, to));
        assert_eq!(data["total_duration"], dur, "{from} → {to}: {data}");
    }
    let ny = json!({"app": APP, "user": "dana", "tz": "America/New_York"});
    let utc = json!({"app": APP, "user": "dana"});
    assert_fields(
        "summary",
        &report(&s, "/api/sessions/summary", Some(t), &utc),
        &json!({"total_sessions": 3, "total_duration": "31:35:00",
                "average_duration": "10:31:40", "longest_session": "31:00:00",
                "shortest_session": "00:15:00"}),
    );
    // New York: L starts Sat 11-02 hour 20; M1 and M2 both start at local
    // 01:30 on Sun 11-03 (hour 1, twice).
    assert_fields(
        "NY heatmap",
        &report(&s, "/api/sessions/heatmap", Some(t), &ny),
        &json!({"daily_sessions": {"2024-11-02": 1, "2024-11-03": 2},
                "weekly_hourly": {"5": {"20": 1}, "6": {"1": 2}},
                "total_sessions": 3, "total_days_with_activity": 2,
                "date_range": {"start_date": "2024-11-02", "end_date": "2024-11-03"}}),
    );
    assert_fields(
        "NY most-active",
        &report(&s, "/api/sessions/most-active", Some(t), &ny),
        &json!({"most_active_day": "Sunday", "most_active_hour": 1, "peak_sessions": 2}),
    );
    // L: 20:00–24:00 on 11-02 = 4 h; all 25 h of 11-03; 00:00–02:00 EST on
    // 11-04. 11-03 also has M1 + M2 = 35 min: 25:35:00.
    assert_fields(
        "NY daily",
        &report(&s, "/api/sessions/daily-time-spent", Some(t), &ny),
        &json!({"daily_time": {"2024-11-02": "04:00:00", "2024-11-03": "25:35:00",
                               "2024-11-04": "02:00:00"}}),
    );
    // UTC: all three start on Sun 11-03, hours 0, 5, 6 (tie → 0). L: 24 h
    // on 11-03 + 7 h on 11-04.
    assert_fields(
        "UTC heatmap",
        &report(&s, "/api/sessions/heatmap", Some(t), &utc),
        &json!({"daily_sessions": {"2024-11-03": 3},
                "weekly_hourly": {"6": {"0": 1, "5": 1, "6": 1}},
                "total_sessions": 3, "total_days_with_activity": 1,
                "date_range": {"start_date": "2024-11-03", "end_date": "2024-11-03"}}),
    );
    assert_fields(
        "UTC most-active",
        &report(&s, "/api/sessions/most-active", Some(t), &utc),
        &json!({"most_active_day": "Sunday", "most_active_hour": 0, "peak_sessions": 1}),
    );
    assert_fields(
        "UTC daily",
        &report(&s, "/api/sessions/daily-time-spent", Some(t), &utc),
        &json!({"daily_time": {"2024-11-03": "24:35:00", "2024-11-04": "07:00:00"}}),
    );
    // Kolkata: L 05:30 11-03 → 12:30 11-04: 18:30 + 12:30; M1, M2 on 11-03.
    let kol = json!({"app": APP, "user": "dana", "tz": "Asia/Kolkata"});
    assert_fields(
        "Kolkata daily",
        &report(&s, "/api/sessions/daily-time-spent", Some(t), &kol),
        &json!({"daily_time": {"2024-11-03": "19:05:00", "2024-11-04": "12:30:00"}}),
    );
    // The 25-hour local day as a date range: [11-03 04:00Z, 11-04 05:00Z).
    // Sessions started in it: M1, M2 (L started 11-02 local). Active time in
    // it: L's 25 h + 35 min.
    let mut day = ny.clone();
    day["from"] = json!("2024-11-03");
    day["to"] = json!("2024-11-03");
    assert_fields(
        "NY 11-03 summary",
        &report(&s, "/api/sessions/summary", Some(t), &day),
        &json!({"total_sessions": 2, "total_duration": "00:35:00",
                "average_duration": "00:17:30", "longest_session": "00:20:00",
                "shortest_session": "00:15:00"}),
    );
    assert_fields(
        "NY 11-03 daily",
        &report(&s, "/api/sessions/daily-time-spent", Some(t), &day),
        &json!({"daily_time": {"2024-11-03": "25:35:00"}}),
    );
}

// ---------------------------------------------------------------------------
// Issue 17: page reports are bounded. Anyone can track pages for anyone
// (tracking is public by default), so one user's pages are unbounded; the
// two page reports hand them out at most `limit` (default and most 1000)
// a call, by total time then path, with a cursor.

/// `HH:MM:SS` (hours may exceed 99) as seconds.
fn hms_secs(hms: &str) -> i64 {
    hms.split(':').fold(0, |acc, part| acc * 60 + part.parse::<i64>().unwrap_or(-1_000_000))
}

fn page_reports_of_a_user_with_many_pages_are_paged(db: Db) {
    let Some(s) = server(db, &[]) else { return };
    let eve = user(&s, "eve", APP);
    let t = eve.access.as_str();
    // 2,300 distinct pages tracked for eve without a token (as anyone
    // could), some 2048 characters long; totals of 0–10 seconds, so many
    // ties; every fifth page visited twice, once back-dated by a day.
    const PAGES: usize = 2300;
    let page = |i: usize| match i % 3 {
        0 => format!("/p/{i}"),
        1 => format!("/Q/{i}"),
        _ => format!("/{i:05}{}", "l".repeat(2042)),
    };
    let mut want: Vec<(String, i64, i64)> = (0..PAGES)
        .map(|i| {
            let twice = i % 5 == 0;
            let secs = (i * 7 % 11) as i64;
            (page(i), if twice { 1 + 2 * secs } else { secs }, if twice { 2 } else { 1 })
        })
        .collect();
    let yesterday = {
        let at = kernel::OffsetDateTime::now_utc() - kernel::Duration::days(1);
        kernel::format_instant(at)
    };
    let posts: Vec<Value> = (0..PAGES)
        .flat_map(|i| {
            let secs = (i * 7 % 11) as i64;
            let mut v =
                vec![json!({"user": "eve", "page": page(i), "timespent": secs, "app": APP})];
            if i % 5 == 0 {
                v.push(json!({"user": "eve", "page": page(i), "timespent": secs + 1,
                              "app": APP, "time": yesterday}));
            }
            v
        })
        .collect();
    // Eight clients at once: the server group-commits them.
    std::thread::scope(|scope| {
        for chunk in posts.chunks(posts.len().div_ceil(8)) {
            let s = &s;
            scope.spawn(move || {
                for b in chunk {
                    let r = s.post("/api/pages/track", None, b.clone());
                    assert_eq!(r.status, 200, "{}", r.text);
                }
            });
        }
    });
    // Report order: total time, most first, then path (byte order).
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    for (path, key) in
        [("/api/sessions/time-by-page", "page_time"), ("/api/pages/stats", "page_stats")]
    {
        for limit in [None, Some(700)] {
            let expected: Vec<(String, i64, i64)> = want
                .iter()
                .map(|(p, secs, visits)| {
                    (p.clone(), *secs, if key == "page_time" { 0 } else { *visits })
                })
                .collect();
            let mut seen: Vec<String> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut calls = 0;
            loop {
                let mut b = json!({"app": APP, "user": "eve"});
                if let Some(l) = limit {
                    b["limit"] = json!(l);
                }
                if let Some(c) = &cursor {
                    b["cursor"] = json!(c);
                }
                let r = s.post(path, Some(t), b.clone());
                let data = ok(&r);
                let map = data[key].as_object().unwrap_or_else(|| panic!("{path}: {data}"));
                let max = limit.unwrap_or(1000) as usize;
                let next = match &data["next_cursor"] {
                    Value::String(c) => Some(c.clone()),
                    Value::Null => None,
                    other => panic!("{path} {b}: next_cursor is {other}"),
                };
                assert!(map.len() <= max, "{path} {b}: {} pages", map.len());
                if next.is_some() {
                    assert_eq!(map.len(), max, "{path} {b}: a short page with a cursor");
                }
                // Exactly the next pages of the report, each as expected,
                // and written in report order in the answer's text (a
                // `Value` sorts its members, so look at the text).
                let from = seen.len();
                let slice = &expected[from..(from + map.len()).min(expected.len())];
                assert_eq!(map.len(), slice.len(), "{path} {b}");
                let mut at = r.text.find(&format!("\"{key}\":")).unwrap_or(0);
                for (name, secs, visits) in slice {
                    let v = &data[key][name];
                    let got = match key {
                        "page_time" => (hms_secs(v.as_str().unwrap_or_default()), 0),
                        _ => (
                            hms_secs(v["total_time"].as_str().unwrap_or_default()),
                            v["visits"].as_i64().unwrap_or(-1),
                        ),
                    };
                    assert_eq!(got, (*secs, *visits), "{path} {b}: {name}");
                    let member = format!("\"{name}\":");
                    let Some(found) = r.text[at..].find(&member) else {
                        panic!("{path} {b}: {name} is not written in report order")
                    };
                    at += found + member.len();
                    seen.push(name.clone());
                }
                calls += 1;
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(calls < 10, "{path}: paging does not end");
            }
            assert_eq!(seen.len(), PAGES, "{path} {limit:?}: every page once");
            assert_eq!(calls, PAGES.div_ceil(limit.unwrap_or(1000) as usize), "{path} {limit:?}");
        }
        // A limit outside 1–1000 or a cursor no page gave is a 422.
        for (field, value) in [
            ("limit", json!(0)),
            ("limit", json!(1001)),
            ("cursor", json!("not-a-cursor")),
            ("cursor", json!("12.2f00")),
        ] {
            let mut b = json!({"app": APP, "user": "eve"});
            b[field] = value;
            let r = s.post(path, Some(t), b.clone());
            r.expect(422, Some("VALIDATION_ERROR"));
            assert!(r.body["error"]["details"][field].is_string(), "{path} {b}: {}", r.text);
        }
    }
}
