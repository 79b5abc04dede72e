//! Login throttling on the real databases: locks per (account, address),
//! per address, and per account for addresses it never logged in from;
//! growing and bounded, identical for unknown accounts, exact under
//! parallel guesses, and never set off by parallel right passwords.

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
fn a_pair_locks_after_five_failures_even_for_the_right_password() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "victim");
        let answers: Vec<_> =
            (0..5).map(|_| kind(&attempt(&auth, "victim", "wrong guess", "192.0.2.1"))).collect();
        assert_eq!(answers, ["invalid"; 5]);
        // Locked from that address: the right password too, by email too.
        assert_eq!(kind(&attempt(&auth, "victim", RIGHT, "192.0.2.1")), "locked 60");
        assert_eq!(kind(&attempt(&auth, "VICTIM", RIGHT, "192.0.2.1")), "locked 60");
        clock.advance(Duration::seconds(30));
        assert_eq!(kind(&attempt(&auth, "victim@example.com", RIGHT, "192.0.2.1")), "locked 30");
        // SPEC §2 (issue 17): not from elsewhere.
        assert_eq!(kind(&attempt(&auth, "victim", RIGHT, "198.51.100.9")), "ok");
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
    let tally = |answers: &[String]| {
        let checked = answers.iter().filter(|a| *a == "invalid").count();
        let locked = answers.iter().filter(|a| a.starts_with("locked")).count();
        (checked, locked)
    };
    for store in stores() {
        // From one address: the pair's limit.
        let auth = Arc::new(service(&store, clock(), |_| {}));
        register(&auth, "popular");
        let answers = race(&auth, 16, "popular", "wrong guess", |_| "10.0.0.1".into());
        assert_eq!(tally(&answers), (5, 11), "{answers:?}");
        // From as many addresses: the account-wide limit (lowered, so the
        // race needs fewer threads than the pool has connections).
        let auth = Arc::new(service(&store, clock(), |s| s.throttle.account_wide_max_failures = 6));
        register(&auth, "famous");
        let answers = race(&auth, 16, "famous", "wrong guess", |i| format!("10.0.1.{i}"));
        assert_eq!(tally(&answers), (6, 10), "{answers:?}");
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
        // The records of the pair, the address and the account (the
        // address is not one the account logged in from).
        assert_eq!(auth.purge_login_failures().expect("purge"), 3);
        assert_eq!(kind(&attempt(&auth, "sleepy", RIGHT, "192.0.2.1")), "ok");
    }
}

// ------------------------------------------------ issue 17: no lock-out for ever

/// The `n`th of many distinct addresses (up to 65,536), as an attacker
/// rotating through a botnet or a proxy pool would use them.
fn nth_address(n: usize) -> String {
    format!("10.77.{}.{}", n / 256, n % 256)
}

/// One wrong password for `who` from each of `n` fresh addresses starting
/// at the `from`th: what each was answered.
fn fail_from_many(auth: &AuthService, who: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n).map(|i| kind(&attempt(auth, who, "wrong guess", &nth_address(i)))).collect()
}

#[test]
fn an_attacker_elsewhere_cannot_keep_the_owner_out() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "owner");
        // The attack of the issue: five wrong passwords from B, then one
        // more each time the lock ends, for hours.
        fail(&auth, "owner", 5, "203.0.113.66");
        for _ in 0..8 {
            let Err(AuthError::Locked { retry_after }) =
                attempt(&auth, "owner", RIGHT, "203.0.113.66")
            else {
                panic!("the attacker's address is locked, for the right password too");
            };
            // Meanwhile the owner, from an address never used before, gets in.
            assert_eq!(kind(&attempt(&auth, "owner", RIGHT, "198.51.100.7")), "ok");
            clock.advance(Duration::seconds(i64::try_from(retry_after).unwrap_or(0)));
            assert_eq!(kind(&attempt(&auth, "owner", "wrong again", "203.0.113.66")), "invalid");
        }
        assert_eq!(kind(&attempt(&auth, "owner", RIGHT, "198.51.100.7")), "ok");
        assert_eq!(kind(&attempt(&auth, "owner@example.com", RIGHT, "198.51.100.8")), "ok");
    }
}

