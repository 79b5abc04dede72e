//! Signing keys: the algorithms, a key's life (`next` → `current` →
//! `retired`), the key set a [`TokenCodec`](crate::TokenCodec) signs and
//! verifies with, rotation as a pure function, the public JWKS, and the
//! sealing of private material at rest.
//!
//! Why a set and not one key: other services verify tokens offline from
//! the published JWKS and cache it. A key is therefore published while it is
//! `next` (before it signs anything), and a `retired` key stays published and
//! verifying until the last token it signed has expired, so a rotation logs
//! nobody out and no verifier ever meets a `kid` it has not seen.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use kernel::{Duration, OffsetDateTime};
use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use crate::codec::CLOCK_LEEWAY_SECS;

/// The `kid` of the HS256 secret that sessiond generated and kept in the
/// database before signing keys had ids (it is migrated into the key table
/// as a retired key). Like a configured `SESSIOND_JWT_SECRET`, it verifies
/// tokens without a `kid`: every token issued before the upgrade has none.
pub const LEGACY_KID: &str = "legacy-hs256";

/// The algorithms sessiond signs with (`SESSIOND_JWT_ALG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// HMAC-SHA-256: one shared secret; whoever verifies can also mint.
    HS256,
    /// Ed25519: small keys, fast, deterministic signatures (the default).
    EdDSA,
    /// ECDSA over P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl SigningAlg {
    /// Every algorithm, for documentation and tests.
    pub const ALL: [Self; 4] = [Self::HS256, Self::EdDSA, Self::ES256, Self::RS256];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// Whether keys of this algorithm have a public half that may be
    /// published. HS256 secrets never are.
    pub fn is_asymmetric(self) -> bool {
        self != Self::HS256
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    /// Exactly the JOSE names (case-sensitive, as in a JWT header).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not one of HS256, EdDSA, ES256, RS256"))
    }
}

/// Where a key is in its life (ordered as it goes: next, current, retired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyState {
    /// Published, verifying, not signing yet: becomes current at the next
    /// rotation, by which time verifiers have cached it.
    Next,
    /// The one key that signs.
    Current,
    /// No longer signs; verifies (and is published) until its tokens have
    /// expired.
    Retired,
}

impl KeyState {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Next, Self::Current, Self::Retired]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a key state"))
    }
}

/// Why a key or key set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key set needs exactly one current key.
    #[error("the key set has no current key")]
    NoCurrentKey,
    /// Stored material does not make a key of its algorithm.
    #[error("signing key {0} is damaged or of the wrong algorithm")]
    BadMaterial(String),
    /// The operating system's random source failed, or the key library did.
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
    /// Sealed material does not open with the configured encryption key.
    #[error(
        "SESSIOND_KEY_ENCRYPTION_KEY does not decrypt the stored signing keys \
         (a wrong key, or the keys were damaged)"
    )]
    WrongEncryptionKey,
    /// Sealed material, but no encryption key is configured.
    #[error("the stored signing keys are encrypted; set SESSIOND_KEY_ENCRYPTION_KEY")]
    EncryptionKeyMissing,
}

/// Private key material: PKCS#8 DER for EdDSA and ES256, PKCS#1 DER for
/// RS256 (what `jsonwebtoken` reads), the raw secret for HS256. Wiped on
/// drop and never printed.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wraps bytes read back from storage (after [`KeyVault::open`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, for sealing and storing.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([redacted])")
    }
}

/// A signing key with its metadata and private material.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// Random, URL-safe key id, written into every token it signs.
    pub kid: String,
    /// What it signs with.
    pub alg: SigningAlg,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was generated.
    pub created_at: OffsetDateTime,
    /// When it became current.
    pub activated_at: Option<OffsetDateTime>,
    /// When it stopped signing.
    pub retired_at: Option<OffsetDateTime>,
    /// The private half (or the secret).
    pub material: KeyMaterial,
}

/// Ed25519 PKCS#8 v1 prefix (RFC 8410): the 32-byte seed follows. This is
/// the 48-byte form `jsonwebtoken` expects for EdDSA keys.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Bytes of a generated HS256 secret: HMAC-SHA-256's block.
const HS256_SECRET_LEN: usize = 64;

