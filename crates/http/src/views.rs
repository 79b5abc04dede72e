//! What the API shows of the domain: the user view, the session view, the
//! claims, and the `data` of each answer. Wire names are those existing clients use.

use auth::{AuditEvent, AuditPage, SessionInfo, UserProfile};
use kernel::format_instant;
use serde::Serialize;
use sessions::{DeviceInfo, DeviceSession};
use tokens::Claims;
use utoipa::ToSchema;

mod tracking;

pub(crate) use tracking::*;

/// An account (the user of the login and refresh answers, plus `username`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The user's id (UUID).
    #[serde(rename = "_id")]
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    pub id: String,
    /// Human-friendly number, `USR-<year>-<6-digit sequence>`.
    #[schema(example = "USR-2024-001234")]
    pub user_id: String,
    /// Username, as registered.
    #[schema(example = "john_doe")]
    pub username: String,
    /// Display name.
    #[schema(required = true, example = "John Doe")]
    pub name: Option<String>,
    /// Email address.
    #[schema(required = true, example = "john.doe@example.com")]
    pub email: Option<String>,
    /// `user` by default; `admin` has the admin powers.
    #[schema(example = "user")]
    pub role: String,
    /// `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    /// When one of the user's sessions was last active.
    #[schema(required = true, example = "2024-04-05T12:00:00.000Z")]
    pub last_activity: Option<String>,
    /// Whether a session of the user was active in the last five minutes.
    pub is_online: bool,
    /// Registration time.
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    pub created_at: String,
    /// Last change of the account.
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    pub updated_at: String,
}

impl From<&UserProfile> for UserView {
    fn from(p: &UserProfile) -> Self {
        let u = &p.user;
        Self {
            id: u.id.to_string(),
            user_id: u.user_code.clone(),
            username: u.username.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role.as_str().to_owned(),
            status: u.status.as_str().to_owned(),
            last_activity: u.last_activity.map(format_instant),
            is_online: p.is_online,
            created_at: format_instant(u.created_at),
            updated_at: format_instant(u.updated_at),
        }
    }
}

/// What the user agent says about the device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceInfoView {
    /// Browser family, or `Unknown`.
    #[schema(example = "Chrome")]
    pub browser: String,
    /// Operating system family, or `Unknown`.
    #[schema(example = "Windows")]
    pub os: String,
    /// `Desktop`, `Mobile`, `Tablet`, `Bot` or `Unknown`.
    #[schema(example = "Desktop")]
    pub device: String,
}

/// A device session (the union of the `/api/sessions` and `/api/v1` forms).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (UUID).
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    pub id: String,
    /// Client address at login.
    #[schema(required = true, example = "192.0.2.10")]
    pub ip_address: Option<String>,
    /// User agent at login.
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// Browser, OS and device parsed from the user agent.
    pub device_info: DeviceInfoView,
    /// A name for people (`Chrome on Windows`).
    #[schema(example = "Chrome on Windows")]
    pub device_name: String,
    /// Where the login came from; null unless a GeoIP database is configured.
    #[schema(required = true, example = "New York, US")]
    pub location: Option<String>,
    /// How the user logged in.
    #[schema(example = "password")]
    pub login_method: String,
    /// The application the session is for.
    #[schema(example = "default")]
    pub app: String,
    /// Login time.
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    pub created_at: String,
    /// Absolute expiry.
    #[schema(example = "2024-04-06T12:00:00.000Z")]
    pub expires_at: String,
    /// Last authenticated request (written at most once a minute).
    #[schema(example = "2024-04-05T12:30:00.000Z")]
    pub last_activity: String,
    /// Whether the session can still be used (active, not expired, not
    /// idle too long).
    pub is_active: bool,
    /// Whether this is the session of the calling token.
    pub is_current: bool,
}

impl SessionView {
    /// The view of a session as a use case judged it.
    pub fn from_info(info: &SessionInfo) -> Self {
        Self::with_flags(&info.session, info.is_active, info.is_current)
    }

