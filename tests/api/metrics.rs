//! `/metrics` of the real binary: what the use cases did and the database
//! pool, in Prometheus text, on both databases.

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, Server};

crate::on_both_databases!(metrics_count_sessions_tracking_and_the_pool);

const PW: &str = "correct horse battery";

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn metrics_count_sessions_tracking_and_the_pool(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("metered", PW);
    let a = s.login("metered", PW, CHROME_WINDOWS);
    let _b = s.login("metered", PW, CHROME_WINDOWS);
    let _c = s.login("metered", PW, CHROME_WINDOWS);
    s.post("/api/auth/logout", Some(&a.access), json!({})).expect(200, None);
    // Ends the two that are still live.
    let other = s.login("metered", PW, CHROME_WINDOWS);
    s.post("/api/auth/logout-all", Some(&other.access), json!({})).expect(200, None);
    let visit = json!({"app": "shop", "user": "metered", "page": "/", "timespent": 3});
    s.post("/api/pages/track", None, visit).expect(200, None);

    let r = s.get("/metrics", None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let text = &r.text;
    assert_eq!(sample(text, "sessiond_sessions_created_total"), Some(4.0), "{text}");
    assert_eq!(sample(text, "sessiond_sessions_revoked_total"), Some(4.0), "{text}");
    assert_eq!(sample(text, "sessiond_tracking_events_ingested_total"), Some(1.0));
    assert_eq!(sample(text, r#"sessiond_db_pool_connections{state="max"}"#), Some(16.0));
    assert!(sample(text, r#"sessiond_db_pool_connections{state="idle"}"#).is_some());
    assert!(sample(text, "sessiond_db_pool_checkouts_total").is_some_and(|n| n > 0.0));
    let logins =
        r#"sessiond_http_requests_total{method="POST",route="/api/auth/login",status="200"}"#;
    assert_eq!(sample(text, logins), Some(4.0), "{text}");
    // Nothing secret in there.
    assert!(!text.contains(&a.access) && !text.contains("metered"));
}
