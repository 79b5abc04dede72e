//! The login and refresh rules over in-memory ports and a manual clock:
//! fast, and independent of any database (the end-to-end tests and the
//! store's contract tests cover the same rules on the real adapters).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;

use accounts::PasswordHasher;
use kernel::{Duration, ManualClock, OffsetDateTime};
use sessions::{Lifetimes, SessionState};
use tokens::TokenCodec;

use super::*;
use crate::memory::Memory;
use crate::{AuditAction, AuthError, PasswordInput, RequestMeta};

const PASSWORD: &str = "correct horse battery";
const T0: OffsetDateTime = time::macros::datetime!(2024-04-05 12:00 UTC);

struct World {
    auth: AuthService,
    memory: Arc<Memory>,
    clock: Arc<ManualClock>,
}

/// The use cases over fresh in-memory ports at `T0`: 15-minute access
/// tokens, 24-hour sessions, a 10-second rotation grace, alice registered.
fn world() -> World {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::at(T0));
    let ports = Memory::ports(&memory, clock.clone());
    let codec = TokenCodec::new(b"0123456789abcdef0123456789abcdef", "test", Duration::minutes(15));
    let settings = Settings {
        lifetimes: Lifetimes { absolute: Duration::hours(24), idle: None },
        refresh_grace: Duration::seconds(10),
        bearer_refresh: true,
        registration_open: true,
        throttle: ThrottlePolicy::default(),
    };
    let auth = AuthService::new(ports, codec, PasswordHasher::fast_for_tests(), settings);
    let alice =
        RegisterInput { username: "alice".into(), password: PASSWORD.into(), ..Default::default() };
    auth.register(alice, &meta()).unwrap();
    World { auth, memory, clock }
}

fn meta() -> RequestMeta {
    RequestMeta { ip: Some("203.0.113.7".into()), ..Default::default() }
}

fn login(w: &World, password: &str) -> Result<LoginOk, AuthError> {
    let input = LoginInput {
        username: Some("Alice".into()),
        password: password.into(),
        ..Default::default()
    };
    w.auth.login(input, &meta())
}

fn actions(w: &World) -> Vec<AuditAction> {
    w.memory.events().iter().map(|e| e.action).collect()
}

#[test]
fn a_login_opens_a_session_and_audits_it_and_says_what_it_opened() {
    let w = world();
    let ok = login(&w, PASSWORD).unwrap();
    assert_eq!(ok.expires_in, 15 * 60);
    assert!(ok.session.is_active && ok.session.is_current);
    assert_eq!(ok.session.session.expires_at, T0 + Duration::hours(24));
    assert_eq!(ok.session.session.created_at, T0);
    assert_eq!(w.memory.sessions(), vec![ok.session.session.clone()]);
    let login = w.memory.events().into_iter().find(|e| e.action == AuditAction::Login).unwrap();
    assert_eq!(login.session_id, Some(ok.session.session.id));
    assert_eq!(login.ip_address.as_deref(), Some("203.0.113.7"));
    let p = w.auth.authenticate(&ok.access_token).unwrap();
    assert_eq!(p.session.id, ok.session.session.id);
    assert_eq!(p.user.username, "alice");
}

#[test]
fn a_login_whose_audit_record_fails_opens_no_session() {
    let w = world();
    w.memory.fail_audit.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(matches!(login(&w, PASSWORD), Err(AuthError::Unknown(_))));
    assert!(w.memory.sessions().is_empty());
}

#[test]
fn wrong_passwords_and_unknown_names_are_one_refusal() {
    let w = world();
    assert!(matches!(login(&w, "wrong guess"), Err(AuthError::InvalidCredentials)));
    let nobody = LoginInput {
        username: Some("nobody".into()),
        password: PASSWORD.into(),
        ..Default::default()
    };
    assert!(matches!(w.auth.login(nobody, &meta()), Err(AuthError::InvalidCredentials)));
    assert!(w.memory.sessions().is_empty());
    let failed = actions(&w).into_iter().filter(|a| *a == AuditAction::LoginFailed).count();
    assert_eq!(failed, 2);
}

#[test]
fn repeated_failures_lock_the_account_from_that_address_until_the_lock_ends() {
    let w = world();
    for _ in 0..ThrottlePolicy::default().pair_max_failures {
        assert!(matches!(login(&w, "wrong guess"), Err(AuthError::InvalidCredentials)));
    }
    assert!(actions(&w).contains(&AuditAction::Lockout));
    // Locked: not even the right password is checked.
    match login(&w, PASSWORD) {
        Err(AuthError::Locked { retry_after }) => assert!((1..=60).contains(&retry_after)),
        other => panic!("expected a lock, got {other:?}"),
    }
    assert!(w.memory.sessions().is_empty());
    w.clock.advance(Duration::seconds(61));
    assert!(login(&w, PASSWORD).is_ok());
}

