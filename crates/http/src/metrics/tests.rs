//! `/metrics` over the whole app: Prometheus text, requests by route
//! template and status, a latency histogram, never rate limited.

use crate::test_support::*;

async fn scrape(state: &ApiState) -> (StatusCode, String, String) {
    let app = atest::init_service(app(web::Data::new(state.clone()))).await;
    let res = atest::call_service(&app, get("/metrics").to_request()).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = String::from_utf8(atest::read_body(res).await.to_vec()).unwrap_or_default();
    (status, content_type, body)
}

/// The value of the sample `series` (name with labels, exactly as
/// exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[actix_web::test]
async fn requests_are_counted_by_route_template_and_status() {
    let f = fixture();
    for _ in 0..2 {
        send(&f.state, get("/api/health")).await;
    }
    let sid = f.alice_current;
    // A known path with a method it does not answer: 405, under its template.
    send(&f.state, bearer(get(&format!("/api/sessions/{sid}")), &f.user_token)).await;
    send(&f.state, get(&format!("/no/such/{sid}"))).await;

    let (status, content_type, text) = scrape(&f.state).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let health = r#"sessiond_http_requests_total{method="GET",route="/api/health",status="200"}"#;
    assert_eq!(sample(&text, health), Some(2.0), "{text}");
    // Ids never become label values.
    assert!(!text.contains(&sid.to_string()), "{text}");
    let template =
        r#"sessiond_http_requests_total{method="GET",route="/api/sessions/{id}",status="405"}"#;
    assert_eq!(sample(&text, template), Some(1.0), "{text}");
    let unknown = r#"sessiond_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    assert_eq!(sample(&text, unknown), Some(1.0));
    let count = r#"sessiond_http_request_duration_seconds_count{method="GET",route="/api/health"}"#;
    assert_eq!(sample(&text, count), Some(2.0));
    assert!(text.contains(r#"sessiond_http_request_duration_seconds_bucket{method="GET",route="/api/health",le="0.0001"}"#));
    for name in [
        "sessiond_sessions_created_total",
        "sessiond_sessions_revoked_total",
        "sessiond_refresh_reuse_detected_total",
        "sessiond_login_lockouts_total",
        "sessiond_tracking_events_ingested_total",
    ] {
        assert_eq!(sample(&text, name), Some(0.0), "{name}");
    }
}

#[actix_web::test]
async fn tracking_events_are_counted_and_metrics_are_not_rate_limited() {
    let f = fixture();
    let config = RateLimitConfig { ip_per_minute: 1, ..RateLimitConfig::default() };
    let state = ApiState { rate_limits: Arc::new(RateLimits::new(config)), ..f.state.clone() };
    let visit = json!({"app": "shop", "user": "alice", "page": "/home", "timespent": 5});
    let (status, _, body) = send(&state, post("/api/pages/track").set_json(visit)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for _ in 0..3 {
        let (status, _, text) = scrape(&state).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sample(&text, "sessiond_tracking_events_ingested_total"), Some(1.0));
    }
}
