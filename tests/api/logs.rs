//! The log: a request id on every line of a request, JSON on demand, and
//! never a password, token or refresh token, even at the most verbose
//! level.

use serde_json::{Value, json};

use crate::support::{CHROME_WINDOWS, Db, Server};

crate::on_both_databases!(a_full_flow_leaves_no_secret_in_the_log);

const PW: &str = "s3cret-Passw0rd-that-must-not-leak";

fn a_full_flow_leaves_no_secret_in_the_log(db: Db) {
    let env = [("RUST_LOG", "trace"), ("SESSIOND_LOG_FORMAT", "json")];
    let Some(s) = Server::start_with(db, &env) else { return };
    s.register("quiet", PW);
    s.post("/api/auth/login", None, json!({"username": "quiet", "password": "wrong-guess-pw"}))
        .expect(401, Some("INVALID_CREDENTIALS"));
    let t = s.login("quiet", PW, CHROME_WINDOWS);
    s.get("/api/auth/me", Some(&t.access)).expect(200, None);
    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    r.expect(200, None);
    let access = r.body["data"]["access_token"].as_str().unwrap_or_default().to_owned();
    let refresh = r.body["data"]["refresh_token"].as_str().unwrap_or_default().to_owned();
    s.post("/api/auth/logout", Some(&access), json!({})).expect(200, None);
    // The old refresh token again: reuse detection logs too.
    let _ = s.post("/api/auth/refresh", None, json!({"refresh_token": t.refresh}));
    // Let the last lines reach the file.
    std::thread::sleep(std::time::Duration::from_millis(200));

    let log = s.log_text();
    assert!(log.contains("sessiond::access"), "access lines are written: {log}");
    for secret in [PW, "wrong-guess-pw", &t.access, &t.refresh, &access, &refresh] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    // The JWT's signature part alone must not be there either.
    let signature = t.access.rsplit('.').next().unwrap_or_default();
    assert!(signature.len() > 20 && !log.contains(signature));

    // JSON lines; every access line names its request.
    let access_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "sessiond::access")
        .collect();
    assert!(access_lines.len() >= 7, "{log}");
    for line in &access_lines {
        let id = line["span"]["request_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "no request id: {line}");
    }
}
