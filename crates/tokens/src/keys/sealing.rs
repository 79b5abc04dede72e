//! Private key material sealed at rest, and keys as storage keeps them.

use std::fmt;

use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use super::{KeyError, KeyMaterial, SigningKey};

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
