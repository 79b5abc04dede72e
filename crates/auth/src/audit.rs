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
}

impl AuditAction {
    /// Every action, for parsing and documentation.
    pub const ALL: [Self; 11] = [
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

/// Storage of the audit trail. Append-only.
pub trait AuditLog: Send + Sync {
    /// Appends an event.
    fn record(&self, event: &AuditEvent) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
