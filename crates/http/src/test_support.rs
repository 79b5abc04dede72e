//! What the handler tests share: the whole app over actix's test service,
//! without a database, on stub ports that know a few users and sessions and
//! nothing else (and an in-memory tracking store, [`tracking`]).

pub(crate) use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use accounts::{AccountError, NewUser, Role, User, UserPatch, UserStatus, UserStore};
pub(crate) use actix_web::http::{Method, StatusCode, header};
pub(crate) use actix_web::test as atest;
pub(crate) use actix_web::web;
pub(crate) use auth::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditQuery, AuthService, Ports,
    PrincipalStore, Settings,
};
pub(crate) use kernel::{Duration, OffsetDateTime, SystemClock, Uuid};
pub(crate) use serde_json::{Value, json};
pub(crate) use sessions::{
    ActivityMark, DeviceSession, Lifetimes, NewSession, SessionState, SessionStore,
};
pub(crate) use tokens::{AccessGrant, RefreshRecord, RefreshTokenStore, TokenCodec};

pub(crate) use crate::*;

pub(crate) mod tracking;

pub(crate) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Known sessions with their users; everything else is unknown. Nothing
/// changes: the tests are about routing and shapes, not about storage.
pub(crate) struct Stub {
    pairs: Vec<(DeviceSession, User)>,
}

impl Stub {
    fn session(&self, id: Uuid) -> Option<&(DeviceSession, User)> {
        self.pairs.iter().find(|(s, _)| s.id == id)
    }
}

impl UserStore for Stub {
    fn create(&self, u: NewUser) -> Result<User, AccountError> {
        Ok(u.into_user("USR-2024-000002".into()))
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
    fn change_password(&self, _: &auth::PasswordChange, _: &AuditEvent) -> anyhow::Result<u64> {
        Ok(0)
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

pub(crate) struct Probe(pub(crate) AtomicBool);

impl DatabaseProbe for Probe {
    fn check(&self) -> anyhow::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("connection refused"))
        }
    }
}

pub(crate) struct Fixture {
    pub(crate) state: ApiState,
    pub(crate) probe: Arc<Probe>,
    /// The tracking store under `state.analytics`.
    pub(crate) tracking: Arc<tracking::MemTracking>,
    /// alice (a user) on her current session.
    pub(crate) user_token: String,
    /// root (an admin).
    pub(crate) admin_token: String,
    /// john_doe (a user) on a session for the app `my_app`, as the usage-tracking examples use.
    pub(crate) john_token: String,
    pub(crate) alice: Uuid,
    /// alice's current session and her other one.
    pub(crate) alice_current: Uuid,
    pub(crate) alice_other: Uuid,
    /// bob's only session.
    pub(crate) bob_session: Uuid,
}

pub(crate) const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

pub(crate) fn fixture() -> Fixture {
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
            database: probe.clone(),
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
pub(crate) async fn send(
    state: &ApiState,
    req: atest::TestRequest,
) -> (StatusCode, header::HeaderMap, Value) {
    let app = atest::init_service(app(web::Data::new(state.clone()))).await;
    let res = atest::call_service(&app, req.to_request()).await;
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = atest::read_body(res).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

pub(crate) fn post(path: &str) -> atest::TestRequest {
    atest::TestRequest::post().uri(path)
}

pub(crate) fn bearer(req: atest::TestRequest, token: &str) -> atest::TestRequest {
    req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
}

pub(crate) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub(crate) fn get(path: &str) -> atest::TestRequest {
    atest::TestRequest::get().uri(path)
}

pub(crate) fn delete(path: &str) -> atest::TestRequest {
    atest::TestRequest::delete().uri(path)
}

pub(crate) fn patch(path: &str) -> atest::TestRequest {
    atest::TestRequest::patch().uri(path)
}

pub(crate) fn allow(headers: &header::HeaderMap) -> &str {
    headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The fields of SPEC §3's session view, in order.
pub(crate) const SESSION_FIELDS: [&str; 13] = [
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

pub(crate) fn is_session_view(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.len() == SESSION_FIELDS.len() && SESSION_FIELDS.iter().all(|k| o.contains_key(*k))
    })
}
