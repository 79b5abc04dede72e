//! The whole app over actix's test service, without a database: stub ports
//! that know one session (and its user) and nothing else.

use std::sync::atomic::{AtomicBool, Ordering};

use accounts::{AccountError, NewUser, Role, User, UserPatch, UserStatus, UserStore};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test as atest;
use actix_web::web;
use auth::{AuditEvent, AuditLog, AuthService, Ports, PrincipalStore, Settings};
use kernel::{Duration, OffsetDateTime, SystemClock, Uuid};
use serde_json::{Value, json};
use sessions::{DeviceSession, Lifetimes, NewSession, SessionState, SessionStore};
use tokens::{AccessGrant, RefreshRecord, RefreshTokenStore, TokenCodec};

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// One known session and its user; everything else is unknown.
struct Stub {
    session: DeviceSession,
    user: User,
}

impl UserStore for Stub {
    fn create(&self, u: NewUser) -> Result<User, AccountError> {
        Ok(User {
            id: u.id,
            user_code: "USR-2024-000002".into(),
            username: u.username.into_inner(),
            email: u.email.map(|e| e.into_inner()),
            name: u.name.map(|n| n.into_inner()),
            password_hash: u.password_hash,
            role: u.role,
            status: UserStatus::Active,
            last_activity: None,
            created_at: u.created_at,
            updated_at: u.created_at,
        })
    }
    fn find_by_id(&self, _: Uuid) -> Result<Option<User>, AccountError> {
        Ok(None)
    }
    fn find_by_username(&self, _: &str) -> Result<Option<User>, AccountError> {
        Ok(None)
    }
    fn find_by_email(&self, _: &str) -> Result<Option<User>, AccountError> {
        Ok(None)
    }
    fn update(
        &self,
        _: Uuid,
        _: &UserPatch,
        _: OffsetDateTime,
    ) -> Result<Option<User>, AccountError> {
        Ok(None)
    }
}

impl SessionStore for Stub {
    fn create_session(&self, _: &NewSession) -> anyhow::Result<()> {
        Ok(())
    }
    fn get_session(&self, _: Uuid) -> anyhow::Result<Option<DeviceSession>> {
        Ok(None)
    }
    fn list_sessions(
        &self,
        _: Uuid,
        _: bool,
        _: OffsetDateTime,
    ) -> anyhow::Result<Vec<DeviceSession>> {
        Ok(Vec::new())
    }
    fn end_session(&self, _: Uuid, _: SessionState, _: OffsetDateTime) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn end_user_sessions(
        &self,
        _: Uuid,
        _: Option<Uuid>,
        _: SessionState,
        _: OffsetDateTime,
    ) -> anyhow::Result<u64> {
        Ok(3)
    }
    fn delete_session(&self, _: Uuid) -> anyhow::Result<bool> {
        Ok(false)
    }
    fn touch_session(
        &self,
        _: Uuid,
        _: Uuid,
        _: OffsetDateTime,
        _: Duration,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
    fn latest_live_activity(
        &self,
        _: Uuid,
        _: OffsetDateTime,
    ) -> anyhow::Result<Option<OffsetDateTime>> {
        Ok(None)
    }
}

impl RefreshTokenStore for Stub {
    fn find_refresh(&self, _: &str) -> anyhow::Result<Option<RefreshRecord>> {
        Ok(None)
    }
    fn current_refresh(&self, _: Uuid) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    fn replace_refresh(
        &self,
        _: Uuid,
        _: &str,
        _: &str,
        _: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
}

impl PrincipalStore for Stub {
    fn session_with_user(&self, id: Uuid) -> anyhow::Result<Option<(DeviceSession, User)>> {
        Ok((id == self.session.id).then(|| (self.session.clone(), self.user.clone())))
    }
}

impl AuditLog for Stub {
    fn record(&self, _: &AuditEvent) -> anyhow::Result<()> {
        Ok(())
    }
}

struct Probe(AtomicBool);

impl Readiness for Probe {
    fn check(&self) -> anyhow::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("connection refused"))
        }
    }
}

struct Fixture {
    state: ApiState,
    probe: Arc<Probe>,
    user_token: String,
    admin_token: String,
}