#[test]
fn a_refresh_rotates_the_token_and_audits_the_rotation() {
    let w = world();
    let ok = login(&w, PASSWORD).unwrap();
    w.clock.advance(Duration::minutes(1));
    let r = w.auth.refresh(&ok.refresh_token, &meta()).unwrap();
    let fresh = r.refresh_token.unwrap();
    assert_ne!(fresh, ok.refresh_token);
    assert_eq!(r.expires_in, 15 * 60);
    assert_eq!(w.auth.authenticate(&r.access_token).unwrap().session.id, ok.session.session.id);
    assert!(actions(&w).contains(&AuditAction::Refresh));
    // The new token rotates in turn.
    w.clock.advance(Duration::minutes(1));
    assert!(w.auth.refresh(&fresh, &meta()).is_ok());
}

#[test]
fn a_rotated_token_within_the_grace_window_still_rotates() {
    let w = world();
    let ok = login(&w, PASSWORD).unwrap();
    w.auth.refresh(&ok.refresh_token, &meta()).unwrap();
    w.clock.advance(Duration::seconds(5));
    // A client's parallel request with the old token, moments later.
    assert!(w.auth.refresh(&ok.refresh_token, &meta()).is_ok());
}

#[test]
fn reuse_of_a_rotated_token_ends_the_session() {
    let w = world();
    let ok = login(&w, PASSWORD).unwrap();
    let fresh = w.auth.refresh(&ok.refresh_token, &meta()).unwrap().refresh_token.unwrap();
    w.clock.advance(Duration::seconds(11));
    assert!(matches!(w.auth.refresh(&ok.refresh_token, &meta()), Err(AuthError::RefreshReused)));
    let session = &w.memory.sessions()[0];
    assert_eq!(session.state, SessionState::Revoked);
    assert!(actions(&w).contains(&AuditAction::RefreshReuse));
    // Neither the thief's nor the owner's tokens work any more.
    assert!(w.auth.refresh(&fresh, &meta()).is_err());
    assert!(matches!(w.auth.authenticate(&ok.access_token), Err(AuthError::Unauthenticated(_))));
}

#[test]
fn access_tokens_expire_before_their_session_and_sessions_expire() {
    let w = world();
    let ok = login(&w, PASSWORD).unwrap();
    w.clock.advance(Duration::minutes(16));
    assert!(matches!(w.auth.authenticate(&ok.access_token), Err(AuthError::Unauthenticated(_))));
    // The session lives on: the refresh token renews access.
    let r = w.auth.refresh(&ok.refresh_token, &meta()).unwrap();
    assert!(w.auth.authenticate(&r.access_token).is_ok());
    // Past the session's absolute lifetime nothing renews it.
    w.clock.advance(Duration::hours(24));
    let token = r.refresh_token.unwrap();
    assert!(matches!(w.auth.refresh(&token, &meta()), Err(AuthError::Unauthenticated(_))));
}

fn change_password(
    w: &World,
    p: &Principal,
    current: &str,
    others: Option<bool>,
) -> Result<UserProfile, AuthError> {
    let input = PasswordInput {
        current_password: current.into(),
        new_password: "staple battery horse correct".into(),
        sign_out_other_sessions: others,
    };
    w.auth.change_password(p, input, &meta())
}

#[test]
fn a_password_change_ends_the_other_sessions_in_its_commit_and_keeps_the_callers() {
    let w = world();
    let (mine, other) = (login(&w, PASSWORD).unwrap(), login(&w, PASSWORD).unwrap());
    let p = w.auth.authenticate(&mine.access_token).unwrap();
    assert!(matches!(
        change_password(&w, &p, "wrong password", None),
        Err(AuthError::InvalidCredentials)
    ));
    assert!(w.auth.authenticate(&other.access_token).is_ok(), "nothing changed yet");

    change_password(&w, &p, PASSWORD, None).unwrap();
    let states: Vec<_> = w.memory.sessions().iter().map(|s| (s.id, s.state)).collect();
    assert!(states.contains(&(mine.session.session.id, SessionState::Active)));
    assert!(states.contains(&(other.session.session.id, SessionState::Revoked)));
    assert!(w.auth.authenticate(&other.access_token).is_err());
    assert!(w.auth.authenticate(&mine.access_token).is_ok());
    assert!(login(&w, PASSWORD).is_err());
    assert!(login(&w, "staple battery horse correct").is_ok());
    let changes: Vec<_> =
        actions(&w).into_iter().filter(|a| *a == AuditAction::PasswordChange).collect();
    assert_eq!(changes.len(), 2, "the failure and the change");
}

#[test]
fn a_password_change_whose_audit_record_fails_changes_nothing() {
    let w = world();
    let (mine, other) = (login(&w, PASSWORD).unwrap(), login(&w, PASSWORD).unwrap());
    let p = w.auth.authenticate(&mine.access_token).unwrap();
    w.memory.fail_audit.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(change_password(&w, &p, PASSWORD, Some(true)).is_err());
    w.memory.fail_audit.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(w.auth.authenticate(&other.access_token).is_ok());
    assert!(login(&w, PASSWORD).is_ok(), "the old password still works");
}
