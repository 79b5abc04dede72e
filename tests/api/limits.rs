//! Rate limits and login lockout through the real binary, with small
//! configured limits: 429 RATE_LIMITED in the envelope with `Retry-After`,
//! `X-RateLimit-*` on every limited answer, locks that end, and exact
//! counting under parallel attempts.

use serde_json::json;

use crate::support::{Db, Server, assert_envelope};

crate::on_both_databases!(
    an_address_over_its_limit_gets_429_with_headers,
    a_locked_account_refuses_even_the_right_password_until_the_lock_ends,
    parallel_wrong_passwords_are_checked_exactly_up_to_the_limit
);

const PW: &str = "correct horse battery";

fn num(r: &crate::support::Resp, name: &str) -> Option<u64> {
    r.header(name)?.parse().ok()
}

fn an_address_over_its_limit_gets_429_with_headers(db: Db) {
    let env = [("SESSIOND_RATE_LIMIT_ENABLED", "true"), ("SESSIOND_RATE_LIMIT_IP_PER_MINUTE", "4")];
    let Some(s) = Server::start_with(db, &env) else { return };
    for remaining in [3, 2, 1, 0] {
        let r = s.get("/api/health", None);
        r.expect(200, None);
        assert_eq!(num(&r, "x-ratelimit-limit"), Some(4));
        assert_eq!(num(&r, "x-ratelimit-remaining"), Some(remaining));
        assert!(num(&r, "x-ratelimit-reset").is_some_and(|s| (1..=60).contains(&s)));
    }
    let r = s.post("/api/auth/login", None, json!({"username": "x", "password": "y"}));
    r.expect(429, Some("RATE_LIMITED"));
    assert_envelope(&r);
    assert!(num(&r, "retry-after").is_some_and(|s| (1..=15).contains(&s)), "{:?}", r.headers);
    assert_eq!(num(&r, "x-ratelimit-remaining"), Some(0));
    // Probes are never limited.
    s.get("/health/live", None).expect(200, None);
    s.get("/health/ready", None).expect(200, None);
}

fn a_locked_account_refuses_even_the_right_password_until_the_lock_ends(db: Db) {
    let env = [("SESSIOND_LOGIN_MAX_FAILURES", "3"), ("SESSIOND_LOGIN_LOCKOUT_SECS", "1")];
    let Some(s) = Server::start_with(db, &env) else { return };
    s.register("lockme", PW);
    let login = |who: &str, pw: &str| {
        s.post("/api/auth/login", None, json!({"username": who, "password": pw}))
    };
    for who in ["lockme", "nosuchuser"] {
        for _ in 0..3 {
            login(who, "wrong password").expect(401, Some("INVALID_CREDENTIALS"));
        }
        // Locked, and an unknown name is locked the same way.
        let r = login(who, PW);
        r.expect(429, Some("RATE_LIMITED"));
        assert_envelope(&r);
        assert_eq!(r.header("retry-after"), Some("1"), "{who}");
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    login("lockme", PW).expect(200, None);
}

fn parallel_wrong_passwords_are_checked_exactly_up_to_the_limit(db: Db) {
    let env = [("SESSIOND_LOGIN_MAX_FAILURES", "3")];
    let Some(s) = Server::start_with(db, &env) else { return };
    s.register("racer", PW);
    let barrier = std::sync::Barrier::new(12);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let body = json!({"username": "racer", "password": "wrong password"});
                    s.post("/api/auth/login", None, body).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let count = |code| statuses.iter().filter(|s| **s == code).count();
    assert_eq!((count(401), count(429)), (3, 9), "{statuses:?}");
}