/// RSA modulus size for generated RS256 keys.
const RSA_BITS: usize = 2048;

/// 128 random bits, base64url: unguessable and safe in a header or a URL.
fn random_kid() -> String {
    use base64::Engine as _;
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

impl SigningKey {
    /// Generates a fresh key of `alg` in `state` at `now`, with a random kid.
    pub fn generate(
        alg: SigningAlg,
        state: KeyState,
        now: OffsetDateTime,
    ) -> Result<Self, KeyError> {
        let material = match alg {
            SigningAlg::HS256 => {
                let mut secret = Zeroizing::new(vec![0u8; HS256_SECRET_LEN]);
                OsRng.fill_bytes(&mut secret);
                secret
            }
            SigningAlg::EdDSA => {
                let mut der = Zeroizing::new(Vec::with_capacity(48));
                der.extend_from_slice(&ED25519_PKCS8_PREFIX);
                let mut seed = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(&mut *seed);
                der.extend_from_slice(&*seed);
                der
            }
            SigningAlg::ES256 => {
                use p256::pkcs8::EncodePrivateKey as _;
                let key = p256::SecretKey::random(&mut OsRng);
                let der = key.to_pkcs8_der().map_err(|e| KeyError::Generate(e.to_string()))?;
                Zeroizing::new(der.as_bytes().to_vec())
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
                    .map_err(|e| KeyError::Generate(e.to_string()))?;
                let der = key.to_pkcs1_der().map_err(|e| KeyError::Generate(e.to_string()))?;
                Zeroizing::new(der.as_bytes().to_vec())
            }
        };
        let activated_at = (state == KeyState::Current).then_some(now);
        Ok(Self {
            kid: random_kid(),
            alg,
            state,
            created_at: now,
            activated_at,
            retired_at: None,
            material: KeyMaterial(material),
        })
    }

    /// The HS256 key of a configured secret (`SESSIOND_JWT_SECRET`). Its
    /// kid is derived from the secret, so every instance configured with it
    /// names it alike, and reveals nothing usable about it (a truncated
    /// hash with a domain prefix of a secret of at least 32 bytes).
    pub fn from_secret(secret: &[u8], now: OffsetDateTime) -> Self {
        use base64::Engine as _;
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"sessiond kid of a configured HS256 secret\0");
        h.update(secret);
        let digest = h.finalize();
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12]);
        Self {
            kid,
            alg: SigningAlg::HS256,
            state: KeyState::Current,
            created_at: now,
            activated_at: Some(now),
            retired_at: None,
            material: KeyMaterial::from_bytes(secret.to_vec()),
        }
    }

    /// What may be shown of the key: everything but the private material.
    pub fn info(&self, window: Duration) -> KeyInfo {
        KeyInfo {
            kid: self.kid.clone(),
            alg: self.alg,
            state: self.state,
            created_at: self.created_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
            verifies_until: self.retired_at.map(|at| at + window),
        }
    }
}

/// A key as it may be listed: no private material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// State.
    pub state: KeyState,
    /// Generated at.
    pub created_at: OffsetDateTime,
    /// Became current at.
    pub activated_at: Option<OffsetDateTime>,
    /// Stopped signing at.
    pub retired_at: Option<OffsetDateTime>,
    /// For a retired key: when its last token expires, and it leaves the
    /// JWKS and stops verifying.
    pub verifies_until: Option<OffsetDateTime>,
}

/// How long a retired key keeps verifying: the access-token lifetime (its
/// last token's) plus the clock leeway instances may disagree by.
pub fn retirement_window(access_ttl: Duration) -> Duration {
    access_ttl + Duration::seconds(CLOCK_LEEWAY_SECS)
}

/// A first key set: a current key that signs and a next key already
/// published, both of `alg`.
pub fn initial_keys(alg: SigningAlg, now: OffsetDateTime) -> Result<Vec<SigningKey>, KeyError> {
    Ok(vec![
        SigningKey::generate(alg, KeyState::Current, now)?,
        SigningKey::generate(alg, KeyState::Next, now)?,
    ])
}

