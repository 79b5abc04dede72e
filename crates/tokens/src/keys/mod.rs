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

mod alg;
mod lifecycle;
mod material;
mod sealing;
mod set;
#[cfg(test)]
mod tests;

use kernel::OffsetDateTime;

// The submodules are private: every item is known as `tokens::keys::…`, as
// it was before they were split out.
pub use alg::SigningAlg;
pub use lifecycle::{KeyState, initial_keys, retirement_window, rotate};
pub use material::{KeyInfo, KeyMaterial, SigningKey};
pub use sealing::{KeyVault, StoredKey};
pub use set::{Jwks, KeySet};

/// The `kid` of the HS256 secret that sessiond generated and kept in the
/// database before signing keys had ids (it is migrated into the key table
/// as a retired key). Like a configured `SESSIOND_JWT_SECRET`, it verifies
/// tokens without a `kid`: every token issued before the upgrade has none.
pub const LEGACY_KID: &str = "legacy-hs256";

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
