//! Use cases of sessiond that span the accounts, sessions and tokens
//! domains: register, login, authenticate a request, refresh, logout,
//! logout-all, administer users, and the audit trail of all of them.
//!
//! Everything here is synchronous and may block on the stores and on Argon2:
//! adapters call it from a blocking thread pool, never from an async
//! executor. The service only knows ports ([`Ports`]); sessiond's `store`
//! crate implements them all over PostgreSQL and SQLite.
//!
//! An [`AuthService`] over a private in-memory SQLite database: register,
//! log in, authenticate the access token as every request does, rotate the
//! refresh token, list the devices signed in, log out.
//!
//! ```
//! use std::sync::Arc;
//! use accounts::PasswordHasher;
//! use auth::{AuthError, AuthService, LoginInput, RegisterInput, RequestMeta, Settings};
//! use kernel::Duration;
//! use sessions::{DeviceInfo, Lifetimes};
//! use tokens::TokenCodec;
//!
//! let store = store::Store::connect("sqlite::memory:", &Default::default())?;
//! store.migrate()?;
//! // No GeoIP lookup of client addresses; the real clock.
//! let (locator, clock) = (Arc::new(sessions::NoLocator), Arc::new(kernel::SystemClock));
//! let ports = store.auth_ports(locator, clock);
//! let secret = b"at least 32 random bytes, kept secret";
//! let codec = TokenCodec::new(secret, "my-app", Duration::minutes(15));
//! let settings = Settings {
//!     lifetimes: Lifetimes { absolute: Duration::days(30), idle: Some(Duration::days(7)) },
//!     refresh_grace: Duration::seconds(10),
//!     bearer_refresh: true,
//!     registration_open: true,
//!     throttle: auth::ThrottlePolicy::default(),
//! };
//! let auth = AuthService::new(ports, codec, PasswordHasher::default(), settings);
//!
//! // The HTTP request behind each call, for the session record and the audit trail.
//! let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
//! let meta = RequestMeta {
//!     ip: Some("203.0.113.7".into()),
//!     user_agent: Some(firefox.into()),
//!     request_id: None,
//! };
//! let password = String::from("correct horse battery");
//! let alice = RegisterInput {
//!     username: "alice".into(),
//!     password: password.clone(),
//!     ..Default::default() // no email, no display name
//! };
//! auth.register(alice, &meta)?;
//! let login = LoginInput { username: Some("Alice".into()), password, ..Default::default() };
//! let tokens = auth.login(login, &meta)?;
//!
//! // Every request: the bearer token → who is calling, in which session.
//! let principal = auth.authenticate(&tokens.access_token)?;
//! assert_eq!(principal.user.username, "alice");
//! assert_eq!(&*principal.session.app, auth::DEFAULT_APP);
//!
//! // The refresh token rotates: the client keeps the new one.
//! let refreshed = auth.refresh(&tokens.refresh_token, &meta)?;
//! assert!(refreshed.refresh_token.is_some_and(|new| new != tokens.refresh_token));
//!
//! let devices = auth.list_sessions(&principal, false)?;
//! assert_eq!(devices.len(), 1);
//! assert!(devices[0].is_current);
//! let device = DeviceInfo::parse(devices[0].session.user_agent.as_deref());
//! assert_eq!(device.name(), "Firefox on Linux");
//!
//! auth.logout(&principal, &meta)?;
//! let after = auth.authenticate(&tokens.access_token);
//! assert!(matches!(after, Err(AuthError::Unauthenticated(_))));
//! # anyhow::Ok(())
//! ```

mod activity;
mod audit;
mod cache;
mod devices;
mod keys;
#[cfg(test)]
mod memory;
mod service;
mod stats;
mod throttle;

pub use activity::ActivityBuffer;
pub use audit::{AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditPosition, AuditQuery};
pub use cache::{Invalidation, SessionCache};
pub use devices::{AuditPage, AuditRequest, SessionInfo};
pub use service::password::PasswordInput;
pub use service::{
    AuthService, CACHE_TTL, Introspection, LoginInput, LoginOk, Ports, Principal, Refreshed,
    RegisterInput, Settings, UserProfile,
};
pub use stats::AuthStats;
pub use throttle::{
    DEFAULT_KNOWN_FOR, DEFAULT_MEMORY, LoginFailures, LoginThrottleStore, ThrottlePolicy,
};

use kernel::{Uuid, Violations};

/// Facts about the HTTP request behind a use case, for the session record
/// and the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Client address (peer, or forwarded by a trusted proxy).
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// The request id answered in `X-Request-Id`.
    pub request_id: Option<String>,
}