/// Rotation, as a pure function of the keys: the next key becomes current,
/// `new_next` becomes next, the current key retires at `now`. Without a
/// next key, `new_next` itself becomes current (and there is no next).
/// Retired keys are kept; [`KeySet`] ignores those past their window.
pub fn rotate(keys: &[SigningKey], new_next: SigningKey, now: OffsetDateTime) -> Vec<SigningKey> {
    let has_next = keys.iter().any(|k| k.state == KeyState::Next);
    let mut out: Vec<SigningKey> = keys
        .iter()
        .cloned()
        .map(|mut k| {
            match k.state {
                KeyState::Current => {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(now);
                }
                KeyState::Next => {
                    k.state = KeyState::Current;
                    k.activated_at = Some(now);
                }
                KeyState::Retired => {}
            }
            k
        })
        .collect();
    let mut new_next = new_next;
    if has_next {
        new_next.state = KeyState::Next;
    } else {
        new_next.state = KeyState::Current;
        new_next.activated_at = Some(now);
    }
    out.push(new_next);
    out
}

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

/// The key that seals private material at rest
/// (`SESSIOND_KEY_ENCRYPTION_KEY`): 32 bytes, given as 64 hex digits or in
/// standard base64. ChaCha20-Poly1305 with a random 96-bit nonce per seal,
/// the key's kid as associated data (a sealed blob moved to another row
/// does not open).
#[derive(Clone)]
pub struct KeyVault(Zeroizing<[u8; 32]>);

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyVault([redacted])")
    }
}

/// Nonce bytes at the front of a sealed blob.
const NONCE_LEN: usize = 12;

impl KeyVault {
    /// Parses the configured key; the error says what is wrong, never the
    /// value.
    pub fn parse(s: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let s = s.trim();
        let bytes: Zeroizing<Vec<u8>> = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
        {
            Zeroizing::new(
                (0..32)
                    .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default())
                    .collect(),
            )
        } else {
            Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| "must be 32 bytes as 64 hex digits or base64".to_owned())?,
            )
        };
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "must be 32 bytes as 64 hex digits or base64".to_owned())?;
        Ok(Self(Zeroizing::new(key)))
    }

    fn cipher(&self) -> chacha20poly1305::ChaCha20Poly1305 {
        use chacha20poly1305::KeyInit as _;
        chacha20poly1305::ChaCha20Poly1305::new(&chacha20poly1305::Key::from(*self.0))
    }

    /// Encrypts `material` of key `kid`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, kid: &str, material: &KeyMaterial) -> Result<Vec<u8>, KeyError> {
        use chacha20poly1305::aead::{Aead as _, Payload};
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &chacha20poly1305::Nonce::from(nonce),
                Payload { msg: material.expose(), aad: kid.as_bytes() },
            )
            .map_err(|_| KeyError::Generate("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`KeyVault::seal`] made for `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<KeyMaterial, KeyError> {
        use chacha20poly1305::aead::{Aead as _, Payload};
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::WrongEncryptionKey);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyError::WrongEncryptionKey)?;
        self.cipher()
            .decrypt(
                &chacha20poly1305::Nonce::from(nonce),
                Payload { msg: body, aad: kid.as_bytes() },
            )
            .map(KeyMaterial::from_bytes)
            .map_err(|_| KeyError::WrongEncryptionKey)
    }
}

/// A key as storage keeps it: the key with its material sealed when an
/// encryption key is configured, as it is otherwise.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The key; its `material` is sealed when `sealed` says so.
    pub key: SigningKey,
    /// Whether `key.material` is sealed by a [`KeyVault`].
    pub sealed: bool,
}

impl StoredKey {
    /// Seals `key` for storage (when `vault` is given).
    pub fn seal(key: &SigningKey, vault: Option<&KeyVault>) -> Result<Self, KeyError> {
        let (material, sealed) = match vault {
            Some(v) => (KeyMaterial::from_bytes(v.seal(&key.kid, &key.material)?), true),
            None => (key.material.clone(), false),
        };
        Ok(Self { key: SigningKey { material, ..key.clone() }, sealed })
    }

