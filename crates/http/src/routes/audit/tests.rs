//! The audit routes over the whole app.

use crate::test_support::*;

#[actix_web::test]
async fn audit_routes() {
    let f = fixture();
    let (status, _, body) = send(&f.state, bearer(get("/api/audit/me"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Audit events retrieved successfully");
    let events = body["data"]["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2);
    assert!(body["data"]["next_cursor"].is_null());
    assert!(body["data"].as_object().is_some_and(|o| o.contains_key("next_cursor")));
    let keys = [
        "id",
        "at",
        "action",
        "user_id",
        "session_id",
        "ip_address",
        "user_agent",
        "request_id",
        "outcome",
    ];
    for e in &events {
        assert_eq!(e.as_object().map(|o| o.len()), Some(keys.len()), "{e}");
        assert!(keys.iter().all(|k| e.get(*k).is_some()), "{e}");
        assert_eq!(e["user_id"], f.alice.to_string());
        assert_eq!(e["session_id"], Value::Null);
        assert_eq!(e["action"], "login");
        assert_eq!(e["outcome"], "success");
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24));
    }
    // One per page: the next page has a cursor that the listing accepts.
    let (status, _, body) =
        send(&f.state, bearer(get("/api/audit/me/?limit=1&action=login"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["events"].as_array().map(Vec::len), Some(1));
    let cursor = body["data"]["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert!(!cursor.is_empty());
    let path = format!("/api/audit/me?limit=1&cursor={cursor}");
    assert_eq!(send(&f.state, bearer(get(&path), &f.user_token)).await.0, StatusCode::OK);
    // Only one's own events under /me; everyone's only for admins.
    let path = format!("/api/audit/me?user_id={}", f.alice);
    assert_eq!(send(&f.state, bearer(get(&path), &f.user_token)).await.0, StatusCode::OK);
    let path = format!("/api/audit/me?user_id={}", Uuid::nil());
    let (status, _, body) = send(&f.state, bearer(get(&path), &f.user_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "FORBIDDEN");
    for path in ["/api/audit", "/api/audit?limit=abc"] {
        let (status, _, body) = send(&f.state, bearer(get(path), &f.user_token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(code(&body), "FORBIDDEN");
    }
    let (status, _, body) = send(&f.state, bearer(get("/api/audit/"), &f.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["events"][0]["user_id"], Value::Null);
    let path = format!("/api/audit?user_id={}&from=2024-04-05T00:00:00Z", f.alice);
    let (status, _, body) = send(&f.state, bearer(get(&path), &f.admin_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["events"][0]["user_id"], f.alice.to_string());
    let (status, _, body) =
        send(&f.state, bearer(get("/api/audit?user_id=nope"), &f.admin_token)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["details"]["user_id"].is_string());
}
