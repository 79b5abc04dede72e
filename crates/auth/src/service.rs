//! The authentication use cases.

use std::sync::Arc;

use accounts::{
    DisplayName, Email, NewUser, Password, PasswordHasher, Role, User, UserPatch, UserStatus,
    UserStore, Username,
};
use kernel::{Clock, Duration, OffsetDateTime, Uuid, Violations};
use sessions::{DeviceSession, Lifetimes, NewSession, SessionBrief, SessionState, SessionStore};
use tokens::refresh::{self, Presented};
use tokens::{AccessGrant, Claims, RefreshToken, RefreshTokenStore, TokenCodec, TokenError};

use crate::activity::ActivityBuffer;
use crate::cache::SessionCache;
use crate::devices::SessionInfo;
use crate::throttle::{self, AttemptKeys, LoginThrottleStore, ThrottlePolicy};
use crate::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuthError, DEFAULT_APP, PrincipalStore,
    RequestMeta, parse_app,
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

/// How often a refresh retries after losing a compare-and-swap race before
/// giving up; each loss means another rotation of the same session won.
/// Each loss costs two indexed reads and one write, and N parallel
/// refreshes of one token need at most N rounds.
const ROTATION_ATTEMPTS: usize = 64;

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
        let known = self.known_from(&keys)?;
        let keys_limits = keys.applying(known, &self.settings.throttle);
        let (keys_applying, limits): (Vec<&str>, Vec<u32>) = keys_limits.into_iter().unzip();
        self.refuse_if_locked(&keys_applying)?;
        let user_id = found.as_ref().map(|u| u.id);
        let right = match &found {
            Some(user) => self.hasher.verify(&input.password, &user.password_hash),
            None => {
                self.hasher.verify_decoy(&input.password);
                false
            }
        };
        let locked = self.settle_attempt(&keys_applying, &limits, right)?;
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

    /// Authenticates a bearer token: valid signature, issuer and expiry, and
    /// a session that is still live for an active user. Marks the session
    /// as used (written behind, at most once per write interval).
    pub fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = self.now();
        let claims = self.verify(token, now)?;
        let (mut session, mut user) = self.live_session(claims_ids(&claims)?.0, now)?;
        check_owner(&claims, &session)?;
        self.mark_used(&mut session, &mut user, now, false);
        Ok(Principal { user, session, claims })
    }

    /// Records that a session was used at `now`: in the write-behind buffer
    /// and the cache, when the last recorded use is older than the write
    /// interval (or always, when `force`).
    fn mark_used(
        &self,
        session: &mut SessionBrief,
        user: &mut Arc<User>,
        now: OffsetDateTime,
        force: bool,
    ) {
        if force || now - session.last_activity >= self.settings.lifetimes.activity_write_interval()
        {
            self.activity.mark(session.id, user.id, now);
            self.cache.note_activity(session.id, now);
            session.last_activity = now;
            // Copies only here, at most once per write interval.
            Arc::make_mut(user).last_activity = Some(now);
        }
    }

    /// Writes the pending activity marks (the write-behind flush). Marks
    /// stay pending when the write fails, so nothing is lost; returns how
    /// many sessions were written.
    pub fn flush_activity(&self) -> Result<u64, AuthError> {
        let marks = self.activity.snapshot();
        let mut n = 0;
        // In transactions of a bounded size: a burst of returning sessions
        // neither holds row locks long nor builds one huge statement list.
        for chunk in marks.chunks(ACTIVITY_FLUSH_CHUNK) {
            n += self.ports.sessions.record_activity(chunk)?;
            self.activity.written(chunk);
        }
        Ok(n)
    }

    /// Authentication without blocking: answers from the signature and the
    /// session cache alone. `None` on a cache miss: then call
    /// [`Self::authenticate`] on a blocking thread. Meant for the async
    /// request path.
    pub fn authenticate_cached(&self, token: &str) -> Option<Result<Principal, AuthError>> {
        let now = self.now();
        Some(self.cached_principal(token, now)?.map(|mut p| {
            self.mark_used(&mut p.session, &mut p.user, now, false);
            p
        }))
    }

    /// The caller `token` names, from the verified token and the session
    /// cache alone, without marking anything; `None` when the session is
    /// not cached (the database must be asked).
    fn cached_principal(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Option<Result<Principal, AuthError>> {
        let claims = match self.verify(token, now) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let session_id = match claims_ids(&claims) {
            Ok((sid, _)) => sid,
            Err(e) => return Some(Err(e)),
        };
        let (session, user) = self.cache.get(session_id, now)?;
        Some(
            self.check_live(&session, &user, now)
                .and_then(|()| check_owner(&claims, &session))
                .map(|()| Principal { user, session, claims }),
        )
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, AuthError> {
        self.codec.verify(token, now).map_err(|e| {
            AuthError::Unauthenticated(match e {
                TokenError::Expired => "Token has expired",
                TokenError::BadSignature => "Token signature is invalid",
                TokenError::WrongIssuer => "Token issuer is not accepted",
                TokenError::Malformed => "Token is malformed",
                TokenError::NotYetValid => "Token is not valid yet",
            })
        })
    }

    /// The session and its user when both are usable at `now`; from the
    /// cache when it is fresh.
    fn live_session(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(SessionBrief, Arc<User>), AuthError> {
        let (session, user) = match self.cache.get(session_id, now) {
            Some(hit) => hit,
            None => {
                let epoch = self.cache.epoch();
                let (mut session, mut user) =
                    self.ports.principals.session_with_user(session_id)?.ok_or(SESSION_ENDED)?;
                // Activity not yet written behind still counts.
                if let Some(at) = self.activity.pending(session_id) {
                    session.last_activity = session.last_activity.max(at);
                    user.last_activity = Some(user.last_activity.map_or(at, |l| l.max(at)));
                }
                self.cache.put(epoch, &session, user, now)
            }
        };
        self.check_live(&session, &user, now)?;
        Ok((session, user))
    }

    fn check_live(
        &self,
        session: &SessionBrief,
        user: &User,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        if !session.is_live(now, &self.settings.lifetimes) || user.status != UserStatus::Active {
            return Err(SESSION_ENDED);
        }
        Ok(())
    }

    /// Forgets what the cache knows of a session; call after changing it.
    pub fn forget_session(&self, session_id: Uuid) {
        self.cache.invalidate_session(session_id);
        self.activity.forget(session_id);
    }

    /// Forgets what the cache knows of a user's sessions; call after
    /// changing the user or several of its sessions.
    pub fn forget_user(&self, user_id: Uuid) {
        self.cache.invalidate_user(user_id);
    }

    /// Applies a change made elsewhere (another process sharing the
    /// database) to the session cache.
    pub fn invalidate(&self, what: crate::Invalidation) {
        if matches!(what, crate::Invalidation::SigningKeys | crate::Invalidation::Everything) {
            // A failure leaves the keys in use; the background timer
            // reloads again within a second, and says why it cannot.
            let _retried_by_the_timer = self.reload_keys();
        }
        self.cache.invalidate(what);
    }

    /// The caller's account.
    pub fn me(&self, principal: &Principal) -> UserProfile {
        // The caller's own session is live and in use right now.
        UserProfile { user: principal.user.clone(), is_online: true }
    }

    /// Rotates a refresh token: a new access and refresh token for its
    /// session. A superseded token within the grace window rotates too; one
    /// presented later revokes the session.
    pub fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> Result<Refreshed, AuthError> {
        const INVALID: AuthError =
            AuthError::Unauthenticated("Refresh token is invalid or expired");
        let presented_hash = refresh::hash(refresh_token);
        let fresh = RefreshToken::generate();
        for _ in 0..ROTATION_ATTEMPTS {
            let record = self.ports.refresh.find_refresh(&presented_hash)?.ok_or(INVALID)?;
            // Read after the lookup, so that a supersession seen by the
            // lookup is never in this clock reading's future.
            let now = self.now();
            let presented = refresh::classify(&record, now, self.settings.refresh_grace);
            if presented == Presented::Reused {
                return Err(self.refresh_reused(record.session_id, now, meta)?);
            }
            let (session, user) = match self.live_session(record.session_id, now) {
                Ok(live) => live,
                Err(AuthError::Unauthenticated(_)) => {
                    // Ended since the lookup, maybe by a concurrent reuse
                    // detection: if this token has been superseded meanwhile,
                    // it is a reuse too, and says so.
                    let again = self.ports.refresh.find_refresh(&presented_hash)?;
                    let now = self.now();
                    return Err(match again {
                        Some(r)
                            if refresh::classify(&r, now, self.settings.refresh_grace)
                                == Presented::Reused =>
                        {
                            self.refresh_reused(r.session_id, now, meta)?
                        }
                        _ => INVALID,
                    });
                }
                Err(other) => return Err(other),
            };
            let expected = match presented {
                Presented::WithinGrace => match self.ports.refresh.current_refresh(session.id)? {
                    Some(current) => current,
                    None => return Err(INVALID),
                },
                _ => presented_hash.clone(),
            };
            let audit = self.audit_event(
                AuditAction::Refresh,
                AuditOutcome::Success,
                Some(user.id),
                Some(session.id),
                meta,
            );
            if self.ports.principals.rotate_refresh(
                session.id,
                &expected,
                &fresh.hash,
                now,
                &audit,
            )? {
                let (mut session, mut user) = (session, user);
                self.mark_used(&mut session, &mut user, now, true);
                let (access_token, _) =
                    self.codec.issue(&grant(&user, session.id, &session.app), now);
                return Ok(Refreshed {
                    access_token,
                    refresh_token: Some(fresh.secret),
                    expires_in: self.codec.ttl().whole_seconds(),
                    user: UserProfile { user, is_online: true },
                });
            }
            // Another rotation of this session won the race: look again.
        }
        Err(AuthError::Unknown(anyhow::anyhow!("refresh kept losing rotation races")))
    }

    /// A superseded refresh token came back after the grace window: theft.
    /// Revokes the session (if it is still active) and records the attempt;
    /// the answer is always [`AuthError::RefreshReused`], also when the
    /// session had already ended, so the client learns why it is out.
    fn refresh_reused(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
        meta: &RequestMeta,
    ) -> Result<AuthError, AuthError> {
        if self.ports.sessions.end_session(session_id, SessionState::Revoked, now)? {
            self.counters.revoked(1);
        }
        self.counters.reuse();
        self.forget_session(session_id);
        let user_id = self.ports.sessions.get_session(session_id)?.map(|s| s.user_id);
        self.audit(
            AuditAction::RefreshReuse,
            AuditOutcome::Failure,
            user_id,
            Some(session_id),
            meta,
        )?;
        Ok(AuthError::RefreshReused)
    }

    /// The bearer-only refresh: a live access token and no refresh token.
    /// Records activity and issues a fresh access token for the same
    /// session; `Unauthenticated` when [`Settings::bearer_refresh`] is off.
    pub fn refresh_bearer(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<Refreshed, AuthError> {
        if !self.settings.bearer_refresh {
            return Err(AuthError::Unauthenticated(BEARER_REFRESH_OFF));
        }
        let now = self.now();
        let (mut session, mut user) = (principal.session.clone(), principal.user.clone());
        self.mark_used(&mut session, &mut user, now, true);
        let p = &Principal { user, session, claims: principal.claims.clone() };
        self.audit(
            AuditAction::Refresh,
            AuditOutcome::Success,
            Some(p.user.id),
            Some(p.session.id),
            meta,
        )?;
        let (access_token, _) =
            self.codec.issue(&grant(&p.user, p.session.id, &p.session.app), now);
        let user = p.user.clone();
        Ok(Refreshed {
            access_token,
            refresh_token: None,
            expires_in: self.codec.ttl().whole_seconds(),
            user: UserProfile { user, is_online: true },
        })
    }

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

    /// Introspection (RFC 7662) without blocking: an access token is
    /// answered from its signature and the session cache alone; `None` when
    /// the answer needs the store (a cache miss, or a refresh token): then
    /// call [`Self::introspect`] on a blocking thread. Never marks the
    /// session as used: a resource server asking is not the user acting.
    pub fn introspect_cached(&self, token: &str) -> Option<Introspection> {
        if !looks_like_jwt(token) {
            return None;
        }
        Some(match self.cached_principal(token, self.now())? {
            Ok(principal) => Introspection::Access(principal),
            Err(_) => Introspection::Inactive,
        })
    }

    /// Introspection (RFC 7662) of an access or a refresh token: what it is
    /// and whom it belongs to while its session is live, else
    /// [`Introspection::Inactive`] and never why. A refresh token is active
    /// only while it is its session's current one: a superseded token is
    /// inactive even within the rotation grace window (it can no longer be
    /// revoked or used but for one rotation race), and asking about it
    /// never triggers reuse detection. Never marks the session as used.
    pub fn introspect(&self, token: &str) -> Result<Introspection, AuthError> {
        let now = self.now();
        if looks_like_jwt(token) {
            let Ok(claims) = self.verify(token, now) else { return Ok(Introspection::Inactive) };
            let Ok((session_id, _)) = claims_ids(&claims) else {
                return Ok(Introspection::Inactive);
            };
            return Ok(match self.live_session(session_id, now) {
                Ok((session, user)) if check_owner(&claims, &session).is_ok() => {
                    Introspection::Access(Principal { user, session, claims })
                }
                Ok(_) | Err(AuthError::Unauthenticated(_)) => Introspection::Inactive,
                Err(other) => return Err(other),
            });
        }
        let Some(session_id) = self.current_refresh_session(token)? else {
            return Ok(Introspection::Inactive);
        };
        Ok(match self.live_session(session_id, now) {
            Ok((session, user)) => Introspection::Refresh { user, session },
            Err(AuthError::Unauthenticated(_)) => Introspection::Inactive,
            Err(other) => return Err(other),
        })
    }

    /// The session of a refresh token that is still its session's current
    /// one; `None` for anything else (unknown, superseded, not a token).
    fn current_refresh_session(&self, token: &str) -> Result<Option<Uuid>, AuthError> {
        if token.is_empty() {
            return Ok(None);
        }
        let record = self.ports.refresh.find_refresh(&refresh::hash(token))?;
        Ok(record.filter(|r| r.superseded_at.is_none()).map(|r| r.session_id))
    }

    /// Revocation (RFC 7009): a live access token or current refresh token
    /// ends its session (state revoked, as an administrator's revocation
    /// does), audited as [`AuditAction::TokenRevoke`]; the cache forgets it
    /// before this returns. Anything else changes nothing and is no error:
    /// the answer must not tell a caller which tokens exist. `true` when a
    /// session was ended.
    pub fn revoke_token(&self, token: &str, meta: &RequestMeta) -> Result<bool, AuthError> {
        let now = self.now();
        let session_id = if looks_like_jwt(token) {
            match self.verify(token, now).ok().and_then(|c| claims_ids(&c).ok().map(|ids| (c, ids)))
            {
                Some((claims, (sid, _))) => match self.live_session(sid, now) {
                    Ok((session, _)) if check_owner(&claims, &session).is_ok() => Some(sid),
                    Ok(_) | Err(AuthError::Unauthenticated(_)) => None,
                    Err(other) => return Err(other),
                },
                None => None,
            }
        } else {
            self.current_refresh_session(token)?
        };
        let Some(sid) = session_id else { return Ok(false) };
        let ended = self.ports.sessions.end_session(sid, SessionState::Revoked, now)?;
        self.forget_session(sid);
        if !ended {
            return Ok(false);
        }
        self.counters.revoked(1);
        let user_id = self.ports.sessions.get_session(sid)?.map(|s| s.user_id);
        self.audit(AuditAction::TokenRevoke, AuditOutcome::Success, user_id, Some(sid), meta)?;
        Ok(true)
    }

    /// The profile of any account (admin views).
    pub fn profile(&self, user: User) -> Result<UserProfile, AuthError> {
        let now = self.now();
        let last = self.ports.sessions.latest_live_activity(user.id, now)?;
        Ok(UserProfile { is_online: accounts::is_online(last, now), user: Arc::new(user) })
    }

    /// An administrator changes an account's status or role. Suspension
    /// also revokes every session of the account, so that reinstating it
    /// does not bring old tokens back to life.
    pub fn update_user(
        &self,
        admin: &Principal,
        user_id: Uuid,
        status: Option<&str>,
        role: Option<&str>,
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
        v.into_result().map_err(AuthError::Invalid)?;
        let user = self.apply_patch(user_id, &patch)?.ok_or(AuthError::UserNotFound)?;
        self.audit(AuditAction::UserUpdate, AuditOutcome::Success, Some(user.id), None, meta)?;
        self.profile(user)
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

const SESSION_ENDED: AuthError = AuthError::Unauthenticated("Session is no longer active");

fn claims_ids(claims: &Claims) -> Result<(Uuid, Uuid), AuthError> {
    match (claims.session_id(), claims.user_id()) {
        (Some(sid), Some(uid)) => Ok((sid, uid)),
        _ => Err(AuthError::Unauthenticated("Token is malformed")),
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts):
/// refresh tokens are base64url and never contain a dot, so the two kinds
/// are told apart without trying one and then the other.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Why a bearer-only refresh is refused when it is switched off.
const BEARER_REFRESH_OFF: &str =
    "A refresh token is required (the bearer-only refresh is switched off)";

/// A token names its session, its user and its app; the session is the
/// source of truth, so all three must agree with it. Only a holder of the
/// signing key could make them disagree, and then the token is refused
/// rather than trusted for an app its session was not opened for.
fn check_owner(claims: &Claims, session: &SessionBrief) -> Result<(), AuthError> {
    match claims.user_id() {
        Some(uid) if uid == session.user_id && claims.app == *session.app => Ok(()),
        _ => Err(SESSION_ENDED),
    }
}

enum Login<'a> {
    Username(&'a str),
    Email(&'a str),
}

fn grant(user: &User, session_id: Uuid, app: &str) -> AccessGrant {
    AccessGrant {
        user_id: user.id,
        username: user.username.clone(),
        session_id,
        app: app.to_owned(),
        role: user.role.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_and_refresh_tokens_are_told_apart_by_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("a.b.c"));
        let refresh = RefreshToken::generate().secret;
        assert!(!looks_like_jwt(&refresh), "{refresh}");
        for other in ["", "a.b", "a.b.c.d", "no-dots-at-all"] {
            assert!(!looks_like_jwt(other), "{other}");
        }
    }
}
