//! Tokens this process has already verified, so that a client presenting
//! the same access token again is not decoded and verified again.
//!
//! Decoding a JWT (two base64 parts, a JSON parse) and checking its
//! signature was about half of an authenticated request's instructions
//! with HS256, and an Ed25519, P-256 or RSA verification costs tens of
//! microseconds more; a client sends the same token for its whole
//! lifetime. What the memo keeps is exactly what a full verification
//! established once and can never change: the signature was good under the
//! key named `kid`, and these are the claims. Everything that can change is
//! checked again on every hit by [`crate::TokenCodec::verify`]: expiry and
//! `nbf` against the clock, and whether the key still verifies (a key
//! retired past its window, or gone from the set, ends the hit). Whether
//! the session is still live is never a token's business: authentication
//! checks it on every request.
//!
//! Bounded: at most [`CAPACITY`] tokens, in shards that are emptied when
//! full, so an attacker sending many valid tokens costs a few megabytes at
//! most, and an invalid token is never remembered. Keys are a 128-bit
//! digest of the whole token under random keys, so two tokens that differ
//! anywhere never share an entry.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};

use crate::codec::Claims;

/// How many verified tokens are remembered at most (about 700 bytes each
/// with their claims).
pub(crate) const CAPACITY: usize = 4096;

/// Shards: concurrent requests rarely wait for each other.
const SHARDS: usize = 16;

/// What a full verification established about a token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    /// The claims, shared: a hit clones them out.
    pub(crate) claims: Arc<Claims>,
    /// The key that verified the signature (`None`: a token without `kid`,
    /// verified by the configured secret).
    pub(crate) kid: Option<Arc<str>>,
}

/// See the module documentation.
pub(crate) struct Memo {
    shards: [Mutex<HashMap<u128, Verified>>; SHARDS],
    /// Two independent random keys: the digest is 128 bits.
    hashers: (RandomState, RandomState),
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }
}

impl Memo {
    fn digest(&self, token: &str) -> u128 {
        let (a, b) = (self.hashers.0.hash_one(token), self.hashers.1.hash_one(token));
        (u128::from(a) << 64) | u128::from(b)
    }

    fn shard(&self, digest: u128) -> std::sync::MutexGuard<'_, HashMap<u128, Verified>> {
        // The low bits of a keyed hash are as random as any.
        let index = usize::try_from(digest % SHARDS as u128).unwrap_or(0);
        match self.shards[index].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// What was established about `token`, if it was verified before.
    pub(crate) fn get(&self, token: &str) -> Option<Verified> {
        let digest = self.digest(token);
        self.shard(digest).get(&digest).cloned()
    }

    /// Remembers a token that verified.
    pub(crate) fn put(&self, token: &str, verified: Verified) {
        let digest = self.digest(token);
        let mut shard = self.shard(digest);
        if shard.len() >= CAPACITY / SHARDS {
            // Emptying beats tracking recency here: a hot token is back
            // after one more verification.
            shard.clear();
        }
        shard.insert(digest, verified);
    }

    /// Forgets `token` (it no longer verifies).
    pub(crate) fn forget(&self, token: &str) {
        let digest = self.digest(token);
        self.shard(digest).remove(&digest);
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| match s.lock() {
                Ok(s) => s.len(),
                Err(poisoned) => poisoned.into_inner().len(),
            })
            .sum()
    }
}
