//! Several sessiond processes on one PostgreSQL database behave as one
//! server: a revocation made through one is enforced by every other within
//! one second (in practice milliseconds: the database notifies them), and
//! they share the generated signing secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    CHROME_WINDOWS, Db, FIREFOX_LINUX, SAFARI_IPHONE, Server, create_admin, fresh_url,
};

const PW: &str = "correct horse battery";

/// The bound SPEC sets on how late another instance may see a revocation.
const BOUND: Duration = Duration::from_secs(1);

/// Three processes on one fresh PostgreSQL database (the first migrates),
/// or `None` when PostgreSQL is unreachable outside CI.
fn three() -> Option<(Server, Server, Server)> {
    let url = fresh_url(Db::Postgres)?;
    let a = Server::start_on(&url, &[]);
    let b = Server::start_on(&url, &[]);
    let c = Server::start_on(&url, &[]);
    Some((a, b, c))
}

/// Whether `token` is accepted by `s` (token-info answers 200 or 401).
fn accepted(s: &Server, token: &str) -> bool {
    let r = s.post("/api/auth/token-info", Some(token), json!({}));
    match r.status {
        200 => true,
        401 => false,
        other => panic!("token-info answered {other}: {}", r.text),
    }
}

/// Polls until `s` rejects `token`; the time that took, or a failure
/// after twice the bound.
#[track_caller]
fn time_to_rejection(s: &Server, token: &str, since: Instant) -> Duration {
    while accepted(s, token) {
        assert!(since.elapsed() < 2 * BOUND, "still accepted after {:?}", since.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    since.elapsed()
}

#[test]
fn revocation_through_one_instance_is_enforced_by_another_within_a_second() {
    let Some((a, b, c)) = three() else { return };
    a.register("mi_alice", PW);
    let t = a.login("mi_alice", PW, CHROME_WINDOWS);
    // A token signed by A is accepted by the others: they share the secret.
    // Accepting it also puts the session into C's cache.
    assert!(accepted(&b, &t.access));
    assert!(accepted(&c, &t.access));
    assert!(accepted(&c, &t.access));

    b.post("/api/auth/logout", Some(&t.access), json!({})).expect(200, None);
    let delay = time_to_rejection(&c, &t.access, Instant::now());
    eprintln!("revocation through B seen by C after {delay:?}");
    assert!(delay < BOUND, "C accepted a revoked session for {delay:?}");
    assert!(!accepted(&a, &t.access));
}

#[test]
fn logout_all_through_one_instance_ends_sessions_created_through_the_others() {
    let Some((a, b, c)) = three() else { return };
    a.register("mi_bob", PW);
    let ta = a.login("mi_bob", PW, CHROME_WINDOWS);
    let tb = b.login("mi_bob", PW, SAFARI_IPHONE);
    let tc = c.login("mi_bob", PW, FIREFOX_LINUX);
    for (s, t) in [(&a, &ta), (&b, &tb), (&c, &tc)] {
        assert!(accepted(s, &t.access));
    }
    c.post("/api/auth/logout-all", Some(&tc.access), json!({})).expect(200, None);
    let since = Instant::now();
    for (s, t) in [(&a, &ta), (&b, &tb), (&c, &tc), (&a, &tb), (&b, &ta)] {
        let delay = time_to_rejection(s, &t.access, since);
        assert!(delay < BOUND, "a session ended by logout-all lived on for {delay:?}");
    }
    let r = a.get("/api/sessions", Some(&a.login("mi_bob", PW, CHROME_WINDOWS).access));
    r.expect(200, None);
    let sessions = r.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 1, "only the new login is active: {}", r.text);
}

#[test]
fn deactivation_through_one_instance_stops_a_steady_stream_on_another_within_a_second() {
    let Some((a, _b, c)) = three() else { return };
    let admin = create_admin(&a, "mi_root", PW);
    let carol = a.register("mi_carol", PW);
    let carol_id = carol["_id"].as_str().expect("_id").to_owned();
    let t = c.login("mi_carol", PW, CHROME_WINDOWS);
    assert!(accepted(&c, &t.access));

    // C serves a steady stream of requests with the token; the first
    // rejection is timestamped.
    let stop = Arc::new(AtomicBool::new(false));
    let first_rejection: Arc<Mutex<Option<Instant>>> = Arc::default();
    let c = Arc::new(c);
    let stream = {
        let (c, stop, first) = (c.clone(), stop.clone(), first_rejection.clone());
        let token = t.access.clone();
        std::thread::spawn(move || {
            let mut served = 0u32;
            while !stop.load(Ordering::Acquire) {
                if accepted(&c, &token) {
                    served += 1;
                } else {
                    let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert_with(Instant::now);
                }
            }
            served
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    a.request(
        "PATCH",
        &format!("/api/admin/users/{carol_id}"),
        Some(&admin.access),
        Some(json!({"status": "suspended"})),
    )
    .expect(200, None);
    let acknowledged = Instant::now();
    std::thread::sleep(BOUND + Duration::from_millis(200));
    stop.store(true, Ordering::Release);
    let served = stream.join().expect("stream thread");
    assert!(served > 10, "the stream was not steady: {served} requests served");
    let first = first_rejection.lock().unwrap_or_else(|e| e.into_inner()).expect("no rejection");
    let delay = first.saturating_duration_since(acknowledged);
    eprintln!("deactivation through A: C's first rejection {delay:?} after the acknowledgement");
    assert!(delay < BOUND, "C kept serving a deactivated user for {delay:?}");
    assert!(!accepted(&c, &t.access));
}
