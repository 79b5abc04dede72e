//! The account and token routes over the whole app: register, login,
//! bearer tokens, token info, logout, refresh.

use crate::test_support::*;

#[actix_web::test]
async fn register_answers_201_with_the_user_view() {
    let f = fixture();
    let req = post("/api/auth/register").set_json(json!({
        "username": "new_user", "password": "long enough", "email": null, "name": "New"
    }));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["message"], "User registered successfully");
    assert_eq!(body["data"]["username"], "new_user");
    assert_eq!(body["data"]["userId"], "USR-2024-000002");
    assert_eq!(body["data"]["email"], Value::Null);
    assert!(body["data"].get("password_hash").is_none());
    let req = post("/api/auth/register").set_json(json!({"username": "x", "password": "short"}));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["details"]["username"].is_string());
    assert!(body["error"]["details"]["password"].is_string());
}

#[actix_web::test]
async fn unknown_users_cannot_log_in() {
    let f = fixture();
    let req =
        post("/api/auth/login").set_json(json!({"username": "ghost", "password": "whatever1"}));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "INVALID_CREDENTIALS");
    assert_eq!(body["message"], "Invalid credentials");
}

#[actix_web::test]
async fn bearer_tokens_are_required_and_checked() {
    let f = fixture();
    let (status, headers, body) =
        send(&f.state, atest::TestRequest::get().uri("/api/auth/me")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHORIZED");
    assert_eq!(body["message"], "Unauthorized");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    let req = atest::TestRequest::get()
        .uri("/api/auth/me")
        .insert_header((header::AUTHORIZATION, "Basic abc"));
    assert_eq!(send(&f.state, req).await.0, StatusCode::UNAUTHORIZED);
    let req = bearer(atest::TestRequest::get().uri("/api/auth/me"), "not.a.jwt");
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["details"], "Token is malformed");
    let req = atest::TestRequest::get()
        .uri("/api/auth/me")
        .insert_header((header::AUTHORIZATION, format!("bearer {}", f.user_token)));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "User authenticated");
    assert_eq!(body["data"]["username"], "alice");
    assert_eq!(body["data"]["isOnline"], true);
}

#[actix_web::test]
async fn token_info_and_validate_token() {
    let f = fixture();
    let (status, _, body) =
        send(&f.state, bearer(post("/api/auth/token-info"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Token information retrieved");
    for claim in ["sub", "username", "sid", "app", "role", "iat", "exp", "jti", "iss"] {
        assert!(body["data"].get(claim).is_some(), "{claim}");
    }
    let req =
        bearer(post("/api/auth/validate-token"), &f.user_token).set_json(json!({"app": "web"}));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Token is valid");
    assert_eq!(body["data"]["user"], "alice");
    assert_eq!(body["data"]["app"], "web");
    assert_eq!(body["data"]["token_info"]["app"], "web");
    let req =
        bearer(post("/api/auth/validate-token"), &f.user_token).set_json(json!({"app": "other"}));
    let (status, _, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "FORBIDDEN");
    let req = bearer(post("/api/auth/token-info"), &f.user_token).set_json(json!({"app": 5}));
    assert_eq!(send(&f.state, req).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn logout_and_logout_all() {
    let f = fixture();
    let (status, _, body) = send(&f.state, bearer(post("/api/auth/logout"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Logged out successfully");
    assert_eq!(body["data"], Value::Null);
    for path in ["/api/auth/logout-all", "/api/v1/auth/logout-all/"] {
        let (status, _, body) = send(&f.state, bearer(post(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["data"],
            json!({"message": "Logged out from all devices", "terminated_count": 3})
        );
    }
}

#[actix_web::test]
async fn refresh_needs_a_token_of_some_kind() {
    let f = fixture();
    let (status, _, body) = send(&f.state, post("/api/auth/refresh")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHORIZED");
    let req = post("/api/auth/refresh").set_json(json!({"refresh_token": "unknown"}));
    assert_eq!(send(&f.state, req).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&f.state, bearer(post("/api/auth/refresh"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Session refreshed");
    assert_eq!(body["data"]["username"], "alice");
    assert_eq!(body["data"]["token_type"], "Bearer");
    assert!(body["data"]["access_token"].is_string());
    assert!(body["data"].get("refresh_token").is_none());
}
