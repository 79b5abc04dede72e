//! The process's own end: SIGTERM finishes what is in flight, writes what
//! it holds behind and exits 0; `kill -9` during ingest loses nothing that
//! was acknowledged.

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::analytics::report;
use crate::support::{CHROME_WINDOWS, Db, Server, millis};

const PW: &str = "correct horse battery";

/// How long a stopping server may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

/// A request sent over a raw connection, so that it can be left half
/// sent: the body is written up to `split` bytes, the rest by [`finish`].
struct HalfSent {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HalfSent {
    fn start(s: &Server, path: &str, body: &Value) -> Self {
        let addr = s.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        let body = body.to_string().into_bytes();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).expect("send head");
        stream.write_all(first).expect("send half the body");
        stream.flush().expect("flush");
        Self { stream, rest: rest.to_vec() }
    }

    /// Sends the rest; the answer's status line and body.
    fn finish(mut self) -> (String, String) {
        self.stream.write_all(&self.rest).expect("send the rest of the body");
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).expect("read the answer");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
    }
}

/// SIGTERM: the listener closes, a request already being received is
/// answered, the `last_activity` held in memory is written, and the
/// process exits 0.
fn sigterm_finishes_in_flight_requests_flushes_and_exits_0(db: Db) {
    // With a 10 s idle timeout activity is marked every 5 s; marks are
    // written only at shutdown.
    let env =
        [("SESSIOND_SESSION_IDLE_TIMEOUT_SECS", "10"), ("SESSIOND_ACTIVITY_FLUSH_SECS", "3600")];
    let Some(mut s) = Server::start_with(db, &env) else { return };
    s.register("term_user", PW);
    let t = s.login("term_user", PW, CHROME_WINDOWS);
    let created = millis(&t.data["session"]["created_at"]);
    std::thread::sleep(Duration::from_millis(5200));
    // Marks the session active now: held in memory, written behind.
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    let visit =
        json!({"user": "term_user", "page": "/in-flight", "timespent": 7, "app": "default"});
    let in_flight = HalfSent::start(&s, "/api/pages/track", &visit);
    std::thread::sleep(Duration::from_millis(100));

    s.signal("TERM");
    // The listener closes at once; the process waits for the request.
    let addr = s.base.trim_start_matches("http://").parse().expect("address");
    let since = std::time::Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        assert!(since.elapsed() < Duration::from_secs(5), "a stopping server still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.wait_exit(Duration::ZERO).is_none(), "sessiond exited with a request in flight");
    let (status, body) = in_flight.finish();
    assert!(status.contains(" 200 "), "the in-flight request got {status}: {body}");
    let status = s.wait_exit(EXIT_WITHIN).expect("sessiond did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", s.log_text());

    // What was answered and what was held behind are in the database.
    let s = s.restart();
    let body = json!({"user": "term_user", "app": "default"});
    let stats = report(&s, "/api/pages/stats", Some(&t.access), &body);
    assert_eq!(stats["page_stats"]["/in-flight"]["visits"], 1, "{stats}");
    // Listed through another session: a request of the session itself
    // would mark it active again.
    let other = s.login("term_user", PW, CHROME_WINDOWS);
    let r = s.get("/api/sessions", Some(&other.access));
    r.expect(200, None);
    let listed = r.body["data"].as_array().expect("sessions");
    let mine = listed.iter().find(|v| v["id"] == t.session_id().as_str()).expect("the session");
    let last = millis(&mine["last_activity"]);
    assert!(
        last >= created + 5000,
        "last_activity {last} was not written at shutdown (login at {created})"
    );
}

/// `kill -9` while page visits and tracked sessions pour in: after a
/// restart every one that was answered 2xx is there.
fn kill_9_during_ingest_loses_no_acknowledged_event(db: Db) {
    let Some(mut s) = Server::start(db) else { return };
    s.register("kill_user", PW);
    let t = s.login_app("kill_user", PW, "kill_app");
    let pages = Mutex::new(Vec::new());
    let sessions = Mutex::new(Vec::new());
    let client = s.client().clone();
    std::thread::scope(|scope| {
        for worker in 0..6 {
            let (client, pages, url) = (&client, &pages, s.url("/api/pages/track"));
            scope.spawn(move || {
                for n in 0.. {
                    let page = format!("/k/{worker}/{n}");
                    let body = json!({"user": "kill_user", "page": page, "timespent": 1, "app": "kill_app"});
                    match client.post(&url).json(&body).send() {
                        Ok(r) if r.status().is_success() => pages.lock().expect("pages").push(page),
                        Ok(r) => panic!("track answered {} before the kill", r.status()),
                        Err(_) => return, // killed
                    }
                }
            });
        }
        let (client, sessions, url, token) =
            (&client, &sessions, s.url("/api/sessions/start"), &t.access);
        scope.spawn(move || {
            loop {
                let body = json!({"user": "kill_user", "status": "active", "app": "kill_app"});
                match client.post(&url).bearer_auth(token).json(&body).send() {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().expect("JSON");
                        let id = v["data"]["session_id"].as_str().expect("session_id").to_owned();
                        sessions.lock().expect("sessions").push(id);
                    }
                    Ok(r) => panic!("start answered {} before the kill", r.status()),
                    Err(_) => return,
                }
            }
        });
        // Kill once both kinds have been acknowledged a few times (on a
        // loaded machine that can take a while), and never before 1 s.
        let since = std::time::Instant::now();
        while since.elapsed() < Duration::from_secs(1)
            || (pages.lock().expect("pages").len() < 50
                || sessions.lock().expect("sessions").len() < 5)
                && since.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        s.signal("KILL");
        s.wait_exit(EXIT_WITHIN).expect("sessiond survived kill -9");
    });
    let (pages, sessions) =
        (pages.into_inner().expect("pages"), sessions.into_inner().expect("sessions"));
    assert!(pages.len() > 50 && !sessions.is_empty(), "too little traffic: {} pages", pages.len());

    let s = s.restart();
    // Every page of the report (at most 1,000 pages a call).
    let mut stored: HashSet<String> = HashSet::new();
    let mut body = json!({"user": "kill_user", "app": "kill_app"});
    loop {
        let stats = report(&s, "/api/pages/stats", Some(&t.access), &body);
        stored.extend(stats["page_stats"].as_object().expect("page_stats").keys().cloned());
        match stats["next_cursor"].as_str() {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => break,
        }
    }
    let lost: Vec<&String> = pages.iter().filter(|p| !stored.contains(p.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged visits lost: {lost:?}",
        lost.len(),
        pages.len()
    );
    for id in &sessions {
        let r = s.post(
            "/api/sessions/end",
            Some(&t.access),
            json!({"user": "kill_user", "session_id": id, "app": "kill_app"}),
        );
        r.expect(200, None);
    }
    eprintln!(
        "kill -9 ({db:?}): {} acknowledged visits and {} tracked sessions, all there after restart",
        pages.len(),
        sessions.len()
    );
}

crate::on_both_databases!(
    sigterm_finishes_in_flight_requests_flushes_and_exits_0,
    kill_9_during_ingest_loses_no_acknowledged_event,
);

/// The serving process runs with glibc's malloc tuned (it re-executes
/// itself once, keeping its pid), unless the environment sets
/// `GLIBC_TUNABLES` itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_runs_with_a_tuned_malloc_unless_told_otherwise() {
    let environ = |s: &Server| {
        let raw = std::fs::read(format!("/proc/{}/environ", s.pid())).expect("environ");
        raw.split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix("GLIBC_TUNABLES=").map(str::to_owned))
    };
    let Some(tuned) = Server::start(Db::Sqlite) else { return };
    tuned.get("/health/live", None).expect(200, None);
    // glibc applies the thresholds too but leaves only the tunables that
    // children may inherit in the variable it keeps (arena_max).
    let settings = environ(&tuned).expect("GLIBC_TUNABLES set");
    assert!(settings.contains("glibc.malloc.arena_max=2"), "{settings}");

    let own = "glibc.malloc.arena_max=4";
    let Some(theirs) = Server::start_with(Db::Sqlite, &[("GLIBC_TUNABLES", own)]) else { return };
    theirs.get("/health/live", None).expect(200, None);
    assert_eq!(environ(&theirs).as_deref(), Some(own));
}
