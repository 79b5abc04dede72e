//! Tokens domain of sessiond: signed access tokens (JWT: EdDSA, ES256,
//! RS256 or HS256) and opaque refresh tokens that rotate on every use.
//!
//! The rules live here and are pure: [`TokenCodec`] signs and checks access
//! tokens against an injected "now" with a [`KeySet`] (the key chosen by
//! `kid`, the algorithm by the key; see [`keys`]), [`refresh::classify`]
//! decides what a presented refresh token means. Storage is the
//! [`RefreshTokenStore`], [`SigningKeyStore`] and [`KeyStore`] ports;
//! [`KeyRing`] keeps a codec's keys in step with the database; the `auth`
//! crate ties the two kinds of token to device sessions.
//!
//! ```
//! use std::collections::HashMap;
//! use kernel::{Duration, OffsetDateTime, Uuid};
//! use tokens::refresh::{self, Presented};
//! use tokens::{AccessGrant, RefreshRecord, RefreshToken, TokenCodec, TokenError};
//!
//! // Access tokens: short-lived JWTs, checked without any storage.
//! let secret = b"at least 32 random bytes, kept secret";
//! let codec = TokenCodec::new(secret, "sessiond", Duration::minutes(15));
//! let now = OffsetDateTime::now_utc();
//! let session_id = Uuid::now_v7();
//! let grant = AccessGrant {
//!     user_id: Uuid::now_v7(),
//!     username: "alice".into(),
//!     session_id,
//!     app: "web".into(),
//!     role: "user".into(),
//! };
//! let (jwt, claims) = codec.issue(&grant, now);
//! assert_eq!(codec.verify(&jwt, now)?, claims);
//! assert_eq!(claims.session_id(), Some(session_id));
//! assert_eq!(codec.verify(&jwt, now + Duration::minutes(16)), Err(TokenError::Expired));
//!
//! // Refresh tokens: the client gets the secret, storage keeps only the
//! // hash (a map stands in for a `RefreshTokenStore` here).
//! let mut stored = HashMap::new();
//! let first = RefreshToken::generate();
//! stored.insert(first.hash.clone(), RefreshRecord { session_id, superseded_at: None });
//!
//! // The client presents its secret: the current token, so it rotates.
//! let grace = Duration::seconds(10);
//! let record = &stored[&refresh::hash(&first.secret)];
//! assert_eq!(refresh::classify(record, now, grace), Presented::Current);
//! let second = RefreshToken::generate();
//! stored.insert(second.hash.clone(), RefreshRecord { session_id, superseded_at: None });
//! stored.insert(first.hash.clone(), RefreshRecord { session_id, superseded_at: Some(now) });
//!
//! // The old one again, moments later (two tabs refreshing at once): fine.
//! let old = &stored[&first.hash];
//! assert_eq!(refresh::classify(old, now + Duration::seconds(2), grace), Presented::WithinGrace);
//! // Minutes later: someone kept an old token. Theft: revoke the session.
//! assert_eq!(refresh::classify(old, now + Duration::minutes(5), grace), Presented::Reused);
//! # Ok::<(), TokenError>(())
//! ```

mod codec;
pub mod keys;
mod memo;
pub mod refresh;
mod ring;

pub use codec::{AccessGrant, CLOCK_LEEWAY_SECS, Claims, TokenCodec, TokenError};
pub use keys::{
    Jwks, KeyError, KeyInfo, KeySet, KeyState, KeyVault, SigningAlg, SigningKey, SigningKeyStore,
    StoredKey,
};
pub use refresh::{RefreshRecord, RefreshToken};
pub use ring::KeyRing;

use kernel::{OffsetDateTime, Uuid};

/// Storage of refresh tokens. A session has exactly one current refresh
/// token; superseded ones are remembered (as hashes) with the time they were
/// superseded, so that a late reuse can be recognised as theft.
pub trait RefreshTokenStore: Send + Sync {
    /// What is known of the token with this hash: its session and, when it
    /// is no longer current, when it was superseded.
    fn find_refresh(&self, token_hash: &str) -> anyhow::Result<Option<RefreshRecord>>;

    /// The hash of the session's current refresh token.
    fn current_refresh(&self, session_id: Uuid) -> anyhow::Result<Option<String>>;

    /// Compare-and-swap: when the session is still active at `now` and its
    /// current hash is `expected`, makes `new_hash` current and remembers
    /// `expected` as superseded at `now`, atomically. `false` when another
    /// rotation won or the session has ended; nothing changes then.
    fn replace_refresh(
        &self,
        session_id: Uuid,
        expected: &str,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool>;
}

/// Storage of signing keys: when no secret is configured, one is generated
/// once and shared through the database, so that restarts and other
/// instances accept the same tokens.
pub trait KeyStore: Send + Sync {
    /// Stores `candidate` under `name` unless a value is already there, and
    /// returns the stored value (the candidate or the older value).
    fn secret_or_insert(&self, name: &str, candidate: &str) -> anyhow::Result<String>;
}
