//! Abandoned tracked sessions are closed by the sweeper, dated at their last
//! event, counting inactivity from when that event ARRIVED.

use serde_json::json;

use crate::support::{Db, Server};

crate::on_both_databases!(abandoned_sessions_close_at_their_last_event);

const PW: &str = "correct horse battery";

fn abandoned_sessions_close_at_their_last_event(db: Db) {
    let Some(s) = Server::start_with(
        db,
        &[("SESSIOND_TRACKING_IDLE_TIMEOUT_SECS", "3"), ("SESSIOND_SWEEP_INTERVAL_SECS", "1")],
    ) else {
        return;
    };
    s.register("olga", PW);
    let t = s.login_app("olga", PW, "my_app");
    let post = |path: &str, body: serde_json::Value| {
        let r = s.post(path, Some(&t.access), body);
        r.expect(200, None);
        r.body["data"].clone()
    };
    // Back-dated events (an offline client catching up): 10 minutes active,
    // then paused, then nothing more.
    let id = post(
        "/api/sessions/start",
        json!({"user": "olga", "app": "my_app", "time": "2024-01-01T09:00:00Z"}),
    )["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    post(
        "/api/sessions/pause",
        json!({"user": "olga", "app": "my_app", "session_id": id, "time": "2024-01-01T09:10:00Z"}),
    );
    let timeline = || {
        let r = s.post(
            "/api/sessions/timeline",
            Some(&t.access),
            json!({"user": "olga", "app": "my_app"}),
        );
        r.expect(200, None);
        r.body["data"]["timeline"][0].clone()
    };
    // Just arrived: not idle, however old its times are.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(timeline()["status"], "paused", "closed before its inactivity timeout");

    // Past the timeout (3 s) plus a sweep (1 s) and margin: closed, dated at
    // the pause, with the 10 active minutes.
    std::thread::sleep(std::time::Duration::from_millis(4000));
    let entry = timeline();
    assert_eq!(entry["status"], "ended", "{entry}");
    assert_eq!(entry["end_time"], "2024-01-01T09:10:00.000Z");
    assert_eq!(entry["duration"], "00:10:00");
    // An ended session refuses further events.
    s.post(
        "/api/sessions/resume",
        Some(&t.access),
        json!({"user": "olga", "app": "my_app", "session_id": id}),
    )
    .expect(409, Some("INVALID_STATE_TRANSITION"));
}