fn fixture() -> Fixture {
    let now = OffsetDateTime::now_utc();
    let user = |name: &str, role: Role| User {
        id: kernel::new_id(),
        user_code: "USR-2024-000001".into(),
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        name: None,
        password_hash: String::new(),
        role,
        status: UserStatus::Active,
        last_activity: Some(now),
        created_at: now,
        updated_at: now,
    };
    let session = |user: &User| DeviceSession {
        id: kernel::new_id(),
        user_id: user.id,
        app: "web".into(),
        ip_address: None,
        user_agent: None,
        login_method: "password".into(),
        created_at: now,
        expires_at: now + Duration::hours(24),
        last_activity: now,
        state: SessionState::Active,
        ended_at: None,
    };
    let (alice, root) = (user("alice", Role::user()), user("root", Role::admin()));
    let (alice_s, root_s) = (session(&alice), session(&root));
    let codec = TokenCodec::new(SECRET, "sessiond", Duration::minutes(15));
    let token = |u: &User, s: &DeviceSession| {
        let grant = AccessGrant {
            user_id: u.id,
            username: u.username.clone(),
            session_id: s.id,
            app: s.app.clone(),
            role: u.role.as_str().into(),
        };
        codec.issue(&grant, now).0
    };
    let (user_token, admin_token) = (token(&alice, &alice_s), token(&root, &root_s));
    let ports = |stub: Arc<Stub>| Ports {
        users: stub.clone(),
        sessions: stub.clone(),
        refresh: stub.clone(),
        principals: stub.clone(),
        audit: stub,
        clock: Arc::new(SystemClock),
    };
    // Two principals through one port: a router over two stubs.
    struct Both(Stub, Stub);
    impl PrincipalStore for Both {
        fn session_with_user(&self, id: Uuid) -> anyhow::Result<Option<(DeviceSession, User)>> {
            Ok(self.0.session_with_user(id)?.or(self.1.session_with_user(id)?))
        }
    }
    let mut p = ports(Arc::new(Stub { session: alice_s.clone(), user: alice.clone() }));
    p.principals = Arc::new(Both(
        Stub { session: alice_s, user: alice },
        Stub { session: root_s, user: root },
    ));
    let settings = Settings {
        lifetimes: Lifetimes { absolute: Duration::hours(24), idle: None },
        refresh_grace: Duration::seconds(10),
        registration_open: true,
    };
    let auth = AuthService::new(p, codec, accounts::PasswordHasher::fast_for_tests(), settings);
    let probe = Arc::new(Probe(AtomicBool::new(true)));
    Fixture {
        state: ApiState { auth: Arc::new(auth), readiness: probe.clone() },
        probe,
        user_token,
        admin_token,
    }
}

