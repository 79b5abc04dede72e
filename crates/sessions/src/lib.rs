//! Device-sessions domain of sessiond: every login opens a [`DeviceSession`]
//! that lives until it is logged out, revoked, deactivated or expires.
//!
//! [`Lifetimes`] say how long a session lives (an absolute expiry from
//! login, and an optional idle timeout counted from its last activity);
//! [`DeviceSession::is_live`] applies them ([`SessionBrief`] is the part of
//! a session that authenticating a request needs). Sessions are kept behind the
//! [`SessionStore`] port (sessiond's `store` crate implements it), and
//! [`DeviceInfo`] names the device from its user agent.
//!
//! ```
//! use kernel::{Duration, Uuid};
//! use sessions::{DeviceInfo, DeviceSession, Lifetimes, SessionState};
//!
//! let lifetimes = Lifetimes { absolute: Duration::hours(24), idle: Some(Duration::minutes(30)) };
//! let login = kernel::parse_instant("2024-04-05T12:00:00Z")?;
//! let mut session = DeviceSession {
//!     id: Uuid::now_v7(),
//!     user_id: Uuid::now_v7(),
//!     app: "web".into(),
//!     ip_address: Some("203.0.113.7".into()),
//!     user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0".into()),
//!     location: None,
//!     login_method: "password".into(),
//!     created_at: login,
//!     expires_at: login + lifetimes.absolute,
//!     last_activity: login,
//!     state: SessionState::Active,
//!     ended_at: None,
//! };
//! assert!(session.is_live(login, &lifetimes));
//! // Unused for the idle timeout: expired.
//! assert!(!session.is_live(login + Duration::minutes(30), &lifetimes));
//! // Used now and then: alive until the absolute expiry, whatever the use.
//! session.last_activity = login + Duration::hours(23) + Duration::minutes(50);
//! assert!(session.is_live(login + Duration::hours(23) + Duration::minutes(55), &lifetimes));
//! assert!(!session.is_live(login + Duration::hours(24), &lifetimes));
//! // Activity is written behind, at most once a minute per session.
//! assert_eq!(lifetimes.activity_write_interval(), Duration::minutes(1));
//!
//! // An ended session is never live again; states have storage names.
//! session.state = SessionState::LoggedOut;
//! assert!(!session.is_live(login, &lifetimes));
//! assert_eq!(SessionState::parse("logged_out"), Some(SessionState::LoggedOut));
//!
//! assert_eq!(DeviceInfo::parse(session.user_agent.as_deref()).name(), "Firefox on Linux");
//! # Ok::<(), kernel::InstantError>(())
//! ```

mod device;

pub use device::DeviceInfo;

use std::sync::Arc;

use kernel::{Duration, OffsetDateTime, Uuid};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Usable (unless it has expired by time).
    Active,
    /// Ended by its own user's logout or logout-all.
    LoggedOut,
    /// Ended by someone else: deletion of all sessions, an admin, a detected
    /// refresh-token reuse.
    Revoked,
    /// Deactivated: kept but can never be used again.
    Deactivated,
}

impl SessionState {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::LoggedOut => "logged_out",
            Self::Revoked => "revoked",
            Self::Deactivated => "deactivated",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "logged_out" => Self::LoggedOut,
            "revoked" => Self::Revoked,
            "deactivated" => Self::Deactivated,
            _ => return None,
        })
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// From login to expiry, whatever the activity.
    pub absolute: Duration,
    /// Without activity for this long a session expires; `None`: never.
    pub idle: Option<Duration>,
}

impl Lifetimes {
    /// How often `last_activity` is written: at most once a minute, and
    /// within half the idle timeout, so that a session in use never looks
    /// idle (a use is checked against the last recorded one before it is
    /// recorded: an interval reaching the timeout would let a session used
    /// every moment expire).
    pub fn activity_write_interval(&self) -> Duration {
        let minute = Duration::minutes(1);
        match self.idle {
            Some(idle) if idle / 2 < minute => std::cmp::max(idle / 2, Duration::milliseconds(100)),
            _ => minute,
        }
    }
}

