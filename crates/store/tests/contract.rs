//! The contract of every store port, held against both databases: each test
//! is written once as a function of `&Store` and run on a fresh SQLite file
//! and on a fresh PostgreSQL schema (skipped with a loud warning when
//! PostgreSQL is unreachable, unless `CI=true`).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration as StdDuration, Instant};

use accounts::{AccountError, Email, NewUser, Role, User, UserPatch, UserStatus, UserStore};
use auth::{AuditAction, AuditEvent, AuditLog, AuditOutcome, PrincipalStore};
use kernel::{Duration, OffsetDateTime, Uuid};
use sessions::{DeviceSession, NewSession, SessionState, SessionStore};
use store::{Backend, Store, StoreOptions, testing};
use time::macros::datetime;
use tokens::{KeyStore, RefreshRecord, RefreshTokenStore};

// ---------------------------------------------------------------- harness

fn open(url: &str) -> Store {
    let store = Store::connect(url, &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    store
}

fn sqlite_store() -> Store {
    open(&testing::fresh_sqlite_url())
}

fn postgres_store() -> Option<Store> {
    testing::fresh_postgres_url().map(|url| open(&url))
}

/// One `#[test]` per backend for each contract function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let store = super::sqlite_store();
                    assert_eq!(store.backend(), store::Backend::Sqlite);
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(store) = super::postgres_store() {
                        assert_eq!(store.backend(), store::Backend::Postgres);
                        super::$name(&store);
                    }
                }
            )*
        }
    };
}

contract!(
    migrate_is_idempotent_and_ping_answers,
    users_are_found_case_insensitively,
    user_codes_follow_a_global_sequence,
    duplicate_names_are_named_conflicts,
    concurrent_registrations_of_one_name,
    users_are_updated,
    sessions_are_listed_newest_first,
    end_session_only_leaves_the_active_state,
    end_user_sessions_spares_the_exception,
    delete_session_cascades_to_refresh_tokens,
    touch_session_respects_the_interval,
    latest_live_activity_ignores_dead_sessions,
    refresh_tokens_rotate_by_compare_and_swap,
    refresh_rotation_stops_with_the_session,
    concurrent_rotations_have_one_winner,
    secret_or_insert_keeps_the_first_value,
    session_with_user_joins,
    audit_events_round_trip,
);

const T0: OffsetDateTime = datetime!(2024-04-05 12:00 UTC);

