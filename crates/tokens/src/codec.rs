//! Access tokens: JWTs signed by the current key of a [`KeySet`].

use std::sync::{Arc, RwLock};

use jsonwebtoken::{Header, Validation};
use kernel::{Duration, OffsetDateTime, Uuid};
use serde::{Deserialize, Serialize};

use crate::keys::{Jwks, KeySet, SigningAlg};
use crate::memo::{Memo, Verified};

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

/// Signs and verifies access tokens with a [`KeySet`]. Cloning shares the
/// key set: [`TokenCodec::install`] swaps it for every clone at once (after
/// a rotation), while requests in flight finish with the set they started
/// with. Validation settings are built once, never per request.
#[derive(Clone)]
pub struct TokenCodec {
    inner: Arc<Inner>,
}

struct Inner {
    keys: RwLock<Arc<KeySet>>,
    /// One per algorithm ([`SigningAlg::ALL`] order): each accepts exactly
    /// its own algorithm, so a token's `alg` can never pick another.
    validations: [Validation; 4],
    issuer: String,
    ttl: Duration,
    /// Tokens already verified here (see [`crate::memo`]).
    memo: Memo,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCodec")
            .field("issuer", &self.inner.issuer)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

fn validation(alg: SigningAlg, issuer: &str) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    // Expiry is checked against the injected clock in `verify`, so that
    // the rule is testable and leeway is exactly zero.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[issuer]);
    validation
}

impl TokenCodec {
    /// A codec for HS256 with a configured `secret` (`SESSIOND_JWT_SECRET`),
    /// issuing tokens as `issuer` that live `ttl`. Tokens without a `kid`
    /// (issued before tokens carried one) verify with it too.
    pub fn new(secret: &[u8], issuer: &str, ttl: Duration) -> Self {
        let keys = KeySet::from_secret(secret, ttl, OffsetDateTime::now_utc());
        Self::with_keys(keys, issuer, ttl)
    }

    /// A codec signing with the current key of `keys`.
    pub fn with_keys(keys: KeySet, issuer: &str, ttl: Duration) -> Self {
        let validations = SigningAlg::ALL.map(|alg| validation(alg, issuer));
        Self {
            inner: Arc::new(Inner {
                keys: RwLock::new(Arc::new(keys)),
                validations,
                issuer: issuer.to_owned(),
                ttl,
                memo: Memo::default(),
            }),
        }
    }

    /// Replaces the key set for this codec and all its clones.
    pub fn install(&self, keys: KeySet) {
        let keys = Arc::new(keys);
        match self.inner.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The key set in use: a cheap shared handle (the lock is held only to
    /// clone it, never while signing or verifying).
    pub fn keys(&self) -> Arc<KeySet> {
        match self.inner.keys.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The public JWKS at `now` (empty for HS256).
    pub fn jwks(&self, now: OffsetDateTime) -> Jwks {
        self.keys().jwks(now)
    }

    /// How long issued tokens live.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    fn validation(&self, alg: SigningAlg) -> &Validation {
        let i = SigningAlg::ALL.iter().position(|a| *a == alg).unwrap_or_default();
        &self.inner.validations[i]
    }

    /// Issues a token for `grant` at `now`, signed by the current key and
    /// naming it in its `kid` header.
    pub fn issue(&self, grant: &AccessGrant, now: OffsetDateTime) -> (String, Claims) {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: grant.user_id.to_string(),
            username: grant.username.clone(),
            sid: grant.session_id.to_string(),
            app: grant.app.clone(),
            role: grant.role.clone(),
            iat,
            exp: iat + self.inner.ttl.whole_seconds(),
            jti: kernel::new_id().to_string(),
            iss: self.inner.issuer.clone(),
            nbf: None,
        };
        let keys = self.keys();
        let key = &keys.keys[keys.current];
        let mut header = Header::new(key.info.alg.jwt());
        header.kid = Some(key.info.kid.clone());
        // Signing a serialisable struct with a key that was parsed and
        // checked when the set was built cannot fail.
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap_or_default();
        (token, claims)
    }

    /// Checks signature, issuer and the token's times at `now` (expired,
    /// `nbf` still ahead, or `iat` further ahead than
    /// [`CLOCK_LEEWAY_SECS`]), and returns the claims.
    ///
    /// The key is the one the token's `kid` names (a token without one:
    /// only a configured or legacy HS256 secret); its algorithm, not the
    /// token's, decides how to verify, and a token whose `alg` differs is
    /// refused. Tokens carrying `jku`, `x5u`, `x5c` or `jwk` headers are
    /// refused: sessiond never takes a key from the token it checks.
    ///
    /// A token this process verified before is not decoded again: its
    /// claims come from a bounded memo of verified tokens, and the rules that
    /// depend on the time or on the key set are checked again.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        let memo = &self.inner.memo;
        if let Some(hit) = memo.get(token) {
            if self.keys().verifier(hit.kid.as_deref(), now).is_some() {
                check_times(&hit.claims, now)?;
                return Ok(Claims::clone(&hit.claims));
            }
            // Its key retired past its window, or left the set.
            memo.forget(token);
        }
        let (claims, kid) = self.verify_fully(token, now)?;
        let verified = Verified { claims: Arc::new(claims), kid: kid.map(Arc::from) };
        memo.put(token, verified.clone());
        Ok(Claims::clone(&verified.claims))
    }

