//! Access tokens: JWTs signed with HS256.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kernel::{Duration, OffsetDateTime, Uuid};
use serde::{Deserialize, Serialize};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (UUID).
    pub sub: String,
    /// The user's username.
    pub username: String,
    /// The device session the token belongs to.
    pub sid: String,
    /// The application the session was opened for.
    pub app: String,
    /// The user's role when the token was issued.
    pub role: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Not before, seconds since the epoch. sessiond never sets it; a token
    /// that carries it is refused until then (RFC 7519 §4.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl Claims {
    /// The user id, when `sub` is one.
    pub fn user_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.sub).ok()
    }

    /// The session id, when `sid` is one.
    pub fn session_id(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.sid).ok()
    }
}

/// Who an access token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// User id.
    pub user_id: Uuid,
    /// Username.
    pub username: String,
    /// Session id.
    pub session_id: Uuid,
    /// Application.
    pub app: String,
    /// Role.
    pub role: String,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or claims missing or of the wrong type.
    #[error("token is malformed")]
    Malformed,
    /// Signed with another key or algorithm.
    #[error("token signature is invalid")]
    BadSignature,
    /// Issued by someone else.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// Its `nbf` is still ahead, or it claims to be issued (`iat`) further
    /// in the future than clocks can disagree.
    #[error("token is not valid yet")]
    NotYetValid,
}

/// How far ahead of our clock a token's `iat` or `nbf` may be: instances
/// sharing a database may disagree about the time by this much.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// SHA-256's block size, the longest HMAC key used as it is.
const HMAC_SHA256_BLOCK: usize = 64;

/// Signs and verifies access tokens. Built once at start-up: keys and
/// validation settings are shared by every request, never rebuilt.
#[derive(Clone)]
pub struct TokenCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    header: Header,
    issuer: String,
    ttl: Duration,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCodec").field("issuer", &self.issuer).field("ttl", &self.ttl).finish()
    }
}

impl TokenCodec {
    /// A codec for HS256 with `secret`, issuing tokens as `issuer` that live `ttl`.
    pub fn new(secret: &[u8], issuer: &str, ttl: Duration) -> Self {
        // HMAC (RFC 2104) first replaces a key longer than the hash's block
        // by the hash of the key, and `jsonwebtoken` keys a new HMAC for
        // every token: doing that reduction once here gives the very same
        // signatures without hashing the key on every request (a third of
        // a verification's work with the generated 128-byte secret).
        let reduced: [u8; 32];
        let secret = if secret.len() > HMAC_SHA256_BLOCK {
            reduced = <sha2::Sha256 as sha2::Digest>::digest(secret).into();
            &reduced[..]
        } else {
            secret
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the injected clock in `verify`, so that
        // the rule is testable and leeway is exactly zero.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            header: Header::new(Algorithm::HS256),
            issuer: issuer.to_owned(),
            ttl,
        }
    }

