//! The database goes away under traffic and comes back: sessiond answers
//! 503 within `SESSIOND_DB_TIMEOUT_SECS` instead of hanging, readiness
//! turns 503, a cached session is trusted for at most one second, service
//! resumes by itself when the database returns, and every write that was
//! answered 2xx is in the database afterwards.
//!
//! It runs on a private PostgreSQL cluster (see [`Cluster`]) so stopping
//! the server disturbs no other test.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::pg_cluster::Cluster;
use crate::support::{Server, Tokens};

/// `SESSIOND_DB_TIMEOUT_SECS` of the server under test.
const DB_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a cached session may be trusted without the database.
const CACHE_TRUST: Duration = Duration::from_secs(1);
/// Scheduling noise allowed on top of the bounds above (2 shared cores).
const SLACK: Duration = Duration::from_millis(750);
/// How long the database stays down.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// How soon after the database is back every kind of request must succeed.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

const PW: &str = "correct horse battery";
const APP: &str = "outage_app";
const USER: &str = "outage_user";

/// What the traffic does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `POST /api/pages/track`, public, group-committed.
    TrackPage,
    /// `POST /api/auth/register`.
    Register,
    /// `POST /api/sessions/start` with a token.
    StartSession,
    /// `POST /api/auth/token-info`: authentication only (the cache).
    TokenInfo,
}

const KINDS: [Kind; 4] = [Kind::TrackPage, Kind::Register, Kind::StartSession, Kind::TokenInfo];

/// One request and its answer.
#[derive(Debug, Clone)]
struct Outcome {
    kind: Kind,
    started: Instant,
    ended: Instant,
    /// 0 when no HTTP answer came (connection error or client timeout).
    status: u16,
    code: String,
    /// What a 2xx promises is stored: page path, username, session id.
    key: String,
}

impl Outcome {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn took(&self) -> Duration {
        self.ended - self.started
    }
}

/// Sends one request; never panics on transport errors.
fn attempt(s: &Server, kind: Kind, n: u64, token: &str) -> Outcome {
    let (path, body, mut key) = match kind {
        Kind::TrackPage => {
            let page = format!("/outage/{n}");
            let body = json!({"user": USER, "page": page, "timespent": 1, "app": APP});
            ("/api/pages/track", body, page)
        }
        Kind::Register => {
            let name = format!("outage_{n}");
            ("/api/auth/register", json!({"username": name, "password": PW}), name)
        }
        Kind::StartSession => {
            let body = json!({"user": USER, "status": "active", "app": APP});
            ("/api/sessions/start", body, String::new())
        }
        Kind::TokenInfo => ("/api/auth/token-info", json!({}), String::new()),
    };
    let mut req = s.client().post(s.url(path)).json(&body).timeout(Duration::from_secs(20));
    if kind != Kind::TrackPage && kind != Kind::Register {
        req = req.bearer_auth(token);
    }
    let started = Instant::now();
    let answer =
        req.send().map(|r| (r.status().as_u16(), r.json::<Value>().unwrap_or(Value::Null)));
    let ended = Instant::now();
    let (status, body) = answer.unwrap_or((0, Value::Null));
    if kind == Kind::StartSession {
        key = body["data"]["session_id"].as_str().unwrap_or_default().to_owned();
    }
    let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
    Outcome { kind, started, ended, status, code, key }
}

