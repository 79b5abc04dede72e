//! Registration and login: accounts, the password check behind the login
//! throttle, and the session a login opens.

use std::sync::Arc;

use accounts::{DisplayName, Email, NewUser, Password, Role, User, UserStatus, Username};
use kernel::Violations;
use sessions::{DeviceSession, NewSession, SessionState};
use tokens::RefreshToken;

use super::*;
use crate::devices::SessionInfo;
use crate::throttle::{self, AttemptKeys};
use crate::{AuditAction, AuditOutcome, AuthError, DEFAULT_APP, RequestMeta, parse_app};

impl AuthService {
    /// Registers an account (when registration is open).
    pub fn register(
        &self,
        input: RegisterInput,
        meta: &RequestMeta,
    ) -> Result<UserProfile, AuthError> {
        if !self.settings.registration_open {
            return Err(AuthError::RegistrationClosed);
        }
        let user = self.create_user(input, Role::user())?;
        self.audit(AuditAction::Register, AuditOutcome::Success, Some(user.id), None, meta)?;
        Ok(UserProfile { user: Arc::new(user), is_online: false })
    }

    /// Creates an account with `role`, whatever the registration setting
    /// (the operator's `sessiond user create`).
    pub fn create_user(&self, input: RegisterInput, role: Role) -> Result<User, AuthError> {
        let mut v = Violations::new();
        let username = v.check("username", Username::parse(&input.username));
        let password = v.check("password", Password::parse(&input.password));
        let email = match input.email.as_deref() {
            Some(e) => v.check("email", Email::parse(e)).map(Some),
            None => Some(None),
        };
        let name = match input.name.as_deref() {
            Some(n) => v.check("name", DisplayName::parse(n)).map(Some),
            None => Some(None),
        };
        let (Some(username), Some(password), Some(email), Some(name)) =
            (username, password, email, name)
        else {
            return Err(AuthError::Invalid(v));
        };
        let password_hash = self.hasher.hash(&password);
        let user = self.ports.users.create(NewUser {
            id: kernel::new_id(),
            username,
            email,
            name,
            password_hash,
            role,
            created_at: self.now(),
        })?;
        Ok(user)
    }

    /// Logs in with username or email and password, opening a device
    /// session for the app.
    pub fn login(&self, input: LoginInput, meta: &RequestMeta) -> Result<LoginOk, AuthError> {
        let mut v = Violations::new();
        let app = match input.app.as_deref() {
            Some(a) => v.check("app", parse_app(a)),
            None => Some(DEFAULT_APP.to_owned()),
        };
        let login = match (input.username.as_deref(), input.email.as_deref()) {
            (Some(u), _) if !u.is_empty() => Some(Login::Username(u)),
            (_, Some(e)) if !e.is_empty() => Some(Login::Email(e)),
            _ => {
                v.add("username", "username or email is required");
                None
            }
        };
        if input.password.is_empty() {
            v.add("password", "is required");
        } else if input.password.chars().count() > 1024 {
            v.add("password", "must be at most 1024 characters long");
        }
        let (Some(app), Some(login)) = (app, login) else {
            return Err(AuthError::Invalid(v));
        };
        v.into_result().map_err(AuthError::Invalid)?;

        let (found, typed) = match login {
            Login::Username(u) => (self.ports.users.find_by_username(u)?, u),
            Login::Email(e) => (self.ports.users.find_by_email(e)?, e),
        };
        // One account however it is named; an unknown name is throttled
        // like an account, so answers never tell which exist.
        let keys = match &found {
            Some(user) => AttemptKeys::new("user", &user.id.to_string(), meta.ip.as_deref()),
            None => AttemptKeys::new("name", &typed.to_lowercase(), meta.ip.as_deref()),
        };
        let user_id = found.as_ref().map(|u| u.id);
        let (right, locked) = self.throttled_check(&keys, || match &found {
            Some(user) => self.hasher.verify(&input.password, &user.password_hash),
            None => {
                self.hasher.verify_decoy(&input.password);
                false
            }
        })?;
        let Some(user) = found.filter(|_| right) else {
            self.audit(AuditAction::LoginFailed, AuditOutcome::Failure, user_id, None, meta)?;
            if locked {
                self.counters.lockout();
                self.audit(AuditAction::Lockout, AuditOutcome::Failure, user_id, None, meta)?;
            }
            return Err(AuthError::InvalidCredentials);
        };
        if user.status != UserStatus::Active {
            self.audit(AuditAction::LoginFailed, AuditOutcome::Failure, Some(user.id), None, meta)?;
            return Err(AuthError::Suspended);
        }

        let now = self.now();
        // From now on this address is one of the owner's own: an
        // account-wide lock no longer applies to it.
        if let Some(login_key) = &keys.login {
            self.ports.throttle.record_success(login_key, now)?;
        }
        let refresh = RefreshToken::generate();
        let session = DeviceSession {
            id: kernel::new_id(),
            user_id: user.id,
            app,
            ip_address: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            location: meta.ip.as_deref().and_then(|ip| self.ports.locator.locate(ip)),
            login_method: "password".into(),
            created_at: now,
            expires_at: now + self.settings.lifetimes.absolute,
            last_activity: now,
            state: SessionState::Active,
            ended_at: None,
        };
        let audit = self.audit_event(
            AuditAction::Login,
            AuditOutcome::Success,
            Some(user.id),
            Some(session.id),
            meta,
        );
        let new = NewSession { session, refresh_hash: refresh.hash };
        self.ports.principals.open_session(&new, &audit)?;
        self.counters.created();
        let session = new.session;
        let (access_token, _) = self.codec.issue(&grant(&user, session.id, &session.app), now);
        let user = User { last_activity: Some(now), ..user };
        Ok(LoginOk {
            access_token,
            refresh_token: refresh.secret,
            expires_in: self.codec.ttl().whole_seconds(),
            // Just opened, by this very caller.
            session: SessionInfo { session, is_active: true, is_current: true },
            user: UserProfile { user: Arc::new(user), is_online: true },
        })
    }

