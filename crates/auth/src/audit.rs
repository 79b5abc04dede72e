//! The audit trail of security events.

use kernel::{OffsetDateTime, Uuid};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// An account was registered.
    Register,
    /// A login succeeded.
    Login,
    /// A login failed.
    LoginFailed,
    /// Tokens were refreshed.
    Refresh,
    /// A superseded refresh token came back; the session was revoked.
    RefreshReuse,
    /// A session was logged out.
    Logout,
    /// Every session of a user was logged out.
    LogoutAll,
    /// A session was deleted.
    SessionDelete,
    /// A session was deactivated.
    SessionDeactivate,
    /// An account or address was locked after failed logins.
    Lockout,
    /// An administrator changed an account.
    UserUpdate,
    /// A token was revoked (RFC 7009), ending its session.
    TokenRevoke,
    /// An administrator rotated the signing keys.
    KeyRotate,
    /// A user changed their password (a failure: the current password was
    /// wrong).
    PasswordChange,
}

impl AuditAction {
    /// Every action, for parsing and documentation.
    pub const ALL: [Self; 14] = [
        Self::Register,
        Self::Login,
        Self::LoginFailed,
        Self::Refresh,
        Self::RefreshReuse,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionDelete,
        Self::SessionDeactivate,
        Self::Lockout,
        Self::UserUpdate,
        Self::TokenRevoke,
        Self::KeyRotate,
        Self::PasswordChange,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::Refresh => "refresh",
            Self::RefreshReuse => "refresh_reuse",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionDelete => "session_delete",
            Self::SessionDeactivate => "session_deactivate",
            Self::Lockout => "lockout",
            Self::UserUpdate => "user_update",
            Self::TokenRevoke => "token_revoke",
            Self::KeyRotate => "key_rotate",
            Self::PasswordChange => "password_change",
        }
    }

    /// Parses the wire and storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Whether the attempt behind an event succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It did.
    Success,
    /// It was refused.
    Failure,
}

impl AuditOutcome {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Event id (UUID v7).
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// What.
    pub action: AuditAction,
    /// Whose account, when known.
    pub user_id: Option<Uuid>,
    /// Which session, when one is involved.
    pub session_id: Option<Uuid>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id of the request that caused it.
    pub request_id: Option<String>,
    /// Success or failure.
    pub outcome: AuditOutcome,
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this user's events.
    pub user_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Events at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Events before this instant.
    pub to: Option<OffsetDateTime>,
    /// Continue after this position (exclusive), newest first.
    pub after: Option<AuditPosition>,
    /// At most this many (1–1000).
    pub limit: u32,
}

/// A position in the newest-first order of events: `(at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPosition {
    /// The event's time.
    pub at: OffsetDateTime,
    /// The event's id (ties at one instant are ordered by id).
    pub id: Uuid,
}

impl AuditPosition {
    /// The opaque cursor handed to clients.
    pub fn to_cursor(self) -> String {
        format!("{}.{}", kernel::to_millis(self.at), self.id.simple())
    }

    /// Parses a cursor made by [`Self::to_cursor`].
    pub fn from_cursor(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('.')?;
        Some(Self { at: kernel::from_millis(ms.parse().ok()?), id: Uuid::try_parse(id).ok()? })
    }
}

/// Storage of the audit trail. Append-only.
pub trait AuditLog: Send + Sync {
    /// Appends an event.
    fn record(&self, event: &AuditEvent) -> anyhow::Result<()>;

    /// Events matching `query`, newest first (by time, then id), at most
    /// `query.limit`.
    fn list_events(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEvent>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let p = AuditPosition {
            at: kernel::from_millis(1_712_318_400_123),
            id: Uuid::parse_str("01a1ffac-8994-757d-9656-dedbb9b318a8").unwrap_or_default(),
        };
        assert_eq!(AuditPosition::from_cursor(&p.to_cursor()), Some(p));
        for bad in [
            "",
            "abc",
            "12.",
            ".01a1ffac8994757d9656dedbb9b318a8",
            "x.01a1ffac8994757d9656dedbb9b318a8",
        ] {
            assert_eq!(AuditPosition::from_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
