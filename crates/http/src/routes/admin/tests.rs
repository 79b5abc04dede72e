//! The admin routes over the whole app: user updates and session
//! administration.

use crate::test_support::*;

#[actix_web::test]
async fn admin_updates() {
    let f = fixture();
    let path = format!("/api/admin/users/{}", Uuid::nil());
    let patch = |token: &str, path: &str| {
        bearer(atest::TestRequest::patch().uri(path), token)
            .set_json(json!({"status": "suspended"}))
    };
    let (status, _, body) = send(&f.state, patch(&f.user_token, &path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "FORBIDDEN");
    let (status, _, body) =
        send(&f.state, patch(&f.admin_token, "/api/admin/users/not-a-uuid")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "USER_NOT_FOUND");
    let (status, _, body) = send(&f.state, patch(&f.admin_token, &path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "USER_NOT_FOUND");
    let req = bearer(atest::TestRequest::patch().uri(&path), &f.admin_token)
        .set_json(json!({"status": "banned"}));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["details"]["status"].is_string());
    let (status, _, _) = send(&f.state, patch("", &path)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn admin_session_routes() {
    let f = fixture();
    let base = format!("/api/admin/users/{}/sessions", f.alice);
    let one = format!("{base}/{}", f.alice_other);
    // Non-admins are refused whatever they ask for.
    for req in [
        get(&base),
        delete(&base),
        get(&one),
        delete(&one),
        get("/api/admin/users/nope/sessions"),
        get(&format!("/api/admin/users/{}/sessions/nope", f.alice)),
    ] {
        let (status, _, body) = send(&f.state, bearer(req, &f.user_token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(code(&body), "FORBIDDEN");
    }
    // Unknown users, UUIDs or not, are USER_NOT_FOUND.
    for user in ["nope", "%FF", &Uuid::nil().to_string(), &kernel::new_id().to_string()] {
        for req in [
            get(&format!("/api/admin/users/{user}/sessions")),
            delete(&format!("/api/admin/users/{user}/sessions/")),
            get(&format!("/api/admin/users/{user}/sessions/{}", f.alice_other)),
            delete(&format!("/api/admin/users/{user}/sessions/{}", f.alice_other)),
        ] {
            let (status, _, body) = send(&f.state, bearer(req, &f.admin_token)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
            assert_eq!(code(&body), "USER_NOT_FOUND", "{user}");
        }
    }
    let (status, _, body) =
        send(&f.state, bearer(get(&format!("{base}/?include_inactive=true")), &f.admin_token))
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Sessions retrieved successfully");
    let list = body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| is_session_view(s) && s["is_current"] == false));
    let (status, _, body) = send(&f.state, bearer(get(&one), &f.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Session retrieved successfully");
    assert!(is_session_view(&body["data"]));
    assert_eq!(body["data"]["id"], f.alice_other.to_string());
    assert_eq!(body["data"]["device_name"], "Chrome on Windows");
    let (status, _, body) = send(&f.state, bearer(delete(&one), &f.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Session deleted successfully");
    assert!(body["data"].is_null());
    let (status, _, body) = send(&f.state, bearer(delete(&base), &f.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "All sessions deleted successfully");
    assert_eq!(body["data"], json!({"terminated_count": 2}));
    // bob's session is not alice's, even for an admin.
    let path = format!("{base}/{}", f.bob_session);
    let (status, _, body) = send(&f.state, bearer(delete(&path), &f.admin_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "SESSION_NOT_FOUND");
}
