//! The usage-tracking routes (`/api/sessions/…` reports and `/api/pages/…`)
//! over the whole app, on the in-memory tracking store of
//! [`crate::test_support::tracking`]; beside the routes, in a file of its
//! own.

use crate::test_support::tracking::*;
use crate::test_support::*;

/// Every usage-tracking path under /api/sessions and /api/pages.
const BEARER_PATHS: [&str; 13] = [
    "/api/sessions/start",
    "/api/sessions/pause",
    "/api/sessions/resume",
    "/api/sessions/end",
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
const PUBLIC_PATHS: [&str; 3] =
    ["/api/sessions/public-summary", "/api/sessions/public-timeline", "/api/pages/track"];

#[actix_web::test]
async fn tracking_paths_are_static_routes_before_session_ids() {
    let f = fixture();
    for path in BEARER_PATHS.iter().chain(&PUBLIC_PATHS) {
        for p in [path.to_string(), format!("{path}/")] {
            // Other methods are 405 with Allow: POST, before authentication.
            for method in [Method::GET, Method::HEAD, Method::DELETE, Method::PATCH] {
                let req = atest::TestRequest::default().method(method.clone()).uri(&p);
                let (status, headers, body) = send(&f.state, req).await;
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {p}");
                assert_eq!(allow(&headers), "POST", "{method} {p}");
                if method != Method::HEAD {
                    assert_eq!(code(&body), "METHOD_NOT_ALLOWED", "{method} {p}");
                }
            }
        }
    }
    // POST reaches the analytics handlers: 401 without a token (the `{id}`
    // resource would have answered 405).
    for path in BEARER_PATHS {
        for p in [path.to_string(), format!("{path}/")] {
            let (status, headers, body) =
                send(&f.state, json_post(&p, r#"{"app":"web","user":"alice"}"#)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{p}");
            assert_eq!(code(&body), "UNAUTHORIZED", "{p}");
            assert!(headers.contains_key(header::WWW_AUTHENTICATE), "{p}");
        }
    }
    for path in ["/api/sessions/public-summary/", "/api/sessions/public-timeline"] {
        let (status, _, body) =
            send(&f.state, json_post(path, r#"{"app":"web","user":"alice"}"#)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // The `{id}` resources still work, and a static name is not an id.
    let one = format!("/api/sessions/{}", f.alice_other);
    assert_eq!(send(&f.state, bearer(delete(&one), &f.user_token)).await.0, StatusCode::OK);
    let (status, headers, _) =
        send(&f.state, bearer(delete("/api/sessions/heatmap"), &f.user_token)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(allow(&headers), "POST");
    // Deeper and unknown paths name nothing.
    for path in ["/api/sessions/start/x", "/api/pages", "/api/pages/nope"] {
        let (status, _, body) = send(&f.state, bearer(post(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&body), "NOT_FOUND", "{path}");
    }
}

#[actix_web::test]
async fn the_documented_curl_examples_work_verbatim() {
    let f = fixture();
    // Start a session (the documented example's body, whitespace and all).
    let start = "{\n    \"user\": \"john_doe\",\n    \"time\": \"2024-01-01T12:00:00.000Z\",\n    \
                 \"status\": \"active\",\n    \"app\": \"my_app\"\n  }";
    let (status, _, body) =
        send(&f.state, bearer(json_post("/api/sessions/start", start), &f.john_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Session started successfully");
    assert_eq!(keys(&body["data"]), ["session_id", "start_time", "status", "user"]);
    assert_eq!(body["data"]["user"], "john_doe");
    assert_eq!(body["data"]["start_time"], "2024-01-01T12:00:00.000Z");
    assert_eq!(body["data"]["status"], "active");
    assert!(Uuid::parse_str(body["data"]["session_id"].as_str().unwrap_or_default()).is_ok());
    // Session analytics: `heatmap_data` at the top level, and in `data`.
    let report = "{\n    \"app\": \"my_app\",\n    \"user\": \"john_doe\"\n  }";
    let (status, _, body) =
        send(&f.state, bearer(json_post("/api/sessions/heatmap", report), &f.john_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Heatmap retrieved successfully");
    let heatmap = json!({
        "daily_sessions": {"2024-01-01": 1},
        "weekly_hourly": {"0": {"12": 1}},
        "total_sessions": 1,
        "total_days_with_activity": 1,
        "date_range": {"start_date": "2024-01-01", "end_date": "2024-01-01"}
    });
    assert_eq!(body["heatmap_data"], heatmap);
    assert_eq!(body["data"], heatmap);
    assert_eq!(
        keys(&body),
        ["data", "heatmap_data", "message", "requestId", "status", "success", "timestamp"]
    );
    // Page tracking, without a token.
    let track = "{\n    \"user\": \"john_doe\",\n    \"page\": \"/dashboard\",\n    \
                 \"timespent\": 120,\n    \"app\": \"my_app\"\n  }";
    let (status, _, body) = send(&f.state, json_post("/api/pages/track", track)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Page visit tracked successfully");
    assert_eq!(keys(&body["data"]), ["page", "time_spent", "timestamp"]);
    assert_eq!(body["data"]["page"], "/dashboard");
    assert_eq!(body["data"]["time_spent"], 120);
    let ts = body["data"]["timestamp"].as_str().unwrap_or_default();
    assert!(kernel::parse_instant(ts).is_ok() && ts.ends_with('Z') && ts.len() == 24, "{ts}");
}

/// Sends `body` (a JSON value) to `path` with `token`; status and body.
async fn call(f: &Fixture, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = send(&f.state, bearer(post(path).set_json(body), token)).await;
    (status, body)
}

#[actix_web::test]
async fn a_tracked_session_pauses_resumes_and_ends() {
    let f = fixture();
    let t = &f.john_token;
    let (status, body) = call(
        &f,
        t,
        "/api/sessions/start",
        json!({"user": "john_doe", "app": "my_app", "time": "2024-01-01T09:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["session_id"].as_str().unwrap_or_default().to_owned();
    let step =
        |time: &str| json!({"user": "john_doe", "session_id": id, "time": time, "app": "my_app"});
    let (status, body) = call(&f, t, "/api/sessions/pause", step("2024-01-01T09:30:00.000Z")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Session paused successfully");
    assert_eq!(
        body["data"],
        json!({"session_id": id, "status": "paused", "pause_time": "2024-01-01T09:30:00.000Z"})
    );
    // Pausing twice is a conflict; an earlier time than the last event, 422.
    let (status, body) = call(&f, t, "/api/sessions/pause/", step("2024-01-01T09:31:00Z")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "INVALID_STATE_TRANSITION");
    let (status, body) = call(&f, t, "/api/sessions/resume", step("2024-01-01T09:00:00Z")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "VALIDATION_ERROR");
    let (status, body) = call(&f, t, "/api/sessions/resume", step("2024-01-01T09:45:00Z")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Session resumed successfully");
    assert_eq!(
        body["data"],
        json!({"session_id": id, "status": "active", "resume_time": "2024-01-01T09:45:00.000Z"})
    );
    let (status, body) = call(&f, t, "/api/sessions/end", step("2024-01-01T10:30:00+00:00")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Session ended successfully");
    assert_eq!(
        body["data"],
        json!({"session_id": id, "status": "ended", "end_time": "2024-01-01T10:30:00.000Z",
               "total_duration": "01:15:00"})
    );
    let (status, body) = call(&f, t, "/api/sessions/end", step("2024-01-01T11:00:00Z")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "INVALID_STATE_TRANSITION");
    assert_eq!(body["message"], "Invalid state transition");
    // Unknown, malformed and other apps' session ids are the same 404.
    for (path, verb) in [
        ("/api/sessions/pause", "pause"),
        ("/api/sessions/resume", "resume"),
        ("/api/sessions/end", "end"),
    ] {
        for bad in [Uuid::nil().to_string(), "nope".into(), kernel::new_id().to_string()] {
            let b = json!({"user": "john_doe", "session_id": bad, "app": "my_app"});
            let (status, body) = call(&f, t, path, b).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path} {bad}");
            assert_eq!(code(&body), "SESSION_NOT_FOUND");
            assert_eq!(body["message"], "Session not found or unauthorized");
            assert_eq!(
                body["error"]["details"],
                format!(
                    "The requested session does not exist or you don't have permission to {verb} it"
                )
            );
        }
    }
    // Without `time`, the server's clock.
    let (status, body) =
        call(&f, t, "/api/sessions/start", json!({"user": "john_doe", "app": "my_app"})).await;
    assert_eq!(status, StatusCode::OK);
    let started = kernel::parse_instant(body["data"]["start_time"].as_str().unwrap_or_default());
    assert!(started.is_ok_and(|s| (OffsetDateTime::now_utc() - s).abs() < Duration::minutes(1)));
}

#[actix_web::test]
async fn every_report_has_its_documented_shape() {
    let f = fixture();
    let t = &f.john_token;
    // Two sessions on Monday 2024-01-01: 09:00–10:30 with a 15-minute
    // pause, and one left open at 22:00; one page visit.
    let (_, body) = call(
        &f,
        t,
        "/api/sessions/start",
        json!({"user": "john_doe", "app": "my_app", "time": "2024-01-01T09:00:00Z"}),
    )
    .await;
    let id = body["data"]["session_id"].as_str().unwrap_or_default().to_owned();
    for (path, time) in [
        ("/api/sessions/pause", "2024-01-01T09:30:00Z"),
        ("/api/sessions/resume", "2024-01-01T09:45:00Z"),
        ("/api/sessions/end", "2024-01-01T10:30:00Z"),
    ] {
        let b = json!({"user": "john_doe", "session_id": id, "time": time, "app": "my_app"});
        assert_eq!(call(&f, t, path, b).await.0, StatusCode::OK, "{path}");
    }
    let (_, body) = call(
        &f,
        t,
        "/api/sessions/start",
        json!({"user": "john_doe", "app": "my_app", "time": "2024-01-01T22:00:00Z"}),
    )
    .await;
    let open = body["data"]["session_id"].as_str().unwrap_or_default().to_owned();
    let visit = json!({"user": "john_doe", "page": "/dashboard", "timespent": 90,
                       "app": "my_app", "time": "2024-01-01T09:10:00Z"});
    assert_eq!(call(&f, t, "/api/pages/track", visit).await.0, StatusCode::OK);

    let report = json!({"app": "my_app", "user": "john_doe"});
    let (status, body) = call(&f, t, "/api/sessions/most-active", report.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Most active times retrieved successfully");
    assert_eq!(
        body["data"],
        json!({"most_active_day": "Monday", "most_active_hour": 9, "peak_sessions": 1})
    );
    let (_, body) = call(&f, t, "/api/sessions/stats", report.clone()).await;
    assert_eq!(
        body["data"],
        json!({"total_sessions": 2, "average_session_duration": "01:15:00",
               "total_time_spent": "01:15:00", "active_days": 1})
    );
    let (_, body) = call(&f, t, "/api/sessions/summary/", report.clone()).await;
    let summary = json!({"total_sessions": 2, "total_duration": "01:15:00",
        "average_duration": "01:15:00", "longest_session": "01:15:00",
        "shortest_session": "01:15:00"});
    assert_eq!(body["data"], summary);
    let (status, _, public) =
        send(&f.state, post("/api/sessions/public-summary").set_json(&report)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public["data"], summary);
    let timeline = json!({"timeline": [
        {"session_id": id, "start_time": "2024-01-01T09:00:00.000Z",
         "end_time": "2024-01-01T10:30:00.000Z", "duration": "01:15:00", "status": "ended"},
        {"session_id": open, "start_time": "2024-01-01T22:00:00.000Z",
         "end_time": null, "duration": null, "status": "active"}
    ], "next_cursor": null});
    let (_, body) = call(&f, t, "/api/sessions/timeline", report.clone()).await;
    assert_eq!(body["data"], timeline);
    let (_, _, public) =
        send(&f.state, post("/api/sessions/public-timeline/").set_json(&report)).await;
    assert_eq!(public["data"], timeline);
    let (_, body) = call(&f, t, "/api/sessions/daily-time-spent", report.clone()).await;
    assert_eq!(body["data"], json!({"daily_time": {"2024-01-01": "01:15:00"}}));
    let (_, body) = call(&f, t, "/api/sessions/time-by-page", report.clone()).await;
    assert_eq!(body["data"], json!({"page_time": {"/dashboard": "00:01:30"}, "next_cursor": null}));
    let (_, body) = call(&f, t, "/api/pages/stats", report.clone()).await;
    assert_eq!(
        body["data"],
        json!({"page_stats": {"/dashboard": {"visits": 1, "total_time": "00:01:30",
                                             "average_time": "00:01:30"}},
               "next_cursor": null})
    );
    let (_, body) = call(&f, t, "/api/sessions/session-timeline-detail", report.clone()).await;
    let types: Vec<&str> = body["data"]["detailed_timeline"][0]["events"]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["start", "pause", "resume", "end"]);
    assert_eq!(
        body["data"]["detailed_timeline"][0]["events"][3],
        json!({"type": "end", "timestamp": "2024-01-01T10:30:00.000Z"})
    );
    assert_eq!(body["data"]["detailed_timeline"][1]["session_id"], open);
    assert!(body["data"]["next_cursor"].is_null());
    // Paging: one at a time, then the last page has no cursor.
    let (_, body) = call(
        &f,
        t,
        "/api/sessions/timeline",
        json!({"app": "my_app", "user": "john_doe", "limit": 1}),
    )
    .await;
    assert_eq!(body["data"]["timeline"].as_array().map(Vec::len), Some(1));
    let cursor = body["data"]["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let (_, body) = call(
        &f,
        t,
        "/api/sessions/timeline",
        json!({"app": "my_app", "user": "john_doe", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(body["data"]["timeline"][0]["session_id"], open);
    assert!(body["data"]["next_cursor"].is_null());
    // An empty range: zeros, nulls and empty maps.
    let empty = json!({"app": "my_app", "user": "john_doe", "from": "2030-01-01",
                       "tz": "Europe/Berlin"});
    let (_, body) = call(&f, t, "/api/sessions/heatmap", empty.clone()).await;
    let nothing = json!({"daily_sessions": {}, "weekly_hourly": {}, "total_sessions": 0,
        "total_days_with_activity": 0, "date_range": {"start_date": null, "end_date": null}});
    assert_eq!(body["data"], nothing);
    assert_eq!(body["heatmap_data"], nothing);
    let (_, body) = call(&f, t, "/api/sessions/most-active", empty.clone()).await;
    assert_eq!(
        body["data"],
        json!({"most_active_day": null, "most_active_hour": null, "peak_sessions": 0})
    );
    let (_, body) = call(&f, t, "/api/sessions/stats", empty).await;
    assert_eq!(body["data"]["average_session_duration"], "00:00:00");
}

#[actix_web::test]
async fn callers_see_only_their_own_app_and_user() {
    let f = fixture();
    let report = json!({"app": "my_app", "user": "john_doe"});
    // alice's token is for `web`: john's data and app are refused.
    for (path, body) in [
        ("/api/sessions/heatmap", report.clone()),
        ("/api/sessions/summary", report.clone()),
        ("/api/pages/stats", report.clone()),
        ("/api/sessions/stats", json!({"app": "web", "user": "john_doe"})),
        ("/api/sessions/stats", json!({"app": "web", "user": "all"})),
        ("/api/sessions/start", json!({"app": "web", "user": "bob"})),
        (
            "/api/pages/track",
            json!({"app": "my_app", "user": "john_doe", "page": "/", "timespent": 1}),
        ),
    ] {
        let (status, out) = call(&f, &f.user_token, path, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}: {out}");
        assert_eq!(code(&out), "FORBIDDEN");
    }
    // The admin may ask for anyone, and for everyone.
    for body in [report, json!({"app": "my_app", "user": "all"})] {
        let (status, out) = call(&f, &f.admin_token, "/api/sessions/stats", body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    }
    // Public reports ignore tokens and need no authorization.
    let (status, _, _) = send(
        &f.state,
        post("/api/sessions/public-summary").set_json(json!({"app": "my_app", "user": "all"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn tracking_bodies_are_typed_and_validated() {
    let f = fixture();
    let t = &f.john_token;
    let track = |timespent: Value| json!({"user": "john_doe", "page": "/dashboard", "timespent": timespent, "app": "my_app"});
    // `timespent` must be a whole number; a whole float counts.
    for bad in
        [json!(12.5), json!("120"), Value::Null, json!(true), json!([1]), json!(-1), json!(86_401)]
    {
        let (status, body) = call(&f, t, "/api/pages/track", track(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["error"]["details"]["timespent"].is_string(), "{bad}: {body}");
    }
    for (good, want) in [(json!(0), 0), (json!(86_400), 86_400), (json!(120.0), 120)] {
        let (status, body) = call(&f, t, "/api/pages/track", track(good.clone())).await;
        assert_eq!(status, StatusCode::OK, "{good}: {body}");
        assert_eq!(body["data"]["time_spent"], want);
    }
    // Missing and mistyped fields are 422 naming the field.
    let cases = [
        (
            "/api/pages/track",
            json!({"user": "john_doe", "page": "/", "app": "my_app"}),
            "timespent",
            "is required",
        ),
        (
            "/api/pages/track",
            json!({"user": 5, "page": "/", "timespent": 1, "app": "my_app"}),
            "user",
            "must be a string",
        ),
        (
            "/api/pages/track",
            json!({"user": "john_doe", "page": "/", "timespent": 1, "app": "my_app", "session_id": 7}),
            "session_id",
            "must be a string",
        ),
        ("/api/sessions/start", json!({"app": "my_app"}), "user", "is required"),
        (
            "/api/sessions/start",
            json!({"user": "john_doe", "app": ["my_app"]}),
            "app",
            "must be a string",
        ),
        (
            "/api/sessions/start",
            json!({"user": "john_doe", "app": "my_app", "time": 1}),
            "time",
            "must be a string",
        ),
        (
            "/api/sessions/pause",
            json!({"user": "john_doe", "app": "my_app"}),
            "session_id",
            "is required",
        ),
        ("/api/sessions/heatmap", json!({"user": "john_doe"}), "app", "is required"),
        (
            "/api/sessions/timeline",
            json!({"user": "john_doe", "app": "my_app", "limit": "10"}),
            "limit",
            "must be an integer",
        ),
        (
            "/api/sessions/timeline",
            json!({"user": "john_doe", "app": "my_app", "limit": 1.5}),
            "limit",
            "must be an integer",
        ),
    ];
    for (path, body, field, problem) in cases {
        let (status, out) = call(&f, t, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {out}");
        assert_eq!(out["error"]["details"][field], problem, "{path} {body}: {out}");
    }
    // What the use cases judge is 422 too.
    for (path, body, field) in [
        (
            "/api/pages/track",
            json!({"user": "john_doe", "page": "dashboard", "timespent": 1, "app": "my_app"}),
            "page",
        ),
        (
            "/api/sessions/start",
            json!({"user": "john_doe", "app": "my_app", "status": "paused"}),
            "status",
        ),
        (
            "/api/sessions/start",
            json!({"user": "john_doe", "app": "my_app", "time": "2024-01-01T12:00:00"}),
            "time",
        ),
        (
            "/api/sessions/timeline",
            json!({"user": "john_doe", "app": "my_app", "limit": 1001}),
            "limit",
        ),
        (
            "/api/sessions/stats",
            json!({"user": "john_doe", "app": "my_app", "tz": "Mars/Base"}),
            "tz",
        ),
    ] {
        let (status, out) = call(&f, t, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {out}");
        assert!(out["error"]["details"][field].is_string(), "{path} {body}: {out}");
    }
    // Bodies that are not JSON objects.
    for (payload, want) in [("", 400), ("{nope", 400), ("[]", 422)] {
        let req = bearer(json_post("/api/sessions/heatmap", payload), t);
        assert_eq!(send(&f.state, req).await.0.as_u16(), want, "{payload:?}");
    }
    let big = format!(r#"{{"user":"john_doe","app":"my_app","pad":"{}"}}"#, "a".repeat(70_000));
    let (status, _, body) = send(&f.state, json_post("/api/pages/track", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");
}

#[actix_web::test]
async fn page_tracking_takes_an_optional_token() {
    let f = fixture();
    let visit = json!({"user": "john_doe", "page": "/p", "timespent": 3, "app": "my_app"});
    // A header that is there must be valid.
    for auth in ["Bearer not.a.jwt", "Basic abc", "Bearer"] {
        let req =
            post("/api/pages/track").insert_header((header::AUTHORIZATION, auth)).set_json(&visit);
        let (status, _, body) = send(&f.state, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(code(&body), "UNAUTHORIZED");
    }
    assert_eq!(call(&f, &f.john_token, "/api/pages/track", visit.clone()).await.0, StatusCode::OK);
    // With public tracking and analytics switched off.
    let closed =
        ApiState { analytics: service(Arc::new(MemTracking::default()), false), ..f.state.clone() };
    let (status, _, body) = send(&closed, post("/api/pages/track").set_json(&visit)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHORIZED");
    let req = bearer(post("/api/pages/track").set_json(&visit), &f.john_token);
    assert_eq!(send(&closed, req).await.0, StatusCode::OK);
    let report = json!({"app": "my_app", "user": "john_doe"});
    for path in ["/api/sessions/public-summary", "/api/sessions/public-timeline/"] {
        let (status, _, body) = send(&closed, post(path).set_json(&report)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&body), "NOT_FOUND", "{path}");
    }
    let req = bearer(post("/api/sessions/summary").set_json(&report), &f.john_token);
    assert_eq!(send(&closed, req).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn an_unreachable_tracking_store_is_a_503() {
    let f = fixture();
    f.tracking.down.store(true, Ordering::Relaxed);
    let report = json!({"app": "my_app", "user": "john_doe"});
    for (path, body) in [
        ("/api/sessions/start", report.clone()),
        ("/api/sessions/heatmap", report.clone()),
        (
            "/api/pages/track",
            json!({"user": "john_doe", "page": "/", "timespent": 1, "app": "my_app"}),
        ),
    ] {
        let (status, out) = call(&f, &f.john_token, path, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {out}");
        assert_eq!(code(&out), "SERVICE_UNAVAILABLE");
        assert!(!out.to_string().contains("refused"));
    }
}

/// Sends `body` to `path` with `token`; status and the raw body text (to
/// see the order of an object's members, which a `Value` sorts).
async fn call_raw(f: &Fixture, token: &str, path: &str, body: Value) -> (StatusCode, String) {
    let req = bearer(post(path).set_json(body), token).to_request();
    let app = atest::init_service(app(web::Data::new(f.state.clone()))).await;
    let resp = atest::call_service(&app, req).await;
    let status = resp.status();
    let bytes = atest::read_body(resp).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The member names of the JSON object under the member `key` in `text`
/// (its first occurrence), in the order they are written.
fn member_order(text: &str, key: &str) -> Vec<String> {
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                self.0.push(k);
            }
            Ok(())
        }
    }
    let member = format!("\"{key}\":");
    let Some(at) = text.find(&member) else { panic!("no {member} in {text}") };
    // Read the one object that follows, member by member: a map type
    // would put them in its own order.
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(&text[at + member.len()..]);
    if let Err(e) = serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)) {
        panic!("{e}: {text}");
    }
    keys
}

#[actix_web::test]
async fn page_reports_are_paged_by_total_time_then_path() {
    let f = fixture();
    let t = &f.john_token;
    // 1,205 pages of john's: total i % 7 seconds (ties), one page twice.
    let mut want: Vec<(String, i64)> = Vec::new();
    let visits: Vec<PageVisit> = (0..1205_i64)
        .map(|i| {
            let page = if i % 2 == 0 { format!("/a{i}") } else { format!("/B{i}") };
            want.push((page.clone(), i % 7));
            PageVisit {
                id: Uuid::from_u128(i as u128 + 1),
                app: "my_app".into(),
                user: "john_doe".into(),
                page,
                timespent: i % 7,
                session_id: None,
                at: OffsetDateTime::now_utc() - Duration::hours(1),
            }
        })
        .collect();
    let mut records = visits.clone();
    records.push(PageVisit { id: kernel::new_id(), timespent: 100, ..visits[3].clone() });
    want[3].1 += 100;
    assert!(f.tracking.record_pages(&records).is_ok());
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    for (path, key) in
        [("/api/sessions/time-by-page", "page_time"), ("/api/pages/stats", "page_stats")]
    {
        for limit in [None, Some(500)] {
            let mut seen: Vec<(String, i64)> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut calls = 0;
            loop {
                let mut b = json!({"app": "my_app", "user": "john_doe"});
                if let Some(l) = limit {
                    b["limit"] = json!(l);
                }
                if let Some(c) = &cursor {
                    b["cursor"] = json!(c);
                }
                let (status, text) = call_raw(&f, t, path, b).await;
                assert_eq!(status, StatusCode::OK, "{text}");
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let data = &body["data"];
                assert_eq!(keys(data), ["next_cursor", key], "{path}");
                // Written in report order, not sorted by path.
                let order = member_order(&text, key);
                assert!(order.len() <= limit.unwrap_or(1000) as usize, "{path}");
                for page in order {
                    let secs = match key {
                        "page_time" => data[key][&page].as_str().map(str::to_owned),
                        _ => data[key][&page]["total_time"].as_str().map(str::to_owned),
                    };
                    let secs = secs.map(|hms| {
                        hms.split(':')
                            .fold(0_i64, |acc, p| acc * 60 + p.parse::<i64>().unwrap_or(0))
                    });
                    seen.push((page, secs.unwrap_or(-1)));
                }
                calls += 1;
                match &data["next_cursor"] {
                    Value::String(c) => cursor = Some(c.clone()),
                    Value::Null => break,
                    other => panic!("{path}: next_cursor {other}"),
                }
            }
            assert_eq!(seen, want, "{path} {limit:?}");
            assert_eq!(calls, if limit.is_some() { 3 } else { 2 }, "{path} {limit:?}");
        }
        // Limits outside 1–1000 and cursors no page gave are 422.
        for (extra, field) in [
            (json!({"limit": 0}), "limit"),
            (json!({"limit": 1001}), "limit"),
            (json!({"limit": "5"}), "limit"),
            (json!({"cursor": "nope"}), "cursor"),
            (json!({"cursor": "1.2f00"}), "cursor"),
            (json!({"cursor": 5}), "cursor"),
        ] {
            let mut b = json!({"app": "my_app", "user": "john_doe"});
            for (k, v) in extra.as_object().into_iter().flatten() {
                b[k] = v.clone();
            }
            let (status, out) = call(&f, t, path, b.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {b}: {out}");
            assert_eq!(code(&out), "VALIDATION_ERROR");
            assert!(out["error"]["details"][field].is_string(), "{path} {b}: {out}");
        }
    }
}

#[actix_web::test]
async fn a_detail_page_ends_at_ten_thousand_events() {
    let f = fixture();
    let t = &f.john_token;
    // Two sessions straight into the store: 7,001 and 6,001 events.
    let base = OffsetDateTime::now_utc() - Duration::days(1);
    let mut ids = Vec::new();
    for (n, events) in [(0_i64, 7001_i32), (1, 6001)] {
        let started = kernel::truncate_millis(base + Duration::hours(n));
        let mut s = TrackedSession::start(kernel::new_id(), "my_app", "john_doe", started);
        assert!(f.tracking.insert_session(&s).is_ok());
        for k in 1..events {
            let kind = if k % 2 == 1 { EventKind::Pause } else { EventKind::Resume };
            let Ok(step) = s.apply(kind, started + Duration::milliseconds(i64::from(k))) else {
                panic!("step {k}");
            };
            assert_eq!(
                f.tracking.apply_transition(&s, &step.after, &step.event(kind), None).ok(),
                Some(true)
            );
            s = step.after;
        }
        ids.push(s.id.to_string());
    }
    let mut pages: Vec<Vec<(String, usize)>> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut b = json!({"app": "my_app", "user": "john_doe"});
        if let Some(c) = &cursor {
            b["cursor"] = json!(c);
        }
        let (status, body) = call(&f, t, "/api/sessions/session-timeline-detail", b).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Vec<(String, usize)> = body["data"]["detailed_timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let id = e["session_id"].as_str().unwrap_or_default().to_owned();
                (id, e["events"].as_array().map_or(0, Vec::len))
            })
            .collect();
        pages.push(page);
        match &body["data"]["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            _ => break,
        }
        assert!(pages.len() < 5, "paging does not end");
    }
    assert_eq!(
        pages,
        [vec![(ids[0].clone(), 7001), (ids[1].clone(), 2999)], vec![(ids[1].clone(), 3002)],]
    );
}