    /// [`Self::verify`] without the memo: the claims and the `kid` of the
    /// key that verified them.
    fn verify_fully(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(Claims, Option<String>), TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.jwk.is_some()
        {
            return Err(TokenError::BadSignature);
        }
        let keys = self.keys();
        let key = keys.verifier(header.kid.as_deref(), now).ok_or(TokenError::BadSignature)?;
        if header.alg != key.info.alg.jwt() {
            return Err(TokenError::BadSignature);
        }
        let validation = self.validation(key.info.alg);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    TokenError::BadSignature
                }
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Malformed,
            },
        )?;
        let claims = data.claims;
        if claims.user_id().is_none() || claims.session_id().is_none() {
            return Err(TokenError::Malformed);
        }
        check_times(&claims, now)?;
        Ok((claims, header.kid))
    }
}

/// The rules of a token's times at `now`: not expired, `nbf` passed, and
/// `iat` at most [`CLOCK_LEEWAY_SECS`] ahead.
fn check_times(claims: &Claims, now: OffsetDateTime) -> Result<(), TokenError> {
    let now = now.unix_timestamp();
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    let ahead = now.saturating_add(CLOCK_LEEWAY_SECS);
    if claims.iat > ahead || claims.nbf.is_some_and(|nbf| nbf > ahead) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    pub(super) fn grant() -> AccessGrant {
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
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
        // The generated secret was 128 bytes; tokens signed before the key
        // was reduced once at start-up (or by another HS256 library with
        // the raw key) must verify, and ours must verify with the raw key.
        let long = [b'k'; 128];
        let now = OffsetDateTime::now_utc();
        let c = codec(&long);
        let (ours, claims) = c.issue(&grant(), now);
        let raw = DecodingKey::from_secret(&long);
        let v = c.validation(SigningAlg::HS256);
        assert!(jsonwebtoken::decode::<Claims>(&ours, &raw, v).is_ok());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = jsonwebtoken::decode_header(&ours).unwrap_or_default().kid;
        assert!(header.kid.is_some(), "tokens name their key");
        let theirs = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&long))
            .unwrap_or_default();
        assert_eq!(theirs, ours, "same key, same claims: the same token");
        // A token of before kids (none in its header) verifies with the
        // configured secret.
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&long),
        )
        .unwrap_or_default();
        assert!(c.verify(&old, now).is_ok());
        // And a different long key does not.
        let other = codec(&[b'j'; 128]);
        assert_eq!(other.verify(&ours, now), Err(TokenError::BadSignature));
        assert_eq!(other.verify(&old, now), Err(TokenError::BadSignature));
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

    /// A token signed with `c`'s current key whose claims `change` altered.
    fn signed(c: &TokenCodec, claims: &Claims, change: impl FnOnce(&mut Claims)) -> String {
        let mut claims = claims.clone();
        change(&mut claims);
        let keys = c.keys();
        let key = &keys.keys[keys.current];
        let mut header = Header::new(key.info.alg.jwt());
        header.kid = Some(key.info.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap_or_default()
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

/// The security cases of key sets: every way a token could pick its own
/// key or algorithm is refused.
#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod key_set_tests {
    use base64::Engine as _;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use time::macros::datetime;

    use super::tests::grant;
    use super::*;
    use crate::keys::{self, KeyState, LEGACY_KID, SigningKey, retirement_window};

    const TTL: Duration = Duration::minutes(15);
    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);
    const ASYMMETRIC: [SigningAlg; 3] = [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256];

    fn codec_of(alg: SigningAlg) -> (TokenCodec, Vec<SigningKey>) {
        let keys = keys::initial_keys(alg, NOW).unwrap();
        let set = KeySet::new(&keys, TTL, NOW).unwrap();
        (TokenCodec::with_keys(set, "sessiond", TTL), keys)
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with a hand-made header and signature.
    fn raw_token(header: &serde_json::Value, claims: &Claims, signature: &[u8]) -> String {
        let header = b64(header.to_string().as_bytes());
        let body = b64(serde_json::to_string(claims).unwrap().as_bytes());
        format!("{header}.{body}.{}", b64(signature))
    }

    fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    #[test]
    fn every_algorithm_signs_with_its_kid_and_verifies() {
        for alg in SigningAlg::ALL {
            let (c, keys) = codec_of(alg);
            let (t, claims) = c.issue(&grant(), NOW);
            let header = jsonwebtoken::decode_header(&t).unwrap();
            assert_eq!(header.alg, alg.jwt());
            assert_eq!(header.kid.as_deref(), Some(keys[0].kid.as_str()));
            assert_eq!(c.verify(&t, NOW), Ok(claims));
        }
    }

    #[test]
    fn alg_none_is_refused() {
        for alg in SigningAlg::ALL {
            let (c, keys) = codec_of(alg);
            let (_, claims) = c.issue(&grant(), NOW);
            for name in ["none", "None", "NONE"] {
                let header = serde_json::json!({"alg": name, "typ": "JWT", "kid": keys[0].kid});
                let t = raw_token(&header, &claims, b"");
                assert!(c.verify(&t, NOW).is_err(), "{alg}: alg {name} accepted");
            }
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        // The classic confusion: the attacker knows the public key (it is
        // in the JWKS) and uses its bytes as an HMAC secret.
        for alg in ASYMMETRIC {
            let (c, keys) = codec_of(alg);
            let (_, claims) = c.issue(&grant(), NOW);
            let jwks = serde_json::to_value(c.jwks(NOW)).unwrap();
            let jwk = &jwks["keys"][0];
            let jwk_json = jwk.to_string();
            let mut secrets: Vec<Vec<u8>> = vec![jwk_json.into_bytes()];
            for param in ["x", "y", "n", "e"] {
                if let Some(v) = jwk[param].as_str() {
                    secrets.push(v.as_bytes().to_vec());
                    secrets
                        .push(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v).unwrap());
                }
            }
            if alg == SigningAlg::RS256 {
                use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
                let private =
                    rsa::RsaPrivateKey::from_pkcs1_der(keys[0].material.expose()).unwrap();
                let public = private.to_public_key().to_pkcs1_der().unwrap();
                secrets.push(public.as_bytes().to_vec());
            }
            for secret in secrets {
                for kid in [Some(keys[0].kid.clone()), None] {
                    let mut header = Header::new(Algorithm::HS256);
                    header.kid = kid;
                    let t =
                        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret))
                            .unwrap();
                    assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg}");
                }
            }
        }
    }

    #[test]
    fn a_token_claiming_another_algorithm_than_its_key_is_refused() {
        // Signed with a real EdDSA key, but the header says ES256: the key
        // decides, and the mismatch is refused before any verification.
        let (c, keys) = codec_of(SigningAlg::EdDSA);
        let (t, _) = c.issue(&grant(), NOW);
        let parts: Vec<&str> = t.split('.').collect();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": keys[0].kid});
        let forged = format!("{}.{}.{}", b64(header.to_string().as_bytes()), parts[1], parts[2]);
        assert_eq!(c.verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn an_unknown_or_missing_kid_is_refused() {
        for alg in SigningAlg::ALL {
            let (c, _) = codec_of(alg);
            let (other, _) = codec_of(alg);
            let (t, _) = other.issue(&grant(), NOW);
            assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg}: unknown kid");
            // Our own signature without a kid: only a configured or legacy
            // secret accepts that.
            let (ours, claims) = c.issue(&grant(), NOW);
            let keys = c.keys();
            let key = &keys.keys[keys.current];
            let unkeyed =
                jsonwebtoken::encode(&Header::new(alg.jwt()), &claims, &key.encoding).unwrap();
            assert!(c.verify(&ours, NOW).is_ok());
            assert_eq!(c.verify(&unkeyed, NOW), Err(TokenError::BadSignature), "{alg}: no kid");
        }
    }

    #[test]
    fn a_token_signed_by_one_key_under_another_keys_kid_is_refused() {
        let (c, keys) = codec_of(SigningAlg::EdDSA);
        let (t, claims) = c.issue(&grant(), NOW);
        assert_eq!(kid_of(&t).as_deref(), Some(keys[0].kid.as_str()));
        let set = c.keys();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys[1].kid.clone());
        let swapped =
            jsonwebtoken::encode(&header, &claims, &set.keys[set.current].encoding).unwrap();
        assert_eq!(c.verify(&swapped, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn keys_offered_by_the_token_are_never_used() {
        // The attacker signs with their own key and offers its public half
        // in the header (`jwk`), or a URL to fetch it from (`jku`, `x5u`).
        for alg in ASYMMETRIC {
            let (c, keys) = codec_of(alg);
            let (_, claims) = c.issue(&grant(), NOW);
            let attacker = SigningKey::generate(alg, KeyState::Current, NOW).unwrap();
            let attacker_set = KeySet::new(std::slice::from_ref(&attacker), TTL, NOW).unwrap();
            let attacker_key = &attacker_set.keys[0];
            let jwk: Jwk = attacker_key.jwk.clone().unwrap();
            for kid in [attacker.kid.clone(), keys[0].kid.clone()] {
                let mut header = Header::new(alg.jwt());
                header.kid = Some(kid.clone());
                header.jwk = Some(jwk.clone());
                let t = jsonwebtoken::encode(&header, &claims, &attacker_key.encoding).unwrap();
                assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg} jwk");
                let mut header = Header::new(alg.jwt());
                header.kid = Some(kid);
                header.jku = Some("https://attacker.example/jwks.json".into());
                let t = jsonwebtoken::encode(&header, &claims, &attacker_key.encoding).unwrap();
                assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg} jku");
            }
            // Even our own signature is refused when the header offers a key.
            let set = c.keys();
            let mut header = Header::new(alg.jwt());
            header.kid = Some(keys[0].kid.clone());
            header.x5u = Some("https://attacker.example/cert.pem".into());
            let t =
                jsonwebtoken::encode(&header, &claims, &set.keys[set.current].encoding).unwrap();
            assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg} x5u");
        }
    }

    #[test]
    fn rotation_logs_nobody_out_and_new_tokens_carry_the_new_kid() {
        for alg in SigningAlg::ALL {
            let (c, keys) = codec_of(alg);
            let (before, claims) = c.issue(&grant(), NOW);
            let t1 = NOW + Duration::minutes(5);
            let next = SigningKey::generate(alg, KeyState::Next, t1).unwrap();
            let rotated = keys::rotate(&keys, next, t1);
            c.install(KeySet::new(&rotated, TTL, t1).unwrap());
            assert_eq!(c.verify(&before, t1), Ok(claims), "{alg}: old token still verifies");
            let (after, _) = c.issue(&grant(), t1);
            assert_eq!(kid_of(&after).as_deref(), Some(keys[1].kid.as_str()), "{alg}");
            assert!(c.verify(&after, t1).is_ok());
        }
    }

    #[test]
    fn a_retired_key_past_its_window_is_refused() {
        // Claims that would still be valid, signed by a key retired long
        // enough ago: refused because of the key, not the claims.
        let (c, keys) = codec_of(SigningAlg::EdDSA);
        let t1 = NOW + Duration::minutes(1);
        let next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, t1).unwrap();
        let rotated = keys::rotate(&keys, next, t1);
        c.install(KeySet::new(&rotated, TTL, t1).unwrap());
        let end = t1 + retirement_window(TTL);
        let old = KeySet::new(&keys, TTL, NOW).unwrap();
        let old_codec = TokenCodec::with_keys(old, "sessiond", Duration::days(1));
        let (late, _) = old_codec.issue(&grant(), end - Duration::seconds(1));
        assert!(c.verify(&late, end - Duration::seconds(1)).is_ok());
        assert_eq!(c.verify(&late, end), Err(TokenError::BadSignature));
        // And once the set is rebuilt after the window, it is gone.
        c.install(KeySet::new(&rotated, TTL, end).unwrap());
        assert_eq!(c.verify(&late, end - Duration::seconds(1)), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_remembered_token_is_still_held_to_its_times_and_its_key() {
        for alg in SigningAlg::ALL {
            let (c, keys) = codec_of(alg);
            let (t, claims) = c.issue(&grant(), NOW);
            assert_eq!(c.verify(&t, NOW), Ok(claims.clone()));
            assert_eq!(c.inner.memo.len(), 1, "{alg}: a verified token is remembered");
            // The hit answers the same claims, and expiry stays exact.
            assert_eq!(c.verify(&t, NOW + TTL - Duration::seconds(1)), Ok(claims));
            assert_eq!(c.verify(&t, NOW + TTL), Err(TokenError::Expired), "{alg}");
            // A set without the token's key refuses it, remembered or not.
            let other = keys::initial_keys(alg, NOW).unwrap();
            assert_ne!(other[0].kid, keys[0].kid);
            c.install(KeySet::new(&other, TTL, NOW).unwrap());
            assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature), "{alg}");
            assert_eq!(c.inner.memo.len(), 0, "{alg}: forgotten once its key is gone");
        }
    }

    #[test]
    fn tokens_that_fail_are_never_remembered_and_the_memo_is_bounded() {
        let (c, _) = codec_of(SigningAlg::HS256);
        let (t, _) = c.issue(&grant(), NOW);
        let at = t.rfind('.').unwrap() + 3;
        let mut forged = t.clone().into_bytes();
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(c.verify(&forged, NOW), Err(TokenError::BadSignature));
        assert_eq!(c.verify(&forged, NOW), Err(TokenError::BadSignature), "twice");
        assert_eq!(c.inner.memo.len(), 0);
        // A remembered token does not make a token differing elsewhere pass.
        assert!(c.verify(&t, NOW).is_ok());
        assert_eq!(c.verify(&forged, NOW), Err(TokenError::BadSignature));
        for _ in 0..crate::memo::CAPACITY + 500 {
            let (t, _) = c.issue(&grant(), NOW);
            assert!(c.verify(&t, NOW).is_ok());
        }
        assert!(c.inner.memo.len() <= crate::memo::CAPACITY);
    }

    #[test]
    fn only_a_configured_or_legacy_secret_accepts_tokens_without_kid() {
        let secret = [b's'; 64];
        let claims = TokenCodec::new(&secret, "sessiond", TTL).issue(&grant(), NOW).1;
        let unkeyed = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        // Configured: accepted.
        assert!(TokenCodec::new(&secret, "sessiond", TTL).verify(&unkeyed, NOW).is_ok());
        // The legacy generated secret, migrated as a retired key: accepted
        // within its window, next to an EdDSA set.
        let mut keys = keys::initial_keys(SigningAlg::EdDSA, NOW).unwrap();
        let legacy = SigningKey {
            kid: LEGACY_KID.into(),
            alg: SigningAlg::HS256,
            state: KeyState::Retired,
            created_at: NOW,
            activated_at: None,
            retired_at: Some(NOW),
            material: keys::KeyMaterial::from_bytes(secret.to_vec()),
        };
        keys.push(legacy);
        let c = TokenCodec::with_keys(KeySet::new(&keys, TTL, NOW).unwrap(), "sessiond", TTL);
        assert!(c.verify(&unkeyed, NOW).is_ok());
        assert!(c.jwks(NOW).keys.iter().all(|k| k.common.key_id.as_deref() != Some(LEGACY_KID)));
        // A generated HS256 set (not legacy): refused.
        let (c, _) = codec_of(SigningAlg::HS256);
        let keys = c.keys();
        let t =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.keys[0].encoding)
                .unwrap();
        assert_eq!(c.verify(&t, NOW), Err(TokenError::BadSignature));
    }
}
