//! Refresh tokens: opaque, random, stored only as a hash, rotated on use.

use base64::Engine as _;
use kernel::{Duration, OffsetDateTime, Uuid};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// A freshly minted refresh token: the secret for the client and the hash
/// for the store.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// What the client gets: 256 random bits, base64url.
    pub secret: String,
    /// What the store keeps.
    pub hash: String,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken").field("hash", &self.hash).finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A new random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash(&secret);
        Self { secret, hash }
    }
}

/// The stored form of a presented token. SHA-256 suffices (no slow hash):
/// the input has 256 bits of entropy, so there is nothing to brute-force.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store knows of a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// The session it belongs to.
    pub session_id: Uuid,
    /// `None` while it is the session's current token; otherwise when a
    /// newer token replaced it.
    pub superseded_at: Option<OffsetDateTime>,
}

/// What presenting a refresh token means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The session's current token: rotate it.
    Current,
    /// Superseded less than the grace window ago (two tabs refreshing at
    /// once): issue a new pair that becomes current.
    WithinGrace,
    /// Superseded earlier: someone kept an old token. Treat as theft and
    /// revoke the session.
    Reused,
}

/// Decides what a presented token means at `now` with the given grace window.
/// The window is counted from when the token was superseded.
pub fn classify(record: &RefreshRecord, now: OffsetDateTime, grace: Duration) -> Presented {
    match record.superseded_at {
        None => Presented::Current,
        // Clamped at zero: a clock read just before a concurrent rotation
        // stamped the supersession must not widen the window.
        Some(at) if std::cmp::max(now - at, Duration::ZERO) < grace => Presented::WithinGrace,
        Some(_) => Presented::Reused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (RefreshToken::generate(), RefreshToken::generate());
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), 43); // 32 bytes, base64url without padding
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn grace_window_counts_from_supersession() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let grace = Duration::seconds(10);
        let sid = Uuid::now_v7();
        let current = RefreshRecord { session_id: sid, superseded_at: None };
        assert_eq!(classify(&current, t0 + Duration::days(3), grace), Presented::Current);
        let old = RefreshRecord { session_id: sid, superseded_at: Some(t0) };
        assert_eq!(classify(&old, t0, grace), Presented::WithinGrace);
        assert_eq!(
            classify(&old, t0 + Duration::milliseconds(9_999), grace),
            Presented::WithinGrace
        );
        assert_eq!(classify(&old, t0 + Duration::seconds(10), grace), Presented::Reused);
        assert_eq!(classify(&old, t0 + Duration::seconds(10), Duration::ZERO), Presented::Reused);
        // A "now" read just before the supersession was stamped is no excuse.
        assert_eq!(
            classify(&old, t0 - Duration::milliseconds(5), Duration::ZERO),
            Presented::Reused
        );
    }
}
