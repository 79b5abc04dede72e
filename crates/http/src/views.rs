//! What the API shows of the domain: the user view, the session view, the
//! claims, and the `data` of each answer. Wire names are the seeds'.

use auth::UserProfile;
use kernel::{OffsetDateTime, format_instant};
use serde::Serialize;
use sessions::{DeviceInfo, DeviceSession, Lifetimes};
use tokens::Claims;
use utoipa::ToSchema;

/// An account (seed 002's user, plus `username`).
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

/// A device session (the union of seeds 000 and 001).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (UUID).
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
    pub created_at: String,
    /// Absolute expiry.
    pub expires_at: String,
    /// Last authenticated request (written at most once a minute).
    pub last_activity: String,
    /// Whether the session can still be used.
    pub is_active: bool,
    /// Whether this is the session of the calling token.
    pub is_current: bool,
}

impl SessionView {
    /// The view of `s` at `now`; `is_current` when it is the caller's.
    pub fn new(
        s: &DeviceSession,
        now: OffsetDateTime,
        lifetimes: &Lifetimes,
        is_current: bool,
    ) -> Self {
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
            location: None,
            login_method: s.login_method.clone(),
            app: s.app.clone(),
            created_at: format_instant(s.created_at),
            expires_at: format_instant(s.expires_at),
            last_activity: format_instant(s.last_activity),
            is_active: s.is_live(now, lifetimes),
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

#[cfg(test)]
mod tests {
    use super::*;
    use accounts::{Role, User, UserStatus};
    use kernel::{Duration, Uuid};
    use serde_json::json;
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
        let p = UserProfile { user: user(), is_online: false };
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
        let p = UserProfile { user: user(), is_online: true };
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

    #[test]
    fn session_view_has_every_field() {
        let t0 = datetime!(2024-04-05 12:00 UTC);
        let s = DeviceSession {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            app: "web".into(),
            ip_address: Some("127.0.0.1".into()),
            user_agent: None,
            login_method: "password".into(),
            created_at: t0,
            expires_at: t0 + Duration::hours(24),
            last_activity: t0,
            state: SessionState::Active,
            ended_at: None,
        };
        let l = Lifetimes { absolute: Duration::hours(24), idle: None };
        let view = SessionView::new(&s, t0, &l, true);
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
        let later = SessionView::new(&s, t0 + Duration::hours(25), &l, false);
        assert!(!later.is_active && !later.is_current);
    }
}
