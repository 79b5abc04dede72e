//! Starting the real `sessiond` binary on a fresh database and talking to it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database URL for `db`, or `None` when PostgreSQL is not
/// reachable outside CI (the store's test support says so loudly).
pub fn fresh_url(db: Db) -> Option<String> {
    match db {
        Db::Sqlite => Some(store::testing::fresh_sqlite_url()),
        Db::Postgres => store::testing::fresh_postgres_url(),
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sessiond"))
}

/// A running sessiond; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub database_url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Every line the server wrote to standard output so far.
    stdout: Arc<Mutex<Vec<String>>>,
    client: reqwest::blocking::Client,
}

/// An answer: status, headers and the body (JSON when it parses).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and, for errors, the envelope's code.
    #[track_caller]
    pub fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        if let Some(code) = code {
            assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
        }
        assert_envelope(self);
        self
    }
}

/// Every answer uses the envelope: success flag, status word, message,
/// timestamp in the canonical format and the request id of the header.
#[track_caller]
pub fn assert_envelope(r: &Resp) {
    let b = &r.body;
    let ok = r.status < 400;
    assert_eq!(b["success"], ok, "success flag; body: {}", r.text);
    assert_eq!(b["status"], if ok { "success" } else { "error" }, "body: {}", r.text);
    assert!(b["message"].is_string(), "message; body: {}", r.text);
    let ts = b["timestamp"].as_str().unwrap_or_default();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "timestamp {ts:?} is not RFC 3339 UTC with millis"
    );
    let rid = r.header("x-request-id").expect("X-Request-Id header");
    assert_eq!(b["requestId"], rid, "requestId repeats the header");
    if ok {
        assert!(b.get("data").is_some(), "success has data (maybe null): {}", r.text);
    } else {
        assert!(b["error"]["code"].is_string(), "error.code: {}", r.text);
        assert!(b["error"].get("details").is_some(), "error.details: {}", r.text);
    }
}

impl Server {
    /// Starts sessiond on `db` with defaults suited to tests.
    pub fn start(db: Db) -> Option<Self> {
        Self::start_with(db, &[])
    }

    /// Starts sessiond on a fresh `db` with extra environment.
    pub fn start_with(db: Db, env: &[(&str, &str)]) -> Option<Self> {
        let url = fresh_url(db)?;
        Some(Self::start_on(&url, env))
    }

    /// Starts sessiond on an existing database.
    pub fn start_on(database_url: &str, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let log = std::env::temp_dir().join(format!("sessiond-e2e-{}.log", uuid_like()));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("SESSIOND_BIND", "127.0.0.1:0")
            .env("SESSIOND_WORKERS", "2")
            .env("SESSIOND_RATE_LIMIT_ENABLED", "false")
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sessiond");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = listening_address(&line) {
                    let _ = tx.send(addr);
                }
                kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("sessiond did not start:\n{log}");
            }
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { child, base, database_url: database_url.to_owned(), env, log, stdout: lines, client }
    }

    /// Stops this process and starts another on the same database and
    /// environment.
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let env: Vec<(&str, &str)> =
            self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self::start_on(&self.database_url.clone(), &env)
    }

    /// Sends a signal (a name `kill` knows: `TERM`, `INT`, `KILL`).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{signal} {}", self.child.id());
    }

    /// Waits up to `within` for the process to exit; its exit status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let since = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sessiond") {
                return Some(status);
            }
            if since.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id (the same after sessiond re-executes itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines the server has written to standard output so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// What the server has written to its log (stderr) so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Sends a request and reads the answer.
    pub fn send(&self, req: reqwest::blocking::RequestBuilder) -> Resp {
        let r = req.send().expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("POST", path, token, Some(body))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req)
    }

    /// Registers `username` with `password`; asserts 201.
    pub fn register(&self, username: &str, password: &str) -> Value {
        let r = self.post(
            "/api/auth/register",
            None,
            json!({"username": username, "password": password}),
        );
        r.expect(201, None);
        r.body["data"].clone()
    }

    /// Logs in with a user agent; returns (access token, refresh token, data).
    pub fn login(&self, username: &str, password: &str, user_agent: &str) -> Tokens {
        let req = self
            .client
            .post(self.url("/api/auth/login"))
            .header("User-Agent", user_agent)
            .json(&json!({"username": username, "password": password}));
        let r = self.send(req);
        r.expect(200, None);
        Tokens {
            access: r.body["data"]["access_token"].as_str().expect("access_token").to_owned(),
            refresh: r.body["data"]["refresh_token"].as_str().expect("refresh_token").to_owned(),
            data: r.body["data"].clone(),
        }
    }

    /// Logs in for `app` (usage tracking's tokens carry the app); asserts 200.
    pub fn login_app(&self, username: &str, password: &str, app: &str) -> Tokens {
        let req = self
            .client
            .post(self.url("/api/auth/login"))
            .header("User-Agent", CHROME_WINDOWS)
            .json(&json!({"username": username, "password": password, "app": app}));
        let r = self.send(req);
        r.expect(200, None);
        Tokens {
            access: r.body["data"]["access_token"].as_str().expect("access_token").to_owned(),
            refresh: r.body["data"]["refresh_token"].as_str().expect("refresh_token").to_owned(),
            data: r.body["data"].clone(),
        }
    }

    /// Runs the binary's command line against this server's database.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        run_cli(&self.database_url, args, stdin)
    }
}

