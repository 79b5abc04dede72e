//! The whole app over actix's test service, without a database: stub ports
//! that know a few users and sessions and nothing else.

use std::sync::atomic::{AtomicBool, Ordering};

use accounts::{AccountError, NewUser, Role, User, UserPatch, UserStatus, UserStore};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test as atest;
use actix_web::web;
use auth::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditQuery, AuthService, Ports,
    PrincipalStore, Settings,
};
use kernel::{Duration, OffsetDateTime, SystemClock, Uuid};
use serde_json::{Value, json};
use sessions::{ActivityMark, DeviceSession, Lifetimes, NewSession, SessionState, SessionStore};
use tokens::{AccessGrant, RefreshRecord, RefreshTokenStore, TokenCodec};

use super::*;

mod metrics;
mod rate_limits;
mod token_checks;
mod tracking;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Known sessions with their users; everything else is unknown. Nothing
/// changes: the tests are about routing and shapes, not about storage.
struct Stub {
    pairs: Vec<(DeviceSession, User)>,
}

impl Stub {
    fn session(&self, id: Uuid) -> Option<&(DeviceSession, User)> {
        self.pairs.iter().find(|(s, _)| s.id == id)
    }
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
    fn find_by_id(&self, id: Uuid) -> Result<Option<User>, AccountError> {
        Ok(self.pairs.iter().find(|(_, u)| u.id == id).map(|(_, u)| u.clone()))
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
    fn get_session(&self, id: Uuid) -> anyhow::Result<Option<DeviceSession>> {
        Ok(self.session(id).map(|(s, _)| s.clone()))
    }
    fn list_sessions(
        &self,
        user: Uuid,
        _: bool,
        _: OffsetDateTime,
    ) -> anyhow::Result<Vec<DeviceSession>> {
        Ok(self.pairs.iter().filter(|(s, _)| s.user_id == user).map(|(s, _)| s.clone()).collect())
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
    fn delete_session(&self, id: Uuid) -> anyhow::Result<bool> {
        Ok(self.session(id).is_some())
    }
    fn latest_live_activity(
        &self,
        _: Uuid,
        _: OffsetDateTime,
    ) -> anyhow::Result<Option<OffsetDateTime>> {
        Ok(None)
    }
    fn delete_user_sessions(
        &self,
        user: Uuid,
        except: Option<Uuid>,
        _: OffsetDateTime,
    ) -> anyhow::Result<Vec<Uuid>> {
        Ok(self
            .pairs
            .iter()
            .filter(|(s, _)| s.user_id == user && Some(s.id) != except)
            .map(|(s, _)| s.id)
            .collect())
    }
    fn record_activity(&self, _: &[ActivityMark]) -> anyhow::Result<u64> {
        Ok(0)
    }
    fn purge_sessions(&self, _: OffsetDateTime, _: u32) -> anyhow::Result<u64> {
        Ok(0)
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
        Ok(self.session(id).cloned())
    }
    fn rotate_refresh(
        &self,
        _: Uuid,
        _: &str,
        _: &str,
        _: OffsetDateTime,
        _: &AuditEvent,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
    fn open_session(&self, _: &NewSession, _: &AuditEvent) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Keeps no records: every login attempt is the first (throttling itself
/// is tested on the real stores).
impl auth::LoginThrottleStore for Stub {
    fn read_failures(&self, keys: &[&str]) -> anyhow::Result<Vec<Option<auth::LoginFailures>>> {
        Ok(vec![None; keys.len()])
    }

    fn update_failures(
        &self,
        keys: &[&str],
        _: OffsetDateTime,
        update: &mut dyn FnMut(&mut [Option<auth::LoginFailures>]),
    ) -> anyhow::Result<()> {
        update(&mut vec![None; keys.len()]);
        Ok(())
    }

    fn purge_failures(&self, _: OffsetDateTime, _: OffsetDateTime) -> anyhow::Result<u64> {
        Ok(0)
    }

    fn last_success(&self, _: &str) -> anyhow::Result<Option<OffsetDateTime>> {
        Ok(None)
    }

    fn record_success(&self, _: &str, _: OffsetDateTime) -> anyhow::Result<()> {
        Ok(())
    }

    fn purge_successes(&self, _: OffsetDateTime) -> anyhow::Result<u64> {
        Ok(0)
    }
}

impl AuditLog for Stub {
    fn record(&self, _: &AuditEvent) -> anyhow::Result<()> {
        Ok(())
    }
    /// Two logins of the queried user (of nobody in particular without
    /// one), newest first, at most `limit`.
    fn list_events(&self, q: &AuditQuery) -> anyhow::Result<Vec<AuditEvent>> {
        let at = kernel::from_millis(1_712_318_400_000);
        let event = |n: i64| AuditEvent {
            id: Uuid::from_u128(n as u128),
            at: at - Duration::minutes(n),
            action: AuditAction::Login,
            user_id: q.user_id,
            session_id: None,
            ip_address: Some("192.0.2.1".into()),
            user_agent: None,
            request_id: Some(format!("req-{n}")),
            outcome: AuditOutcome::Success,
        };
        Ok((1..=2).map(event).take(q.limit as usize).collect())
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
    /// The tracking store under `state.analytics`.
    tracking: Arc<tracking::MemTracking>,
    /// alice (a user) on her current session.
    user_token: String,
    /// root (an admin).
    admin_token: String,
    /// john_doe (a user) on a session for the app `my_app`, seed 004's.
    john_token: String,
    alice: Uuid,
    /// alice's current session and her other one.
    alice_current: Uuid,
    alice_other: Uuid,
    /// bob's only session.
    bob_session: Uuid,
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

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
    let session_for = |user: &User, agent: Option<&str>, app: &str| DeviceSession {
        id: kernel::new_id(),
        user_id: user.id,
        app: app.into(),
        ip_address: None,
        user_agent: agent.map(str::to_owned),
        location: None,
        login_method: "password".into(),
        created_at: now,
        expires_at: now + Duration::hours(24),
        last_activity: now,
        state: SessionState::Active,
        ended_at: None,
    };
    let session = |user: &User, agent: Option<&str>| session_for(user, agent, "web");
    let (alice, root, bob) =
        (user("alice", Role::user()), user("root", Role::admin()), user("bob", Role::user()));
    let john = user("john_doe", Role::user());
    let john_s = session_for(&john, None, "my_app");
    let (alice_s, alice_old, root_s, bob_s) = (
        session(&alice, None),
        session(&alice, Some(CHROME)),
        session(&root, None),
        session(&bob, None),
    );
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
    let john_token = token(&john, &john_s);
    let fx_ids = (alice.id, alice_s.id, alice_old.id, bob_s.id);
    let stub = Arc::new(Stub {
        pairs: vec![
            (alice_s, alice.clone()),
            (alice_old, alice),
            (root_s, root),
            (bob_s, bob),
            (john_s, john),
        ],
    });
    let ports = Ports {
        users: stub.clone(),
        sessions: stub.clone(),
        refresh: stub.clone(),
        principals: stub.clone(),
        audit: stub.clone(),
        throttle: stub,
        locator: Arc::new(sessions::NoLocator),
        clock: Arc::new(SystemClock),
    };
    let settings = Settings {
        lifetimes: Lifetimes { absolute: Duration::hours(24), idle: None },
        refresh_grace: Duration::seconds(10),
        bearer_refresh: true,
        registration_open: true,
        throttle: auth::ThrottlePolicy::default(),
    };
    let auth = AuthService::new(ports, codec, accounts::PasswordHasher::fast_for_tests(), settings);
    let probe = Arc::new(Probe(AtomicBool::new(true)));
    let tracking = Arc::new(tracking::MemTracking::default());
    Fixture {
        state: ApiState {
            auth: Arc::new(auth),
            analytics: tracking::service(tracking.clone(), true),
            readiness: probe.clone(),
            trusted_proxies: TrustedProxies::none(),
            rate_limits: Arc::new(RateLimits::new(RateLimitConfig::off())),
            metrics: Arc::new(Metrics::new()),
            token_endpoints: Arc::new(TokenEndpoints {
                verify_cookie: Some("sessiond_at".into()),
                introspection_clients: IntrospectionClients::parse("rs:rs-secret")
                    .unwrap_or_default(),
            }),
        },
        probe,
        tracking,
        user_token,
        admin_token,
        john_token,
        alice: fx_ids.0,
        alice_current: fx_ids.1,
        alice_other: fx_ids.2,
        bob_session: fx_ids.3,
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

/// Path, method, operation id, tag, query parameters, error statuses.
type DocumentedOp = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

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
    // The session, admin and audit operations: path, method, operation id,
    // tag, query parameters, and the error statuses documented.
    let more: [DocumentedOp; 14] = [
        (
            "/api/sessions",
            "get",
            "listSessions",
            "sessions",
            &["include_inactive"],
            &["401", "405", "422"],
        ),
        (
            "/api/sessions",
            "delete",
            "deleteAllSessions",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        ("/api/sessions/{id}", "delete", "deleteSession", "sessions", &[], &["401", "404"]),
        (
            "/api/sessions/{id}/deactivate",
            "patch",
            "deactivateSession",
            "sessions",
            &[],
            &["401", "404"],
        ),
        (
            "/api/v1/auth/users/me/sessions",
            "get",
            "listMySessionsV1",
            "sessions",
            &["include_inactive"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions",
            "delete",
            "terminateAllMySessionsV1",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions/all",
            "delete",
            "terminateAllMySessionsV1All",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions/{id}",
            "delete",
            "terminateMySessionV1",
            "sessions",
            &[],
            &["401", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions",
            "get",
            "adminListUserSessions",
            "admin",
            &["include_inactive"],
            &["401", "403", "404", "422"],
        ),
        (
            "/api/admin/users/{user_id}/sessions",
            "delete",
            "adminDeleteAllUserSessions",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions/{id}",
            "get",
            "adminGetUserSession",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions/{id}",
            "delete",
            "adminDeleteUserSession",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/audit/me",
            "get",
            "listMyAuditEvents",
            "audit",
            &["action", "from", "to", "limit", "cursor", "user_id"],
            &["401", "403", "422"],
        ),
        (
            "/api/audit",
            "get",
            "listAuditEvents",
            "audit",
            &["action", "from", "to", "limit", "cursor", "user_id"],
            &["401", "403", "422"],
        ),
    ];
    for (path, method, id, tag, query, errors) in more {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        assert_eq!(op["tags"], json!([tag]), "{method} {path}");
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, query, "{method} {path}");
        for status in errors.iter().chain(&["405", "500"]) {
            assert!(op["responses"][status].is_object(), "{method} {path} {status}");
        }
        assert!(op["requestBody"].is_null(), "{method} {path}");
    }
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    for tag in ["sessions", "admin", "audit"] {
        assert!(tags.contains(&tag), "{tag}");
    }
    for schema in [
        "SessionListEnvelope",
        "SessionEnvelope",
        "SessionListV1Envelope",
        "TerminatedCountEnvelope",
        "TerminatedSessionEnvelope",
        "AuditPageEnvelope",
        "AuditEventView",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let ops: Vec<(&str, &str, bool)> = ops
        .into_iter()
        .chain(more.iter().map(|(path, method, ..)| (*path, *method, true)))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, secured) in ops {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path}");
        assert!(ids.insert(op["operationId"].to_string()), "{method} {path}");
        assert_eq!(op["security"].is_array(), secured, "{method} {path}");
        assert!(op["responses"]["500"].is_object(), "{method} {path}");
    }
}

/// Every operation of the document, with its path and method.
fn documented_operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn every_operation_is_tagged_named_and_answers_with_examples() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    let ops = documented_operations(&doc);
    assert!(ops.len() >= 50, "{} operations", ops.len());
    let areas =
        ["auth", "sessions", "analytics", "pages", "health", "admin", "audit", "oauth", "keys"];
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_default();
        // Generated clients turn these into method names: lowerCamelCase.
        assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{method} {path}: {id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{method} {path}: {id}");
        assert!(ids.insert(id.to_owned()), "{id} twice");
        let tags = op["tags"].as_array().cloned().unwrap_or_default();
        assert!(
            tags.len() == 1 && areas.iter().any(|a| tags[0] == *a),
            "{method} {path}: {tags:?}"
        );
        // The database behind every /api/ operation but the two health
        // checks, behind readiness and behind the OAuth endpoints.
        let stored =
            path.starts_with("/api/") && path != "/api/health" && path != "/api/auth/health"
                || path == "/health/ready"
                || path.starts_with("/oauth/");
        assert_eq!(op["responses"]["503"].is_object(), stored, "{method} {path} 503");
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let content = &response["content"]["application/json"];
            if content["schema"]["$ref"] != "#/components/schemas/ErrorEnvelope" {
                continue;
            }
            // The example is a real error envelope of its status; when the
            // description names a code, the example has that code.
            let example = &content["example"];
            assert_eq!(example["success"], false, "{method} {path} {status}");
            let code = example["error"]["code"].as_str().unwrap_or_default();
            let code = error::ErrorCode::ALL
                .into_iter()
                .find(|c| c.as_str() == code)
                .unwrap_or_else(|| panic!("{method} {path} {status}: no example code"));
            assert_eq!(code.status().as_str(), status, "{method} {path}");
            let description = response["description"].as_str().unwrap_or_default();
            let named = error::ErrorCode::ALL
                .into_iter()
                .filter_map(|c| description.find(c.as_str()).map(|at| (at, c)))
                .min_by_key(|(at, _)| *at);
            if let Some((_, named)) = named {
                assert_eq!(code, named, "{method} {path} {status}");
            }
        }
    }
    // Security exactly where a token is needed: never on the probes, the
    // document, the docs page, register and login.
    for (path, method, op) in &ops {
        let public = matches!(
            (path.as_str(), method.as_str()),
            ("/api/auth/register" | "/api/auth/login" | "/api/auth/health", "post")
        ) || !path.starts_with("/api/") && path != "/oauth/introspect"
            || path.starts_with("/api/health")
            || path.starts_with("/api/sessions/public-");
        if public {
            assert!(op["security"].is_null(), "{method} {path} needs no token");
        } else {
            assert!(op["security"].is_array(), "{method} {path} needs a token");
            assert!(op["responses"]["401"].is_object(), "{method} {path} 401");
        }
    }
    // A 405's example names the methods the path really answers.
    for (path, method, allow) in [
        ("/api/auth/login", "post", "POST"),
        ("/api/sessions", "get", "GET, HEAD, DELETE"),
        ("/", "get", "GET, HEAD, POST"),
    ] {
        let example = &doc["paths"][path][method]["responses"]["405"]["content"]["application/json"]
            ["example"];
        assert_eq!(example["error"]["details"], format!("This path answers only {allow}"));
    }
    // The audit actions are an enum in the view and in both filters.
    let actions: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    let view = &doc["components"]["schemas"]["AuditEventView"]["properties"]["action"];
    assert_eq!(view["enum"], json!(actions));
    for path in ["/api/audit", "/api/audit/me"] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().cloned();
        let action = params.into_iter().flatten().find(|p| p["name"] == "action");
        assert_eq!(action.map(|p| p["schema"]["enum"].clone()), Some(json!(actions)), "{path}");
    }
    let docs = &doc["paths"]["/docs"]["get"];
    assert!(docs["responses"]["200"]["content"]["text/html"].is_object(), "{docs}");
}

#[test]
fn links_name_real_operations_and_their_parameters() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    let ops = documented_operations(&doc);
    let by_id = |id: &str| ops.iter().find(|(.., op)| op["operationId"] == id).map(|(.., op)| op);
    let mut links = 0;
    for (path, method, op) in &ops {
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap_or_default();
                let target = by_id(target)
                    .unwrap_or_else(|| panic!("{method} {path} {status} {name}: no {target}"));
                let params: Vec<&str> = target["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                    assert!(params.contains(&param.as_str()), "{name}: {param} of {params:?}");
                    assert!(expr.as_str().is_some_and(|e| e.starts_with('$')), "{name}");
                }
            }
        }
    }
    assert!(links >= 10, "{links} links");
}

/// Seed 004's operations: path, operation id, tag, security (`None` for
/// public, `Some(true)` for bearer, `Some(false)` for optional bearer),
/// and the error statuses documented.
type AnalyticsOp =
    (&'static str, &'static str, &'static str, Option<bool>, &'static [&'static str]);

#[test]
fn the_openapi_document_describes_seed_004() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    const BEARER: &[&str] = &["400", "401", "403", "413", "422"];
    const STEP: &[&str] = &["400", "401", "403", "404", "409", "413", "422"];
    const PUBLIC: &[&str] = &["400", "404", "413", "422"];
    const TRACK: &[&str] = &["400", "401", "403", "404", "413", "422"];
    let ops: [AnalyticsOp; 16] = [
        ("/api/sessions/start", "startSession", "analytics", Some(true), BEARER),
        ("/api/sessions/pause", "pauseSession", "analytics", Some(true), STEP),
        ("/api/sessions/resume", "resumeSession", "analytics", Some(true), STEP),
        ("/api/sessions/end", "endSession", "analytics", Some(true), STEP),
        ("/api/sessions/heatmap", "getHeatmap", "analytics", Some(true), BEARER),
        ("/api/sessions/most-active", "getMostActive", "analytics", Some(true), BEARER),
        ("/api/sessions/stats", "getStats", "analytics", Some(true), BEARER),
        ("/api/sessions/summary", "getSummary", "analytics", Some(true), BEARER),
        ("/api/sessions/public-summary", "getPublicSummary", "analytics", None, PUBLIC),
        ("/api/sessions/timeline", "getTimeline", "analytics", Some(true), BEARER),
        ("/api/sessions/public-timeline", "getPublicTimeline", "analytics", None, PUBLIC),
        ("/api/sessions/daily-time-spent", "getDailyTimeSpent", "analytics", Some(true), BEARER),
        ("/api/sessions/time-by-page", "getTimeByPage", "analytics", Some(true), BEARER),
        (
            "/api/sessions/session-timeline-detail",
            "getSessionTimelineDetail",
            "analytics",
            Some(true),
            BEARER,
        ),
        ("/api/pages/track", "trackPage", "pages", Some(false), TRACK),
        ("/api/pages/stats", "getPageStats", "pages", Some(true), BEARER),
    ];
    for (path, id, tag, security, errors) in ops {
        let item = doc["paths"][path].as_object().cloned().unwrap_or_default();
        assert_eq!(item.keys().collect::<Vec<_>>(), ["post"], "{path}");
        let op = &doc["paths"][path]["post"];
        assert_eq!(op["operationId"], id, "{path}");
        assert_eq!(op["tags"], json!([tag]), "{path}");
        let bearer = json!({"bearerAuth": []});
        match security {
            None => assert!(op["security"].is_null(), "{path}"),
            Some(true) => assert_eq!(op["security"], json!([bearer]), "{path}"),
            Some(false) => assert_eq!(op["security"], json!([{}, bearer]), "{path}"),
        }
        let body = &op["requestBody"]["content"]["application/json"];
        assert!(body["schema"]["$ref"].is_string(), "{path}");
        assert!(body["example"].is_object(), "{path}");
        assert_eq!(op["requestBody"]["required"], true, "{path}");
        let ok = &op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert!(ok.as_str().is_some_and(|r| r.ends_with("Envelope")), "{path}");
        for status in errors.iter().chain(&["405", "500"]) {
            assert!(op["responses"][status].is_object(), "{path} {status}");
        }
        if security.is_none() {
            assert!(op["responses"]["401"].is_null(), "{path}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    // The heatmap envelope has `heatmap_data` beside `data`.
    let heatmap = &schemas["HeatmapEnvelope"];
    assert_eq!(heatmap["properties"]["data"]["$ref"], "#/components/schemas/HeatmapData");
    assert_eq!(heatmap["properties"]["heatmap_data"]["$ref"], "#/components/schemas/HeatmapData");
    assert!(
        heatmap["required"].as_array().is_some_and(|r| r.contains(&json!("heatmap_data"))),
        "{heatmap}"
    );
    // Seed 004's examples are in the schemas.
    assert_eq!(schemas["HeatmapData"]["example"]["weekly_hourly"]["1"]["10"], 15);
    assert_eq!(schemas["SessionEndedData"]["example"]["total_duration"], "01:00:00");
    assert_eq!(schemas["StatsData"]["example"]["total_time_spent"], "112:15:00");
    assert_eq!(schemas["TrackBody"]["example"]["timespent"], 120);
    assert_eq!(schemas["TrackBody"]["properties"]["timespent"]["maximum"], 86_400);
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(tags.contains(&"analytics") && tags.contains(&"pages"));
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
    let srv =
        server(f.state.clone(), listener, 1, std::time::Duration::from_secs(1)).expect("a server");
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

fn get(path: &str) -> atest::TestRequest {
    atest::TestRequest::get().uri(path)
}

fn delete(path: &str) -> atest::TestRequest {
    atest::TestRequest::delete().uri(path)
}

fn patch(path: &str) -> atest::TestRequest {
    atest::TestRequest::patch().uri(path)
}

fn allow(headers: &header::HeaderMap) -> &str {
    headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The fields of SPEC §3's session view, in order.
const SESSION_FIELDS: [&str; 13] = [
    "id",
    "ip_address",
    "user_agent",
    "device_info",
    "device_name",
    "location",
    "login_method",
    "app",
    "created_at",
    "expires_at",
    "last_activity",
    "is_active",
    "is_current",
];

fn is_session_view(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.len() == SESSION_FIELDS.len() && SESSION_FIELDS.iter().all(|k| o.contains_key(*k))
    })
}

#[actix_web::test]
async fn seed_000_session_routes() {
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
async fn seed_001_session_routes() {
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
    // Seed 004's tracking routes come before the `{id}` resources: a POST
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

#[test]
fn the_client_address_honours_only_trusted_proxies() {
    let f = fixture();
    let req = |state: &ApiState, peer: &str| {
        atest::TestRequest::default()
            .peer_addr(peer.parse().unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0))))
            .insert_header(("X-Forwarded-For", "198.51.100.7, 10.1.1.1"))
            .app_data(web::Data::new(state.clone()))
            .to_http_request()
    };
    // By default nothing is trusted: the peer, whatever the headers say.
    let r = req(&f.state, "10.0.0.1:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("10.0.0.1"));
    assert_eq!(authn::meta(&r).ip.as_deref(), Some("10.0.0.1"));
    let r = req(&f.state, "[::ffff:10.0.0.1]:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("10.0.0.1"));
    let trusting = ApiState {
        trusted_proxies: TrustedProxies::new([(
            "10.0.0.0".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            8,
        )]),
        ..f.state.clone()
    };
    let r = req(&trusting, "10.0.0.1:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("198.51.100.7"));
    let r = req(&trusting, "[::ffff:10.0.0.1]:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("198.51.100.7"));
    let r = req(&trusting, "203.0.113.9:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("203.0.113.9"));
}
