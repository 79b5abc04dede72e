//! A key's life (`next` → `current` → `retired`): the states, the first key
//! set, rotation as a pure function, and how long a retired key verifies.

use std::fmt;
use std::str::FromStr;

use kernel::{Duration, OffsetDateTime};

use super::{KeyError, SigningAlg, SigningKey};
use crate::codec::CLOCK_LEEWAY_SECS;

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
/// Retired keys are kept; [`KeySet`](super::KeySet) ignores those past their window.
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
