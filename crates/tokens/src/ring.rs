//! [`KeyRing`]: the signing keys of a database, kept in a [`TokenCodec`].
//! It creates the first key set, reloads it when another instance rotated,
//! rotates (by hand or on a schedule) and forgets keys whose window is over.
//! Pure orchestration over the [`SigningKeyStore`] port: no I/O of its own.

use std::sync::{Arc, Mutex};

use kernel::{Duration, OffsetDateTime};

use crate::TokenCodec;
use crate::keys::{
    KeyInfo, KeySet, KeyState, KeyVault, SigningAlg, SigningKey, SigningKeyStore, StoredKey,
    initial_keys, retirement_window,
};

/// What identifies a loaded key set: a reload that finds the same keys in
/// the same states changes nothing and parses nothing.
type Fingerprint = Vec<(String, KeyState, Option<OffsetDateTime>)>;

/// The database's signing keys, serving a codec.
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    vault: Option<KeyVault>,
    alg: SigningAlg,
    ttl: Duration,
    codec: TokenCodec,
    loaded: Mutex<Fingerprint>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("alg", &self.alg)
            .field("encrypted", &self.vault.is_some())
            .finish_non_exhaustive()
    }
}

fn fingerprint(keys: &[StoredKey]) -> Fingerprint {
    let mut f: Fingerprint =
        keys.iter().map(|k| (k.key.kid.clone(), k.key.state, k.key.retired_at)).collect();
    f.sort_by(|a, b| a.0.cmp(&b.0));
    f
}

impl KeyRing {
    /// Loads the key set of `store`, creating a first one of `alg` when
    /// there is no current key (instances starting together agree: only
    /// one insert wins, the others load it). Fails when stored keys do not
    /// open with `vault` (a wrong encryption key).
    pub fn open(
        store: Arc<dyn SigningKeyStore>,
        vault: Option<KeyVault>,
        alg: SigningAlg,
        issuer: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        let mut stored = store.load_keys()?;
        if !stored.iter().any(|k| k.key.state == KeyState::Current) {
            let first = initial_keys(alg, now)?
                .iter()
                .map(|k| StoredKey::seal(k, vault.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            store.insert_initial_keys(&first)?;
            stored = store.load_keys()?;
        }
        let set = Self::build(&stored, vault.as_ref(), ttl, now)?;
        let codec = TokenCodec::with_keys(set, issuer, ttl);
        Ok(Self { store, vault, alg, ttl, codec, loaded: Mutex::new(fingerprint(&stored)) })
    }

    fn build(
        stored: &[StoredKey],
        vault: Option<&KeyVault>,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> anyhow::Result<KeySet> {
        let window = retirement_window(ttl);
        // Keys past their window are neither opened nor parsed.
        let keys = stored
            .iter()
            .filter(|k| k.key.retired_at.is_none_or(|at| at + window > now))
            .map(|k| k.open(vault))
            .collect::<Result<Vec<SigningKey>, _>>()?;
        Ok(KeySet::new(&keys, ttl, now)?)
    }

    /// The codec signing with this ring's current key; clones share it, so
    /// a reload reaches every holder.
    pub fn codec(&self) -> &TokenCodec {
        &self.codec
    }

    /// The algorithm new keys are generated with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Reads the keys again and installs them when they changed (another
    /// instance rotated). Cheap when nothing changed: one query.
    pub fn reload(&self, now: OffsetDateTime) -> anyhow::Result<bool> {
        let stored = self.store.load_keys()?;
        let print = fingerprint(&stored);
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *loaded == print {
            return Ok(false);
        }
        self.codec.install(Self::build(&stored, self.vault.as_ref(), self.ttl, now)?);
        *loaded = print;
        Ok(true)
    }

    /// Rotates now: the next key signs from now on, a new next key is
    /// generated, the current key retires. `false` when another instance
    /// rotated at the same moment (theirs counts; the keys are reloaded
    /// either way).
    pub fn rotate(&self, now: OffsetDateTime) -> anyhow::Result<bool> {
        let current = self.codec.keys().current().kid.clone();
        self.rotate_from(&current, now)
    }

    fn rotate_from(&self, current: &str, now: OffsetDateTime) -> anyhow::Result<bool> {
        let next = SigningKey::generate(self.alg, KeyState::Next, now)?;
        let next = StoredKey::seal(&next, self.vault.as_ref())?;
        let won = self.store.rotate_keys(current, &next, now)?;
        self.reload(now)?;
        Ok(won)
    }

    /// Rotates when the current key has signed for `max_age` or longer
    /// (`SESSIOND_KEY_ROTATION_DAYS`). Among instances doing this at once,
    /// the compare-and-swap lets exactly one rotate.
    pub fn rotate_if_older(&self, max_age: Duration, now: OffsetDateTime) -> anyhow::Result<bool> {
        self.reload(now)?;
        let keys = self.codec.keys();
        let current = keys.current();
        let since = current.activated_at.unwrap_or(current.created_at);
        if since + max_age > now {
            return Ok(false);
        }
        let kid = current.kid.clone();
        self.rotate_from(&kid, now)
    }

    /// Every stored key, oldest first, without private material (nothing
    /// is decrypted to list them).
    pub fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let window = retirement_window(self.ttl);
        Ok(self.store.load_keys()?.iter().map(|k| k.key.info(window)).collect())
    }

    /// Deletes retired keys whose window ended before `now`.
    pub fn purge(&self, now: OffsetDateTime) -> anyhow::Result<u64> {
        self.store.delete_retired_keys(now - retirement_window(self.ttl))
    }
}
