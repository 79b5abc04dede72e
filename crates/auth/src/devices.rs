//! Device-session management (SPEC section 3) and the audit trail queries.
//!
//! Session ids arrive as raw strings: one that is not a UUID, one that does
//! not exist and one that belongs to someone else all answer
//! [`AuthError::SessionNotFound`], so nothing reveals which it was.

use kernel::{OffsetDateTime, Uuid, Violations};
use sessions::{DeviceSession, SessionState};

use crate::{
    AuditAction, AuditEvent, AuditOutcome, AuditPosition, AuditQuery, AuthError, AuthService,
    Principal, RequestMeta,
};

/// A session as shown to a user or an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session.
    pub session: DeviceSession,
    /// Whether it is usable now (active, not expired, not idle too long).
    pub is_active: bool,
    /// Whether the caller's token belongs to it.
    pub is_current: bool,
}

/// Audit listing parameters, as received (unparsed strings).
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    /// `action` filter.
    pub action: Option<String>,
    /// Events at or after (RFC 3339).
    pub from: Option<String>,
    /// Events before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Whose events (admin listing only).
    pub user_id: Option<String>,
}

/// A page of audit events.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Events, newest first.
    pub events: Vec<AuditEvent>,
    /// Cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Default and largest audit page sizes.
const AUDIT_DEFAULT_LIMIT: u32 = 100;
const AUDIT_MAX_LIMIT: u32 = 1000;

fn parse_session_id(raw: &str) -> Result<Uuid, AuthError> {
    Uuid::try_parse(raw).map_err(|_| AuthError::SessionNotFound)
}

impl AuthService {
    fn info(
        &self,
        session: DeviceSession,
        caller: Option<&Principal>,
        now: OffsetDateTime,
    ) -> SessionInfo {
        let is_active = session.is_live(now, &self.settings().lifetimes);
        let is_current = caller.is_some_and(|c| c.session.id == session.id);
        SessionInfo { session, is_active, is_current }
    }

    /// Sessions of `user_id`, newest first: the live ones, or all that are
    /// kept (ended and expired too) with `include_inactive`.
    fn sessions_of(
        &self,
        user_id: Uuid,
        include_inactive: bool,
        caller: &Principal,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        let now = self.clock_now();
        let listed = self.ports().sessions.list_sessions(user_id, include_inactive, now)?;
        Ok(listed
            .into_iter()
            .map(|s| self.info(s, Some(caller), now))
            .filter(|i| include_inactive || i.is_active)
            .collect())
    }

    /// The caller's sessions.
    pub fn list_sessions(
        &self,
        caller: &Principal,
        include_inactive: bool,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        self.sessions_of(caller.user.id, include_inactive, caller)
    }

    /// One of `owner`'s sessions, or `SessionNotFound`.
    fn owned_session(&self, owner: Uuid, raw_id: &str) -> Result<DeviceSession, AuthError> {
        let id = parse_session_id(raw_id)?;
        match self.ports().sessions.get_session(id)? {
            Some(s) if s.user_id == owner => Ok(s),
            _ => Err(AuthError::SessionNotFound),
        }
    }

    /// Deletes one of `owner`'s sessions: it is revoked at once and gone
    /// from every listing.
    fn delete_owned(
        &self,
        owner: Uuid,
        raw_id: &str,
        meta: &RequestMeta,
    ) -> Result<SessionInfo, AuthError> {
        let session = self.owned_session(owner, raw_id)?;
        let now = self.clock_now();
        // Deleting a row that a concurrent request deleted first is still a
        // success for this caller: the session is gone either way.
        self.ports().sessions.delete_session(session.id)?;
        if session.state == SessionState::Active && session.expires_at > now {
            self.counters().revoked(1);
        }
        self.forget_session(session.id);
        self.record(AuditAction::SessionDelete, Some(owner), Some(session.id), meta)?;
        Ok(self.info(session, None, now))
    }

    /// Deletes one of the caller's sessions (possibly the current one).
    pub fn delete_session(
        &self,
        caller: &Principal,
        session_id: &str,
        meta: &RequestMeta,
    ) -> Result<SessionInfo, AuthError> {
        self.delete_owned(caller.user.id, session_id, meta)
    }

    /// Deletes every session of `owner` but `except`; the number of live
    /// sessions that this ended.
    fn delete_all_owned(
        &self,
        owner: Uuid,
        except: Option<Uuid>,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        let now = self.clock_now();
        let ended = self.ports().sessions.delete_user_sessions(owner, except, now)?;
        self.counters().revoked(ended.len() as u64);
        self.forget_user(owner);
        for id in &ended {
            self.record(AuditAction::SessionDelete, Some(owner), Some(*id), meta)?;
        }
        Ok(ended.len() as u64)
    }

    /// Deletes all the caller's sessions, or all but the current one.
    pub fn delete_all_sessions(
        &self,
        caller: &Principal,
        exclude_current: bool,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        let except = exclude_current.then_some(caller.session.id);
        self.delete_all_owned(caller.user.id, except, meta)
    }

