//! What a black-box attack found (issue 17), each held shut end to end:
//! the bearer-only refresh switch, several `Authorization` headers, token
//! answers no cache keeps, claims trusted no further than the session,
//! malformed HTTP that writes no ERROR lines, and logs and command-line
//! output that tools can read.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{CHROME_WINDOWS, Db, Server, binary};

crate::on_both_databases!(
    the_bearer_only_refresh_can_be_switched_off,
    several_authorization_headers_are_refused,
    answers_with_tokens_are_never_cached,
    claims_are_trusted_no_further_than_the_session,
    malformed_http_writes_no_error_lines,
    json_logs_are_json_on_every_line,
);

const PW: &str = "correct horse battery";
/// The HS256 secret of the servers that tests re-sign tokens for.
const SECRET: &str = "a-test-secret-of-forty-bytes-0123456789";

fn the_bearer_only_refresh_can_be_switched_off(db: Db) {
    // On by default: clients of the older API keep working.
    let Some(s) = Server::start(db) else { return };
    s.register("renewer", PW);
    let t = s.login("renewer", PW, CHROME_WINDOWS);
    let r = s.post("/api/auth/refresh", Some(&t.access), json!({}));
    r.expect(200, None);
    assert!(r.body["data"]["access_token"].is_string());

    let Some(s) = Server::start_with(db, &[("SESSIOND_BEARER_REFRESH", "false")]) else {
        return;
    };
    s.register("renewer", PW);
    let t = s.login("renewer", PW, CHROME_WINDOWS);
    // A live access token alone no longer renews itself, with or without
    // a body...
    s.post("/api/auth/refresh", Some(&t.access), json!({})).expect(401, Some("UNAUTHORIZED"));
    let r = s.send(s.client().post(s.url("/api/auth/refresh")).bearer_auth(&t.access));
    r.expect(401, Some("UNAUTHORIZED"));
    // ...while the token itself still works, and so does the refresh token.
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh})).expect(200, None);
}

fn several_authorization_headers_are_refused(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("doubled", PW);
    let t = s.login_app("doubled", PW, "web");
    let bearer = format!("Bearer {}", t.access);
    let twice = |req: reqwest::blocking::RequestBuilder, second: &str| {
        s.send(req.header("Authorization", &bearer).header("Authorization", second))
    };
    // The same valid token twice, or a valid one and another: 401 either way.
    for second in [bearer.as_str(), "Bearer x.y.z", "Basic dXNlcjpwYXNz"] {
        twice(s.client().get(s.url("/api/auth/me")), second).expect(401, Some("UNAUTHORIZED"));
        let refresh = s.client().post(s.url("/api/auth/refresh")).json(&json!({}));
        twice(refresh, second).expect(401, Some("UNAUTHORIZED"));
        let track = s.client().post(s.url("/api/pages/track")).json(&json!({
            "user": "doubled", "page": "/", "timespent": 1, "app": "web"
        }));
        twice(track, second).expect(401, Some("UNAUTHORIZED"));
    }
    // One header is fine.
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
}

fn answers_with_tokens_are_never_cached(db: Db) {
    let Some(s) = Server::start(db) else { return };
    s.register("uncached", PW);
    let login = s.post("/api/auth/login", None, json!({"username": "uncached", "password": PW}));
    login.expect(200, None);
    let access = login.body["data"]["access_token"].as_str().unwrap_or_default().to_owned();
    let refresh = login.body["data"]["refresh_token"].as_str().unwrap_or_default().to_owned();
    let rotated = s.post("/api/auth/refresh", None, json!({"refresh_token": refresh}));
    rotated.expect(200, None);
    let bearer_only = s.post("/api/auth/refresh", Some(&access), json!({}));
    bearer_only.expect(200, None);
    for r in [&login, &rotated, &bearer_only] {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{:?}", r.headers);
        assert_eq!(r.header("pragma"), Some("no-cache"), "{:?}", r.headers);
    }
}

