//! Logout of one session or of all of a user's sessions.

use sessions::SessionState;

use super::*;
use crate::{AuditAction, AuditOutcome, AuthError, RequestMeta};

impl AuthService {
    /// Ends the caller's session.
    pub fn logout(&self, principal: &Principal, meta: &RequestMeta) -> Result<(), AuthError> {
        let (uid, sid) = (principal.user.id, principal.session.id);
        if self.ports.sessions.end_session(sid, SessionState::LoggedOut, self.now())? {
            self.counters.revoked(1);
        }
        self.forget_session(sid);
        self.audit(AuditAction::Logout, AuditOutcome::Success, Some(uid), Some(sid), meta)
    }

    /// Ends every session of the caller, the current one included; the
    /// number of sessions ended.
    pub fn logout_all(&self, principal: &Principal, meta: &RequestMeta) -> Result<u64, AuthError> {
        let (uid, sid) = (principal.user.id, principal.session.id);
        let n = self.ports.sessions.end_user_sessions(
            uid,
            None,
            SessionState::LoggedOut,
            self.now(),
        )?;
        self.counters.revoked(n);
        self.forget_user(uid);
        self.audit(AuditAction::LogoutAll, AuditOutcome::Success, Some(uid), Some(sid), meta)?;
        Ok(n)
    }
}
