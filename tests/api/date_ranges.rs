//! Ranges at the edge of time (issue 17, finding 10): every date up to
//! 9999-12-31 is a report bound in every zone, and an instant after the
//! last one a timestamp can name is a 422 "out of range", in report bodies
//! and in the audit log's filters alike; never a 500.

use serde_json::{Value, json};

use crate::analytics::access::PROTECTED_REPORTS as REPORTS;
use crate::support::{Db, Server};

crate::on_both_databases!(report_ranges_reach_9999_12_31, audit_ranges_reach_the_last_instant);

const PW: &str = "correct horse battery";
const APP: &str = "edge_app";

/// A report body for dana with the optional bounds.
fn body(tz: &str, from: Option<&str>, to: Option<&str>) -> Value {
    let mut b = json!({"app": APP, "user": "dana", "tz": tz});
    if let Some(from) = from {
        b["from"] = json!(from);
    }
    if let Some(to) = to {
        b["to"] = json!(to);
    }
    b
}

fn report_ranges_reach_9999_12_31(db: Db) {
    // The events are back-dated (2024): keep the sweeper off them.
    let env = [("SESSIOND_TRACKING_IDLE_TIMEOUT_SECS", "631152000")];
    let Some(s) = Server::start_with(db, &env) else { return };
    s.register("dana", PW);
    let t = s.login_app("dana", PW, APP);
    let t = t.access.as_str();
    let r = s.post(
        "/api/sessions/start",
        Some(t),
        json!({"user": "dana", "time": "2024-04-05T10:00:00Z", "status": "active", "app": APP}),
    );
    r.expect(200, None);
    let id = r.body["data"]["session_id"].as_str().expect("session_id").to_owned();
    s.post(
        "/api/sessions/end",
        Some(t),
        json!({"user": "dana", "session_id": id, "time": "2024-04-05T10:30:00Z", "app": APP}),
    )
    .expect(200, None);
    s.post(
        "/api/pages/track",
        Some(t),
        json!({"user": "dana", "page": "/home", "timespent": 60, "app": APP,
               "time": "2024-04-05T10:05:00Z"}),
    )
    .expect(200, None);

    let zones = ["UTC", "Etc/GMT+12", "Pacific/Kiritimati", "America/New_York", "Asia/Kolkata"];
    for tz in zones {
        for (from, to) in [
            (Some("2024-01-01"), Some("9999-12-31")),
            (None, Some("9999-12-30")),
            (None, Some("9999-12-31")),
            (Some("9999-12-31"), Some("9999-12-31")),
            (Some("9999-12-31"), None),
            (Some("2024-01-01T00:00:00Z"), Some("9999-12-31T23:59:59.999Z")),
        ] {
            for path in REPORTS {
                let b = body(tz, from, to);
                let r = s.post(path, Some(t), b.clone());
                assert_eq!(r.status, 200, "{path} {b}: {}", r.text);
            }
        }
        // The session of 2024 is in a range that ends with year 9999.
        let b = body(tz, Some("2024-01-01"), Some("9999-12-31"));
        let r = s.post("/api/sessions/summary", Some(t), b.clone());
        assert_eq!(r.body["data"]["total_sessions"], 1, "{b}: {}", r.text);
        let r = s.post("/api/pages/stats", Some(t), b.clone());
        assert_eq!(r.body["data"]["page_stats"]["/home"]["visits"], 1, "{b}: {}", r.text);
        // A range of the last day alone has nothing in it.
        let b = body(tz, Some("9999-12-31"), Some("9999-12-31"));
        let r = s.post("/api/sessions/summary", Some(t), b.clone());
        assert_eq!(r.body["data"]["total_sessions"], 0, "{b}: {}", r.text);
    }

    // After 9999-12-31T23:59:59.999Z there is nothing a timestamp can name:
    // 23:00 at -12:00 is 11:00 UTC on 10000-01-01.
    for (field, value) in
        [("to", "9999-12-31T23:00:00-12:00"), ("from", "9999-12-31T12:00:00-12:00")]
    {
        for path in REPORTS {
            let mut b = body("UTC", None, None);
            b[field] = json!(value);
            let r = s.post(path, Some(t), b.clone());
            r.expect(422, Some("VALIDATION_ERROR"));
            let problem = r.body["error"]["details"][field].as_str().unwrap_or_default();
            assert!(problem.contains("out of range"), "{path} {b}: {}", r.text);
        }
    }
}

fn audit_ranges_reach_the_last_instant(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("erin", PW);
    let t = s.login("erin", PW, crate::support::CHROME_WINDOWS);
    let t = t.access.as_str();
    // `+` must be escaped in a query string.
    let r = s
        .get("/api/audit/me?from=0000-01-01T00:00:00%2B14:00&to=9999-12-31T23:59:59.999Z", Some(t));
    r.expect(200, None);
    assert!(
        r.body["data"]["events"].as_array().is_some_and(|e| !e.is_empty()),
        "the login is in the range: {}",
        r.text
    );
    s.get("/api/audit/me?to=9999-12-31T11:59:59.999-12:00", Some(t)).expect(200, None);
    for query in ["to=9999-12-31T23:00:00-12:00", "from=9999-12-31T12:00:00-12:00"] {
        let r = s.get(&format!("/api/audit/me?{query}"), Some(t));
        r.expect(422, Some("VALIDATION_ERROR"));
        let field = &query[..query.find('=').unwrap_or_default()];
        let problem = r.body["error"]["details"][field].as_str().unwrap_or_default();
        assert!(problem.contains("out of range"), "{query}: {}", r.text);
    }
}