/// The claims of `token` (unverified: the test made it).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// `claims` signed with the server's secret, as only a key holder could.
fn signed(claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("sign")
}

fn claims_are_trusted_no_further_than_the_session(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_JWT_SECRET", SECRET)]) else { return };
    s.register("claimant", PW);
    let t = s.login_app("claimant", PW, "web");
    let claims = claims_of(&t.access);
    let now = claims["iat"].as_i64().expect("iat");
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        signed(&c)
    };
    // The same claims re-signed verify: the refusals below are about the
    // changed claim, not the signature.
    s.get("/api/auth/me", Some(&signed(&claims))).expect(200, None);
    s.get("/api/auth/me", Some(&with("nbf", json!(now - 5)))).expect(200, None);

    let not_yet = with("nbf", json!(now + 3600));
    s.get("/api/auth/me", Some(&not_yet)).expect(401, Some("UNAUTHORIZED"));
    let from_next_year = with("iat", json!(now + 365 * 86_400));
    s.get("/api/auth/me", Some(&from_next_year)).expect(401, Some("UNAUTHORIZED"));

    // The app comes from the session: a token claiming another app is
    // refused everywhere, not trusted for that app.
    let other_app = with("app", json!("admin-console"));
    s.get("/api/auth/me", Some(&other_app)).expect(401, Some("UNAUTHORIZED"));
    let report = json!({"user": "claimant", "app": "admin-console"});
    s.post("/api/sessions/stats", Some(&other_app), report).expect(401, Some("UNAUTHORIZED"));
    let r = s.post("/api/auth/validate-token", Some(&t.access), json!({}));
    r.expect(200, None);
    assert_eq!(r.body["data"]["app"], "web");
}

/// Sends `request` raw and returns the status of the answer (0: none).
fn raw_status(s: &Server, request: &[u8]) -> u16 {
    let addr = s.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    // The server may answer and close before all of a large request is
    // written.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn malformed_http_writes_no_error_lines(db: Db) {
    let Some(s) = Server::start_with(db, &[("RUST_LOG", "info")]) else { return };
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let cases: [(&str, &[u8]); 5] = [
        ("NUL in a header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        ("negative length", b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        (
            "length and chunked",
            b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("1 MB header", huge.as_bytes()),
    ];
    for (what, request) in cases {
        let status = raw_status(&s, request);
        assert!((400..500).contains(&status), "{what}: answered {status}");
    }
    // A client that never finishes its headers is timed out.
    let status = raw_status(&s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    assert!(status == 408 || status == 0, "slowloris: answered {status}");
    // The server is unharmed, and wrote no ERROR line about any of it.
    s.get("/health/live", None).expect(200, None);
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log_text();
    assert!(!log.contains("ERROR"), "a client wrote ERROR lines:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file:\n{log}");
}

fn json_logs_are_json_on_every_line(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_LOG_FORMAT", "json"), ("RUST_LOG", "info")])
    else {
        return;
    };
    s.register("jsonic", PW);
    std::thread::sleep(Duration::from_millis(200));
    let stdout = s.stdout_lines();
    assert!(!stdout.is_empty(), "the listening line");
    let log = s.log_text();
    for line in stdout.iter().map(String::as_str).chain(log.lines()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
    }
}

#[test]
fn a_closed_pipe_ends_the_openapi_command_quietly() {
    let mut child = Command::new(binary())
        .arg("openapi")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sessiond openapi");
    let mut out = child.stdout.take().expect("stdout");
    let mut head = [0_u8; 16];
    out.read_exact(&mut head).expect("the document starts");
    drop(out);
    let result = child.wait_with_output().expect("exit");
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "exit {:?}: {err}", result.status);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn help_names_the_configuration() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = Command::new(binary()).args(args).output().expect("sessiond --help");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in ["DATABASE_URL", "SESSIOND_BIND", "SESSIOND_BEARER_REFRESH", ".env"] {
            assert!(help.contains(needle), "{args:?} lacks {needle}:\n{help}");
        }
    }
}
