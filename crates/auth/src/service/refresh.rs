//! Refresh: rotation of a refresh token with reuse detection, and the
//! bearer-only refresh.

use kernel::{OffsetDateTime, Uuid};
use sessions::SessionState;
use tokens::RefreshToken;
use tokens::refresh::{self, Presented};

use super::*;
use crate::{AuditAction, AuditOutcome, AuthError, RequestMeta};

/// How often a refresh retries after losing a compare-and-swap race before
/// giving up; each loss means another rotation of the same session won.
/// Each loss costs two indexed reads and one write, and N parallel
/// refreshes of one token need at most N rounds.
const ROTATION_ATTEMPTS: usize = 64;

impl AuthService {
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
}

/// Why a bearer-only refresh is refused when it is switched off.
const BEARER_REFRESH_OFF: &str =
    "A refresh token is required (the bearer-only refresh is switched off)";
