//! Administration of accounts: profiles, status and role changes, and
//! password resets.

use std::sync::Arc;

use accounts::{Password, Role, User, UserPatch, UserStatus};
use kernel::{Uuid, Violations};
use sessions::SessionState;

use super::*;
use crate::{AuditAction, AuditOutcome, AuthError, EndSessions, RequestMeta};

impl AuthService {
    /// The profile of any account (admin views).
    pub fn profile(&self, user: User) -> Result<UserProfile, AuthError> {
        let now = self.now();
        let last = self.ports.sessions.latest_live_activity(user.id, now)?;
        Ok(UserProfile { is_online: accounts::is_online(last, now), user: Arc::new(user) })
    }

    /// An administrator changes an account's status, role or password.
    /// Suspension also revokes every session of the account, so that
    /// reinstating it does not bring old tokens back to life; a new
    /// `password` (under the registration rules) ends every session of the
    /// account in the commit that stores it (audited `password_change`).
    pub fn update_user(
        &self,
        admin: &Principal,
        user_id: Uuid,
        status: Option<&str>,
        role: Option<&str>,
        password: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<UserProfile, AuthError> {
        if !admin.is_admin() {
            return Err(AuthError::Forbidden("Admin role required"));
        }
        let mut v = Violations::new();
        let patch = UserPatch {
            status: status.and_then(|s| v.check("status", UserStatus::parse(s))),
            role: role.and_then(|r| v.check("role", Role::parse(r))),
        };
        let password = password.and_then(|p| v.check("password", Password::parse(p)));
        v.into_result().map_err(AuthError::Invalid)?;
        let user = match password {
            // A reset alone is not a status or role change.
            Some(_) if patch.status.is_none() && patch.role.is_none() => {
                self.ports.users.find_by_id(user_id)?.ok_or(AuthError::UserNotFound)?
            }
            _ => {
                let user = self.apply_patch(user_id, &patch)?.ok_or(AuthError::UserNotFound)?;
                self.audit(
                    AuditAction::UserUpdate,
                    AuditOutcome::Success,
                    Some(user.id),
                    None,
                    meta,
                )?;
                user
            }
        };
        let Some(password) = password else { return self.profile(user) };
        let user = self.store_password(user, &password, EndSessions::All, None, meta)?;
        self.profile(user)
    }

    /// Sets an account's password by username and ends every session of
    /// it (the operator's `sessiond user set-password`).
    pub fn set_password(&self, username: &str, password: &str) -> Result<User, AuthError> {
        let password = Password::parse(password).map_err(|problem| {
            let mut v = Violations::new();
            v.add("password", problem);
            AuthError::Invalid(v)
        })?;
        let user = self.ports.users.find_by_username(username)?.ok_or(AuthError::UserNotFound)?;
        self.store_password(user, &password, EndSessions::All, None, &RequestMeta::default())
    }

    /// Sets an account's status by username (the operator's
    /// `sessiond user suspend|activate`).
    pub fn set_status(&self, username: &str, status: UserStatus) -> Result<User, AuthError> {
        let user = self.ports.users.find_by_username(username)?.ok_or(AuthError::UserNotFound)?;
        let patch = UserPatch { status: Some(status), role: None };
        self.apply_patch(user.id, &patch)?.ok_or(AuthError::UserNotFound)
    }

    /// Sets an account's role by username (the operator's `sessiond user
    /// set-role`): the way back in when no one can administer the server
    /// over HTTP. Refuses to demote the last active admin, as the API does.
    pub fn set_role(&self, username: &str, role: Role) -> Result<User, AuthError> {
        let user = self.ports.users.find_by_username(username)?.ok_or(AuthError::UserNotFound)?;
        let patch = UserPatch { status: None, role: Some(role) };
        self.apply_patch(user.id, &patch)?.ok_or(AuthError::UserNotFound)
    }

    fn apply_patch(&self, user_id: Uuid, patch: &UserPatch) -> Result<Option<User>, AuthError> {
        let now = self.now();
        let user = self.ports.users.update(user_id, patch, now).map_err(AuthError::from)?;
        if user.is_some() && patch.status == Some(UserStatus::Suspended) {
            self.ports.sessions.end_user_sessions(user_id, None, SessionState::Revoked, now)?;
        }
        self.forget_user(user_id);
        Ok(user)
    }

    /// Looks an account up by id.
    pub fn find_user(&self, user_id: Uuid) -> Result<Option<User>, AuthError> {
        self.ports.users.find_by_id(user_id).map_err(AuthError::from)
    }
}
