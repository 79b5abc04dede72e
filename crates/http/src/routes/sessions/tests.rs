//! The caller's session routes over the whole app, in both forms.

use crate::test_support::*;

#[actix_web::test]
async fn session_routes_of_the_api_sessions_form() {
    let f = fixture();
    for path in ["/api/sessions", "/api/sessions/", "/api/sessions?include_inactive=1"] {
        let (status, _, body) = send(&f.state, bearer(get(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["message"], "Sessions retrieved successfully");
        let list = body["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 2, "{path}");
        assert!(list.iter().all(is_session_view), "{body}");
        let current: Vec<_> = list.iter().filter(|s| s["is_current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], f.alice_current.to_string());
        assert!(list.iter().all(|s| s["is_active"] == true));
    }
    let one = format!("/api/sessions/{}", f.alice_other);
    let (status, _, body) = send(&f.state, bearer(delete(&one), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Session deleted successfully");
    assert!(body.as_object().is_some_and(|o| o.contains_key("data")) && body["data"].is_null());
    for path in [format!("{one}/deactivate"), format!("{one}/deactivate/")] {
        let (status, _, body) = send(&f.state, bearer(patch(&path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["message"], "Session deactivated successfully");
        assert!(body["data"].is_null());
    }
    for (path, n) in [
        ("/api/sessions", 2),
        ("/api/sessions/", 2),
        ("/api/sessions?exclude_current=false", 2),
        ("/api/sessions?exclude_current=true", 1),
        ("/api/sessions/?exclude_current=1", 1),
    ] {
        let (status, _, body) = send(&f.state, bearer(delete(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["message"], "All sessions deleted successfully");
        assert_eq!(body["data"], json!({"terminated_count": n}), "{path}");
    }
}

#[actix_web::test]
async fn session_routes_of_the_v1_form() {
    let f = fixture();
    for path in ["/api/v1/auth/users/me/sessions", "/api/v1/auth/users/me/sessions/"] {
        let (status, _, body) = send(&f.state, bearer(get(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["message"], "Sessions retrieved successfully");
        assert_eq!(body["data"]["total_count"], 2);
        let list = body["data"]["sessions"].as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(is_session_view));
    }
    let path = format!("/api/v1/auth/users/me/sessions/{}/", f.alice_other);
    let (status, _, body) = send(&f.state, bearer(delete(&path), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Session terminated successfully");
    assert_eq!(
        body["data"],
        json!({"session_id": f.alice_other.to_string(), "device_name": "Chrome on Windows"})
    );
    // `all` is the static route, never a session id.
    for (path, n) in [
        ("/api/v1/auth/users/me/sessions", 2),
        ("/api/v1/auth/users/me/sessions/", 2),
        ("/api/v1/auth/users/me/sessions/all", 2),
        ("/api/v1/auth/users/me/sessions/all/", 2),
        ("/api/v1/auth/users/me/sessions/?exclude_current=true", 1),
        ("/api/v1/auth/users/me/sessions/all/?exclude_current=true", 1),
    ] {
        let (status, _, body) = send(&f.state, bearer(delete(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["message"], "All sessions terminated successfully", "{path}");
        assert_eq!(body["data"], json!({"terminated_count": n}), "{path}");
    }
}

#[actix_web::test]
async fn bad_query_values_are_422_naming_the_parameter() {
    let f = fixture();
    for (req, field) in [
        (get("/api/sessions?include_inactive=yes"), "include_inactive"),
        (get("/api/sessions?include_inactive="), "include_inactive"),
        (get("/api/v1/auth/users/me/sessions/?include_inactive=maybe"), "include_inactive"),
        (delete("/api/sessions?exclude_current=2"), "exclude_current"),
        (delete("/api/v1/auth/users/me/sessions/all?exclude_current=x"), "exclude_current"),
        (get("/api/audit/me?limit=abc"), "limit"),
        (get("/api/audit/me?limit=-5"), "limit"),
        (get("/api/audit/me?limit=0"), "limit"),
        (get("/api/audit/me?limit=1001"), "limit"),
        (get("/api/audit/me?action=nope"), "action"),
        (get("/api/audit/me?from=2024-04-05T12:00:00"), "from"),
        (get("/api/audit/me?cursor=garbage"), "cursor"),
        (get("/api/audit/me?action=login&action=logout"), "action"),
    ] {
        let (status, _, body) = send(&f.state, bearer(req, &f.user_token)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert_eq!(code(&body), "VALIDATION_ERROR");
        assert!(body["error"]["details"][field].is_string(), "{field}: {body}");
    }
    // A non-admin is refused before the parameters are judged.
    let req = bearer(
        get(&format!("/api/admin/users/{}/sessions?include_inactive=x", f.alice)),
        &f.user_token,
    );
    assert_eq!(send(&f.state, req).await.0, StatusCode::FORBIDDEN);
    // Without a token, 401 comes first.
    assert_eq!(
        send(&f.state, get("/api/sessions?include_inactive=x")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The parts of an answer a client can compare: status, headers but the
/// request id, and the body but `requestId` and `timestamp`.
async fn comparable(
    f: &Fixture,
    req: atest::TestRequest,
) -> (StatusCode, Vec<(String, String)>, Value) {
    let (status, headers, mut body) = send(&f.state, bearer(req, &f.user_token)).await;
    let mut hs: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.as_str() != "x-request-id")
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    hs.sort();
    if let Some(o) = body.as_object_mut() {
        o.remove("requestId");
        o.remove("timestamp");
    }
    (status, hs, body)
}

#[actix_web::test]
async fn another_users_session_is_answered_exactly_like_a_missing_one() {
    let f = fixture();
    let ids = [
        f.bob_session.to_string(),
        Uuid::nil().to_string(),
        kernel::new_id().to_string(),
        "not-a-uuid".to_owned(),
        "%FF%FE".to_owned(),
        "a%20b".to_owned(),
        "1".to_owned(),
        "x".repeat(300),
        f.bob_session.simple().to_string().to_uppercase() + "0",
    ];
    let cases: [(&str, &str, &str); 3] = [
        ("DELETE", "/api/sessions/{}", "delete"),
        ("PATCH", "/api/sessions/{}/deactivate", "deactivate"),
        ("DELETE", "/api/v1/auth/users/me/sessions/{}/", "terminate"),
    ];
    for (method, pattern, verb) in cases {
        let mut answers = Vec::new();
        for id in &ids {
            let path = pattern.replace("{}", id);
            let req = atest::TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
                .uri(&path);
            let answer = comparable(&f, req).await;
            assert_eq!(answer.0, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(code(&answer.2), "SESSION_NOT_FOUND", "{method} {path}");
            assert_eq!(answer.2["message"], "Session not found or unauthorized");
            assert_eq!(
                answer.2["error"]["details"],
                format!(
                    "The requested session does not exist or you don't have permission to {verb} it"
                )
            );
            answers.push(answer);
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{method} {pattern}: {answers:?}");
    }
    // The admin sees the same indistinguishable answer within a user.
    let mut answers = Vec::new();
    for id in [f.bob_session.to_string(), "nope".into(), Uuid::nil().to_string()] {
        let path = format!("/api/admin/users/{}/sessions/{id}", f.alice);
        let (status, _, mut body) = send(&f.state, bearer(get(&path), &f.admin_token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(code(&body), "SESSION_NOT_FOUND");
        if let Some(o) = body.as_object_mut() {
            o.remove("requestId");
            o.remove("timestamp");
        }
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
}

#[actix_web::test]
async fn routing_of_the_session_paths() {
    let f = fixture();
    // Wrong methods are 405 with Allow, before authentication.
    for (method, path, allowed) in [
        (Method::POST, "/api/sessions", "GET, HEAD, DELETE"),
        (Method::PUT, "/api/sessions/", "GET, HEAD, DELETE"),
        (Method::GET, "/api/sessions/abc", "DELETE"),
        (Method::PATCH, "/api/sessions/abc", "DELETE"),
        (Method::DELETE, "/api/sessions/abc/deactivate", "PATCH"),
        (Method::POST, "/api/sessions/abc/deactivate/", "PATCH"),
        (Method::POST, "/api/v1/auth/users/me/sessions/", "GET, HEAD, DELETE"),
        (Method::GET, "/api/v1/auth/users/me/sessions/all/", "DELETE"),
        (Method::GET, "/api/v1/auth/users/me/sessions/abc/", "DELETE"),
        (Method::POST, "/api/admin/users/x/sessions", "GET, HEAD, DELETE"),
        (Method::PATCH, "/api/admin/users/x/sessions/y", "GET, HEAD, DELETE"),
        (Method::POST, "/api/audit", "GET, HEAD"),
        (Method::DELETE, "/api/audit/me/", "GET, HEAD"),
    ] {
        let req = atest::TestRequest::default().method(method.clone()).uri(path);
        let (status, headers, body) = send(&f.state, req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
        assert_eq!(allow(&headers), allowed, "{method} {path}");
    }
    // The usage-tracking routes come before the `{id}` resources: a POST
    // reaches them (and needs a token), never the `{id}` resource's 405.
    for path in ["/api/sessions/start", "/api/sessions/heatmap/", "/api/sessions/most-active"] {
        let (status, _, body) = send(&f.state, post(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(code(&body), "UNAUTHORIZED", "{path}");
        assert_eq!(body["success"], false);
    }
    // Deeper paths name nothing.
    for path in
        ["/api/sessions/a/b", "/api/sessions/a/deactivate/x", "/api/v1/auth/users/me/sessions/a/b"]
    {
        let (status, _, body) = send(&f.state, bearer(delete(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(code(&body), "NOT_FOUND", "{path}");
    }
    // Every new operation needs a token.
    let one = format!("/api/sessions/{}", f.alice_other);
    for req in [
        get("/api/sessions"),
        delete("/api/sessions"),
        delete(&one),
        patch(&format!("{one}/deactivate")),
        get("/api/v1/auth/users/me/sessions/"),
        delete("/api/v1/auth/users/me/sessions/"),
        delete("/api/v1/auth/users/me/sessions/all/"),
        delete(&format!("/api/v1/auth/users/me/sessions/{}/", f.alice_other)),
        get(&format!("/api/admin/users/{}/sessions", f.alice)),
        delete(&format!("/api/admin/users/{}/sessions", f.alice)),
        get(&format!("/api/admin/users/{}/sessions/{}", f.alice, f.alice_other)),
        delete(&format!("/api/admin/users/{}/sessions/{}", f.alice, f.alice_other)),
        get("/api/audit"),
        get("/api/audit/me"),
    ] {
        let (status, _, body) = send(&f.state, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&body), "UNAUTHORIZED");
    }
}
