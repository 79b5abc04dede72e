//! The error table of SPEC section 1: every bad input gets a clear answer
//! in the envelope, never a panic, a 5xx or a hang.

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, Server, run_cli};

crate::on_both_databases!(
    error_table,
    request_ids_and_paths,
    expired_and_forged_tokens,
    health_endpoints
);

const PW: &str = "correct horse battery";

fn error_table(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let post_raw = |ct: Option<&str>, body: &'static str| {
        let mut req = s.client().post(s.url("/api/auth/login")).body(body);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        s.send(req)
    };
    post_raw(Some("application/json"), "{\"username\": ").expect(400, Some("BAD_REQUEST"));
    post_raw(Some("application/json"), "not json").expect(400, Some("BAD_REQUEST"));
    post_raw(Some("text/plain"), "{\"username\":\"a\",\"password\":\"b\"}")
        .expect(400, Some("BAD_REQUEST"));
    let r = post_raw(Some("application/json"), "[1, 2]");
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(r.body["error"]["details"].is_object(), "{}", r.text);
    let r = post_raw(Some("application/json"), "{\"username\": 5, \"password\": \"x\"}");
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(r.body["error"]["details"]["username"].is_string(), "{}", r.text);
    let r = s.post("/api/auth/register", None, json!({"username": "someone"}));
    r.expect(422, Some("VALIDATION_ERROR"));
    assert!(r.body["error"]["details"]["password"].is_string(), "{}", r.text);

    // Oversize bodies: declared, and chunked (no Content-Length).
    let big = format!("{{\"username\":\"{}\",\"password\":\"x\"}}", "a".repeat(70_000));
    let r = s.send(
        s.client()
            .post(s.url("/api/auth/login"))
            .header("Content-Type", "application/json")
            .body(big.clone()),
    );
    r.expect(413, Some("PAYLOAD_TOO_LARGE"));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.into_bytes().chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::blocking::Body::new(ChunkReader::new(chunks));
    let r = s.send(
        s.client()
            .post(s.url("/api/auth/login"))
            .header("Content-Type", "application/json")
            .body(body),
    );
    r.expect(413, Some("PAYLOAD_TOO_LARGE"));
    // Just under the limit is fine (and merely invalid credentials).
    let fits = format!("{{\"username\":\"someone\",\"password\":\"{}\"}}", "p".repeat(1000));
    post_raw_owned(&s, fits).expect(401, Some("INVALID_CREDENTIALS"));

    s.get("/no/such/route", None).expect(404, Some("NOT_FOUND"));
    s.post("/api/nothing-here", None, json!({})).expect(404, Some("NOT_FOUND"));
    // Wrong method on a known path: 405, answered before authentication.
    s.get("/api/auth/logout", None).expect(405, Some("METHOD_NOT_ALLOWED"));
    s.request("DELETE", "/api/auth/login", None, None).expect(405, Some("METHOD_NOT_ALLOWED"));
    s.request("PUT", "/api/auth/me", None, None).expect(405, Some("METHOD_NOT_ALLOWED"));

    // Authentication header variants.
    s.send(s.client().get(s.url("/api/auth/me")).header("Authorization", "Basic dXNlcjpwYXNz"))
        .expect(401, Some("UNAUTHORIZED"));
    s.send(s.client().get(s.url("/api/auth/me")).header("Authorization", "Bearer"))
        .expect(401, Some("UNAUTHORIZED"));
    s.get("/api/auth/me", Some("not-a-jwt")).expect(401, Some("UNAUTHORIZED"));
}

fn post_raw_owned(s: &Server, body: String) -> crate::support::Resp {
    s.send(
        s.client()
            .post(s.url("/api/auth/login"))
            .header("Content-Type", "application/json")
            .body(body),
    )
}