    /// How long issued tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token for `grant` at `now`.
    pub fn issue(&self, grant: &AccessGrant, now: OffsetDateTime) -> (String, Claims) {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: grant.user_id.to_string(),
            username: grant.username.clone(),
            sid: grant.session_id.to_string(),
            app: grant.app.clone(),
            role: grant.role.clone(),
            iat,
            exp: iat + self.ttl.whole_seconds(),
            jti: kernel::new_id().to_string(),
            iss: self.issuer.clone(),
            nbf: None,
        };
        // HS256 signing of a serialisable struct cannot fail.
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding).unwrap_or_default();
        (token, claims)
    }

    /// Checks signature, issuer and the token's times at `now` (expired,
    /// `nbf` still ahead, or `iat` further ahead than
    /// [`CLOCK_LEEWAY_SECS`]), and returns the claims.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    TokenError::BadSignature
                }
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Malformed,
            })?;
        let claims = data.claims;
        if claims.user_id().is_none() || claims.session_id().is_none() {
            return Err(TokenError::Malformed);
        }
        let now = now.unix_timestamp();
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        let ahead = now.saturating_add(CLOCK_LEEWAY_SECS);
        if claims.iat > ahead || claims.nbf.is_some_and(|nbf| nbf > ahead) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn grant() -> AccessGrant {
        AccessGrant {
            user_id: Uuid::now_v7(),
            username: "alice".into(),
            session_id: Uuid::now_v7(),
            app: "web".into(),
            role: "user".into(),
        }
    }

    fn codec(secret: &[u8]) -> TokenCodec {
        TokenCodec::new(secret, "sessiond", Duration::minutes(15))
    }

    #[test]
    fn claims_carry_everything_the_spec_names() {
        let now = datetime!(2024-04-05 12:00 UTC);
        let g = grant();
        let (_, c) = codec(b"k").issue(&g, now);
        assert_eq!(c.sub, g.user_id.to_string());
        assert_eq!(c.sid, g.session_id.to_string());
        assert_eq!(
            (c.username.as_str(), c.app.as_str(), c.role.as_str()),
            ("alice", "web", "user")
        );
        assert_eq!(c.exp - c.iat, 900);
        assert_eq!(c.iss, "sessiond");
        assert!(Uuid::parse_str(&c.jti).is_ok());
    }

    #[test]
    fn a_long_secret_signs_exactly_as_the_raw_key_would() {
        // The generated secret is 128 bytes; tokens signed before the key
        // was reduced once at start-up (or by another HS256 library with
        // the raw key) must verify, and ours must verify with the raw key.
        let long = [b'k'; 128];
        let now = OffsetDateTime::now_utc();
        let c = codec(&long);
        let (ours, claims) = c.issue(&grant(), now);
        let raw = DecodingKey::from_secret(&long);
        assert!(jsonwebtoken::decode::<Claims>(&ours, &raw, &c.validation).is_ok());
        let theirs = jsonwebtoken::encode(&c.header, &claims, &EncodingKey::from_secret(&long))
            .unwrap_or_default();
        assert_eq!(theirs, ours, "same key, same claims: the same token");
        assert!(c.verify(&theirs, now).is_ok());
        // And a different long key does not.
        let other = codec(&[b'j'; 128]);
        assert_eq!(other.verify(&ours, now), Err(TokenError::BadSignature));
    }

    #[test]
    fn expiry_is_exact_against_the_given_clock() {
        let now = datetime!(2024-04-05 12:00 UTC);
        let c = codec(b"k");
        let (t, _) = c.issue(&grant(), now);
        assert!(c.verify(&t, now + Duration::seconds(899)).is_ok());
        assert_eq!(c.verify(&t, now + Duration::seconds(900)), Err(TokenError::Expired));
    }

    #[test]
    fn foreign_signatures_and_issuers_are_refused() {
        let now = datetime!(2024-04-05 12:00 UTC);
        let (t, _) = codec(b"one").issue(&grant(), now);
        assert_eq!(codec(b"two").verify(&t, now), Err(TokenError::BadSignature));
        let other = TokenCodec::new(b"one", "someone-else", Duration::minutes(15));
        assert_eq!(other.verify(&t, now), Err(TokenError::WrongIssuer));
        assert_eq!(codec(b"one").verify("not.a.jwt", now), Err(TokenError::Malformed));
        assert_eq!(codec(b"one").verify("", now), Err(TokenError::Malformed));
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        use base64::Engine as _;
        let now = datetime!(2024-04-05 12:00 UTC);
        let c = codec(b"k");
        let (t, claims) = c.issue(&grant(), now);
        let parts: Vec<&str> = t.split('.').collect();
        let mut forged = claims.clone();
        forged.role = "admin".into();
        let body =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json_like(&forged));
        let token = format!("{}.{}.{}", parts[0], body, parts[2]);
        assert_eq!(c.verify(&token, now), Err(TokenError::BadSignature));
    }

    /// A token signed with `c`'s key whose claims `change` altered.
    fn signed(c: &TokenCodec, claims: &Claims, change: impl FnOnce(&mut Claims)) -> String {
        let mut claims = claims.clone();
        change(&mut claims);
        jsonwebtoken::encode(&c.header, &claims, &c.encoding).unwrap_or_default()
    }

    #[test]
    fn tokens_from_the_future_are_refused_beyond_the_leeway() {
        let now = datetime!(2024-04-05 12:00 UTC);
        let c = codec(b"k");
        let (_, claims) = c.issue(&grant(), now);
        let later = |secs: i64| claims.iat + secs;
        let iat_ahead = signed(&c, &claims, |x| x.iat = later(365 * 86_400));
        assert_eq!(c.verify(&iat_ahead, now), Err(TokenError::NotYetValid));
        let nbf_ahead = signed(&c, &claims, |x| x.nbf = Some(later(CLOCK_LEEWAY_SECS + 1)));
        assert_eq!(c.verify(&nbf_ahead, now), Err(TokenError::NotYetValid));
        // Within the leeway (another instance's clock a little ahead),
        // and once `nbf` has passed, they verify.
        let slightly = signed(&c, &claims, |x| {
            x.iat = later(CLOCK_LEEWAY_SECS);
            x.nbf = Some(later(CLOCK_LEEWAY_SECS));
        });
        assert!(c.verify(&slightly, now).is_ok());
        let nbf_past = signed(&c, &claims, |x| x.nbf = Some(later(-1)));
        assert!(c.verify(&nbf_past, now).is_ok());
        let nbf_ahead = signed(&c, &claims, |x| x.nbf = Some(later(600)));
        assert!(c.verify(&nbf_ahead, now + Duration::seconds(600)).is_ok());
    }

    fn serde_json_like(c: &Claims) -> String {
        format!(
            r#"{{"sub":"{}","username":"{}","sid":"{}","app":"{}","role":"{}","iat":{},"exp":{},"jti":"{}","iss":"{}"}}"#,
            c.sub, c.username, c.sid, c.app, c.role, c.iat, c.exp, c.jti, c.iss
        )
    }
}
