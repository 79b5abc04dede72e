//! The authentication use cases: their ports, settings, inputs and
//! results, and the service that holds them; each use case is in the
//! submodule named after it.

mod authenticate;
mod introspection;
mod login;
mod logout;
pub(crate) mod password;
mod refresh;
mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use accounts::{PasswordHasher, User, UserStore};
use kernel::{Clock, Duration, OffsetDateTime, Uuid};
use sessions::{Lifetimes, SessionBrief, SessionStore};
use tokens::{AccessGrant, Claims, RefreshTokenStore, TokenCodec};

use crate::activity::ActivityBuffer;
use crate::cache::SessionCache;
use crate::devices::SessionInfo;
use crate::throttle::{LoginThrottleStore, ThrottlePolicy};
use crate::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuthError, PrincipalStore, RequestMeta,
};

/// The stores and the clock the use cases need.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Device sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Refresh tokens.
    pub refresh: Arc<dyn RefreshTokenStore>,
    /// Session-with-user lookups for authentication.
    pub principals: Arc<dyn PrincipalStore>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Client address → place, for the session record.
    pub locator: Arc<dyn sessions::Locator>,
    /// Failed-login records (throttling).
    pub throttle: Arc<dyn LoginThrottleStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Policy knobs of the use cases.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Session lifetimes.
    pub lifetimes: Lifetimes,
    /// How long a superseded refresh token still rotates.
    pub refresh_grace: Duration,
    /// Whether a live access token alone may be exchanged for a fresh one
    /// (the bearer-only refresh older clients use). It lets a leaked
    /// access token renew itself for the whole session, past its own
    /// expiry and out of reach of refresh-token reuse detection; off, only
    /// a refresh token renews access.
    pub bearer_refresh: bool,
    /// Whether anyone may register.
    pub registration_open: bool,
    /// Login throttling.
    pub throttle: ThrottlePolicy,
}

/// The caller of an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account, as read while authenticating (shared with the cache).
    pub user: Arc<User>,
    /// The session the token belongs to: what authentication needs of it
    /// (its device details are a store read away, `SessionStore`).
    pub session: SessionBrief,
    /// The verified claims of the token.
    pub claims: Claims,
}

impl Principal {
    /// Whether the caller has the admin role (as the account has it now, not
    /// as the token was issued).
    pub fn is_admin(&self) -> bool {
        self.user.role.is_admin()
    }
}

/// An account with its derived presence.
#[derive(Debug, Clone)]
pub struct UserProfile {
    /// The account.
    pub user: Arc<User>,
    /// Whether a live session was active in the last five minutes.
    pub is_online: bool,
}

/// Registration input, as received (strings, unparsed).
#[derive(Debug, Clone, Default)]
pub struct RegisterInput {
    /// Desired username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Email, optional.
    pub email: Option<String>,
    /// Display name, optional.
    pub name: Option<String>,
}

/// Login input, as received.
#[derive(Debug, Clone, Default)]
pub struct LoginInput {
    /// Username (or use `email`).
    pub username: Option<String>,
    /// Email (or use `username`).
    pub email: Option<String>,
    /// Password.
    pub password: String,
    /// Application to open the session for; `default` when absent.
    pub app: Option<String>,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOk {
    /// Signed access token.
    pub access_token: String,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The new device session: active, and the caller's own.
    pub session: SessionInfo,
    /// The account.
    pub user: UserProfile,
}

/// A successful refresh.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// New access token.
    pub access_token: String,
    /// New refresh token; `None` for the bearer-only form, which keeps the
    /// refresh token as it is.
    pub refresh_token: Option<String>,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The account.
    pub user: UserProfile,
}

/// What introspection (RFC 7662) learns about a token.
#[derive(Debug, Clone)]
pub enum Introspection {
    /// A valid access token of a live session.
    Access(Principal),
    /// The current refresh token of a live session.
    Refresh {
        /// The session's owner, as it is now.
        user: Arc<User>,
        /// The session.
        session: SessionBrief,
    },
    /// Anything else: unknown, expired, revoked, superseded, malformed. Why
    /// is deliberately not kept, so that no answer can tell.
    Inactive,
}

/// The authentication use cases.
pub struct AuthService {
    ports: Ports,
    codec: TokenCodec,
    hasher: PasswordHasher,
    settings: Settings,
    cache: SessionCache,
    activity: ActivityBuffer,
    counters: crate::stats::Counters,
    /// The database's signing keys, when tokens are signed with them (not
    /// with a configured secret); see `keys.rs`.
    pub(crate) key_ring: std::sync::OnceLock<Arc<tokens::KeyRing>>,
}

/// How long a cached session state is trusted: the bound on how late a
/// change made by another process sharing the database is seen here.
pub const CACHE_TTL: Duration = Duration::seconds(1);

/// At most this many sessions are cached (about 150 bytes each).
const CACHE_CAPACITY: usize = 200_000;

/// Activity marks written per transaction by [`AuthService::flush_activity`].
const ACTIVITY_FLUSH_CHUNK: usize = 2000;

impl AuthService {
    /// Wires the use cases.
    pub fn new(
        ports: Ports,
        codec: TokenCodec,
        hasher: PasswordHasher,
        settings: Settings,
    ) -> Self {
        Self {
            ports,
            codec,
            hasher,
            settings,
            cache: SessionCache::new(CACHE_TTL, CACHE_CAPACITY),
            activity: ActivityBuffer::new(),
            counters: Default::default(),
            key_ring: std::sync::OnceLock::new(),
        }
    }

    /// What the use cases have done since this service started.
    pub fn stats(&self) -> crate::AuthStats {
        self.counters.snapshot()
    }

    /// The counters, for the use cases in sibling modules.
    pub(crate) fn counters(&self) -> &crate::stats::Counters {
        &self.counters
    }

    /// The policy in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The token codec (for its TTL).
    pub fn codec(&self) -> &TokenCodec {
        &self.codec
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        kernel::truncate_millis(self.ports.clock.now())
    }

    /// The current time at the store's precision.
    pub(crate) fn clock_now(&self) -> OffsetDateTime {
        self.now()
    }

    /// The ports, for the use cases in sibling modules.
    pub(crate) fn ports(&self) -> &Ports {
        &self.ports
    }

    pub(crate) fn audit(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        user_id: Option<Uuid>,
        session_id: Option<Uuid>,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        self.ports.audit.record(&self.audit_event(action, outcome, user_id, session_id, meta))?;
        Ok(())
    }

    /// An audit event of the request, now.
    fn audit_event(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        user_id: Option<Uuid>,
        session_id: Option<Uuid>,
        meta: &RequestMeta,
    ) -> AuditEvent {
        AuditEvent {
            id: kernel::new_id(),
            at: self.now(),
            action,
            user_id,
            session_id,
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            request_id: meta.request_id.clone(),
            outcome,
        }
    }
}

/// The grant of an access token for `user`'s session `session_id` of `app`.
pub(crate) fn grant(user: &User, session_id: Uuid, app: &str) -> AccessGrant {
    AccessGrant {
        user_id: user.id,
        username: user.username.clone(),
        session_id,
        app: app.to_owned(),
        role: user.role.as_str().to_owned(),
    }
}
