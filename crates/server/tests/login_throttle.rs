//! Login throttling on the real databases: locks per account and per
//! address, growing and bounded, identical for unknown accounts, exact
//! under parallel guesses, and never set off by parallel right passwords.

mod common;

use std::sync::Arc;

use accounts::Role;
use auth::{AuthError, AuthService, LoginInput, RegisterInput, RequestMeta};
use common::{clock, service, stores};
use kernel::Duration;

const RIGHT: &str = "correct horse";

fn register(auth: &AuthService, username: &str) {
    let input = RegisterInput {
        username: username.into(),
        password: RIGHT.into(),
        email: Some(format!("{username}@example.com")),
        ..Default::default()
    };
    auth.create_user(input, Role::user()).expect("user");
}

fn attempt(auth: &AuthService, who: &str, password: &str, ip: &str) -> Result<(), AuthError> {
    let (username, email) = match who.contains('@') {
        true => (None, Some(who.into())),
        false => (Some(who.into()), None),
    };
    let input = LoginInput { username, email, password: password.into(), app: None };
    let meta = RequestMeta { ip: Some(ip.into()), ..Default::default() };
    auth.login(input, &meta).map(drop)
}

/// `times` wrong passwords for `who` from `ip`, whatever they are answered.
fn fail(auth: &AuthService, who: &str, times: usize, ip: &str) {
    for _ in 0..times {
        let _ = attempt(auth, who, "wrong guess", ip);
    }
}

/// `n` logins of `who` at once, each on its own thread, the `i`th from
/// `ip(i)`; what each was answered, in order.
fn race(
    auth: &Arc<AuthService>,
    n: usize,
    who: &'static str,
    password: &'static str,
    ip: fn(usize) -> String,
) -> Vec<String> {
    let racers: Vec<_> = (0..n)
        .map(|i| {
            let auth = auth.clone();
            std::thread::spawn(move || kind(&attempt(&auth, who, password, &ip(i))))
        })
        .collect();
    racers.into_iter().map(|t| t.join().expect("racer")).collect()
}

/// What an answer says, for comparing sequences of answers.
fn kind(r: &Result<(), AuthError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(AuthError::InvalidCredentials) => "invalid".into(),
        Err(AuthError::Locked { retry_after }) => format!("locked {retry_after}"),
        Err(e) => format!("other: {e}"),
    }
}

#[test]
fn an_account_locks_after_five_failures_even_for_the_right_password() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "victim");
        let answers: Vec<_> =
            (0..5).map(|_| kind(&attempt(&auth, "victim", "wrong guess", "192.0.2.1"))).collect();
        assert_eq!(answers, ["invalid"; 5]);
        // Locked: the right password too, from anywhere, by email too.
        assert_eq!(kind(&attempt(&auth, "victim", RIGHT, "192.0.2.1")), "locked 60");
        assert_eq!(kind(&attempt(&auth, "VICTIM", RIGHT, "198.51.100.9")), "locked 60");
        clock.advance(Duration::seconds(30));
        assert_eq!(kind(&attempt(&auth, "victim@example.com", RIGHT, "198.51.100.9")), "locked 30");
        // The lock ends by itself, and a success clears the count.
        clock.advance(Duration::seconds(30));
        assert_eq!(kind(&attempt(&auth, "victim", RIGHT, "192.0.2.1")), "ok");
        assert_eq!(kind(&attempt(&auth, "victim", "wrong guess", "192.0.2.1")), "invalid");
        assert_eq!(kind(&attempt(&auth, "victim", RIGHT, "192.0.2.1")), "ok");
    }
}

#[test]
fn further_failures_double_the_lock_up_to_fifteen_minutes() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "target");
        fail(&auth, "target", 5, "192.0.2.1");
        let mut locks = Vec::new();
        for _ in 0..6 {
            let Err(AuthError::Locked { retry_after }) =
                attempt(&auth, "target", RIGHT, "192.0.2.1")
            else {
                panic!("expected a lock");
            };
            locks.push(retry_after);
            clock.advance(Duration::seconds(i64::try_from(retry_after).unwrap_or(0)));
            assert_eq!(kind(&attempt(&auth, "target", "wrong again", "192.0.2.1")), "invalid");
        }
        assert_eq!(locks, [60, 120, 240, 480, 900, 900], "bounded: a lock always ends");
    }
}

