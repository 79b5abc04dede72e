//! The key set a [`TokenCodec`](crate::TokenCodec) signs and verifies with,
//! each key parsed once, and the public JWKS.

use std::fmt;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, EncodingKey};
use kernel::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::material::{ED25519_PKCS8_PREFIX, HS256_SECRET_LEN};
use super::{KeyError, KeyInfo, KeyState, LEGACY_KID, SigningAlg, SigningKey, retirement_window};

/// A key ready for use: parsed once, shared by every request.
pub(crate) struct Prepared {
    pub(crate) info: KeyInfo,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Option<Jwk>,
    /// Whether it verifies tokens that carry no `kid` (see [`LEGACY_KID`]).
    pub(crate) unkeyed: bool,
}

/// HMAC (RFC 2104) replaces a key longer than the hash's block by the hash
/// of the key, and `jsonwebtoken` keys a new HMAC for every token: doing
/// that reduction once gives the very same signatures without hashing the
/// key on every request.
fn hmac_key(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    if secret.len() > HS256_SECRET_LEN {
        let reduced: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(secret).into();
        Zeroizing::new(reduced.to_vec())
    } else {
        Zeroizing::new(secret.to_vec())
    }
}

fn prepare(key: &SigningKey, window: Duration, unkeyed: bool) -> Result<Prepared, KeyError> {
    let bad = || KeyError::BadMaterial(key.kid.clone());
    let der = key.material.expose();
    let (encoding, decoding, jwk) = match key.alg {
        SigningAlg::HS256 => {
            let secret = hmac_key(der);
            (EncodingKey::from_secret(&secret), DecodingKey::from_secret(&secret), None)
        }
        alg => {
            let encoding = match alg {
                SigningAlg::EdDSA if der.len() == 48 && der[..16] == ED25519_PKCS8_PREFIX => {
                    EncodingKey::from_ed_der(der)
                }
                SigningAlg::ES256 => EncodingKey::from_ec_der(der),
                SigningAlg::RS256 => EncodingKey::from_rsa_der(der),
                _ => return Err(bad()),
            };
            let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(|_| bad())?;
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_id = Some(key.kid.clone());
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| bad())?;
            (encoding, decoding, Some(jwk))
        }
    };
    Ok(Prepared { info: key.info(window), encoding, decoding, jwk, unkeyed })
}

/// The keys a codec signs and verifies with, parsed once.
///
/// The current key signs. A token is verified by the key its `kid` names,
/// among the current, next and retired keys still within their window, with
/// that key's own algorithm: the token's `alg` must match it and is never
/// used to choose how to verify. A token without `kid` is verified only by
/// the key marked for it (a configured HS256 secret, or [`LEGACY_KID`]).
pub struct KeySet {
    pub(crate) keys: Vec<Prepared>,
    pub(crate) current: usize,
    window: Duration,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let infos: Vec<&KeyInfo> = self.keys.iter().map(|k| &k.info).collect();
        f.debug_struct("KeySet").field("keys", &infos).field("window", &self.window).finish()
    }
}

impl KeySet {
    /// A key set from `keys` (as stored), for tokens living `access_ttl`.
    /// Retired keys past their window at `now` are left out. The key of
    /// [`LEGACY_KID`] verifies tokens without a kid.
    pub fn new(
        keys: &[SigningKey],
        access_ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Self, KeyError> {
        let window = retirement_window(access_ttl);
        let mut prepared = Vec::with_capacity(keys.len());
        let mut current = None;
        for key in keys {
            if key.state == KeyState::Retired && key.retired_at.is_none_or(|at| at + window <= now)
            {
                continue;
            }
            if key.state == KeyState::Current {
                if current.is_some() {
                    return Err(KeyError::BadMaterial(key.kid.clone()));
                }
                current = Some(prepared.len());
            }
            let unkeyed = key.alg == SigningAlg::HS256 && key.kid == LEGACY_KID;
            prepared.push(prepare(key, window, unkeyed)?);
        }
        let current = current.ok_or(KeyError::NoCurrentKey)?;
        Ok(Self { keys: prepared, current, window })
    }

    /// The key set of a configured HS256 secret: that one key, which also
    /// verifies tokens without a kid (every token issued before tokens
    /// carried one was signed with it).
    pub fn from_secret(secret: &[u8], access_ttl: Duration, now: OffsetDateTime) -> Self {
        let key = SigningKey::from_secret(secret, now);
        let window = retirement_window(access_ttl);
        let secret = hmac_key(secret);
        let prepared = Prepared {
            info: key.info(window),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            jwk: None,
            unkeyed: true,
        };
        Self { keys: vec![prepared], current: 0, window }
    }

    /// The key that signs.
    pub fn current(&self) -> &KeyInfo {
        &self.keys[self.current].info
    }

    /// Every key in the set (current, next, retired within the window at
    /// the time the set was built).
    pub fn infos(&self) -> impl Iterator<Item = &KeyInfo> {
        self.keys.iter().map(|k| &k.info)
    }

    /// The key that verifies a token with this `kid` (or without one) at
    /// `now`; `None` when no key may.
    pub(crate) fn verifier(&self, kid: Option<&str>, now: OffsetDateTime) -> Option<&Prepared> {
        let key = match kid {
            Some(kid) => self.keys.iter().find(|k| k.info.kid == kid)?,
            None => self.keys.iter().find(|k| k.unkeyed)?,
        };
        match key.info.verifies_until {
            Some(until) if until <= now => None,
            _ => Some(key),
        }
    }

    /// The public JWKS at `now` (RFC 7517): current, next and retired keys
    /// still verifying. HS256 keys are never published.
    pub fn jwks(&self, now: OffsetDateTime) -> Jwks {
        let keys = self
            .keys
            .iter()
            .filter(|k| k.info.verifies_until.is_none_or(|until| until > now))
            .filter_map(|k| k.jwk.clone())
            .collect();
        Jwks { keys }
    }
}

/// A JSON Web Key Set (RFC 7517 §5), serialised as `{"keys": [...]}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Jwks {
    /// The public keys.
    pub keys: Vec<Jwk>,
}