    fn with_flags(s: &DeviceSession, is_active: bool, is_current: bool) -> Self {
        let device = DeviceInfo::parse(s.user_agent.as_deref());
        Self {
            id: s.id.to_string(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            device_name: device.name(),
            device_info: DeviceInfoView {
                browser: device.browser,
                os: device.os,
                device: device.device,
            },
            location: s.location.clone(),
            login_method: s.login_method.clone(),
            app: s.app.clone(),
            created_at: format_instant(s.created_at),
            expires_at: format_instant(s.expires_at),
            last_activity: format_instant(s.last_activity),
            is_active,
            is_current,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClaimsView {
    /// The user's id (UUID).
    pub sub: String,
    /// The user's username.
    #[schema(example = "john_doe")]
    pub username: String,
    /// The device session (UUID).
    pub sid: String,
    /// The application.
    #[schema(example = "default")]
    pub app: String,
    /// The user's role when the token was issued.
    #[schema(example = "user")]
    pub role: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Issuer.
    #[schema(example = "sessiond")]
    pub iss: String,
}

impl From<&Claims> for ClaimsView {
    fn from(c: &Claims) -> Self {
        Self {
            sub: c.sub.clone(),
            username: c.username.clone(),
            sid: c.sid.clone(),
            app: c.app.clone(),
            role: c.role.clone(),
            iat: c.iat,
            exp: c.exp,
            jti: c.jti.clone(),
            iss: c.iss.clone(),
        }
    }
}

/// `data` of a login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoginData {
    /// Signed access token (JWT).
    pub access_token: String,
    /// Opaque refresh token; rotates on every use.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// The device session the login opened.
    pub session: SessionView,
    /// The account.
    pub user: UserView,
}

/// `data` of a refresh: the user view with a fresh access token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefreshData {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// New access token (JWT).
    pub access_token: String,
    /// New refresh token; only when one was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    #[schema(example = 900)]
    pub expires_in: i64,
}

/// `data` of logout-all.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogoutAllData {
    /// Always `Logged out from all devices`.
    #[schema(example = "Logged out from all devices")]
    pub message: &'static str,
    /// How many sessions were ended.
    pub terminated_count: u64,
}

/// `data` of validate-token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidateTokenData {
    /// The token's username.
    #[schema(example = "john_doe")]
    pub user: String,
    /// The token's application.
    #[schema(example = "default")]
    pub app: String,
    /// The token's claims.
    pub token_info: ClaimsView,
}

/// `data` of the `/api/v1` session listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionListV1Data {
    /// The sessions, newest first.
    pub sessions: Vec<SessionView>,
    /// How many there are.
    #[schema(example = 1)]
    pub total_count: usize,
}

impl SessionListV1Data {
    /// The listing of `infos`.
    pub fn new(infos: &[SessionInfo]) -> Self {
        Self {
            sessions: infos.iter().map(SessionView::from_info).collect(),
            total_count: infos.len(),
        }
    }
}

/// `data` of deleting (terminating) many sessions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerminatedCountData {
    /// How many live sessions this ended.
    #[schema(example = 3)]
    pub terminated_count: u64,
}

/// `data` of the `/api/v1` form's terminating one session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TerminatedSessionData {
    /// The session's id (UUID).
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    pub session_id: String,
    /// Its name for people.
    #[schema(example = "Chrome on Windows")]
    pub device_name: String,
}

impl From<&SessionInfo> for TerminatedSessionData {
    fn from(info: &SessionInfo) -> Self {
        let s = &info.session;
        Self {
            session_id: s.id.to_string(),
            device_name: DeviceInfo::parse(s.user_agent.as_deref()).name(),
        }
    }
}