fn request_ids_and_paths(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let r = s.send(s.client().get(s.url("/api/health")).header("X-Request-Id", "trace-1.2_3"));
    r.expect(200, None);
    assert_eq!(r.header("x-request-id"), Some("trace-1.2_3"));
    for bad in ["has space", "ü", &"x".repeat(129)] {
        let r = s.send(s.client().get(s.url("/api/health")).header("X-Request-Id", bad));
        r.expect(200, None);
        let id = r.header("x-request-id").unwrap_or_default();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "a new UUID replaces {bad:?}");
    }
    let r = s.get("/api/health", None);
    assert_eq!(r.header("x-request-id").map(str::len), Some(36));

    // Trailing slashes answer directly, no redirect.
    s.register("mallory", PW);
    let t = s.login("mallory", PW, CHROME_WINDOWS);
    let r = s.get("/api/auth/me/", Some(&t.access));
    r.expect(200, None);
    let r = s.post("/api/v1/auth/logout-all/", Some(&t.access), json!({}));
    r.expect(200, None);
    s.get("/api/health/", None).expect(200, None);
}

fn expired_and_forged_tokens(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_ACCESS_TOKEN_TTL_SECS", "1")]) else {
        return;
    };
    s.register("nina", PW);
    let t = s.login("nina", PW, CHROME_WINDOWS);
    assert_eq!(t.data["expires_in"], 1);

    // Bad signature: flip a character of the signature.
    let mut forged = t.access.clone();
    let last = forged.pop().unwrap_or('A');
    forged.push(if last == 'A' { 'B' } else { 'A' });
    s.get("/api/auth/me", Some(&forged)).expect(401, Some("UNAUTHORIZED"));
    // Signed with another secret by another server: refused.
    let Some(other) = Server::start_with(
        db,
        &[("SESSIOND_JWT_SECRET", "another-secret-that-is-long-enough-0123456789")],
    ) else {
        return;
    };
    other.register("nina", PW);
    let foreign = other.login("nina", PW, CHROME_WINDOWS);
    s.get("/api/auth/me", Some(&foreign.access)).expect(401, Some("UNAUTHORIZED"));

    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = s.get("/api/auth/me", Some(&t.access));
    r.expect(401, Some("UNAUTHORIZED"));
    // The refresh token outlives the access token.
    s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh})).expect(200, None);
}

fn health_endpoints(db: Db) {
    let Some(s) = Server::start(db) else { return };
    for method in ["GET", "POST"] {
        let r = s.request(method, "/", None, None);
        r.expect(200, None);
        assert_eq!(r.body["message"], "Session Server is running");
        let r = s.request(method, "/api/health", None, Some(json!({"app": "x"})));
        r.expect(200, None);
        assert_eq!(r.body["message"], "API is healthy");
    }
    let r = s.post("/api/auth/health", None, json!({"app": "your_app_name"}));
    r.expect(200, None);
    assert_eq!(r.body["message"], "Authentication service is healthy");
    s.get("/health/live", None).expect(200, None);
    s.get("/health/ready", None).expect(200, None);

    // Registration can be closed.
    let Some(closed) = Server::start_with(db, &[("SESSIOND_REGISTRATION", "closed")]) else {
        return;
    };
    closed
        .post("/api/auth/register", None, json!({"username": "oscar", "password": PW}))
        .expect(403, Some("FORBIDDEN"));
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let out = std::process::Command::new(crate::support::binary())
        .arg("migrate")
        .env("DATABASE_URL", store::testing::fresh_sqlite_url())
        .env("SESSIOND_ACCESS_TOKEN_TTL_SECS", "fifteen")
        .output()
        .expect("run sessiond");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SESSIOND_ACCESS_TOKEN_TTL_SECS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn migrate_and_user_create_from_the_command_line() {
    let url = store::testing::fresh_sqlite_url();
    let out = run_cli(&url, &["migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cli(
        &url,
        &["user", "create", "--username", "admin", "--password", PW, "--role", "admin"],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cli(&url, &["user", "create", "--username", "ADMIN", "--password", PW], None);
    assert!(!out.status.success(), "duplicate username must fail");
    let out = run_cli(&url, &["user", "create", "--username", "x", "--password", "short"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("username"));
}

/// A reader over chunks, so reqwest sends a chunked body without a length.
struct ChunkReader {
    chunks: std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl ChunkReader {
    fn new(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> Self {
        Self { chunks: chunks.into_iter(), current: std::io::Cursor::new(Vec::new()) }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.chunks.next() {
                Some(chunk) => self.current = std::io::Cursor::new(chunk?),
                None => return Ok(0),
            }
        }
    }
}
