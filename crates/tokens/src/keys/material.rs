//! One signing key: its private material, its generation, and what may be
//! listed of it.

use std::fmt;

use kernel::{Duration, OffsetDateTime};
use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use super::{KeyError, KeyState, SigningAlg};

/// Private key material: PKCS#8 DER for EdDSA and ES256, PKCS#1 DER for
/// RS256 (what `jsonwebtoken` reads), the raw secret for HS256. Wiped on
/// drop and never printed.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    /// Wraps bytes read back from storage (after [`KeyVault::open`](super::KeyVault::open)).
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
pub(super) const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Bytes of a generated HS256 secret: HMAC-SHA-256's block.
pub(super) const HS256_SECRET_LEN: usize = 64;

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
