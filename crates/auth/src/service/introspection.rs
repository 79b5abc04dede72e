//! Introspection (RFC 7662) and revocation (RFC 7009) of access and
//! refresh tokens.

use kernel::Uuid;
use sessions::SessionState;
use tokens::refresh::{self};

use super::authenticate::{check_owner, claims_ids};
use super::*;
use crate::{AuditAction, AuditOutcome, AuthError, RequestMeta};

impl AuthService {
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
}

/// Whether `token` has the shape of a JWT (three dot-separated parts):
/// refresh tokens are base64url and never contain a dot, so the two kinds
/// are told apart without trying one and then the other.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokens::RefreshToken;

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