    /// Opens a stored key. Unsealed material is accepted even with a vault
    /// (keys stored before encryption was configured, and the migrated
    /// legacy secret); sealed material needs the vault that sealed it.
    pub fn open(&self, vault: Option<&KeyVault>) -> Result<SigningKey, KeyError> {
        match (self.sealed, vault) {
            (false, _) => Ok(self.key.clone()),
            (true, Some(v)) => {
                let material = v.open(&self.key.kid, self.key.material.expose())?;
                Ok(SigningKey { material, ..self.key.clone() })
            }
            (true, None) => Err(KeyError::EncryptionKeyMissing),
        }
    }
}

/// Storage of signing keys, shared by every instance on one database.
pub trait SigningKeyStore: Send + Sync {
    /// Every stored key, in any order.
    fn load_keys(&self) -> anyhow::Result<Vec<StoredKey>>;

    /// Stores `keys` (a first key set) unless a current key exists already;
    /// `false` when one did (another instance won; load theirs). Instances
    /// started together thus agree on one set.
    fn insert_initial_keys(&self, keys: &[StoredKey]) -> anyhow::Result<bool>;

    /// Rotation as a compare-and-swap on the current key: when the current
    /// key is `expected_current`, retires it at `now`, makes the next key
    /// current and stores `new_next` as next, atomically. `false` when
    /// another rotation won; nothing changes then.
    fn rotate_keys(
        &self,
        expected_current: &str,
        new_next: &StoredKey,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool>;

    /// Deletes retired keys that retired before `retired_before` (their
    /// window is over); returns how many.
    fn delete_retired_keys(&self, retired_before: OffsetDateTime) -> anyhow::Result<u64>;
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use time::macros::datetime;

    const TTL: Duration = Duration::minutes(15);

    #[test]
    fn algorithms_parse_by_their_jose_names_only() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlg>(), Ok(alg));
        }
        assert!("none".parse::<SigningAlg>().is_err());
        assert!("hs256".parse::<SigningAlg>().is_err());
        assert!("RS512".parse::<SigningAlg>().is_err());
    }

    #[test]
    fn generated_keys_are_distinct_and_their_material_is_never_printed() {
        let now = datetime!(2026-12-07 12:00 UTC);
        for alg in SigningAlg::ALL {
            let a = SigningKey::generate(alg, KeyState::Current, now).unwrap();
            let b = SigningKey::generate(alg, KeyState::Next, now).unwrap();
            assert_ne!(a.kid, b.kid);
            assert_ne!(a.material.expose(), b.material.expose());
            assert!(a.kid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            let printed = format!("{a:?}");
            assert!(printed.contains("redacted"), "{printed}");
            assert_eq!(a.activated_at, Some(now));
            assert_eq!(b.activated_at, None);
        }
    }

    #[test]
    fn jwks_publishes_public_keys_of_every_verifying_key_and_never_a_secret() {
        let now = datetime!(2026-12-07 12:00 UTC);
        for alg in SigningAlg::ALL {
            let keys = initial_keys(alg, now).unwrap();
            let set = KeySet::new(&keys, TTL, now).unwrap();
            let jwks = serde_json::to_value(set.jwks(now)).unwrap();
            let published = jwks["keys"].as_array().unwrap();
            if alg == SigningAlg::HS256 {
                assert!(published.is_empty(), "{jwks}");
                continue;
            }
            assert_eq!(published.len(), 2, "current and next: {jwks}");
            for jwk in published {
                assert_eq!(jwk["alg"], alg.as_str());
                assert_eq!(jwk["use"], "sig");
                assert!(keys.iter().any(|k| jwk["kid"] == k.kid.as_str()));
                // No private parameter of any key type (RFC 7518 §6).
                for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                    assert!(jwk.get(private).is_none(), "{private} in {jwk}");
                }
            }
            let kty = &published[0]["kty"];
            let expected = match alg {
                SigningAlg::EdDSA => "OKP",
                SigningAlg::ES256 => "EC",
                _ => "RSA",
            };
            assert_eq!(kty, expected);
        }
    }

    #[test]
    fn rotation_moves_every_key_one_step_and_keeps_the_retired_key_for_its_window() {
        let t0 = datetime!(2026-12-07 12:00 UTC);
        let keys = initial_keys(SigningAlg::EdDSA, t0).unwrap();
        let (old_current, old_next) = (keys[0].kid.clone(), keys[1].kid.clone());
        let t1 = t0 + Duration::days(30);
        let new_next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, t1).unwrap();
        let fresh = new_next.kid.clone();
        let rotated = rotate(&keys, new_next, t1);
        let state = |kid: &str| rotated.iter().find(|k| k.kid == kid).map(|k| k.state);
        assert_eq!(state(&old_current), Some(KeyState::Retired));
        assert_eq!(state(&old_next), Some(KeyState::Current));
        assert_eq!(state(&fresh), Some(KeyState::Next));
        let set = KeySet::new(&rotated, TTL, t1).unwrap();
        assert_eq!(set.current().kid, old_next);
        assert_eq!(set.jwks(t1).keys.len(), 3);
        // The retired key leaves the JWKS once its last token has expired.
        let after = t1 + retirement_window(TTL);
        assert_eq!(set.jwks(after).keys.len(), 2);
        assert!(set.verifier(Some(&old_current), after).is_none());
        assert!(set.verifier(Some(&old_current), after - Duration::seconds(1)).is_some());
        // A set built after the window leaves it out altogether.
        let later = KeySet::new(&rotated, TTL, after).unwrap();
        assert_eq!(later.infos().count(), 2);
    }

    #[test]
    fn a_set_needs_one_current_key() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, now).unwrap();
        assert!(matches!(KeySet::new(&[next], TTL, now), Err(KeyError::NoCurrentKey)));
        let a = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
        let b = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
        assert!(KeySet::new(&[a, b], TTL, now).is_err());
    }

    #[test]
    fn material_of_one_algorithm_is_refused_as_another() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let mut key = SigningKey::generate(SigningAlg::ES256, KeyState::Current, now).unwrap();
        key.alg = SigningAlg::EdDSA;
        assert!(matches!(KeySet::new(&[key], TTL, now), Err(KeyError::BadMaterial(_))));
    }

    #[test]
    fn sealed_material_opens_only_with_its_key_and_its_kid() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let vault = KeyVault::parse(&"ab".repeat(32)).unwrap();
        let key = SigningKey::generate(SigningAlg::EdDSA, KeyState::Current, now).unwrap();
        let stored = StoredKey::seal(&key, Some(&vault)).unwrap();
        assert!(stored.sealed);
        let seed = &key.material.expose()[16..];
        assert!(!stored.key.material.expose().windows(seed.len()).any(|w| w == seed));
        let opened = stored.open(Some(&vault)).unwrap();
        assert_eq!(opened.material.expose(), key.material.expose());
        // Another key, no key, or the blob under another kid: refused.
        use base64::Engine as _;
        let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let other = KeyVault::parse(&other).unwrap();
        assert!(matches!(stored.open(Some(&other)), Err(KeyError::WrongEncryptionKey)));
        assert!(matches!(stored.open(None), Err(KeyError::EncryptionKeyMissing)));
        let mut moved = stored.clone();
        moved.key.kid = "another".into();
        assert!(matches!(moved.open(Some(&vault)), Err(KeyError::WrongEncryptionKey)));
        // Unsealed material still opens with a vault configured.
        let plain = StoredKey::seal(&key, None).unwrap();
        assert!(plain.open(Some(&vault)).is_ok());
    }

    #[test]
    fn encryption_keys_parse_as_hex_or_base64_of_32_bytes() {
        assert!(KeyVault::parse(&"0f".repeat(32)).is_ok());
        assert!(KeyVault::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_ok());
        assert!(KeyVault::parse("short").is_err());
        assert!(KeyVault::parse(&"0f".repeat(16)).is_err());
        assert!(format!("{:?}", KeyVault::parse(&"0f".repeat(32)).unwrap()).contains("redacted"));
    }
}
