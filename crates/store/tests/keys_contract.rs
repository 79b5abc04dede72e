//! The contract of `tokens::SigningKeyStore` (and of `tokens::KeyRing`
//! over it), held against both databases like `contract.rs`: a fresh
//! SQLite file and a fresh PostgreSQL schema per test.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;

use kernel::{Duration, OffsetDateTime};
use store::Store;
use time::macros::datetime;
use tokens::keys::{KeyState, SigningAlg, initial_keys, retirement_window};
use tokens::{KeyRing, KeyVault, SigningKey, SigningKeyStore, StoredKey};

mod common;

contract!(
    the_first_key_set_is_inserted_once,
    instances_starting_together_agree_on_one_key_set,
    rotation_is_a_compare_and_swap_on_the_current_key,
    concurrent_rotations_have_one_winner,
    retired_keys_are_deleted_after_their_window,
    a_key_ring_survives_a_reopen_and_sees_another_rings_rotation,
    sealed_keys_open_only_with_their_encryption_key,
);

const T0: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);
const TTL: Duration = Duration::minutes(15);

fn stored(keys: &[SigningKey]) -> Vec<StoredKey> {
    keys.iter().map(|k| StoredKey::seal(k, None).unwrap()).collect()
}

fn states(store: &Store) -> Vec<(String, KeyState)> {
    let mut keys: Vec<_> =
        store.load_keys().unwrap().into_iter().map(|k| (k.key.kid, k.key.state)).collect();
    keys.sort();
    keys
}

fn the_first_key_set_is_inserted_once(store: &Store) {
    assert!(store.load_keys().unwrap().is_empty());
    let first = initial_keys(SigningAlg::EdDSA, T0).unwrap();
    assert!(store.insert_initial_keys(&stored(&first)).unwrap());
    let second = initial_keys(SigningAlg::EdDSA, T0).unwrap();
    assert!(!store.insert_initial_keys(&stored(&second)).unwrap());
    let loaded = store.load_keys().unwrap();
    assert_eq!(loaded.len(), 2);
    for key in &first {
        let found = loaded.iter().find(|l| l.key.kid == key.kid).unwrap();
        let l = &found.key;
        assert_eq!((l.alg, l.state, l.created_at), (key.alg, key.state, key.created_at));
        assert_eq!(l.activated_at, key.activated_at);
        assert_eq!(l.material.expose(), key.material.expose());
        assert!(!found.sealed);
    }
}