/// Runs one client per kind until `stop`, recording every outcome.
fn traffic(s: &Server, token: &str, stop: &AtomicBool, log: &Mutex<Vec<Outcome>>) {
    std::thread::scope(|scope| {
        for kind in KINDS {
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let o = attempt(s, kind, n, token);
                    let failed = !o.ok();
                    log.lock().expect("log").push(o);
                    if failed {
                        // Do not spin on errors that come back at once.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
    });
}

/// Polls `/health/ready` every 50 ms until it answers `status`; when.
fn await_readiness(s: &Server, status: u16, within: Duration) -> Instant {
    let since = Instant::now();
    loop {
        let r = s.client().get(s.url("/health/ready")).timeout(Duration::from_secs(20)).send();
        if r.as_ref().is_ok_and(|r| r.status().as_u16() == status) {
            return Instant::now();
        }
        assert!(
            since.elapsed() < within,
            "/health/ready did not answer {status} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// When the database was stopped and started, and when readiness saw it.
struct Timeline {
    stopping: Instant,
    stopped: Instant,
    ready_503: Instant,
    starting: Instant,
    started: Instant,
    ready_200: Instant,
}

/// Whether every kind of request has succeeded since `since`.
fn all_recovered(log: &Mutex<Vec<Outcome>>, since: Instant) -> bool {
    let log = log.lock().expect("log");
    KINDS.iter().all(|k| log.iter().any(|o| o.kind == *k && o.ok() && o.started >= since))
}

/// The rows of one column, as a set.
fn stored(cluster: &Cluster, sql: &str) -> std::collections::HashSet<String> {
    cluster.query(sql).lines().map(str::to_owned).collect()
}

#[test]
fn a_database_outage_gives_503_in_time_and_service_resumes_without_a_restart() {
    let Some(cluster) = Cluster::start() else { return };
    let timeout = DB_TIMEOUT.as_secs().to_string();
    let s = Server::start_on(&cluster.url(), &[("SESSIOND_DB_TIMEOUT_SECS", &timeout)]);
    s.register(USER, PW);
    let t: Tokens = s.login_app(USER, PW, APP);

    let stop = AtomicBool::new(false);
    let log = Mutex::new(Vec::new());
    let Timeline { stopping, stopped, ready_503, starting, started, ready_200 } =
        std::thread::scope(|scope| {
            scope.spawn(|| traffic(&s, &t.access, &stop, &log));
            std::thread::sleep(Duration::from_millis(1500));

            let stopping = Instant::now();
            cluster.stop_server();
            let stopped = Instant::now();
            let ready_503 = await_readiness(&s, 503, DB_TIMEOUT + SLACK + Duration::from_secs(1));
            s.get("/health/ready", None).expect(503, Some("SERVICE_UNAVAILABLE"));
            std::thread::sleep(DOWN_FOR.saturating_sub(stopped.elapsed()));

            let starting = Instant::now();
            cluster.start_server();
            let started = Instant::now();
            let ready_200 = await_readiness(&s, 200, RECOVERY_BOUND);
            // Let every kind of request succeed again before stopping.
            while started.elapsed() < RECOVERY_BOUND && !all_recovered(&log, started) {
                std::thread::sleep(Duration::from_millis(50));
            }
            stop.store(true, Ordering::Release);
            Timeline { stopping, stopped, ready_503, starting, started, ready_200 }
        });
    let log = log.into_inner().expect("log");

    // No answer other than success or 503, and never a hang.
    for o in &log {
        assert!(
            o.ok() || (o.status == 503 && o.code == "SERVICE_UNAVAILABLE"),
            "{o:?}: only 2xx or 503 SERVICE_UNAVAILABLE may be answered"
        );
        if o.started >= stopped && o.ended <= starting {
            assert!(
                o.took() <= DB_TIMEOUT + SLACK,
                "{o:?} took {:?} while the database was down",
                o.took()
            );
        }
    }
    // Once the outage is known (readiness said so), requests do not wait
    // for the timeout: each would hold a thread that long.
    for o in log.iter().filter(|o| o.started >= ready_503 && o.ended <= starting) {
        assert!(
            o.took() < DB_TIMEOUT / 2,
            "{o:?} waited {:?} for a database known to be down",
            o.took()
        );
    }
    // While the database is down nothing is written, and a cached session
    // is trusted for one second at most.
    for o in log.iter().filter(|o| o.ok() && o.started >= stopped && o.ended <= starting) {
        assert_eq!(o.kind, Kind::TokenInfo, "{o:?} succeeded without a database");
        assert!(
            o.started - stopped <= CACHE_TRUST + SLACK,
            "a cached session was trusted {:?} after the database stopped",
            o.started - stopped
        );
    }
    let first_503 = log
        .iter()
        .filter(|o| o.status == 503 && o.ended >= stopping)
        .map(|o| o.ended)
        .min()
        .expect("no request failed while the database was down");
    let first_2xx_again = |kind: Kind| {
        log.iter()
            .filter(|o| o.kind == kind && o.ok() && o.started >= started)
            .map(|o| o.ended - starting)
            .min()
            .unwrap_or_else(|| panic!("{kind:?} never succeeded after the database came back"))
    };

    // Every acknowledged write is there.
    let pages = stored(&cluster, &format!("SELECT page FROM page_visits WHERE app = '{APP}'"));
    let users = stored(&cluster, "SELECT username FROM users");
    let sessions = stored(&cluster, "SELECT id FROM tracked_sessions");
    let mut acknowledged = 0;
    for o in log.iter().filter(|o| o.ok()) {
        let table = match o.kind {
            Kind::TrackPage => &pages,
            Kind::Register => &users,
            Kind::StartSession => &sessions,
            Kind::TokenInfo => continue,
        };
        assert!(table.contains(&o.key), "{o:?} was acknowledged but is not in the database");
        acknowledged += 1;
    }

    let ms = |d: Duration| d.as_millis();
    let slowest_503 =
        log.iter().filter(|o| o.status == 503).map(Outcome::took).max().unwrap_or_default();
    eprintln!(
        "outage: {} requests, {acknowledged} acknowledged writes all stored; \
         database stop took {} ms; first 503 {} ms after the stop began; slowest 503 took {} ms; \
         readiness 503 after {} ms; database start took {} ms; readiness 200 {} ms \
         after the start began; first 2xx again (ms after the start began): \
         track {}, register {}, start session {}, token-info {}",
        log.len(),
        ms(stopped - stopping),
        ms(first_503 - stopping),
        ms(slowest_503),
        ms(ready_503 - stopping),
        ms(started - starting),
        ms(ready_200 - starting),
        ms(first_2xx_again(Kind::TrackPage)),
        ms(first_2xx_again(Kind::Register)),
        ms(first_2xx_again(Kind::StartSession)),
        ms(first_2xx_again(Kind::TokenInfo)),
    );
    for kind in KINDS {
        assert!(first_2xx_again(kind) <= RECOVERY_BOUND, "{kind:?} took too long to recover");
    }
}