/// The base URL of a `sessiond listening on <url>` line, plain or (under
/// `SESSIOND_LOG_FORMAT=json`) as the message of a JSON line.
fn listening_address(line: &str) -> Option<String> {
    const PREFIX: &str = "sessiond listening on ";
    if let Some(url) = line.strip_prefix(PREFIX) {
        return Some(url.to_owned());
    }
    let v: Value = serde_json::from_str(line).ok()?;
    v["fields"]["message"].as_str()?.strip_prefix(PREFIX).map(str::to_owned)
}

/// Runs `sessiond <args>` with `DATABASE_URL` set.
pub fn run_cli(database_url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sessiond cli");
    if let (Some(mut input), Some(s)) = (child.stdin.take(), stdin) {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("cli output")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Tokens of one login.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub data: Value,
}

pub fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{n:x}-{}", std::process::id())
}

/// Typical user agents.
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// Generates one `#[test]` per database for each listed test function,
/// which takes a [`Db`].
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::support::Db::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::support::Db::Postgres) } )*
        }
    };
}

impl Tokens {
    /// The id of the device session this login created.
    pub fn session_id(&self) -> String {
        self.data["session"]["id"].as_str().expect("session.id").to_owned()
    }
}

/// Creates an administrator with the command line and logs it in.
pub fn create_admin(s: &Server, username: &str, password: &str) -> Tokens {
    let out = s.cli(
        &["user", "create", "--username", username, "--password-stdin", "--role", "admin"],
        Some(&format!("{password}\n")),
    );
    assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    s.login(username, password, CHROME_WINDOWS)
}

/// An answer's body without what differs between two identical requests
/// (`requestId`, `timestamp`), to compare error bodies.
pub fn without_volatile(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("requestId");
        o.remove("timestamp");
    }
    body
}

/// Milliseconds since the epoch of a timestamp in a response.
#[track_caller]
pub fn millis(ts: &Value) -> i64 {
    let s = ts.as_str().unwrap_or_else(|| panic!("not a timestamp: {ts}"));
    kernel::to_millis(kernel::parse_instant(s).unwrap_or_else(|e| panic!("{s:?}: {e}")))
}

/// Asserts a response timestamp is RFC 3339 UTC with milliseconds.
#[track_caller]
pub fn assert_timestamp(ts: &Value) {
    let s = ts.as_str().unwrap_or_default();
    assert!(
        s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.',
        "timestamp {ts} is not RFC 3339 UTC with millis"
    );
}
