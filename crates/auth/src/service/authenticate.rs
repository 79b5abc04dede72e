//! Authentication of a request: the bearer token, its live session, the
//! session cache and the write-behind of "last used".

use std::sync::Arc;

use accounts::{User, UserStatus};
use kernel::{OffsetDateTime, Uuid};
use sessions::SessionBrief;
use tokens::{Claims, TokenError};

use super::*;
use crate::AuthError;

impl AuthService {
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
    pub(super) fn mark_used(
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
    pub(super) fn cached_principal(
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

    pub(super) fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, AuthError> {
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
    pub(super) fn live_session(
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

    pub(super) fn check_live(
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
}

pub(super) const SESSION_ENDED: AuthError =
    AuthError::Unauthenticated("Session is no longer active");

pub(super) fn claims_ids(claims: &Claims) -> Result<(Uuid, Uuid), AuthError> {
    match (claims.session_id(), claims.user_id()) {
        (Some(sid), Some(uid)) => Ok((sid, uid)),
        _ => Err(AuthError::Unauthenticated("Token is malformed")),
    }
}

/// A token names its session, its user and its app; the session is the
/// source of truth, so all three must agree with it. Only a holder of the
/// signing key could make them disagree, and then the token is refused
/// rather than trusted for an app its session was not opened for.
pub(super) fn check_owner(claims: &Claims, session: &SessionBrief) -> Result<(), AuthError> {
    match claims.user_id() {
        Some(uid) if uid == session.user_id && claims.app == *session.app => Ok(()),
        _ => Err(SESSION_ENDED),
    }
}
