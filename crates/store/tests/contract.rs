//! The contract of every store port, held against both databases: each test
//! is written once as a function of `&Store` and run on a fresh SQLite file
//! and on a fresh PostgreSQL schema (skipped with a loud warning when
//! PostgreSQL is unreachable, unless `CI=true`).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration as StdDuration, Instant};

use accounts::{AccountError, Email, NewUser, Role, User, UserPatch, UserStatus, UserStore};
use auth::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditPosition, AuditQuery, EndSessions,
    LoginThrottleStore, PasswordChange, PrincipalStore,
};
use kernel::{Duration, OffsetDateTime, Uuid};
use sessions::{ActivityMark, DeviceSession, NewSession, SessionState, SessionStore};
use store::{Backend, Store, StoreOptions, testing};
use time::macros::datetime;
use tokens::{KeyStore, RefreshRecord, RefreshTokenStore};

mod common;

use common::open;

contract!(
    migrate_is_idempotent_and_ping_answers,
    users_are_found_case_insensitively,
    user_codes_follow_a_global_sequence,
    duplicate_names_are_named_conflicts,
    concurrent_registrations_of_one_name,
    users_are_updated,
    the_last_active_admin_is_never_demoted_or_suspended,
    admins_demoting_each_other_at_once_leave_one,
    sessions_are_listed_newest_first,
    expired_sessions_leave_the_active_listing,
    locations_round_trip,
    end_session_only_leaves_the_active_state,
    deactivated_sessions_stay_listed_and_never_refresh,
    end_user_sessions_spares_the_exception,
    delete_session_cascades_to_refresh_tokens,
    delete_user_sessions_reports_the_live_ones,
    record_activity_only_moves_forward,
    concurrent_activity_flushes_do_not_deadlock,
    latest_live_activity_ignores_dead_sessions,
    purge_deletes_dead_sessions_oldest_first_in_batches,
    refresh_tokens_rotate_by_compare_and_swap,
    refresh_rotation_stops_with_the_session,
    concurrent_rotations_have_one_winner,
    audited_rotation_is_all_or_nothing,
    a_login_and_its_audit_record_commit_together,
    a_password_change_its_ended_sessions_and_its_audit_record_commit_together,
    secret_or_insert_keeps_the_first_value,
    session_with_user_joins,
    audit_events_round_trip,
    audit_events_are_filtered,
    audit_events_page_by_keyset_through_ties,
    successful_logins_are_remembered_until_purged,
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
        location: None,
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
        Err(e @ AccountError::LastAdmin) => panic!("{e}"),
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

fn admin(store: &Store, username: &str) -> User {
    store.create(NewUser { role: Role::admin(), ..new_user(username, None, T0) }).unwrap()
}

fn patch(status: Option<UserStatus>, role: Option<&str>) -> UserPatch {
    UserPatch { status, role: role.map(|r| Role::parse(r).unwrap()) }
}

fn is_active_admin(store: &Store, id: Uuid) -> bool {
    store
        .find_by_id(id)
        .unwrap()
        .is_some_and(|u| u.role.is_admin() && u.status == UserStatus::Active)
}

fn the_last_active_admin_is_never_demoted_or_suspended(store: &Store) {
    use UserStatus::{Active, Suspended};
    let root = admin(store, "root");
    let bob = user(store, "bob");
    let t1 = T0 + Duration::minutes(1);
    for refused in [
        patch(None, Some("user")),
        patch(None, Some("agent")),
        patch(Some(Suspended), None),
        patch(Some(Suspended), Some("admin")),
        patch(Some(Active), Some("user")),
    ] {
        let r = store.update(root.id, &refused, t1);
        assert!(matches!(r, Err(AccountError::LastAdmin)), "{refused:?}: {r:?}");
    }
    // Refused means unchanged (not even `updated_at`).
    assert_eq!(store.find_by_id(root.id).unwrap(), Some(root.clone()));
    // What keeps it an active admin is fine, and others are not concerned.
    store.update(root.id, &patch(Some(Active), Some("admin")), t1).unwrap().unwrap();
    store.update(bob.id, &patch(Some(Suspended), Some("agent")), t1).unwrap().unwrap();
    assert_eq!(store.update(kernel::new_id(), &patch(Some(Suspended), None), t1).unwrap(), None);

    // A suspended admin is no active admin: it does not count, and may
    // itself be demoted.
    let carol = admin(store, "carol");
    store.update(carol.id, &patch(Some(Suspended), None), t1).unwrap().unwrap();
    let r = store.update(root.id, &patch(None, Some("user")), t1);
    assert!(matches!(r, Err(AccountError::LastAdmin)), "{r:?}");
    store.update(carol.id, &patch(None, Some("user")), t1).unwrap().unwrap();

    // With a second active admin, the first may go; then the second is
    // the last one.
    store.update(bob.id, &patch(Some(Active), Some("admin")), t1).unwrap().unwrap();
    let demoted = store.update(root.id, &patch(None, Some("user")), t1).unwrap().unwrap();
    assert_eq!(demoted.role, Role::user());
    let r = store.update(bob.id, &patch(Some(Suspended), None), t1);
    assert!(matches!(r, Err(AccountError::LastAdmin)), "{r:?}");
    assert!(is_active_admin(store, bob.id));
    // A second admin again: now the suspension goes through.
    store.update(root.id, &patch(None, Some("admin")), t1).unwrap().unwrap();
    store.update(bob.id, &patch(Some(Suspended), None), t1).unwrap().unwrap();
    assert!(is_active_admin(store, root.id) && !is_active_admin(store, bob.id));
}

/// Admins taking each other's (or their own) powers at the same moment:
/// however the changes interleave, one active admin remains, and exactly
/// the changes that would have removed the last one are refused.
fn admins_demoting_each_other_at_once_leave_one(store: &Store) {
    let mut survivor: Option<User> = None;
    for (round, n) in [2usize, 2, 3, 4, 2, 3].into_iter().enumerate() {
        let admins: Vec<User> = (0..n).map(|i| admin(store, &format!("adm{round}x{i}"))).collect();
        // The previous round's survivor steps down first, so that this
        // round's admins are the only active ones.
        if let Some(prev) = survivor.take() {
            store.update(prev.id, &patch(None, Some("user")), T0).unwrap().unwrap();
        }
        let barrier = Arc::new(Barrier::new(n));
        let results: Vec<Result<Option<User>, AccountError>> = thread::scope(|s| {
            let handles: Vec<_> = admins
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let barrier = Arc::clone(&barrier);
                    // Demotions and suspensions mixed.
                    let change = if i % 2 == 0 {
                        patch(None, Some("user"))
                    } else {
                        patch(Some(UserStatus::Suspended), None)
                    };
                    s.spawn(move || {
                        barrier.wait();
                        store.update(a.id, &change, T0 + Duration::minutes(1))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let refused = results.iter().filter(|r| matches!(r, Err(AccountError::LastAdmin))).count();
        let done = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        assert_eq!((done, refused), (n - 1, 1), "round {round}: {results:?}");
        let left: Vec<&User> = admins.iter().filter(|a| is_active_admin(store, a.id)).collect();
        assert_eq!(left.len(), 1, "round {round}");
        survivor = left.first().map(|u| (*u).clone());
    }
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

fn mark(session: &DeviceSession, at: OffsetDateTime) -> ActivityMark {
    ActivityMark { session_id: session.id, user_id: session.user_id, at }
}

fn last_activity(store: &Store, session: &DeviceSession) -> OffsetDateTime {
    store.get_session(session.id).unwrap().unwrap().last_activity
}

fn user_activity(store: &Store, user: &User) -> Option<OffsetDateTime> {
    store.find_by_id(user.id).unwrap().unwrap().last_activity
}

fn record_activity_only_moves_forward(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let s1 = open_session(store, alice.id, T0, &fresh_hash());
    let s2 = open_session(store, alice.id, T0, &fresh_hash());
    let b1 = open_session(store, bob.id, T0, &fresh_hash());
    // Opening a session was the user's latest activity.
    assert_eq!(user_activity(store, &alice), Some(T0));
    assert_eq!(store.record_activity(&[]).unwrap(), 0);

    let (m1, m2) = (T0 + Duration::minutes(1), T0 + Duration::minutes(2));
    let gone = session_at(alice.id, T0);
    let batch = [
        mark(&s1, m1),
        mark(&s2, T0 + Duration::seconds(30)),
        mark(&b1, m2),
        // Unknown (deleted) session: skipped, no error.
        mark(&gone, T0 + Duration::minutes(5)),
        // An older mark of the same session in the same batch.
        mark(&s1, T0 + Duration::seconds(10)),
    ];
    assert_eq!(store.record_activity(&batch).unwrap(), 3);
    assert_eq!(last_activity(store, &s1), m1);
    assert_eq!(last_activity(store, &s2), T0 + Duration::seconds(30));
    assert_eq!(last_activity(store, &b1), m2);
    assert_eq!(user_activity(store, &alice), Some(m1));
    assert_eq!(user_activity(store, &bob), Some(m2));

    // Backwards or equal: nothing changes.
    assert_eq!(store.record_activity(&[mark(&s1, T0 + Duration::seconds(30))]).unwrap(), 0);
    assert_eq!(store.record_activity(&[mark(&s1, m1)]).unwrap(), 0);
    assert_eq!(last_activity(store, &s1), m1);

    // The session moves forward, its user does not move back.
    let s2_at = T0 + Duration::seconds(45);
    assert_eq!(store.record_activity(&[mark(&s2, s2_at)]).unwrap(), 1);
    assert_eq!(last_activity(store, &s2), s2_at);
    assert_eq!(user_activity(store, &alice), Some(m1));

    // A mark naming another user changes nothing.
    let wrong = ActivityMark { user_id: bob.id, ..mark(&s1, T0 + Duration::hours(1)) };
    assert_eq!(store.record_activity(&[wrong]).unwrap(), 0);
    assert_eq!(last_activity(store, &s1), m1);
    assert_eq!(user_activity(store, &bob), Some(m2));

    // Ended sessions still record (the request was authenticated before).
    assert!(store.end_session(s1.id, SessionState::LoggedOut, m2).unwrap());
    let m3 = m2 + Duration::minutes(1);
    assert_eq!(store.record_activity(&[mark(&s1, m3)]).unwrap(), 1);
    assert_eq!(user_activity(store, &alice), Some(m3));
}

fn concurrent_activity_flushes_do_not_deadlock(store: &Store) {
    const THREADS: usize = 4;
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let sessions: Vec<DeviceSession> = (0..20)
        .map(|i| open_session(store, if i % 2 == 0 { alice.id } else { bob.id }, T0, &fresh_hash()))
        .collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    thread::scope(|scope| {
        for t in 0..THREADS {
            let barrier = Arc::clone(&barrier);
            let sessions = &sessions;
            scope.spawn(move || {
                // Each flush names the rows in another order.
                let mut batch: Vec<ActivityMark> = sessions
                    .iter()
                    .enumerate()
                    .map(|(i, s)| mark(s, T0 + Duration::seconds((i * THREADS + t + 1) as i64)))
                    .collect();
                batch.rotate_left(t * 5);
                if t % 2 == 1 {
                    batch.reverse();
                }
                barrier.wait();
                for _ in 0..5 {
                    store.record_activity(&batch).unwrap();
                }
            });
        }
    });
    for (i, s) in sessions.iter().enumerate() {
        let latest = T0 + Duration::seconds((i * THREADS + THREADS) as i64);
        assert_eq!(last_activity(store, s), latest, "session {i}");
    }
    let last = |parity: usize| {
        T0 + Duration::seconds(((sessions.len() - 2 + parity) * THREADS + THREADS) as i64)
    };
    assert_eq!(user_activity(store, &alice), Some(last(0)));
    assert_eq!(user_activity(store, &bob), Some(last(1)));
}

fn latest_live_activity_ignores_dead_sessions(store: &Store) {
    let alice = user(store, "alice");
    let now = T0 + Duration::hours(2);
    assert_eq!(store.latest_live_activity(alice.id, now).unwrap(), None);

    let a = open_session(store, alice.id, T0, &fresh_hash());
    let b = open_session(store, alice.id, T0, &fresh_hash());
    let ended = open_session(store, alice.id, T0, &fresh_hash());
    let expired = open_session(store, alice.id, T0 - Duration::hours(24), &fresh_hash());
    let batch = [
        mark(&a, T0 + Duration::minutes(10)),
        mark(&b, T0 + Duration::minutes(20)),
        mark(&ended, T0 + Duration::minutes(30)),
        mark(&expired, T0 - Duration::hours(23)),
    ];
    assert_eq!(store.record_activity(&batch).unwrap(), 4);
    assert!(store.end_session(ended.id, SessionState::LoggedOut, now).unwrap());
    assert_eq!(
        store.latest_live_activity(alice.id, now).unwrap(),
        Some(T0 + Duration::minutes(20))
    );
    // Past every absolute expiry: nothing is live.
    assert_eq!(store.latest_live_activity(alice.id, T0 + Duration::hours(24)).unwrap(), None);
}

fn expired_sessions_leave_the_active_listing(store: &Store) {
    let alice = user(store, "alice");
    let s = open_session(store, alice.id, T0, &fresh_hash());
    let expiry = s.expires_at;
    let before = expiry - Duration::milliseconds(1);
    assert_eq!(ids(&store.list_sessions(alice.id, false, before).unwrap()), vec![s.id]);
    // Expired at its expiry instant: gone from the active listing, still in
    // the full one, still active by state.
    for now in [expiry, expiry + Duration::days(3)] {
        assert_eq!(store.list_sessions(alice.id, false, now).unwrap(), vec![]);
        assert_eq!(store.list_sessions(alice.id, true, now).unwrap(), vec![s.clone()]);
    }
}

fn locations_round_trip(store: &Store) {
    let alice = user(store, "alice");
    let located = DeviceSession {
        location: Some("New York, US".into()),
        ..session_at(alice.id, T0 + Duration::minutes(1))
    };
    store
        .create_session(&NewSession { session: located.clone(), refresh_hash: fresh_hash() })
        .unwrap();
    let unlocated = open_session(store, alice.id, T0, &fresh_hash());
    assert_eq!(store.get_session(located.id).unwrap(), Some(located.clone()));
    assert_eq!(store.get_session(unlocated.id).unwrap().unwrap().location, None);
    assert_eq!(store.list_sessions(alice.id, true, T0).unwrap(), vec![located.clone(), unlocated]);
    let (s, _) = store.session_with_user(located.id).unwrap().unwrap();
    assert_eq!(s.location.as_deref(), Some("New York, US"));
}

fn deactivated_sessions_stay_listed_and_never_refresh(store: &Store) {
    let alice = user(store, "alice");
    let (h1, h2) = (fresh_hash(), fresh_hash());
    let s = open_session(store, alice.id, T0, &h1);
    let live = open_session(store, alice.id, T0 + Duration::minutes(1), &fresh_hash());
    let t1 = T0 + Duration::minutes(5);
    assert!(store.end_session(s.id, SessionState::Deactivated, t1).unwrap());
    // Repeating it changes nothing (and reports so).
    assert!(
        !store.end_session(s.id, SessionState::Deactivated, t1 + Duration::minutes(1)).unwrap()
    );

    let now = t1 + Duration::minutes(2);
    assert_eq!(ids(&store.list_sessions(alice.id, false, now).unwrap()), vec![live.id]);
    let all = store.list_sessions(alice.id, true, now).unwrap();
    assert_eq!(ids(&all), vec![live.id, s.id]);
    assert_eq!((all[1].state, all[1].ended_at), (SessionState::Deactivated, Some(t1)));

    assert!(!store.replace_refresh(s.id, &h1, &h2, now).unwrap());
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h1));
    // It can still be deleted.
    assert!(store.delete_session(s.id).unwrap());
    assert_eq!(ids(&store.list_sessions(alice.id, true, now).unwrap()), vec![live.id]);
}

fn delete_user_sessions_reports_the_live_ones(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let now = T0 + Duration::hours(1);
    let (h1, h2) = (fresh_hash(), fresh_hash());
    let live = open_session(store, alice.id, T0, &h1);
    let current = open_session(store, alice.id, T0, &fresh_hash());
    let logged_out = open_session(store, alice.id, T0, &fresh_hash());
    let deactivated = open_session(store, alice.id, T0, &fresh_hash());
    let expired = open_session(store, alice.id, T0 - Duration::hours(25), &fresh_hash());
    let bobs = open_session(store, bob.id, T0, &fresh_hash());
    assert!(store.replace_refresh(live.id, &h1, &h2, T0 + Duration::minutes(1)).unwrap());
    assert!(store.end_session(logged_out.id, SessionState::LoggedOut, T0).unwrap());
    assert!(store.end_session(deactivated.id, SessionState::Deactivated, T0).unwrap());

    // Only the live ones are reported; every other row of alice's but the
    // exception is deleted too.
    assert_eq!(store.delete_user_sessions(alice.id, Some(current.id), now).unwrap(), vec![live.id]);
    assert_eq!(ids(&store.list_sessions(alice.id, true, now).unwrap()), vec![current.id]);
    for gone in [&live, &logged_out, &deactivated, &expired] {
        assert_eq!(store.get_session(gone.id).unwrap(), None);
    }
    assert_eq!(store.find_refresh(&h1).unwrap(), None);
    assert_eq!(store.find_refresh(&h2).unwrap(), None);
    assert_eq!(ids(&store.list_sessions(bob.id, true, now).unwrap()), vec![bobs.id]);

    // Several live ones, without an exception.
    let another = open_session(store, alice.id, T0, &fresh_hash());
    let reported: BTreeSet<Uuid> =
        store.delete_user_sessions(alice.id, None, now).unwrap().into_iter().collect();
    assert_eq!(reported, BTreeSet::from([current.id, another.id]));
    assert_eq!(store.list_sessions(alice.id, true, now).unwrap(), vec![]);
    assert!(store.delete_user_sessions(alice.id, None, now).unwrap().is_empty());
    // An exception that is not one of hers spares nothing.
    let last = open_session(store, alice.id, T0, &fresh_hash());
    assert_eq!(store.delete_user_sessions(alice.id, Some(bobs.id), now).unwrap(), vec![last.id]);
    assert_eq!(ids(&store.list_sessions(bob.id, true, now).unwrap()), vec![bobs.id]);
}

fn purge_deletes_dead_sessions_oldest_first_in_batches(store: &Store) {
    let alice = user(store, "alice");
    let cutoff = T0 + Duration::days(30);
    // 25 dead before the cutoff, dying one minute apart, in a shuffled
    // creation order: ended ones (by their end) and expired ones (by their
    // expiry, ended or not).
    let mut dead: Vec<(OffsetDateTime, DeviceSession)> = Vec::new();
    for i in 0..25_i64 {
        let died = T0 + Duration::days(2) + Duration::minutes((i * 7) % 25);
        let s = match i % 3 {
            // Ended (well before expiry).
            0 => {
                let s = open_session(store, alice.id, died - Duration::hours(1), &fresh_hash());
                assert!(store.end_session(s.id, SessionState::LoggedOut, died).unwrap());
                s
            }
            // Expired while active.
            1 => open_session(store, alice.id, died - Duration::hours(24), &fresh_hash()),
            // Expired, then ended long after.
            _ => {
                let s = open_session(store, alice.id, died - Duration::hours(24), &fresh_hash());
                let later = died + Duration::days(1);
                assert!(store.end_session(s.id, SessionState::Revoked, later).unwrap());
                s
            }
        };
        dead.push((died, s));
    }
    // Rotated tokens go with their session.
    let (h1, h2) = (fresh_hash(), fresh_hash());
    let oldest = open_session(store, alice.id, T0, &h1);
    assert!(store.replace_refresh(oldest.id, &h1, &h2, T0 + Duration::minutes(1)).unwrap());
    dead.push((T0 + Duration::hours(24), oldest.clone()));
    dead.sort_by_key(|(died, _)| *died);

    // Survivors: live, ended at or after the cutoff, expiring at or after it.
    let live = open_session(store, alice.id, cutoff - Duration::hours(1), &fresh_hash());
    let ended_at_cutoff = open_session(store, alice.id, cutoff - Duration::hours(1), &fresh_hash());
    assert!(store.end_session(ended_at_cutoff.id, SessionState::LoggedOut, cutoff).unwrap());
    let ended_later = open_session(store, alice.id, cutoff - Duration::hours(2), &fresh_hash());
    let after = cutoff + Duration::minutes(1);
    assert!(store.end_session(ended_later.id, SessionState::Revoked, after).unwrap());
    let expiring_at_cutoff =
        open_session(store, alice.id, cutoff - Duration::hours(24), &fresh_hash());
    let survivors =
        BTreeSet::from([live.id, ended_at_cutoff.id, ended_later.id, expiring_at_cutoff.id]);

    let remaining = |store: &Store| -> BTreeSet<Uuid> {
        ids(&store.list_sessions(alice.id, true, T0).unwrap()).into_iter().collect()
    };
    assert_eq!(store.purge_sessions(cutoff, 0).unwrap(), 0);
    let mut left = dead.len();
    for expected in [10, 10, 6] {
        assert_eq!(store.purge_sessions(cutoff, 10).unwrap(), expected);
        left -= expected as usize;
        // The oldest went first.
        let mut want = survivors.clone();
        want.extend(dead[dead.len() - left..].iter().map(|(_, s)| s.id));
        assert_eq!(remaining(store), want, "{left} left");
    }
    assert_eq!(store.purge_sessions(cutoff, 10).unwrap(), 0);
    assert_eq!(remaining(store), survivors);
    assert_eq!(store.find_refresh(&h1).unwrap(), None);
    assert_eq!(store.find_refresh(&h2).unwrap(), None);
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

/// `PrincipalStore::rotate_refresh`: the swap and its audit record commit
/// together or not at all, and only the winner of a race is recorded.
fn audited_rotation_is_all_or_nothing(store: &Store) {
    let alice = user(store, "alice");
    let (h1, h2, h3) = (fresh_hash(), fresh_hash(), fresh_hash());
    let s = open_session(store, alice.id, T0, &h1);
    let t1 = T0 + Duration::minutes(1);
    let event = |at: OffsetDateTime| AuditEvent {
        id: kernel::new_id(),
        at,
        action: AuditAction::Refresh,
        user_id: Some(alice.id),
        session_id: Some(s.id),
        ip_address: Some("203.0.113.9".into()),
        user_agent: None,
        request_id: Some("req-9".into()),
        outcome: AuditOutcome::Success,
    };
    let refreshes = || {
        let q = AuditQuery { action: Some(AuditAction::Refresh), limit: 100, ..Default::default() };
        store.list_events(&q).unwrap()
    };

    let first = event(t1);
    assert!(store.rotate_refresh(s.id, &h1, &h2, t1, &first).unwrap());
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h2.clone()));
    assert_eq!(
        store.find_refresh(&h1).unwrap(),
        Some(RefreshRecord { session_id: s.id, superseded_at: Some(t1) })
    );
    assert_eq!(refreshes(), vec![first.clone()]);

    // A stale expectation writes nothing, the audit record neither.
    assert!(!store.rotate_refresh(s.id, &h1, &h3, t1, &event(t1)).unwrap());
    assert_eq!(refreshes(), vec![first.clone()]);

    // A failing audit insert (a duplicate id) undoes the swap.
    assert!(store.rotate_refresh(s.id, &h2, &h3, t1, &first).is_err());
    assert_eq!(store.current_refresh(s.id).unwrap(), Some(h2.clone()));
    assert_eq!(store.find_refresh(&h3).unwrap(), None);

    // Nothing once the session has ended.
    assert!(store.end_session(s.id, SessionState::LoggedOut, t1).unwrap());
    assert!(!store.rotate_refresh(s.id, &h2, &h3, t1, &event(t1)).unwrap());
    assert_eq!(refreshes(), vec![first]);

    // Eight at once on one token: one swap, one record.
    let h = fresh_hash();
    let live = open_session(store, alice.id, T0, &h);
    let barrier = Arc::new(Barrier::new(8));
    let won: Vec<bool> = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (barrier, h) = (Arc::clone(&barrier), h.clone());
                scope.spawn(move || {
                    let e = AuditEvent { session_id: Some(live.id), ..event(t1) };
                    barrier.wait();
                    store.rotate_refresh(live.id, &h, &fresh_hash(), t1, &e).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1);
    let of_live = refreshes().into_iter().filter(|e| e.session_id == Some(live.id)).count();
    assert_eq!(of_live, 1);
}

/// `PrincipalStore::open_session`: a login's session and its audit record
/// commit together or not at all.
fn a_login_and_its_audit_record_commit_together(store: &Store) {
    let alice = user(store, "alice");
    let login = |s: &DeviceSession| AuditEvent {
        id: kernel::new_id(),
        at: s.created_at,
        action: AuditAction::Login,
        user_id: Some(alice.id),
        session_id: Some(s.id),
        ip_address: s.ip_address.clone(),
        user_agent: s.user_agent.clone(),
        request_id: Some("req-1".into()),
        outcome: AuditOutcome::Success,
    };
    let logins = || {
        let q = AuditQuery { action: Some(AuditAction::Login), limit: 100, ..Default::default() };
        store.list_events(&q).unwrap()
    };

    let first = session_at(alice.id, T0);
    let (h1, e1) = (fresh_hash(), login(&first));
    let new = NewSession { session: first.clone(), refresh_hash: h1.clone() };
    store.open_session(&new, &e1).unwrap();
    assert_eq!(store.get_session(first.id).unwrap(), Some(first.clone()));
    assert_eq!(store.find_refresh(&h1).unwrap().map(|r| r.session_id), Some(first.id));
    assert_eq!(logins(), vec![e1.clone()]);
    // A login is activity.
    assert_eq!(user_activity(store, &alice), Some(T0));

    // A failing audit insert (a duplicate id) leaves no session behind, no
    // refresh token, and the owner's activity where it was.
    let t1 = T0 + Duration::minutes(1);
    let second = session_at(alice.id, t1);
    let h2 = fresh_hash();
    let new = NewSession { session: second.clone(), refresh_hash: h2.clone() };
    let duplicate = AuditEvent { session_id: Some(second.id), ..e1.clone() };
    assert!(store.open_session(&new, &duplicate).is_err());
    assert_eq!(store.get_session(second.id).unwrap(), None);
    assert_eq!(store.find_refresh(&h2).unwrap(), None);
    assert_eq!(logins(), vec![e1]);
    assert_eq!(user_activity(store, &alice), Some(T0));

    // A failing session insert (a duplicate id) records no login.
    let again = NewSession { session: first.clone(), refresh_hash: fresh_hash() };
    assert!(store.open_session(&again, &login(&first)).is_err());
    assert_eq!(logins().len(), 1);
}

fn a_password_change_its_ended_sessions_and_its_audit_record_commit_together(store: &Store) {
    let alice = user(store, "alice");
    let bob = user(store, "bob");
    let open = |owner: &User| {
        let s = session_at(owner.id, T0);
        store
            .create_session(&NewSession { session: s.clone(), refresh_hash: fresh_hash() })
            .unwrap();
        s
    };
    let (mine, other, third, bobs) = (open(&alice), open(&alice), open(&alice), open(&bob));
    let t1 = T0 + Duration::minutes(5);
    let audit = AuditEvent {
        id: kernel::new_id(),
        at: t1,
        action: AuditAction::PasswordChange,
        user_id: Some(alice.id),
        session_id: Some(mine.id),
        ip_address: None,
        user_agent: None,
        request_id: None,
        outcome: AuditOutcome::Success,
    };
    let change = |hash: &str, end_sessions| PasswordChange {
        user_id: alice.id,
        password_hash: hash.into(),
        end_sessions,
        at: t1,
    };
    let state = |s: &DeviceSession| store.get_session(s.id).unwrap().map(|s| (s.state, s.ended_at));

    // A failing audit insert (a duplicate id) changes nothing.
    let q =
        AuditQuery { action: Some(AuditAction::PasswordChange), limit: 10, ..Default::default() };
    store.change_password(&change("h1", EndSessions::AllBut(mine.id)), &audit).unwrap();
    assert!(store.change_password(&change("h2", EndSessions::All), &audit).is_err());
    assert_eq!(store.find_by_id(alice.id).unwrap().map(|u| u.password_hash).as_deref(), Some("h1"));
    assert_eq!(state(&mine), Some((SessionState::Active, None)), "the caller's stays");
    assert_eq!(store.list_events(&q).unwrap(), vec![audit.clone()]);

    // The first change ended every other session of alice's, and no one else's.
    for ended in [&other, &third] {
        assert_eq!(state(ended), Some((SessionState::Revoked, Some(t1))));
    }
    assert_eq!(state(&bobs), Some((SessionState::Active, None)));
    let user = store.find_by_id(alice.id).unwrap().unwrap();
    assert_eq!(user.updated_at, t1);

    // Ending none, then all.
    let again = AuditEvent { id: kernel::new_id(), ..audit.clone() };
    assert_eq!(store.change_password(&change("h3", EndSessions::None), &again).unwrap(), 0);
    assert_eq!(state(&mine), Some((SessionState::Active, None)));
    let last = AuditEvent { id: kernel::new_id(), ..audit };
    assert_eq!(store.change_password(&change("h4", EndSessions::All), &last).unwrap(), 1);
    assert_eq!(state(&mine), Some((SessionState::Revoked, Some(t1))));
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

fn successful_logins_are_remembered_until_purged(store: &Store) {
    let (home, work) = ("a".repeat(64), "b".repeat(64));
    assert_eq!(store.last_success(&home).unwrap(), None);
    store.record_success(&home, T0).unwrap();
    store.record_success(&work, T0 + Duration::days(2)).unwrap();
    assert_eq!(store.last_success(&home).unwrap(), Some(T0));
    // A later login replaces the time.
    store.record_success(&home, T0 + Duration::days(3)).unwrap();
    assert_eq!(store.last_success(&home).unwrap(), Some(T0 + Duration::days(3)));
    // Purged strictly before the cut-off, one key at a time.
    assert_eq!(store.purge_successes(T0 + Duration::days(2)).unwrap(), 0);
    assert_eq!(
        store.purge_successes(T0 + Duration::days(2) + Duration::milliseconds(1)).unwrap(),
        1
    );
    assert_eq!(store.last_success(&work).unwrap(), None);
    assert_eq!(store.last_success(&home).unwrap(), Some(T0 + Duration::days(3)));
    // Failed-login records are another table: untouched.
    assert_eq!(store.purge_failures(T0 + Duration::days(9), T0).unwrap(), 0);
    assert_eq!(store.last_success(&home).unwrap(), Some(T0 + Duration::days(3)));
}

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
    let all = AuditQuery { limit: 1000, ..AuditQuery::default() };
    assert_eq!(store.list_events(&all).unwrap(), vec![bare, full.clone()]);
    // An id is recorded once.
    assert!(store.record(&full).is_err());
}

fn audit_event(at: OffsetDateTime, action: AuditAction, user_id: Option<Uuid>) -> AuditEvent {
    AuditEvent {
        id: kernel::new_id(),
        at,
        action,
        user_id,
        session_id: None,
        ip_address: Some("203.0.113.7".into()),
        user_agent: None,
        request_id: None,
        outcome: AuditOutcome::Success,
    }
}

/// `events` as the listing orders them: newest first, then by id.
fn newest_first(mut events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    events
}

fn audit_events_are_filtered(store: &Store) {
    let (alice, bob) = (kernel::new_id(), kernel::new_id());
    let minute = |m: i64| T0 + Duration::minutes(m);
    let events = [
        audit_event(minute(0), AuditAction::Register, Some(alice)),
        audit_event(minute(1), AuditAction::Login, Some(alice)),
        audit_event(minute(2), AuditAction::Login, Some(bob)),
        audit_event(minute(3), AuditAction::LoginFailed, None),
        audit_event(minute(4), AuditAction::Logout, Some(alice)),
        audit_event(minute(5), AuditAction::Login, Some(alice)),
        audit_event(minute(6), AuditAction::Refresh, Some(bob)),
    ];
    // Recorded out of order: the listing orders, not the insertion.
    for e in events.iter().rev() {
        store.record(e).unwrap();
    }
    let list = |q: AuditQuery| store.list_events(&AuditQuery { limit: 1000, ..q }).unwrap();
    let pick = |idx: &[usize]| -> Vec<AuditEvent> {
        idx.iter().rev().map(|&i| events[i].clone()).collect()
    };

    assert_eq!(list(AuditQuery::default()), pick(&[0, 1, 2, 3, 4, 5, 6]));
    assert_eq!(
        list(AuditQuery { user_id: Some(alice), ..AuditQuery::default() }),
        pick(&[0, 1, 4, 5])
    );
    assert_eq!(
        list(AuditQuery { user_id: Some(kernel::new_id()), ..AuditQuery::default() }),
        vec![]
    );
    assert_eq!(
        list(AuditQuery { action: Some(AuditAction::Login), ..AuditQuery::default() }),
        pick(&[1, 2, 5])
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        list(AuditQuery { from: Some(minute(4)), ..AuditQuery::default() }),
        pick(&[4, 5, 6])
    );
    assert_eq!(list(AuditQuery { to: Some(minute(2)), ..AuditQuery::default() }), pick(&[0, 1]));
    assert_eq!(
        list(AuditQuery { from: Some(minute(1)), to: Some(minute(5)), ..AuditQuery::default() }),
        pick(&[1, 2, 3, 4])
    );
    assert_eq!(
        list(AuditQuery {
            user_id: Some(alice),
            action: Some(AuditAction::Login),
            from: Some(minute(1)),
            to: Some(minute(6)),
            ..AuditQuery::default()
        }),
        pick(&[1, 5])
    );
    // `after` continues strictly after a position, with the other filters.
    let at = |i: usize| AuditPosition { at: events[i].at, id: events[i].id };
    assert_eq!(
        list(AuditQuery { after: Some(at(4)), ..AuditQuery::default() }),
        pick(&[0, 1, 2, 3])
    );
    assert_eq!(
        list(AuditQuery { user_id: Some(bob), after: Some(at(6)), ..AuditQuery::default() }),
        pick(&[2])
    );
    assert_eq!(list(AuditQuery { after: Some(at(0)), ..AuditQuery::default() }), vec![]);
    // `limit` keeps the newest.
    let two = store.list_events(&AuditQuery { limit: 2, ..AuditQuery::default() }).unwrap();
    assert_eq!(two, pick(&[5, 6]));
}

fn audit_events_page_by_keyset_through_ties(store: &Store) {
    let alice = kernel::new_id();
    // 250 events over 7 milliseconds (about 36 at each, so pages end inside
    // ties), with v7 ids plus ids chosen to straddle the byte order: digits
    // against letters, all zeros, all f's, differences in the last digit.
    let crafted = [
        0_u128,
        u128::MAX,
        0x0000_0000_0000_7000_8000_0000_0000_0009,
        0x0000_0000_0000_7000_8000_0000_0000_000a,
        0x9fff_ffff_ffff_7fff_bfff_ffff_ffff_ffff,
        0xa000_0000_0000_7000_8000_0000_0000_0000,
        0x0199_0000_0000_7000_8000_0000_0000_0000,
        0x01a0_0000_0000_7000_8000_0000_0000_0000,
    ];
    let mut events = Vec::new();
    for i in 0..250_usize {
        let at = T0 + Duration::milliseconds((i % 7) as i64);
        let mut e = audit_event(at, AuditAction::ALL[i % AuditAction::ALL.len()], Some(alice));
        if let Some(&raw) = crafted.get(i / 7) {
            // Each crafted id at every millisecond, told apart in bits 64–66.
            e.id = Uuid::from_u128(raw ^ (((i % 7) as u128) << 64));
        }
        events.push(e);
    }
    assert_eq!(events.iter().map(|e| e.id).collect::<HashSet<_>>().len(), 250);
    for e in &events {
        store.record(e).unwrap();
    }
    let expected = newest_first(events);

    // Someone else's, in the middle of the ties.
    let others = kernel::new_id();
    let other = audit_event(T0 + Duration::milliseconds(3), AuditAction::Login, Some(others));
    store.record(&other).unwrap();
    for query in
        [AuditQuery { user_id: Some(alice), ..AuditQuery::default() }, AuditQuery::default()]
    {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            assert!(sizes.len() < 5, "paging does not end: {sizes:?}");
            let page =
                store.list_events(&AuditQuery { after, limit: 100, ..query.clone() }).unwrap();
            sizes.push(page.len());
            let Some(last) = page.last() else { break };
            // Through the cursor, as clients see it.
            let cursor = AuditPosition { at: last.at, id: last.id }.to_cursor();
            after = Some(AuditPosition::from_cursor(&cursor).unwrap());
            seen.extend(page);
        }
        if query.user_id.is_some() {
            // All of alice's exactly once, in order.
            assert_eq!(sizes, vec![100, 100, 50, 0]);
            assert_eq!(seen, expected);
        } else {
            assert_eq!(sizes, vec![100, 100, 51, 0]);
            assert_eq!(seen.len(), 251);
            assert_eq!(seen.iter().filter(|e| e.user_id == Some(others)).count(), 1);
            let alices: Vec<AuditEvent> =
                seen.into_iter().filter(|e| e.user_id == Some(alice)).collect();
            assert_eq!(alices, expected);
        }
    }
}

/// On PostgreSQL audit ids compare bytewise (collation "C"), whatever the
/// database's default collation, so that both backends page alike.
#[test]
fn postgres_audit_ids_use_the_c_collation() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Collation {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        collation_name: Option<String>,
    }
    let Some(url) = testing::fresh_postgres_url() else { return };
    open(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    let found: Collation = diesel::sql_query(
        "SELECT collation_name::text AS collation_name FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'audit_events' \
         AND column_name = 'id'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(found.collation_name.as_deref(), Some("C"));
}

// ---------------------------------------------------------------- invalidation

/// On PostgreSQL, every change that can end a session or alter a cached
/// user reaches a listener (another process, in production) as a
/// notification; changes that do not (activity, refresh rotation) send
/// nothing. SQLite has no listener.
#[test]
fn invalidations_are_notified_on_postgres() {
    use auth::Invalidation;
    use std::sync::mpsc;

    assert!(common::sqlite_store().listen_invalidations(|_| {}).unwrap().is_none());
    let Some(store) = common::postgres_store() else { return };
    let (tx, rx) = mpsc::channel();
    let listener = store.listen_invalidations(move |what| tx.send(what).unwrap()).unwrap().unwrap();
    let first = rx.recv_timeout(StdDuration::from_secs(5)).expect("a notification");
    assert_eq!(first, Invalidation::Everything, "first, after connecting");

    let alice = user(&store, "notified");
    let hash = fresh_hash();
    let s = open_session(&store, alice.id, T0, &hash);
    let other = open_session(&store, alice.id, T0, &fresh_hash());
    // The channel is database-wide: tests running beside this one in other
    // schemas notify too. Only this test's user and sessions count.
    let mine = |w: &Invalidation| match w {
        Invalidation::Session(id) => *id == s.id || *id == other.id,
        Invalidation::User(id) => *id == alice.id,
        Invalidation::Everything => true,
        Invalidation::SigningKeys => false,
    };
    let within = |timeout: StdDuration| {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(w) if mine(&w) => return Some(w),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    let next = || within(StdDuration::from_secs(5)).expect("a notification");
    // Not notified: activity written behind, refresh rotation.
    let mark = ActivityMark { session_id: s.id, user_id: alice.id, at: T0 + Duration::minutes(1) };
    store.record_activity(&[mark]).unwrap();
    let (h2, t2) = (fresh_hash(), T0 + Duration::minutes(2));
    assert!(store.replace_refresh(s.id, &hash, &h2, t2).unwrap());
    let audit = audit_event(t2, AuditAction::Refresh, Some(alice.id));
    assert!(store.rotate_refresh(s.id, &h2, &fresh_hash(), t2, &audit).unwrap());
    // Notified, in commit order.
    assert!(store.end_session(s.id, SessionState::Revoked, T0 + Duration::minutes(3)).unwrap());
    assert_eq!(next(), Invalidation::Session(s.id));
    let patch = UserPatch { status: Some(UserStatus::Suspended), role: None };
    store.update(alice.id, &patch, T0 + Duration::minutes(4)).unwrap().unwrap();
    assert_eq!(next(), Invalidation::User(alice.id));
    assert!(store.delete_session(other.id).unwrap());
    assert_eq!(next(), Invalidation::Session(other.id));
    assert_eq!(within(StdDuration::from_millis(300)), None, "nothing else was sent");
    listener.stop();
}

/// Background jobs take turns across processes sharing PostgreSQL: while
/// one holder runs a job, another gets `None` (another pool stands for
/// another process); afterwards the job can be taken again. On SQLite the
/// job always runs.
#[test]
fn exclusive_jobs_take_turns() {
    use store::Job;

    assert_eq!(common::sqlite_store().exclusively(Job::Sweep, || 1).unwrap(), Some(1));
    let Some(url) = testing::fresh_postgres_url() else { return };
    let (a, b) = (open(&url), open(&url));
    let inner = a.exclusively(Job::Sweep, || b.exclusively(Job::Sweep, || "b ran").unwrap());
    assert_eq!(inner.unwrap(), Some(None), "b must not run while a holds the job");
    assert_eq!(b.exclusively(Job::Sweep, || "b ran").unwrap(), Some("b ran"), "released");
    assert_eq!(a.exclusively(Job::Sweep, || "a ran").unwrap(), Some("a ran"));
}

/// Pooled connections skip the `SELECT 1` check only for a second after a
/// use without error. A connection killed under the pool costs at most the
/// one request that finds it dead, and none after a pause: the check then
/// finds it first and the pool opens another.
#[test]
fn pooled_connections_are_checked_after_an_error_or_a_pause() {
    use diesel::prelude::*;
    let Some(url) = testing::fresh_postgres_url() else { return };
    let name = format!("pooltest_{}", kernel::new_id().simple());
    let url = format!("{url}&application_name={name}");
    let store =
        Store::connect(&url, &StoreOptions { max_connections: 1, ..Default::default() }).unwrap();
    store.migrate().unwrap();
    let mut admin = PgConnection::establish(&testing::fresh_postgres_url().unwrap()).unwrap();
    let kill = |admin: &mut PgConnection| {
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{name}'"
        ))
        .execute(admin)
        .unwrap();
    };
    let works = || store.find_refresh(&fresh_hash()).is_ok();
    assert!(works());

    // Right after a use: at most one failure, then a fresh connection.
    kill(&mut admin);
    let first = works();
    assert!(works(), "the pool replaced the dead connection (first use ok: {first})");

    // After a pause the check runs and nothing fails.
    kill(&mut admin);
    thread::sleep(StdDuration::from_millis(1100));
    assert!(works());
}