#[test]
fn unknown_accounts_answer_exactly_like_real_ones() {
    for store in stores() {
        let auth = service(&store, clock(), |_| {});
        register(&auth, "real");
        let answers = |who: &str| -> Vec<String> {
            (0..7).map(|_| kind(&attempt(&auth, who, "wrong guess", "192.0.2.1"))).collect()
        };
        let real = answers("real");
        assert_eq!(real, answers("nobody"));
        assert_eq!(real[4..], ["invalid", "locked 60", "locked 60"]);
    }
}

#[test]
fn an_address_locks_after_its_limit_across_accounts() {
    for store in stores() {
        let auth = service(&store, clock(), |s| s.throttle.ip_max_failures = 3);
        for name in ["ann", "ben", "cid", "dot"] {
            register(&auth, name);
        }
        for name in ["ann", "ben", "cid"] {
            assert_eq!(kind(&attempt(&auth, name, "wrong guess", "203.0.113.5")), "invalid");
        }
        // The address is locked, for every account; other addresses are not.
        assert_eq!(kind(&attempt(&auth, "dot", RIGHT, "203.0.113.5")), "locked 60");
        assert_eq!(kind(&attempt(&auth, "dot", RIGHT, "203.0.113.6")), "ok");
        // A refused attempt counted nowhere: ann has one failure, not two.
        for ip in ["203.0.113.7", "203.0.113.8", "203.0.113.9"] {
            assert_eq!(kind(&attempt(&auth, "ann", "wrong guess", ip)), "invalid");
        }
        assert_eq!(kind(&attempt(&auth, "ann", RIGHT, "203.0.113.10")), "ok");
    }
}

#[test]
fn parallel_guesses_get_exactly_the_limit_checked() {
    for store in stores() {
        let auth = Arc::new(service(&store, clock(), |_| {}));
        register(&auth, "popular");
        let answers = race(&auth, 16, "popular", "wrong guess", |i| format!("10.0.0.{i}"));
        let checked = answers.iter().filter(|a| *a == "invalid").count();
        let locked = answers.iter().filter(|a| a.starts_with("locked")).count();
        assert_eq!((checked, locked), (5, 11), "{answers:?}");
    }
}

#[test]
fn parallel_logins_with_the_right_password_take_turns_and_never_lock() {
    for store in stores() {
        let auth = Arc::new(service(&store, clock(), |_| {}));
        register(&auth, "busy");
        // More at once than either limit (account 5, address 20), all from
        // one address, as from an office behind one NAT.
        let answers = race(&auth, 24, "busy", RIGHT, |_| "192.0.2.50".into());
        assert_eq!(answers, vec!["ok"; 24]);
        // Nothing counted against the account or the address.
        assert_eq!(kind(&attempt(&auth, "busy", "wrong guess", "192.0.2.50")), "invalid");
        assert_eq!(kind(&attempt(&auth, "busy", RIGHT, "192.0.2.50")), "ok");
    }
}

#[test]
fn the_sweeper_forgets_only_records_past_their_memory() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "sleepy");
        fail(&auth, "sleepy", 5, "192.0.2.1");
        assert_eq!(auth.purge_login_failures().expect("purge"), 0, "locked and recent");
        clock.advance(auth::DEFAULT_MEMORY - Duration::seconds(1));
        assert_eq!(auth.purge_login_failures().expect("purge"), 0, "still remembered");
        // The lock has ended, the count has not: one more failure locks again.
        assert_eq!(kind(&attempt(&auth, "sleepy", "wrong guess", "192.0.2.1")), "invalid");
        assert_eq!(auth.purge_login_failures().expect("purge"), 0);
        assert_eq!(kind(&attempt(&auth, "sleepy", RIGHT, "192.0.2.1")), "locked 120");
        clock.advance(auth::DEFAULT_MEMORY + Duration::seconds(1));
        // The account's and the address's records.
        assert_eq!(auth.purge_login_failures().expect("purge"), 2);
        assert_eq!(kind(&attempt(&auth, "sleepy", RIGHT, "192.0.2.1")), "ok");
    }
}