#[test]
fn rotating_addresses_lock_the_account_only_where_its_owner_never_logged_in() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "famous");
        // The owner's usual address.
        assert_eq!(kind(&attempt(&auth, "famous", RIGHT, "198.51.100.7")), "ok");
        clock.advance(Duration::days(3));
        // Fifty guesses, one per address: no pair reaches its limit, the
        // fiftieth locks the account for addresses it was not used from.
        assert_eq!(fail_from_many(&auth, "famous", 0, 50), vec!["invalid"; 50]);
        assert_eq!(kind(&attempt(&auth, "famous", RIGHT, &nth_address(50))), "locked 60");
        assert_eq!(kind(&attempt(&auth, "FAMOUS", RIGHT, "192.0.2.200")), "locked 60");
        // The owner, at home, is not locked out: a typo is just a typo.
        assert_eq!(kind(&attempt(&auth, "famous", "typo", "198.51.100.7")), "invalid");
        assert_eq!(kind(&attempt(&auth, "famous", RIGHT, "198.51.100.7")), "ok");
        // And the owner's login does not open the account to more guesses.
        clock.advance(Duration::seconds(1));
        assert_eq!(kind(&attempt(&auth, "famous", RIGHT, &nth_address(51))), "locked 59");
    }
}

#[test]
fn an_ipv6_owner_is_known_by_the_network_not_the_changing_address() {
    for store in stores() {
        let auth = service(&store, clock(), |_| {});
        register(&auth, "sixer");
        // Privacy extensions change the interface half every day.
        assert_eq!(kind(&attempt(&auth, "sixer", RIGHT, "2001:db8:1:2::10")), "ok");
        assert_eq!(fail_from_many(&auth, "sixer", 0, 50), vec!["invalid"; 50]);
        assert_eq!(kind(&attempt(&auth, "sixer", RIGHT, "2001:db8:1:2:a:b:c:d")), "ok");
        assert_eq!(kind(&attempt(&auth, "sixer", RIGHT, "2001:db8:1:3::10")), "locked 60");
    }
}

#[test]
fn an_account_wide_lock_doubles_up_to_the_cap_and_always_ends() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "hunted");
        assert_eq!(fail_from_many(&auth, "hunted", 0, 50), vec!["invalid"; 50]);
        let mut locks = Vec::new();
        for i in 0..6 {
            let Err(AuthError::Locked { retry_after }) =
                attempt(&auth, "hunted", RIGHT, &nth_address(100 + i))
            else {
                panic!("expected a lock");
            };
            locks.push(retry_after);
            clock.advance(Duration::seconds(i64::try_from(retry_after).unwrap_or(0)));
            // Ended: the next guess is checked, and locks again.
            assert_eq!(fail_from_many(&auth, "hunted", 200 + i, 1), ["invalid"]);
        }
        assert_eq!(locks, [60, 120, 240, 480, 900, 900], "bounded: a lock always ends");
        clock.advance(Duration::seconds(900));
        assert_eq!(kind(&attempt(&auth, "hunted", RIGHT, &nth_address(300))), "ok");
    }
}

#[test]
fn unknown_accounts_answer_like_real_ones_across_addresses_too() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "genuine");
        let answers = |who: &str| -> Vec<String> {
            let mut a = fail_from_many(&auth, who, 0, 52);
            // From one address past the pair limit, and after the lock.
            clock.advance(Duration::seconds(60));
            a.extend((0..7).map(|_| kind(&attempt(&auth, who, "wrong guess", "192.0.2.9"))));
            a
        };
        let real = answers("genuine");
        assert_eq!(real, answers("nobody-at-all"));
        assert_eq!(real[49..52], ["invalid", "locked 60", "locked 60"]);
        // The pair is far from its limit; the account-wide lock doubles.
        assert_eq!(real[52..54], ["invalid", "locked 120"]);
        assert_eq!(real[54..], ["locked 120"; 5]);
    }
}

#[test]
fn an_owner_address_is_forgotten_after_the_retention_period() {
    for store in stores() {
        let clock = clock();
        let auth = service(&store, clock.clone(), |_| {});
        register(&auth, "roamer");
        assert_eq!(kind(&attempt(&auth, "roamer", RIGHT, "198.51.100.7")), "ok");
        clock.advance(Duration::days(30) + Duration::seconds(1));
        assert_eq!(auth.purge_login_failures().expect("purge"), 1, "the address");
        assert_eq!(fail_from_many(&auth, "roamer", 0, 50), vec!["invalid"; 50]);
        assert_eq!(kind(&attempt(&auth, "roamer", RIGHT, "198.51.100.7")), "locked 60");
    }
}

#[test]
fn logins_without_an_address_are_one_unknown_address() {
    for store in stores() {
        let auth = service(&store, clock(), |_| {});
        register(&auth, "anon");
        let nowhere = |password: &str| {
            let input = LoginInput {
                username: Some("anon".into()),
                password: password.into(),
                ..Default::default()
            };
            kind(&auth.login(input, &RequestMeta::default()).map(drop))
        };
        let answers: Vec<_> = (0..6).map(|_| nowhere("wrong guess")).collect();
        assert_eq!(answers[4..], ["invalid", "locked 60"]);
        assert_eq!(nowhere(RIGHT), "locked 60");
        // Callers with an address are not behind that lock.
        assert_eq!(kind(&attempt(&auth, "anon", RIGHT, "198.51.100.7")), "ok");
    }
}