fn new_user(username: &str, email: Option<&str>, at: OffsetDateTime) -> NewUser {
    NewUser {
        id: kernel::new_id(),
        username: accounts::Username::parse(username).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        name: Some(accounts::DisplayName::parse("Test User").unwrap()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::user(),
        created_at: at,
    }
}

fn user(store: &Store, username: &str) -> User {
    store.create(new_user(username, None, T0)).unwrap()
}

fn session_at(user_id: Uuid, at: OffsetDateTime) -> DeviceSession {
    DeviceSession {
        id: kernel::new_id(),
        user_id,
        app: "default".into(),
        ip_address: Some("203.0.113.7".into()),
        user_agent: Some("Mozilla/5.0".into()),
        login_method: "password".into(),
        created_at: at,
        expires_at: at + Duration::hours(24),
        last_activity: at,
        state: SessionState::Active,
        ended_at: None,
    }
}

/// Stores a session opened at `at` whose refresh hash is `hash`.
fn open_session(store: &Store, user_id: Uuid, at: OffsetDateTime, hash: &str) -> DeviceSession {
    let session = session_at(user_id, at);
    store
        .create_session(&NewSession { session: session.clone(), refresh_hash: hash.into() })
        .unwrap();
    session
}

fn fresh_hash() -> String {
    tokens::RefreshToken::generate().hash
}

fn ids(sessions: &[DeviceSession]) -> Vec<Uuid> {
    sessions.iter().map(|s| s.id).collect()
}

// ---------------------------------------------------------------- store

fn migrate_is_idempotent_and_ping_answers(store: &Store) {
    store.migrate().unwrap();
    store.migrate().unwrap();
    store.ping().unwrap();
}

#[test]
fn unreachable_postgres_fails_fast_as_unavailable() {
    let options =
        StoreOptions { timeout: StdDuration::from_millis(500), ..StoreOptions::default() };
    let started = Instant::now();
    let err = Store::connect("postgres://postgres@127.0.0.1:1/postgres", &options).unwrap_err();
    assert!(started.elapsed() < StdDuration::from_secs(5), "took {:?}", started.elapsed());
    assert!(store::is_unavailable(&err), "{err:#}");
}

#[test]
fn sqlite_file_and_directories_are_created() {
    let url = testing::fresh_sqlite_url();
    let nested = url.replace("sessiond.sqlite3", "a/b/nested.sqlite3");
    let store = open(&nested);
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().unwrap();
    assert!(std::path::Path::new(nested.trim_start_matches("sqlite://")).exists());
    assert!(Store::connect("mysql://nope", &StoreOptions::default()).is_err());
}

/// Two instances starting at once on an empty database both succeed.
fn concurrent_migrations(url: &str) {
    let stores: Vec<Store> =
        (0..4).map(|_| Store::connect(url, &StoreOptions::default()).unwrap()).collect();
    thread::scope(|scope| {
        for store in &stores {
            scope.spawn(move || store.migrate().unwrap());
        }
    });
    user(&stores[0], "alice");
    assert!(stores[3].find_by_username("ALICE").unwrap().is_some());
}

#[test]
fn concurrent_migrations_sqlite() {
    concurrent_migrations(&testing::fresh_sqlite_url());
}

#[test]
fn concurrent_migrations_postgres() {
    if let Some(url) = testing::fresh_postgres_url() {
        concurrent_migrations(&url);
    }
}

#[test]
fn sqlite_in_memory_works_on_one_connection() {
    let store = open("sqlite::memory:");
    let alice = user(&store, "alice");
    let s = open_session(&store, alice.id, T0, &fresh_hash());
    let alice = User { last_activity: Some(T0), ..alice };
    assert_eq!(store.session_with_user(s.id).unwrap(), Some((s, alice)));
}

// ---------------------------------------------------------------- users

fn users_are_found_case_insensitively(store: &Store) {
    let created = store.create(new_user("Alice.Smith", Some("Alice@Example.COM"), T0)).unwrap();
    assert_eq!(created.username, "Alice.Smith");
    assert_eq!(created.email.as_deref(), Some("Alice@Example.COM"));
    assert_eq!(created.name.as_deref(), Some("Test User"));
    assert_eq!(created.role, Role::user());
    assert_eq!(created.status, UserStatus::Active);
    assert_eq!(created.last_activity, None);
    assert_eq!((created.created_at, created.updated_at), (T0, T0));

    for name in ["Alice.Smith", "alice.smith", "ALICE.SMITH"] {
        assert_eq!(store.find_by_username(name).unwrap().as_ref(), Some(&created), "{name}");
    }
    for email in ["Alice@Example.COM", "alice@example.com", "ALICE@EXAMPLE.COM"] {
        assert_eq!(store.find_by_email(email).unwrap().as_ref(), Some(&created), "{email}");
    }
    assert_eq!(store.find_by_id(created.id).unwrap().as_ref(), Some(&created));
    assert_eq!(store.find_by_username("alice").unwrap(), None);
    assert_eq!(store.find_by_email("bob@example.com").unwrap(), None);
    assert_eq!(store.find_by_id(kernel::new_id()).unwrap(), None);
}

fn user_codes_follow_a_global_sequence(store: &Store) {
    let a = store.create(new_user("first", None, T0)).unwrap();
    let b = store.create(new_user("second", None, datetime!(2025-01-01 00:00 UTC))).unwrap();
    let c = store.create(new_user("third", None, datetime!(2025-06-01 00:00 UTC))).unwrap();
    assert_eq!(a.user_code, "USR-2024-000001");
    assert_eq!(b.user_code, "USR-2025-000002");
    assert_eq!(c.user_code, "USR-2025-000003");
    // Accounts without email do not collide on the (NULL) email.
    assert_eq!((a.email, b.email), (None, None));
}

fn duplicate_names_are_named_conflicts(store: &Store) {
    let first = store.create(new_user("alice", Some("alice@example.com"), T0)).unwrap();
    let taken = |r: Result<User, AccountError>| match r {
        Err(AccountError::UsernameTaken) => "username",
        Err(AccountError::EmailTaken) => "email",
        Err(AccountError::Unknown(e)) => panic!("unknown error: {e:#}"),
        Ok(u) => panic!("created {u:?}"),
    };
    assert_eq!(taken(store.create(new_user("alice", None, T0))), "username");
    assert_eq!(taken(store.create(new_user("ALICE", Some("other@example.com"), T0))), "username");
    assert_eq!(taken(store.create(new_user("bob", Some("alice@example.com"), T0))), "email");
    assert_eq!(taken(store.create(new_user("bob", Some("ALICE@Example.Com"), T0))), "email");
    // Both taken: the username is reported.
    assert_eq!(taken(store.create(new_user("Alice", Some("Alice@example.com"), T0))), "username");
    // Conflicts consume no number.
    let bob = store.create(new_user("bob", Some("bob@example.com"), T0)).unwrap();
    assert_eq!(first.user_code, "USR-2024-000001");
    assert_eq!(bob.user_code, "USR-2024-000002");
}

fn concurrent_registrations_of_one_name(store: &Store) {
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let results: Vec<Result<User, AccountError>> = thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                // Same name, different case each time.
                let name = if i % 2 == 0 { "Carol" } else { "cAROL" };
                s.spawn(move || {
                    barrier.wait();
                    store.create(new_user(name, Some(&format!("carol{i}@example.com")), T0))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut created = 0;
    for r in results {
        match r {
            Ok(_) => created += 1,
            Err(AccountError::UsernameTaken) => {}
            Err(e) => panic!("expected UsernameTaken, got {e:?}"),
        }
    }
    assert_eq!(created, 1);
    let next = store.create(new_user("dave", None, T0)).unwrap();
    assert_eq!(next.user_code, "USR-2024-000002");
}

fn users_are_updated(store: &Store) {
    let alice = user(store, "alice");
    let t1 = T0 + Duration::minutes(5);
    let patch = UserPatch { status: Some(UserStatus::Suspended), role: None };
    let updated = store.update(alice.id, &patch, t1).unwrap().unwrap();
    assert_eq!(updated.status, UserStatus::Suspended);
    assert_eq!(updated.role, Role::user());
    assert_eq!(updated.updated_at, t1);
    assert_eq!(updated.created_at, T0);
    assert_eq!(store.find_by_id(alice.id).unwrap(), Some(updated.clone()));

    let t2 = t1 + Duration::minutes(1);
    let patch = UserPatch { status: Some(UserStatus::Active), role: Some(Role::admin()) };
    let updated = store.update(alice.id, &patch, t2).unwrap().unwrap();
    assert_eq!((updated.status, updated.role.clone()), (UserStatus::Active, Role::admin()));
    assert_eq!(updated.updated_at, t2);

    let t3 = t2 + Duration::minutes(1);
    let same = store.update(alice.id, &UserPatch::default(), t3).unwrap().unwrap();
    assert_eq!(same, User { updated_at: t3, ..updated });

    assert_eq!(store.update(kernel::new_id(), &UserPatch::default(), t3).unwrap(), None);
}

// ---------------------------------------------------------------- sessions

fn sessions_are_listed_newest_first(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let now = T0 + Duration::hours(1);
    let s1 = open_session(store, alice.id, T0, &fresh_hash());
    let s2 = open_session(store, alice.id, T0 + Duration::minutes(1), &fresh_hash());
    let s3 = open_session(store, alice.id, T0 + Duration::minutes(2), &fresh_hash());
    // Opened 25 hours earlier: past its absolute expiry at `now`.
    let expired = open_session(store, alice.id, T0 - Duration::hours(25), &fresh_hash());
    let _bobs = open_session(store, bob.id, T0, &fresh_hash());

    assert_eq!(store.get_session(s1.id).unwrap(), Some(s1.clone()));
    assert_eq!(store.get_session(kernel::new_id()).unwrap(), None);

    let live = store.list_sessions(alice.id, false, now).unwrap();
    assert_eq!(live, vec![s3.clone(), s2.clone(), s1.clone()]);

    assert!(store.end_session(s2.id, SessionState::LoggedOut, now).unwrap());
    assert_eq!(ids(&store.list_sessions(alice.id, false, now).unwrap()), vec![s3.id, s1.id]);
    assert_eq!(
        ids(&store.list_sessions(alice.id, true, now).unwrap()),
        vec![s3.id, s2.id, s1.id, expired.id]
    );
    assert_eq!(store.list_sessions(kernel::new_id(), true, now).unwrap(), vec![]);

    // Same creation instant: the id (v7, later is greater) breaks the tie.
    let a = open_session(store, bob.id, T0 + Duration::minutes(3), &fresh_hash());
    let b = DeviceSession { id: kernel::new_id(), ..a.clone() };
    store.create_session(&NewSession { session: b.clone(), refresh_hash: fresh_hash() }).unwrap();
    assert_eq!(ids(&store.list_sessions(bob.id, false, now).unwrap())[..2], [b.id, a.id]);
}

fn end_session_only_leaves_the_active_state(store: &Store) {
    let alice = user(store, "alice");
    let s = open_session(store, alice.id, T0, &fresh_hash());
    let t1 = T0 + Duration::minutes(1);
    assert!(store.end_session(s.id, SessionState::LoggedOut, t1).unwrap());
    let ended = store.get_session(s.id).unwrap().unwrap();
    assert_eq!((ended.state, ended.ended_at), (SessionState::LoggedOut, Some(t1)));

    let t2 = t1 + Duration::minutes(1);
    assert!(!store.end_session(s.id, SessionState::Revoked, t2).unwrap());
    assert!(!store.end_session(s.id, SessionState::Deactivated, t2).unwrap());
    let still = store.get_session(s.id).unwrap().unwrap();
    assert_eq!((still.state, still.ended_at), (SessionState::LoggedOut, Some(t1)));

    assert!(!store.end_session(kernel::new_id(), SessionState::Revoked, t2).unwrap());
    let other = open_session(store, alice.id, T0, &fresh_hash());
    assert!(store.end_session(other.id, SessionState::Active, t2).is_err());
    assert!(store.end_session(other.id, SessionState::Deactivated, t2).unwrap());
    assert_eq!(store.get_session(other.id).unwrap().unwrap().state, SessionState::Deactivated);
}

fn end_user_sessions_spares_the_exception(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let s1 = open_session(store, alice.id, T0, &fresh_hash());
    let s2 = open_session(store, alice.id, T0, &fresh_hash());
    let s3 = open_session(store, alice.id, T0, &fresh_hash());
    let already = open_session(store, alice.id, T0, &fresh_hash());
    let bobs = open_session(store, bob.id, T0, &fresh_hash());
    let t1 = T0 + Duration::minutes(1);
    assert!(store.end_session(already.id, SessionState::LoggedOut, t1).unwrap());

    let t2 = t1 + Duration::minutes(1);
    assert_eq!(
        store.end_user_sessions(alice.id, Some(s1.id), SessionState::Revoked, t2).unwrap(),
        2
    );
    for (id, state, ended) in [
        (s1.id, SessionState::Active, None),
        (s2.id, SessionState::Revoked, Some(t2)),
        (s3.id, SessionState::Revoked, Some(t2)),
        (already.id, SessionState::LoggedOut, Some(t1)),
        (bobs.id, SessionState::Active, None),
    ] {
        let s = store.get_session(id).unwrap().unwrap();
        assert_eq!((s.state, s.ended_at), (state, ended));
    }
    assert_eq!(store.end_user_sessions(alice.id, None, SessionState::LoggedOut, t2).unwrap(), 1);
    assert_eq!(store.get_session(s1.id).unwrap().unwrap().state, SessionState::LoggedOut);
    assert_eq!(store.end_user_sessions(alice.id, None, SessionState::LoggedOut, t2).unwrap(), 0);
    assert!(store.end_user_sessions(alice.id, None, SessionState::Active, t2).is_err());
}

fn delete_session_cascades_to_refresh_tokens(store: &Store) {
    let alice = user(store, "alice");
    let (h1, h2) = (fresh_hash(), fresh_hash());
    let s = open_session(store, alice.id, T0, &h1);
    let keep = open_session(store, alice.id, T0, &fresh_hash());
    assert!(store.replace_refresh(s.id, &h1, &h2, T0 + Duration::seconds(1)).unwrap());
    assert!(store.find_refresh(&h1).unwrap().is_some());

    assert!(store.delete_session(s.id).unwrap());
    assert_eq!(store.get_session(s.id).unwrap(), None);
    assert_eq!(store.find_refresh(&h1).unwrap(), None);
    assert_eq!(store.find_refresh(&h2).unwrap(), None);
    assert_eq!(store.current_refresh(s.id).unwrap(), None);
    assert!(!store.delete_session(s.id).unwrap());
    // An ended session can be deleted too.
    assert!(store.end_session(keep.id, SessionState::Deactivated, T0).unwrap());
    assert!(store.delete_session(keep.id).unwrap());
    assert_eq!(store.list_sessions(alice.id, true, T0).unwrap(), vec![]);
    // The same hash can be stored again once its session is gone.
    open_session(store, alice.id, T0, &h1);
}

fn touch_session_respects_the_interval(store: &Store) {
    let alice = user(store, "alice");
    let s = open_session(store, alice.id, T0, &fresh_hash());
    let minute = Duration::minutes(1);

    // Opening the session was the user's latest activity.
    assert_eq!(store.find_by_id(alice.id).unwrap().unwrap().last_activity, Some(T0));
    assert!(!store.touch_session(s.id, alice.id, T0 + Duration::seconds(59), minute).unwrap());
    assert_eq!(store.get_session(s.id).unwrap().unwrap().last_activity, T0);
    assert_eq!(store.find_by_id(alice.id).unwrap().unwrap().last_activity, Some(T0));

    let t1 = T0 + minute;
    assert!(store.touch_session(s.id, alice.id, t1, minute).unwrap());
    assert_eq!(store.get_session(s.id).unwrap().unwrap().last_activity, t1);
    assert_eq!(store.find_by_id(alice.id).unwrap().unwrap().last_activity, Some(t1));
    assert!(!store.touch_session(s.id, alice.id, t1 + Duration::seconds(30), minute).unwrap());

    // A zero interval always writes.
    let t2 = t1 + Duration::seconds(1);
    assert!(store.touch_session(s.id, alice.id, t2, Duration::ZERO).unwrap());
    assert_eq!(store.get_session(s.id).unwrap().unwrap().last_activity, t2);

    // The user's activity only moves forward: another session touched with
    // an older instant leaves it alone.
    let other = open_session(store, alice.id, T0, &fresh_hash());
    let earlier = T0 + Duration::seconds(10);
    assert!(store.touch_session(other.id, alice.id, earlier, Duration::ZERO).unwrap());
    assert_eq!(store.get_session(other.id).unwrap().unwrap().last_activity, earlier);
    assert_eq!(store.find_by_id(alice.id).unwrap().unwrap().last_activity, Some(t2));

    // Wrong owner or unknown session: nothing is written.
    let bob = user(store, "bob");
    assert!(!store.touch_session(s.id, bob.id, t2 + minute, Duration::ZERO).unwrap());
    assert!(!store.touch_session(kernel::new_id(), bob.id, t2, Duration::ZERO).unwrap());
    assert_eq!(store.find_by_id(bob.id).unwrap().unwrap().last_activity, None);
}

fn latest_live_activity_ignores_dead_sessions(store: &Store) {
    let alice = user(store, "alice");
    let now = T0 + Duration::hours(2);
    assert_eq!(store.latest_live_activity(alice.id, now).unwrap(), None);

    let a = open_session(store, alice.id, T0, &fresh_hash());
    let b = open_session(store, alice.id, T0, &fresh_hash());
    let ended = open_session(store, alice.id, T0, &fresh_hash());
    let expired = open_session(store, alice.id, T0 - Duration::hours(24), &fresh_hash());
    for (s, at) in [
        (&a, T0 + Duration::minutes(10)),
        (&b, T0 + Duration::minutes(20)),
        (&ended, T0 + Duration::minutes(30)),
        (&expired, T0 - Duration::minutes(1)),
    ] {
        assert!(store.touch_session(s.id, alice.id, at, Duration::ZERO).unwrap());
    }
    assert!(store.end_session(ended.id, SessionState::LoggedOut, now).unwrap());
    assert_eq!(
        store.latest_live_activity(alice.id, now).unwrap(),
        Some(T0 + Duration::minutes(20))
    );
    // Past every absolute expiry: nothing is live.
    assert_eq!(store.latest_live_activity(alice.id, T0 + Duration::hours(24)).unwrap(), None);
}

// ---------------------------------------------------------------- refresh tokens

fn refresh_tokens_rotate_by_compare_and_swap(store: &Store) {
    let alice = user(store, "alice");
    let (h1, h2, h3) = (fresh_hash(), fresh_hash(), fresh_hash());
    let s = open_session(store, alice.id, T0, &h1);
    let current = RefreshRecord { session_id: s.id, superseded_at: None };
    assert_eq!(store.find_refresh(&h1).unwrap(), Some(current.clone()));
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h1.clone()));
    assert_eq!(store.current_refresh(kernel::new_id()).unwrap(), None);
    assert_eq!(store.find_refresh(&fresh_hash()).unwrap(), None);

    let t1 = T0 + Duration::minutes(10);
    assert!(store.replace_refresh(s.id, &h1, &h2, t1).unwrap());
    assert_eq!(
        store.find_refresh(&h1).unwrap(),
        Some(RefreshRecord { session_id: s.id, superseded_at: Some(t1) })
    );
    assert_eq!(store.find_refresh(&h2).unwrap(), Some(current.clone()));
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h2.clone()));

    // A stale expectation changes nothing.
    let t2 = t1 + Duration::seconds(1);
    assert!(!store.replace_refresh(s.id, &h1, &h3, t2).unwrap());
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h2.clone()));
    assert_eq!(store.find_refresh(&h3).unwrap(), None);
    // Nor does another session's id.
    let other = open_session(store, alice.id, T0, &fresh_hash());
    assert!(!store.replace_refresh(other.id, &h2, &h3, t2).unwrap());

    assert!(store.replace_refresh(s.id, &h2, &h3, t2).unwrap());
    assert_eq!(
        store.find_refresh(&h2).unwrap(),
        Some(RefreshRecord { session_id: s.id, superseded_at: Some(t2) })
    );
    assert_eq!(
        store.find_refresh(&h1).unwrap(),
        Some(RefreshRecord { session_id: s.id, superseded_at: Some(t1) })
    );
    assert_eq!(store.find_refresh(&h3).unwrap(), Some(current));
}