/// A device session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    /// Session id (UUID v7), the `sid` of its access tokens.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The application it was opened for.
    pub app: String,
    /// Client address at login.
    pub ip_address: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Where the login came from ("New York, US"), when a GeoIP database
    /// is configured; looked up once, at login.
    pub location: Option<String>,
    /// How the user logged in (`password`).
    pub login_method: String,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
    /// Last authenticated request (written at most once a minute).
    pub last_activity: OffsetDateTime,
    /// Where it is in its life.
    pub state: SessionState,
    /// When it left the active state.
    pub ended_at: Option<OffsetDateTime>,
}

impl DeviceSession {
    /// Whether the session may be used at `now`: active, not past its
    /// absolute expiry, not idle for longer than allowed.
    pub fn is_live(&self, now: OffsetDateTime, lifetimes: &Lifetimes) -> bool {
        is_live(self.state, self.expires_at, self.last_activity, now, lifetimes)
    }
}

fn is_live(
    state: SessionState,
    expires_at: OffsetDateTime,
    last_activity: OffsetDateTime,
    now: OffsetDateTime,
    lifetimes: &Lifetimes,
) -> bool {
    state == SessionState::Active
        && now < expires_at
        && lifetimes.idle.is_none_or(|idle| now - last_activity < idle)
}

/// What authenticating a request needs of a [`DeviceSession`]: whose it
/// is, for which app, and where it is in its life; none of the device's
/// details. Small (its one string, the app's name, is shared), so that a
/// process can keep hundreds of thousands of them in memory: auth's session
/// cache holds these, not whole sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBrief {
    /// Session id, the `sid` of its access tokens.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The application it was opened for.
    pub app: Arc<str>,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
    /// Last authenticated request (written at most once a minute).
    pub last_activity: OffsetDateTime,
    /// Where it is in its life.
    pub state: SessionState,
}

impl SessionBrief {
    /// The brief of `session`, its app name shared with `app` when equal
    /// (a cache passes the copy it already holds).
    pub fn of(session: &DeviceSession, app: Option<&Arc<str>>) -> Self {
        let app = match app {
            Some(shared) if **shared == *session.app => shared.clone(),
            _ => Arc::from(session.app.as_str()),
        };
        Self {
            id: session.id,
            user_id: session.user_id,
            app,
            expires_at: session.expires_at,
            last_activity: session.last_activity,
            state: session.state,
        }
    }

    /// As [`DeviceSession::is_live`].
    pub fn is_live(&self, now: OffsetDateTime, lifetimes: &Lifetimes) -> bool {
        is_live(self.state, self.expires_at, self.last_activity, now, lifetimes)
    }
}

impl From<&DeviceSession> for SessionBrief {
    fn from(session: &DeviceSession) -> Self {
        Self::of(session, None)
    }
}

/// What a login hands to the store.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session as it starts.
    pub session: DeviceSession,
    /// Hash of its first refresh token.
    pub refresh_hash: String,
}

/// Storage of device sessions.
pub trait SessionStore: Send + Sync {
    /// Stores a new session with its first refresh token, and records its
    /// `last_activity` as the user's latest activity.
    fn create_session(&self, new: &NewSession) -> anyhow::Result<()>;

    /// The session with this id, whatever its state.
    fn get_session(&self, id: Uuid) -> anyhow::Result<Option<DeviceSession>>;