/// The schema of an audit action name: a string enum made from
/// [`auth::AuditAction::ALL`], so the document lists exactly the names the
/// server writes and accepts.
pub(crate) fn audit_action_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An audited action: what happened to an account or a session."))
        .enum_values(Some(auth::AuditAction::ALL.map(auth::AuditAction::as_str)))
        .examples([auth::AuditAction::Login.as_str()])
        .build()
}

/// One security event of the audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventView {
    /// Event id (UUID).
    pub id: String,
    /// When it happened.
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    pub at: String,
    /// What happened (one of [`auth::AuditAction`]'s names).
    #[schema(schema_with = audit_action_schema)]
    pub action: String,
    /// Whose account (UUID), when known.
    #[schema(required = true)]
    pub user_id: Option<String>,
    /// Which session (UUID), when one is involved.
    #[schema(required = true)]
    pub session_id: Option<String>,
    /// Client address.
    #[schema(required = true, example = "192.0.2.10")]
    pub ip_address: Option<String>,
    /// Client user agent.
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// The `X-Request-Id` of the request that caused it.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// `success` or `failure`.
    #[schema(example = "success")]
    pub outcome: String,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            at: format_instant(e.at),
            action: e.action.as_str().to_owned(),
            user_id: e.user_id.map(|u| u.to_string()),
            session_id: e.session_id.map(|s| s.to_string()),
            ip_address: e.ip_address.clone(),
            user_agent: e.user_agent.clone(),
            request_id: e.request_id.clone(),
            outcome: e.outcome.as_str().to_owned(),
        }
    }
}

