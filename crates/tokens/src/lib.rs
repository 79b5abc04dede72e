//! Tokens domain of sessiond: signed access tokens (JWT, HS256) and opaque
//! refresh tokens that rotate on every use.
//!
//! The rules live here and are pure: [`TokenCodec`] signs and checks access
//! tokens against an injected "now", [`refresh::classify`] decides what a
//! presented refresh token means. Storage is the [`RefreshTokenStore`] and
//! [`KeyStore`] ports.
//!
//! ```
//! use tokens::{AccessGrant, TokenCodec};
//! use kernel::{Duration, Uuid};
//! let codec = TokenCodec::new(b"0123456789abcdef0123456789abcdef", "sessiond", Duration::minutes(15));
//! let now = kernel::OffsetDateTime::now_utc();
//! let grant = AccessGrant { user_id: Uuid::now_v7(), username: "alice".into(),
//!     session_id: Uuid::now_v7(), app: "default".into(), role: "user".into() };
//! let (jwt, claims) = codec.issue(&grant, now);
//! assert_eq!(codec.verify(&jwt, now).unwrap(), claims);
//! assert!(codec.verify(&jwt, now + Duration::minutes(16)).is_err());
//! ```

mod codec;
pub mod refresh;

pub use codec::{AccessGrant, Claims, TokenCodec, TokenError};
pub use refresh::{RefreshRecord, RefreshToken};

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