    /// The user's sessions, newest first. Without `include_inactive` only
    /// those in the active state whose absolute expiry is after `now`.
    fn list_sessions(
        &self,
        user_id: Uuid,
        include_inactive: bool,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<DeviceSession>>;

    /// Ends an active session: moves it to `state` (never back to active).
    /// `false` when it was not active.
    fn end_session(
        &self,
        id: Uuid,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool>;

    /// Ends every active session of the user but `except`, moving them to
    /// `state`; the number ended.
    fn end_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<u64>;

    /// Deletes a session and its refresh tokens; `false` when there was none.
    fn delete_session(&self, id: Uuid) -> anyhow::Result<bool>;

    /// The latest `last_activity` among the user's sessions that are active
    /// and not past their absolute expiry at `now`.
    fn latest_live_activity(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<OffsetDateTime>>;

    /// Deletes every session of the user but `except`, with their refresh
    /// tokens. Returns the ids of the deleted sessions that were in the
    /// active state with an absolute expiry after `now` (the ones whose
    /// deletion ended something); inactive rows are deleted too.
    fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<Uuid>>;

    /// Records activity of many sessions at once (the write-behind flush):
    /// for each `(session, user, at)`, `last_activity = at` unless already
    /// later, and the user's `last_activity` likewise. One transaction.
    /// Returns how many session rows changed.
    fn record_activity(&self, batch: &[ActivityMark]) -> anyhow::Result<u64>;

    /// Deletes at most `limit` sessions that ended, or whose absolute
    /// expiry passed, before `cutoff` (oldest first); the number deleted.
    /// The sweeper calls it until it returns less than `limit`.
    fn purge_sessions(&self, cutoff: OffsetDateTime, limit: u32) -> anyhow::Result<u64>;
}

/// Port for turning a client address into a place people recognise.
pub trait Locator: Send + Sync {
    /// "City, CC" (or just the country) for `ip`, when known.
    fn locate(&self, ip: &str) -> Option<String>;
}

/// The locator used when no GeoIP database is configured: knows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLocator;

impl Locator for NoLocator {
    fn locate(&self, _ip: &str) -> Option<String> {
        None
    }
}

/// One session's latest activity, to be written behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityMark {
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// When it was last used.
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn session(now: OffsetDateTime) -> DeviceSession {
        DeviceSession {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            app: "default".into(),
            ip_address: Some("127.0.0.1".into()),
            user_agent: None,
            location: None,
            login_method: "password".into(),
            created_at: now,
            expires_at: now + Duration::hours(24),
            last_activity: now,
            state: SessionState::Active,
            ended_at: None,
        }
    }

    #[test]
    fn absolute_expiry() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let l = Lifetimes { absolute: Duration::hours(24), idle: None };
        let s = session(t0);
        assert!(s.is_live(t0 + Duration::hours(24) - Duration::milliseconds(1), &l));
        assert!(!s.is_live(t0 + Duration::hours(24), &l));
    }

    #[test]
    fn idle_expiry_counts_from_last_activity() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let l = Lifetimes { absolute: Duration::hours(24), idle: Some(Duration::minutes(10)) };
        let mut s = session(t0);
        assert!(!s.is_live(t0 + Duration::minutes(10), &l));
        s.last_activity = t0 + Duration::minutes(8);
        assert!(s.is_live(t0 + Duration::minutes(17), &l));
    }

    #[test]
    fn ended_sessions_are_never_live() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let l = Lifetimes { absolute: Duration::hours(24), idle: None };
        for state in [SessionState::LoggedOut, SessionState::Revoked, SessionState::Deactivated] {
            let s = DeviceSession { state, ..session(t0) };
            assert!(!s.is_live(t0, &l));
            assert_eq!(SessionState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn activity_is_written_often_enough_for_the_idle_timeout() {
        let l = |idle| Lifetimes { absolute: Duration::hours(24), idle };
        assert_eq!(l(None).activity_write_interval(), Duration::minutes(1));
        assert_eq!(l(Some(Duration::hours(1))).activity_write_interval(), Duration::minutes(1));
        assert_eq!(l(Some(Duration::seconds(20))).activity_write_interval(), Duration::seconds(10));
        assert_eq!(
            l(Some(Duration::seconds(1))).activity_write_interval(),
            Duration::milliseconds(500)
        );
    }
}