    /// Deactivates one of the caller's sessions: it stays listed (inactive)
    /// and can never be used again. Repeating it, or deactivating a session
    /// that has already ended, succeeds and changes nothing.
    pub fn deactivate_session(
        &self,
        caller: &Principal,
        session_id: &str,
        meta: &RequestMeta,
    ) -> Result<SessionInfo, AuthError> {
        let session = self.owned_session(caller.user.id, session_id)?;
        let now = self.clock_now();
        if self.ports().sessions.end_session(session.id, SessionState::Deactivated, now)? {
            self.counters().revoked(1);
            self.forget_session(session.id);
            self.record(
                AuditAction::SessionDeactivate,
                Some(caller.user.id),
                Some(session.id),
                meta,
            )?;
        }
        let session = self.ports().sessions.get_session(session.id)?.unwrap_or(session);
        Ok(self.info(session, Some(caller), now))
    }

    fn require_admin(caller: &Principal) -> Result<(), AuthError> {
        if caller.is_admin() { Ok(()) } else { Err(AuthError::Forbidden("Admin role required")) }
    }

    /// The user an admin addresses by `_id`, or `UserNotFound`.
    fn addressed_user(&self, raw_user_id: &str) -> Result<Uuid, AuthError> {
        let id = Uuid::try_parse(raw_user_id).map_err(|_| AuthError::UserNotFound)?;
        self.ports().users.find_by_id(id)?.map(|u| u.id).ok_or(AuthError::UserNotFound)
    }

    /// Admin: any user's sessions.
    pub fn admin_list_sessions(
        &self,
        admin: &Principal,
        user_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        Self::require_admin(admin)?;
        let user = self.addressed_user(user_id)?;
        self.sessions_of(user, include_inactive, admin)
    }

    /// Admin: one session of any user.
    pub fn admin_get_session(
        &self,
        admin: &Principal,
        user_id: &str,
        session_id: &str,
    ) -> Result<SessionInfo, AuthError> {
        Self::require_admin(admin)?;
        let user = self.addressed_user(user_id)?;
        let session = self.owned_session(user, session_id)?;
        Ok(self.info(session, Some(admin), self.clock_now()))
    }

    /// Admin: deletes one session of any user.
    pub fn admin_delete_session(
        &self,
        admin: &Principal,
        user_id: &str,
        session_id: &str,
        meta: &RequestMeta,
    ) -> Result<SessionInfo, AuthError> {
        Self::require_admin(admin)?;
        let user = self.addressed_user(user_id)?;
        self.delete_owned(user, session_id, meta)
    }

    /// Admin: deletes every session of any user.
    pub fn admin_delete_all_sessions(
        &self,
        admin: &Principal,
        user_id: &str,
        meta: &RequestMeta,
    ) -> Result<u64, AuthError> {
        Self::require_admin(admin)?;
        let user = self.addressed_user(user_id)?;
        self.delete_all_owned(user, None, meta)
    }

    /// Audit events: the caller's own (`everyone = false`), or, for an
    /// admin, everyone's, optionally of one `user_id`.
    pub fn audit_events(
        &self,
        caller: &Principal,
        everyone: bool,
        req: &AuditRequest,
    ) -> Result<AuditPage, AuthError> {
        if everyone {
            Self::require_admin(caller)?;
        }
        let mut v = Violations::new();
        let action = req.action.as_deref().and_then(|a| {
            v.check("action", AuditAction::parse(a).ok_or("is not a known audit action"))
        });
        let from = req.from.as_deref().and_then(|t| v.check("from", kernel::parse_instant(t)));
        let to = req.to.as_deref().and_then(|t| v.check("to", kernel::parse_instant(t)));
        let limit = req.limit.unwrap_or(AUDIT_DEFAULT_LIMIT);
        if !(1..=AUDIT_MAX_LIMIT).contains(&limit) {
            v.add("limit", format!("must be between 1 and {AUDIT_MAX_LIMIT}"));
        }
        let after = req.cursor.as_deref().and_then(|c| {
            v.check(
                "cursor",
                AuditPosition::from_cursor(c).ok_or("is not a cursor from this listing"),
            )
        });
        let user_id = match (everyone, req.user_id.as_deref()) {
            (false, Some(u)) if Uuid::try_parse(u).ok() != Some(caller.user.id) => {
                return Err(AuthError::Forbidden("Only admins may read other users' events"));
            }
            (false, _) => Some(caller.user.id),
            (true, Some(u)) => {
                v.check("user_id", Uuid::try_parse(u).map_err(|_| "must be a user id"))
            }
            (true, None) => None,
        };
        v.into_result().map_err(AuthError::Invalid)?;
        let query = AuditQuery { user_id, action, from, to, after, limit: limit + 1 };
        let mut events = self.ports().audit.list_events(&query)?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| AuditPosition { at: e.at, id: e.id }.to_cursor())
        } else {
            None
        };
        Ok(AuditPage { events, next_cursor })
    }

    /// Appends a successful security event to the audit trail.
    fn record(
        &self,
        action: AuditAction,
        user_id: Option<Uuid>,
        session_id: Option<Uuid>,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        self.audit(action, AuditOutcome::Success, user_id, session_id, meta)
    }
}
