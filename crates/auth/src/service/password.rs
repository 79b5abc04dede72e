//! Changing one's own password: the current password checked behind the
//! login throttle, the new one under the registration rules, and the
//! other sessions ended in the commit that stores it.

use std::sync::Arc;

use accounts::Password;
use kernel::{Uuid, Violations};

use super::*;
use crate::throttle::AttemptKeys;
use crate::{AuditAction, AuditOutcome, AuthError, EndSessions, PasswordChange, RequestMeta};

/// `POST /api/auth/password`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct PasswordInput {
    /// The password in force: checked like a login's, and a wrong one
    /// counts toward the lockout.
    pub current_password: String,
    /// The new password, under the registration rules.
    pub new_password: String,
    /// Whether every other session of the user ends (the default); the
    /// caller's own stays either way.
    pub sign_out_other_sessions: Option<bool>,
}

impl AuthService {
    /// Changes the caller's password. A wrong `current_password` is
    /// `InvalidCredentials` and counts as a failed login of the account
    /// from the caller's address (so it locks like one); every other
    /// session ends in the same commit as the new hash unless
    /// `sign_out_other_sessions` is `false`, and is refused at once here
    /// and within the cache's bound elsewhere. Audited as
    /// `password_change`.
    pub fn change_password(
        &self,
        principal: &Principal,
        input: PasswordInput,
        meta: &RequestMeta,
    ) -> Result<UserProfile, AuthError> {
        let mut v = Violations::new();
        if input.current_password.is_empty() {
            v.add("current_password", "is required");
        } else if input.current_password.chars().count() > 1024 {
            v.add("current_password", "must be at most 1024 characters long");
        }
        let new = v.check("new_password", Password::parse(&input.new_password));
        let Some(new) = new else { return Err(AuthError::Invalid(v)) };
        v.into_result().map_err(AuthError::Invalid)?;

        let (uid, sid) = (principal.user.id, principal.session.id);
        // The hash in force, not the cached principal's copy.
        let user = self
            .ports
            .users
            .find_by_id(uid)?
            .ok_or(AuthError::Unauthenticated("the account is gone"))?;
        let keys = AttemptKeys::new("user", &uid.to_string(), meta.ip.as_deref());
        let (right, locked) = self.throttled_check(&keys, || {
            self.hasher.verify(&input.current_password, &user.password_hash)
        })?;
        if !right {
            let failed = AuditAction::PasswordChange;
            self.audit(failed, AuditOutcome::Failure, Some(uid), Some(sid), meta)?;
            if locked {
                self.counters.lockout();
                self.audit(AuditAction::Lockout, AuditOutcome::Failure, Some(uid), None, meta)?;
            }
            return Err(AuthError::InvalidCredentials);
        }

        let end = match input.sign_out_other_sessions {
            Some(false) => EndSessions::None,
            _ => EndSessions::AllBut(sid),
        };
        let user = self.store_password(user, &new, end, Some(sid), meta)?;
        Ok(UserProfile { user: Arc::new(user), is_online: true })
    }

    /// Stores `password` for `user`, ends the sessions `end` names and
    /// audits `password_change` (by `session`, when a user changes their
    /// own), in one commit; every cached session of the user reloads (the
    /// ended ones are refused from now on here; other processes hear of
    /// them through the database's notifications). The account as it is
    /// now.
    pub(super) fn store_password(
        &self,
        user: User,
        password: &Password,
        end: EndSessions,
        session: Option<Uuid>,
        meta: &RequestMeta,
    ) -> Result<User, AuthError> {
        let now = self.now();
        let change = PasswordChange {
            user_id: user.id,
            password_hash: self.hasher.hash(password),
            end_sessions: end,
            at: now,
        };
        let audit = self.audit_event(
            AuditAction::PasswordChange,
            AuditOutcome::Success,
            Some(user.id),
            session,
            meta,
        );
        let ended = self.ports.principals.change_password(&change, &audit)?;
        self.counters.revoked(ended);
        self.forget_user(user.id);
        Ok(User { password_hash: change.password_hash, updated_at: now, ..user })
    }
}