fn refresh_rotation_stops_with_the_session(store: &Store) {
    let alice = user(store, "alice");
    let (h1, h2) = (fresh_hash(), fresh_hash());

    let ended = open_session(store, alice.id, T0, &h1);
    assert!(store.end_session(ended.id, SessionState::Revoked, T0).unwrap());
    assert!(!store.replace_refresh(ended.id, &h1, &h2, T0 + Duration::seconds(1)).unwrap());
    assert_eq!(store.current_refresh(ended.id).unwrap(), Some(h1.clone()));
    // Still found, so that the caller can tell "ended" from "unknown".
    assert_eq!(
        store.find_refresh(&h1).unwrap(),
        Some(RefreshRecord { session_id: ended.id, superseded_at: None })
    );

    let (h3, h4) = (fresh_hash(), fresh_hash());
    let s = open_session(store, alice.id, T0, &h3);
    let expiry = s.expires_at;
    assert!(!store.replace_refresh(s.id, &h3, &h4, expiry).unwrap());
    assert!(!store.replace_refresh(s.id, &h3, &h4, expiry + Duration::hours(1)).unwrap());
    assert!(store.replace_refresh(s.id, &h3, &h4, expiry - Duration::milliseconds(1)).unwrap());
}

fn concurrent_rotations_have_one_winner(store: &Store) {
    const N: usize = 8;
    let alice = user(store, "alice");
    let h1 = fresh_hash();
    let s = open_session(store, alice.id, T0, &h1);
    let now = T0 + Duration::minutes(1);
    for round in 0..3 {
        let expected = store.current_refresh(s.id).unwrap().unwrap();
        let barrier = Arc::new(Barrier::new(N));
        let outcomes: Vec<(String, bool)> = thread::scope(|scope| {
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    let expected = expected.clone();
                    scope.spawn(move || {
                        let new = fresh_hash();
                        barrier.wait();
                        let won = store.replace_refresh(s.id, &expected, &new, now).unwrap();
                        (new, won)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&String> =
            outcomes.iter().filter(|(_, won)| *won).map(|(h, _)| h).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        assert_eq!(store.current_refresh(s.id).unwrap().as_ref(), Some(winners[0]));
        assert_eq!(
            store.find_refresh(&expected).unwrap(),
            Some(RefreshRecord { session_id: s.id, superseded_at: Some(now) })
        );
        for (hash, won) in &outcomes {
            if !won {
                assert_eq!(store.find_refresh(hash).unwrap(), None);
            }
        }
    }
}

fn secret_or_insert_keeps_the_first_value(store: &Store) {
    assert_eq!(store.secret_or_insert("jwt", "first").unwrap(), "first");
    assert_eq!(store.secret_or_insert("jwt", "second").unwrap(), "first");
    assert_eq!(store.secret_or_insert("other", "x").unwrap(), "x");

    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let values: HashSet<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    store.secret_or_insert("raced", &format!("candidate-{i}")).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(values.len(), 1, "{values:?}");
    assert!(values.iter().all(|v| v.starts_with("candidate-")));
}

// ---------------------------------------------------------------- auth

fn session_with_user_joins(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let a = open_session(store, alice.id, T0, &fresh_hash());
    let b = open_session(store, bob.id, T0, &fresh_hash());
    let (alice, bob) =
        (User { last_activity: Some(T0), ..alice }, User { last_activity: Some(T0), ..bob });
    assert_eq!(store.session_with_user(a.id).unwrap(), Some((a.clone(), alice.clone())));
    assert_eq!(store.session_with_user(b.id).unwrap(), Some((b, bob)));
    assert_eq!(store.session_with_user(kernel::new_id()).unwrap(), None);

    // It reflects changes of both at once.
    let t1 = T0 + Duration::minutes(1);
    assert!(store.end_session(a.id, SessionState::LoggedOut, t1).unwrap());
    let patch = UserPatch { status: Some(UserStatus::Suspended), role: None };
    store.update(alice.id, &patch, t1).unwrap();
    let (s, u) = store.session_with_user(a.id).unwrap().unwrap();
    assert_eq!((s.state, u.status), (SessionState::LoggedOut, UserStatus::Suspended));
}

fn audit_events_round_trip(store: &Store) {
    let full = AuditEvent {
        id: kernel::new_id(),
        at: T0,
        action: AuditAction::Login,
        user_id: Some(kernel::new_id()),
        session_id: Some(kernel::new_id()),
        ip_address: Some("2001:db8::1".into()),
        user_agent: Some("curl/8".into()),
        request_id: Some("req-1".into()),
        outcome: AuditOutcome::Success,
    };
    // Users and sessions need not exist: events outlive them.
    let bare = AuditEvent {
        id: kernel::new_id(),
        at: T0 + Duration::milliseconds(1),
        action: AuditAction::LoginFailed,
        user_id: None,
        session_id: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        outcome: AuditOutcome::Failure,
    };
    store.record(&full).unwrap();
    store.record(&bare).unwrap();
    assert_eq!(testing::audit_events(store).unwrap(), vec![full.clone(), bare]);
    // An id is recorded once.
    assert!(store.record(&full).is_err());
}
