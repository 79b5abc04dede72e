//! The health routes over the whole app.

use crate::test_support::*;

#[actix_web::test]
async fn health_endpoints() {
    let f = fixture();
    for (method, path, message) in [
        (Method::GET, "/", "Session Server is running"),
        (Method::POST, "/", "Session Server is running"),
        (Method::GET, "/api/health", "API is healthy"),
        (Method::POST, "/api/health/", "API is healthy"),
        (Method::POST, "/api/auth/health", "Authentication service is healthy"),
    ] {
        let req = atest::TestRequest::default()
            .method(method.clone())
            .uri(path)
            .insert_header(header::ContentType::json())
            .set_payload(r#"{"app":"my_app"}"#);
        let (status, _, body) = send(&f.state, req).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}");
        assert_eq!(body["message"], message);
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"], Value::Null);
        assert!(body["timestamp"].is_string());
    }
    let (status, _, _) = send(&f.state, atest::TestRequest::get().uri("/health/ready")).await;
    assert_eq!(status, StatusCode::OK);
    f.probe.0.store(false, Ordering::Relaxed);
    let (status, _, body) = send(&f.state, atest::TestRequest::get().uri("/health/ready/")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "SERVICE_UNAVAILABLE");
    assert!(!body.to_string().contains("refused"));
    let (status, _, _) =
        send(&f.state, atest::TestRequest::default().method(Method::HEAD).uri("/health/live"))
            .await;
    assert_eq!(status, StatusCode::OK);
}