    /// Checks a password behind the throttle of `keys`: refused (`Locked`)
    /// without running `check` while a key that applies is locked, then
    /// settled: a wrong password counts as a failure of each key. `(right,
    /// locked)`: whether `check` said yes, and whether this failure locked
    /// a key.
    pub(super) fn throttled_check(
        &self,
        keys: &AttemptKeys,
        check: impl FnOnce() -> bool,
    ) -> Result<(bool, bool), AuthError> {
        let known = self.known_from(keys)?;
        let (keys_applying, limits): (Vec<&str>, Vec<u32>) =
            keys.applying(known, &self.settings.throttle).into_iter().unzip();
        self.refuse_if_locked(&keys_applying)?;
        let right = check();
        let locked = self.settle_attempt(&keys_applying, &limits, right)?;
        Ok((right, locked))
    }

    /// Whether the account logged in successfully from the caller's
    /// network within the policy's `known_for`. Asked for unknown names as
    /// well (of a key never written), so they cost the same.
    fn known_from(&self, keys: &AttemptKeys) -> Result<bool, AuthError> {
        let Some(login_key) = &keys.login else { return Ok(false) };
        let last = self.ports.throttle.last_success(login_key)?;
        Ok(last.is_some_and(|t| self.settings.throttle.still_known(t, self.now())))
    }

    /// `Locked` when any of `keys` (the pair, the client address, the
    /// account when it applies) is locked: then no password is checked at
    /// all.
    fn refuse_if_locked(&self, keys: &[&str]) -> Result<(), AuthError> {
        let records = self.ports.throttle.read_failures(keys)?;
        match throttle::longest_wait(&records, self.now()) {
            Some(retry_after) => Err(AuthError::Locked { retry_after }),
            None => Ok(()),
        }
    }

    /// Settles an attempt whose password was checked, in one transaction
    /// holding every key (`limits[i]` is the limit of `keys[i]`; the pair
    /// comes first). If a key got locked meanwhile (attempts in parallel
    /// failed), the answer is `Locked` whatever the password was, and the
    /// attempt counts nowhere. Else a wrong password counts as a failure on
    /// each key (whether that locked one is returned), and a right one
    /// forgives the pair (its owner proved who they are) but neither the
    /// address (others behind it may be guessing) nor the account across
    /// addresses (each login of the owner would give a distributed guesser
    /// a fresh allowance).
    fn settle_attempt(
        &self,
        keys: &[&str],
        limits: &[u32],
        right: bool,
    ) -> Result<bool, AuthError> {
        let policy = self.settings.throttle;
        let now = self.now();
        let mut outcome = Ok(false);
        self.ports.throttle.update_failures(keys, now, &mut |records| {
            outcome = match throttle::longest_wait(records, now) {
                Some(retry_after) => Err(retry_after),
                None if right => {
                    records[0] = None;
                    Ok(false)
                }
                None => Ok(records
                    .iter_mut()
                    .zip(limits)
                    .fold(false, |locked, (r, &max)| policy.fail(r, max, now) | locked)),
            };
        })?;
        outcome.map_err(|retry_after| AuthError::Locked { retry_after })
    }

    /// Forgets failed-login records older than the policy's memory, and the
    /// addresses accounts logged in from longer ago than `known_for`: how
    /// many records of either kind went.
    pub fn purge_login_failures(&self) -> Result<u64, AuthError> {
        let now = self.now();
        let policy = &self.settings.throttle;
        let failures = self.ports.throttle.purge_failures(now - policy.memory, now)?;
        // A period too long to subtract keeps every address.
        let successes = match now.checked_sub(policy.known_for) {
            Some(before) => self.ports.throttle.purge_successes(before)?,
            None => 0,
        };
        Ok(failures + successes)
    }
}

enum Login<'a> {
    Username(&'a str),
    Email(&'a str),
}