fn instances_starting_together_agree_on_one_key_set(store: &Store) {
    const N: usize = 6;
    let barrier = Arc::new(Barrier::new(N));
    let store = Arc::new(store.clone());
    let currents: HashSet<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (barrier, store) = (barrier.clone(), store.clone());
                scope.spawn(move || {
                    barrier.wait();
                    let ring = KeyRing::open(
                        store as Arc<dyn SigningKeyStore>,
                        None,
                        SigningAlg::EdDSA,
                        "sessiond",
                        TTL,
                        T0,
                    )
                    .unwrap();
                    ring.codec().keys().current().kid.clone()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(currents.len(), 1, "{currents:?}");
    assert_eq!(store.load_keys().unwrap().len(), 2);
}

fn rotation_is_a_compare_and_swap_on_the_current_key(store: &Store) {
    let first = initial_keys(SigningAlg::ES256, T0).unwrap();
    store.insert_initial_keys(&stored(&first)).unwrap();
    let (current, next) = (first[0].kid.clone(), first[1].kid.clone());
    let t1 = T0 + Duration::days(1);
    let new_next = SigningKey::generate(SigningAlg::ES256, KeyState::Next, t1).unwrap();
    let fresh = new_next.kid.clone();
    // A stale expectation (not the current kid) changes nothing.
    assert!(!store.rotate_keys(&next, &StoredKey::seal(&new_next, None).unwrap(), t1).unwrap());
    assert_eq!(store.load_keys().unwrap().len(), 2);
    assert!(store.rotate_keys(&current, &StoredKey::seal(&new_next, None).unwrap(), t1).unwrap());
    let mut expected = vec![
        (current.clone(), KeyState::Retired),
        (next.clone(), KeyState::Current),
        (fresh.clone(), KeyState::Next),
    ];
    expected.sort();
    assert_eq!(states(store), expected);
    let loaded = store.load_keys().unwrap();
    let old = loaded.iter().find(|k| k.key.kid == current).unwrap();
    assert_eq!(old.key.retired_at, Some(t1));
    let promoted = loaded.iter().find(|k| k.key.kid == next).unwrap();
    assert_eq!(promoted.key.activated_at, Some(t1));
}

fn concurrent_rotations_have_one_winner(store: &Store) {
    let first = initial_keys(SigningAlg::EdDSA, T0).unwrap();
    store.insert_initial_keys(&stored(&first)).unwrap();
    const N: usize = 6;
    let barrier = Arc::new(Barrier::new(N));
    let wins: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let barrier = barrier.clone();
                let current = first[0].kid.clone();
                scope.spawn(move || {
                    let next = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, T0).unwrap();
                    let next = StoredKey::seal(&next, None).unwrap();
                    barrier.wait();
                    usize::from(store.rotate_keys(&current, &next, T0).unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    let s = states(store);
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(s.iter().filter(|(_, st)| *st == KeyState::Current).count(), 1);
    assert_eq!(s.iter().filter(|(_, st)| *st == KeyState::Next).count(), 1);
}

fn retired_keys_are_deleted_after_their_window(store: &Store) {
    let first = initial_keys(SigningAlg::HS256, T0).unwrap();
    store.insert_initial_keys(&stored(&first)).unwrap();
    let next = SigningKey::generate(SigningAlg::HS256, KeyState::Next, T0).unwrap();
    store.rotate_keys(&first[0].kid, &StoredKey::seal(&next, None).unwrap(), T0).unwrap();
    assert_eq!(store.delete_retired_keys(T0).unwrap(), 0);
    assert_eq!(store.load_keys().unwrap().len(), 3);
    assert_eq!(store.delete_retired_keys(T0 + Duration::milliseconds(1)).unwrap(), 1);
    let s = states(store);
    assert!(s.iter().all(|(kid, _)| *kid != first[0].kid), "{s:?}");
}

fn a_key_ring_survives_a_reopen_and_sees_another_rings_rotation(store: &Store) {
    let shared: Arc<dyn SigningKeyStore> = Arc::new(store.clone());
    let open = |now| KeyRing::open(shared.clone(), None, SigningAlg::RS256, "sessiond", TTL, now);
    let a = open(T0).unwrap();
    let b = open(T0).unwrap();
    let kid = a.codec().keys().current().kid.clone();
    assert_eq!(b.codec().keys().current().kid, kid);
    let grant = tokens::AccessGrant {
        user_id: kernel::Uuid::now_v7(),
        username: "alice".into(),
        session_id: kernel::Uuid::now_v7(),
        app: "web".into(),
        role: "user".into(),
    };
    let (before, _) = a.codec().issue(&grant, T0);
    let t1 = T0 + Duration::minutes(1);
    assert!(a.rotate(t1).unwrap());
    let new_kid = a.codec().keys().current().kid.clone();
    assert_ne!(new_kid, kid);
    // B reloads (the listener or the one-second timer does this).
    assert!(b.reload(t1).unwrap());
    assert!(!b.reload(t1).unwrap(), "nothing changed: nothing to do");
    assert_eq!(b.codec().keys().current().kid, new_kid);
    assert!(b.codec().verify(&before, t1).is_ok(), "nobody is logged out");
    // A reopen (a restart) finds the same keys.
    let c = open(t1).unwrap();
    assert_eq!(c.codec().keys().current().kid, new_kid);
    assert_eq!(c.list().unwrap().len(), 3);
    // Scheduled rotation: not before the key is old enough, and once.
    assert!(!c.rotate_if_older(Duration::days(1), t1).unwrap());
    let t2 = t1 + Duration::days(1);
    assert!(c.rotate_if_older(Duration::days(1), t2).unwrap());
    assert!(!b.rotate_if_older(Duration::days(1), t2).unwrap());
    assert_eq!(c.purge(t2).unwrap(), 1, "the first key's window is over");
    let _ = retirement_window(TTL);
}

fn sealed_keys_open_only_with_their_encryption_key(store: &Store) {
    let shared: Arc<dyn SigningKeyStore> = Arc::new(store.clone());
    let vault = KeyVault::parse(&"1f".repeat(32)).unwrap();
    let ring =
        KeyRing::open(shared.clone(), Some(vault.clone()), SigningAlg::EdDSA, "sessiond", TTL, T0)
            .unwrap();
    let kid = ring.codec().keys().current().kid.clone();
    assert!(store.load_keys().unwrap().iter().all(|k| k.sealed));
    let again =
        KeyRing::open(shared.clone(), Some(vault), SigningAlg::EdDSA, "sessiond", TTL, T0).unwrap();
    assert_eq!(again.codec().keys().current().kid, kid);
    let wrong = KeyVault::parse(&"2f".repeat(32)).unwrap();
    let err = KeyRing::open(shared.clone(), Some(wrong), SigningAlg::EdDSA, "sessiond", TTL, T0)
        .unwrap_err();
    assert!(err.to_string().contains("SESSIOND_KEY_ENCRYPTION_KEY"), "{err}");
    let err = KeyRing::open(shared, None, SigningAlg::EdDSA, "sessiond", TTL, T0).unwrap_err();
    assert!(err.to_string().contains("SESSIOND_KEY_ENCRYPTION_KEY"), "{err}");
}