/// Why a use case refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Input is well-formed but invalid; field → problem.
    #[error("validation failed: {0}")]
    Invalid(Violations),
    /// Username taken.
    #[error("username is already taken")]
    UsernameTaken,
    /// Email taken.
    #[error("email is already registered")]
    EmailTaken,
    /// The change would leave no active admin.
    #[error("the last active admin cannot be demoted or suspended")]
    LastAdmin,
    /// Registration is closed by configuration.
    #[error("registration is closed")]
    RegistrationClosed,
    /// Unknown user or wrong password (deliberately the same answer).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins for this account or client address: no
    /// password is checked until the lock ends.
    #[error("too many failed logins; retry in {retry_after} s")]
    Locked {
        /// Whole seconds until the lock ends.
        retry_after: u64,
    },
    /// The right password, but the account is suspended.
    #[error("account is suspended")]
    Suspended,
    /// No usable token; the text says why.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A rotated refresh token came back after the grace window.
    #[error("refresh token was already used; the session has been revoked")]
    RefreshReused,
    /// Not allowed for this caller; the text says why.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The addressed user does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The addressed session does not exist, is not a session id, or
    /// belongs to someone else (indistinguishably).
    #[error("session not found")]
    SessionNotFound,
    /// What the domain cannot name (store failures).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<accounts::AccountError> for AuthError {
    fn from(e: accounts::AccountError) -> Self {
        match e {
            accounts::AccountError::UsernameTaken => Self::UsernameTaken,
            accounts::AccountError::EmailTaken => Self::EmailTaken,
            accounts::AccountError::LastAdmin => Self::LastAdmin,
            accounts::AccountError::Unknown(e) => Self::Unknown(e),
        }
    }
}

/// An application name: 1–64 characters of `[A-Za-z0-9_.:-]`.
pub fn parse_app(s: &str) -> Result<String, &'static str> {
    kernel::AppName::parse(s).map(kernel::AppName::into_inner)
}

/// The app a login opens a session for when none is named.
pub const DEFAULT_APP: &str = "default";

/// Port for authenticating a request in one read: a session together with
/// its user.
pub trait PrincipalStore: Send + Sync {
    /// The session with this id and its owner.
    fn session_with_user(
        &self,
        session_id: Uuid,
    ) -> anyhow::Result<Option<(sessions::DeviceSession, accounts::User)>>;

    /// Rotates a session's refresh token and records the rotation in the
    /// audit trail, in ONE transaction: a compare-and-swap that stores
    /// `new_hash` as the current token when the session is still active,
    /// unexpired at `now` and holds `expected`, keeps `expected` as
    /// superseded at `now`, and appends `audit`. `false` (and nothing
    /// written) when the swap does not apply. One commit instead of two,
    /// and no rotation without its audit record.
    fn rotate_refresh(
        &self,
        session_id: Uuid,
        expected: &str,
        new_hash: &str,
        now: kernel::OffsetDateTime,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool>;

    /// Opens a login's session (its row, its first refresh token, its
    /// owner's last activity) and appends the login's `audit` record, in
    /// ONE transaction: nothing is written when either fails. As with
    /// [`Self::rotate_refresh`], no session without its audit record.
    fn open_session(&self, new: &sessions::NewSession, audit: &AuditEvent) -> anyhow::Result<()>;

    /// Stores a user's new password hash, ends the sessions
    /// `change.end_sessions` names (as `revoked`, at `change.at`) and
    /// appends `audit`, in ONE transaction: no new password whose ended
    /// sessions could still be used, nor either without its audit record.
    /// The number of sessions ended.
    fn change_password(&self, change: &PasswordChange, audit: &AuditEvent) -> anyhow::Result<u64>;
}

/// A new password and the sessions it ends
/// ([`PrincipalStore::change_password`]).
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// Whose password.
    pub user_id: Uuid,
    /// The new Argon2id PHC string.
    pub password_hash: String,
    /// Which of the user's active sessions end: every one but `Some(keep)`
    /// (`EndSessions::AllBut`), all of them, or none.
    pub end_sessions: EndSessions,
    /// When.
    pub at: kernel::OffsetDateTime,
}

/// Which of a user's active sessions a password change ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSessions {
    /// None: the user asked to stay signed in elsewhere.
    None,
    /// Every one but this one (the caller's own).
    AllBut(Uuid),
    /// Every one (an administrator's reset).
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        assert_eq!(parse_app("my_app:web-1.2"), Ok("my_app:web-1.2".into()));
        assert!(parse_app("").is_err());
        assert!(parse_app(&"a".repeat(64)).is_ok());
        assert!(parse_app(&"a".repeat(65)).is_err());
        assert!(parse_app("my app").is_err());
        assert!(parse_app("app/1").is_err());
    }
}
