//! Forward auth and the OAuth endpoints over the whole app (SPEC §6); the
//! end-to-end tests cover them on both databases, these the edges that
//! need no database: shapes of refusals, the cookie, the body limit.

use crate::test_support::*;

fn form(path: &str, body: &'static str) -> atest::TestRequest {
    post(path)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload(body)
}

/// `rs:rs-secret`, the fixture's introspection client.
const RS_BASIC: &str = "Basic cnM6cnMtc2VjcmV0";

#[actix_web::test]
async fn verify_reads_the_bearer_token_or_the_cookie() {
    let f = fixture();
    for method in [
        Method::GET,
        Method::PUT,
        Method::OPTIONS,
        Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET),
    ] {
        let req = bearer(
            atest::TestRequest::default().method(method.clone()).uri("/api/auth/verify"),
            &f.user_token,
        );
        let (status, headers, _) = send(&f.state, req).await;
        assert_eq!(status, StatusCode::OK, "{method}");
        assert!(headers.contains_key("x-auth-user-id"), "{method}");
    }
    let cookie = format!("a=b; sessiond_at={}", f.user_token);
    let req = get("/api/auth/verify").insert_header((header::COOKIE, cookie));
    let (status, headers, body) = send(&f.state, req).await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, Value::Null));
    assert_eq!(headers.get("x-auth-role").and_then(|v| v.to_str().ok()), Some("user"));
    let (status, headers, body) = send(&f.state, get("/api/auth/verify")).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
}

#[actix_web::test]
async fn oauth_refusals_are_in_the_rfc_shape() {
    let f = fixture();
    let (status, headers, body) = send(&f.state, form("/oauth/introspect", "token=x")).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"})));
    let challenge = headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
    assert_eq!(challenge, Some("Basic realm=\"sessiond\""));
    // A user's token is no client; an admin's is.
    let req = bearer(form("/oauth/introspect", "token=x"), &f.user_token);
    assert_eq!(send(&f.state, req).await.0, StatusCode::UNAUTHORIZED);
    let req = bearer(form("/oauth/introspect", "token=x"), &f.admin_token);
    assert_eq!(send(&f.state, req).await.2, json!({"active": false}));
    let req = form("/oauth/introspect", "token=x").insert_header((header::AUTHORIZATION, RS_BASIC));
    let (status, headers, body) = send(&f.state, req).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"active": false})));
    assert_eq!(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    assert!(headers.contains_key("x-request-id"));

    let big = post("/oauth/revoke")
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload(format!("token={}", "a".repeat(70_000)));
    let (status, _, body) = send(&f.state, big).await;
    assert_eq!(
        (status, body),
        (StatusCode::PAYLOAD_TOO_LARGE, json!({"error": "invalid_request"}))
    );
    let (status, headers, body) = send(&f.state, get("/oauth/revoke")).await;
    assert_eq!(
        (status, body),
        (StatusCode::METHOD_NOT_ALLOWED, json!({"error": "invalid_request"}))
    );
    assert_eq!(allow(&headers), "POST");
    let (status, _, body) = send(&f.state, form("/oauth/revoke", "token_type_hint=x")).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"error": "invalid_request"})));
    let (status, _, body) = send(&f.state, form("/oauth/revoke", "token=unknown")).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
}