/// `data` of an audit listing: a page of events, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditPageData {
    /// The events, newest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&AuditPage> for AuditPageData {
    fn from(p: &AuditPage) -> Self {
        Self {
            events: p.events.iter().map(AuditEventView::from).collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounts::{Role, User, UserStatus};
    use kernel::{Duration, OffsetDateTime, Uuid};
    use serde_json::json;
    use sessions::Lifetimes;
    use sessions::SessionState;
    use time::macros::datetime;

    fn user() -> User {
        User {
            id: Uuid::nil(),
            user_code: "USR-2024-000001".into(),
            username: "john".into(),
            email: None,
            name: Some("John".into()),
            password_hash: "secret-hash".into(),
            role: Role::user(),
            status: UserStatus::Active,
            last_activity: None,
            created_at: datetime!(2024-04-05 12:00 UTC),
            updated_at: datetime!(2024-04-05 12:00:01.5 UTC),
        }
    }

    #[test]
    fn user_view_is_camel_case_with_nulls() {
        let p = UserProfile { user: user().into(), is_online: false };
        let v = serde_json::to_value(UserView::from(&p)).unwrap_or_default();
        assert_eq!(
            v,
            json!({
                "_id": Uuid::nil().to_string(), "userId": "USR-2024-000001", "username": "john",
                "name": "John", "email": null, "role": "user", "status": "active",
                "lastActivity": null, "isOnline": false,
                "createdAt": "2024-04-05T12:00:00.000Z", "updatedAt": "2024-04-05T12:00:01.500Z"
            })
        );
    }

    #[test]
    fn refresh_data_flattens_the_user() {
        let p = UserProfile { user: user().into(), is_online: true };
        let d = RefreshData {
            user: UserView::from(&p),
            access_token: "a".into(),
            refresh_token: None,
            token_type: "Bearer",
            expires_in: 900,
        };
        let v = serde_json::to_value(d).unwrap_or_default();
        assert_eq!(v["userId"], "USR-2024-000001");
        assert_eq!(v["access_token"], "a");
        assert_eq!(v["token_type"], "Bearer");
        assert!(v.get("refresh_token").is_none());
        assert!(v.get("user").is_none());
    }

    /// The view of `s` as judged at `now` (a use case's judgement).
    fn view_at(
        s: &DeviceSession,
        now: OffsetDateTime,
        l: &Lifetimes,
        current: bool,
    ) -> SessionView {
        let is_active = s.is_live(now, l);
        SessionView::from_info(&SessionInfo { session: s.clone(), is_active, is_current: current })
    }

    #[test]
    fn session_view_has_every_field() {
        let t0 = datetime!(2024-04-05 12:00 UTC);
        let s = DeviceSession {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            app: "web".into(),
            ip_address: Some("127.0.0.1".into()),
            user_agent: None,
            location: None,
            login_method: "password".into(),
            created_at: t0,
            expires_at: t0 + Duration::hours(24),
            last_activity: t0,
            state: SessionState::Active,
            ended_at: None,
        };
        let l = Lifetimes { absolute: Duration::hours(24), idle: None };
        let view = view_at(&s, t0, &l, true);
        let text = serde_json::to_string(&view).unwrap_or_default();
        let keys = [
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
        let at: Vec<Option<usize>> = keys.iter().map(|k| text.find(&format!("\"{k}\":"))).collect();
        assert!(at.iter().all(Option::is_some), "{text}");
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let v = serde_json::to_value(&view).unwrap_or_default();
        assert_eq!(v.as_object().map(|o| o.len()), Some(keys.len()));
        assert_eq!(v["is_active"], true);
        assert_eq!(v["location"], serde_json::Value::Null);
        assert_eq!(v["expires_at"], "2024-04-06T12:00:00.000Z");
        let later = view_at(&s, t0 + Duration::hours(25), &l, false);
        assert!(!later.is_active && !later.is_current);
    }

    #[test]
    fn views_from_use_case_results() {
        let t0 = datetime!(2024-04-05 12:00 UTC);
        let s = DeviceSession {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            app: "web".into(),
            ip_address: None,
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/124.0.0.0 Safari/537.36"
                    .into(),
            ),
            location: Some("New York, US".into()),
            login_method: "password".into(),
            created_at: t0,
            expires_at: t0 + Duration::hours(24),
            last_activity: t0,
            state: SessionState::Deactivated,
            ended_at: Some(t0),
        };
        // The use case's judgement is shown as it is.
        let info = SessionInfo { session: s, is_active: false, is_current: true };
        let v = serde_json::to_value(SessionView::from_info(&info)).unwrap_or_default();
        assert_eq!(v["location"], "New York, US");
        assert_eq!((v["is_active"].clone(), v["is_current"].clone()), (json!(false), json!(true)));
        assert_eq!(v["device_name"], "Chrome on Windows");
        let list = serde_json::to_value(SessionListV1Data::new(std::slice::from_ref(&info)))
            .unwrap_or_default();
        assert_eq!(list["total_count"], 1);
        assert_eq!(list["sessions"][0]["id"], Uuid::nil().to_string());
        let done = serde_json::to_value(TerminatedSessionData::from(&info)).unwrap_or_default();
        assert_eq!(
            done,
            json!({"session_id": Uuid::nil().to_string(), "device_name": "Chrome on Windows"})
        );
    }

    #[test]
    fn audit_events_show_ids_as_strings_or_null() {
        let e = AuditEvent {
            id: Uuid::nil(),
            at: datetime!(2024-04-05 12:00:00.25 UTC),
            action: auth::AuditAction::LoginFailed,
            user_id: None,
            session_id: Some(Uuid::nil()),
            ip_address: Some("192.0.2.1".into()),
            user_agent: None,
            request_id: Some("r-1".into()),
            outcome: auth::AuditOutcome::Failure,
        };
        let page = AuditPage { events: vec![e], next_cursor: None };
        let v = serde_json::to_value(AuditPageData::from(&page)).unwrap_or_default();
        assert_eq!(
            v,
            json!({"events": [{
                "id": Uuid::nil().to_string(), "at": "2024-04-05T12:00:00.250Z",
                "action": "login_failed", "user_id": null, "session_id": Uuid::nil().to_string(),
                "ip_address": "192.0.2.1", "user_agent": null, "request_id": "r-1",
                "outcome": "failure"
            }], "next_cursor": null})
        );
    }
}