/// Sends `req` through the app; the status, headers and JSON body.
async fn send(state: &ApiState, req: atest::TestRequest) -> (StatusCode, header::HeaderMap, Value) {
    let app = atest::init_service(app(web::Data::new(state.clone()))).await;
    let res = atest::call_service(&app, req.to_request()).await;
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = atest::read_body(res).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(path: &str) -> atest::TestRequest {
    atest::TestRequest::post().uri(path)
}

fn bearer(req: atest::TestRequest, token: &str) -> atest::TestRequest {
    req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn unknown_routes_are_404_envelopes_with_a_request_id() {
    let f = fixture();
    let (status, headers, body) = send(&f.state, atest::TestRequest::get().uri("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "NOT_FOUND");
    assert_eq!(body["success"], false);
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(body["requestId"], id);
}

#[actix_web::test]
async fn the_clients_request_id_is_kept_when_sane() {
    let f = fixture();
    let req =
        atest::TestRequest::get().uri("/health/live").insert_header(("X-Request-Id", "abc-123"));
    let (status, headers, body) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("abc-123"));
    assert_eq!(body["requestId"], "abc-123");
    let req = post("/api/auth/login").insert_header(("X-Request-Id", "bad id!"));
    let (_, headers, body) = send(&f.state, req).await;
    let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(Uuid::parse_str(id).is_ok());
    assert_eq!(body["requestId"], id);
}

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

#[actix_web::test]
async fn trailing_slashes_answer_directly() {
    let f = fixture();
    for path in ["/health/live", "/health/live/", "/health/live//", "/"] {
        let (status, _, _) = send(&f.state, atest::TestRequest::get().uri(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _, body) =
        send(&f.state, bearer(post("/api/auth/token-info/"), &f.user_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["username"], "alice");
}

#[actix_web::test]
async fn other_methods_are_405_before_authentication() {
    let f = fixture();
    let (status, headers, body) =
        send(&f.state, atest::TestRequest::get().uri("/api/auth/login")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    assert_eq!(headers.get(header::ALLOW).and_then(|v| v.to_str().ok()), Some("POST"));
    let (status, _, body) = send(&f.state, atest::TestRequest::delete().uri("/api/auth/me/")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    let (status, _, _) = send(&f.state, post("/api/admin/users/x")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn large_bodies_are_413() {
    let f = fixture();
    let big = format!(r#"{{"username":"{}","password":"x"}}"#, "a".repeat(70_000));
    // No Content-Length: counted while reading.
    let (status, _, body) = send(&f.state, post("/api/auth/login").set_payload(big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");
    // Declared too large: refused without reading.
    let req = post("/api/auth/login")
        .set_payload("{}")
        .insert_header((header::CONTENT_LENGTH, "1000000"));
    let (status, _, _) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Declared small, sent large: counted while reading.
    let req =
        post("/api/auth/login").set_payload(big).insert_header((header::CONTENT_LENGTH, "10"));
    let (status, _, _) = send(&f.state, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly the limit is fine (and then judged on its content).
    let pad = " ".repeat(body::LIMIT - 2);
    let (status, _, _) =
        send(&f.state, post("/api/auth/health").set_payload(format!("{{{pad}}}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn bodies_are_classified() {
    let f = fixture();
    let cases = [
        (Some("text/plain"), r#"{"username":"a","password":"b"}"#, 400, "BAD_REQUEST"),
        (Some("application/json"), "{nope", 400, "BAD_REQUEST"),
        (None, "", 400, "BAD_REQUEST"),
        (None, "[1]", 422, "VALIDATION_ERROR"),
        (None, r#"{"username":"a"}"#, 422, "VALIDATION_ERROR"),
        (None, r#"{"username":1,"password":"b"}"#, 422, "VALIDATION_ERROR"),
    ];
    for (ct, payload, want, want_code) in cases {
        let mut req = post("/api/auth/login").set_payload(payload);
        if let Some(ct) = ct {
            req = req.insert_header((header::CONTENT_TYPE, ct));
        }
        let (status, _, body) = send(&f.state, req).await;
        assert_eq!(status.as_u16(), want, "{payload}");
        assert_eq!(code(&body), want_code, "{payload}");
    }
    let (_, _, body) =
        send(&f.state, post("/api/auth/login").set_payload(r#"{"username":"a"}"#)).await;
    assert_eq!(body["error"]["details"], json!({"password": "is required"}));
    assert_eq!(body["message"], "Validation failed");
}

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
async fn the_openapi_document_is_served_as_generated() {
    let f = fixture();
    let app = atest::init_service(app(web::Data::new(f.state.clone()))).await;
    let res = atest::call_service(
        &app,
        atest::TestRequest::get().uri("/api-docs/openapi.json").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = atest::read_body(res).await;
    assert_eq!(bytes, openapi_json().as_bytes());
}

#[test]
fn the_openapi_document_is_deterministic_and_complete() {
    let json = openapi_json();
    assert_eq!(json, openapi_json());
    let doc: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "sessiond");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An access token from login or refresh"})
    );
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for c in error::ErrorCode::ALL {
        assert!(codes.as_array().is_some_and(|a| a.contains(&Value::from(c.as_str()))), "{c}");
    }
    let ops = [
        ("/", "get", false),
        ("/", "post", false),
        ("/api/health", "get", false),
        ("/api/health", "post", false),
        ("/health/live", "get", false),
        ("/health/ready", "get", false),
        ("/api/auth/health", "post", false),
        ("/api/auth/register", "post", false),
        ("/api/auth/login", "post", false),
        ("/api/auth/me", "get", true),
        ("/api/auth/refresh", "post", true),
        ("/api/auth/logout", "post", true),
        ("/api/auth/logout-all", "post", true),
        ("/api/v1/auth/logout-all", "post", true),
        ("/api/auth/validate-token", "post", true),
        ("/api/auth/token-info", "post", true),
        ("/api/admin/users/{user_id}", "patch", true),
        ("/api-docs/openapi.json", "get", false),
    ];
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, secured) in ops {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path}");
        assert!(ids.insert(op["operationId"].to_string()), "{method} {path}");
        assert_eq!(op["security"].is_array(), secured, "{method} {path}");
        assert!(op["responses"]["500"].is_object(), "{method} {path}");
    }
}

/// Sends raw HTTP/1.1 bytes to `addr` and returns what came back.
fn raw_exchange(addr: std::net::SocketAddr, head: &str, chunks: &[Vec<u8>]) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = stream.write_all(head.as_bytes());
    for chunk in chunks {
        // The server may answer and stop reading early: ignore write errors.
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = stream.write_all(chunk);
        let _ = stream.write_all(b"\r\n");
    }
    if !chunks.is_empty() {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[actix_web::test]
async fn the_real_server_counts_chunked_bodies() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address");
    let srv = server(f.state.clone(), listener, 1).expect("a server");
    let handle = srv.handle();
    actix_web::rt::spawn(srv);
    let head = "POST /api/auth/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut chunks = vec![b"{\"app\":\"".to_vec()];
    chunks.extend(std::iter::repeat_n(vec![b'a'; 1024], 70));
    chunks.push(b"\"}".to_vec());
    let big = web::block(move || raw_exchange(addr, head, &chunks)).await.unwrap_or_default();
    let small = web::block(move || {
        raw_exchange(addr, head, &[b"{\"app\":".to_vec(), b"\"web\"}".to_vec()])
    })
    .await
    .unwrap_or_default();
    let unknown = web::block(move || {
        raw_exchange(addr, "GET /nope/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &[])
    })
    .await
    .unwrap_or_default();
    handle.stop(false).await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("PAYLOAD_TOO_LARGE"), "{big}");
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.to_ascii_lowercase().contains("x-request-id: "), "{unknown}");
}
