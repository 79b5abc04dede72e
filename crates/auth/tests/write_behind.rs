//! `last_activity` is written behind: many authenticated reads of one
//! session cause at most one write per interval, on a real database, with
//! an injected clock.

mod common;

use accounts::Role;
use auth::{AuthService, LoginInput, RegisterInput, RequestMeta};
use common::{service, stores};
use kernel::{Clock as _, Duration};
use sessions::SessionStore as _;

fn login(auth: &AuthService) -> (String, kernel::Uuid) {
    let input = RegisterInput {
        username: "walker".into(),
        password: "long enough".into(),
        ..Default::default()
    };
    auth.create_user(input, Role::user()).expect("user");
    let ok = auth
        .login(
            LoginInput {
                username: Some("walker".into()),
                password: "long enough".into(),
                ..Default::default()
            },
            &RequestMeta::default(),
        )
        .expect("login");
    (ok.access_token, ok.session.session.id)
}

#[test]
fn many_reads_write_activity_at_most_once_a_minute() {
    for store in stores() {
        let clock = common::clock();
        let auth = service(&store, clock.clone(), |_| {});
        let (token, sid) = login(&auth);
        let t0 = clock.now();

        // 3 minutes of traffic: a request every 200 ms, a flush every 2 s.
        let mut written = 0;
        for i in 1..=900 {
            clock.advance(Duration::milliseconds(200));
            let via_cache = auth.authenticate_cached(&token);
            match via_cache {
                Some(r) => drop(r.expect("authenticated from cache")),
                None => drop(auth.authenticate(&token).expect("authenticated")),
            }
            if i % 10 == 0 {
                written += auth.flush_activity().expect("flush");
            }
        }
        assert!((2..=3).contains(&written), "{written} writes in 3 minutes of constant use");
        let stored = store.get_session(sid).expect("get").expect("session").last_activity;
        assert!(stored >= t0 + Duration::minutes(2), "activity reached the database: {stored}");
    }
}

#[test]
fn unwritten_activity_keeps_an_idle_timeout_from_firing() {
    for store in stores() {
        let clock = common::clock();
        let auth =
            service(&store, clock.clone(), |s| s.lifetimes.idle = Some(Duration::seconds(10)));
        let (token, _) = login(&auth);
        // Used every 4 s for a minute and never flushed: the pending marks
        // must count, also after the cache entry expired.
        for _ in 0..15 {
            clock.advance(Duration::seconds(4));
            let answer = match auth.authenticate_cached(&token) {
                Some(r) => r,
                None => auth.authenticate(&token),
            };
            answer.expect("a session in use is not idle");
        }
        // Left alone past the idle timeout, it is rejected.
        clock.advance(Duration::seconds(11));
        assert!(auth.authenticate(&token).is_err());
    }
}
