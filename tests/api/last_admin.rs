//! The last active admin stays (issue 17, finding 11): demoting or
//! suspending it is a 409 LAST_ADMIN over HTTP and a clear failure on the
//! command line, and `sessiond user set-role` promotes and demotes.

use serde_json::json;

use crate::support::{CHROME_WINDOWS, Db, Server, create_admin};

crate::on_both_databases!(
    the_last_active_admin_cannot_be_demoted_or_suspended,
    set_role_on_the_command_line,
);

const PW: &str = "correct horse battery";

/// How long a change made by another process (the command line) may take
/// to be seen by the server (SPEC: within one second), plus slack.
const CROSS_PROCESS: std::time::Duration = std::time::Duration::from_millis(1200);

fn id_of(s: &Server, token: &str) -> String {
    let r = s.get("/api/auth/me", Some(token));
    r.expect(200, None);
    r.body["data"]["_id"].as_str().expect("_id").to_owned()
}

fn the_last_active_admin_cannot_be_demoted_or_suspended(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let root = create_admin(&s, "root", PW);
    let root_id = id_of(&s, &root.access);
    let patch = |id: &str, token: &str, body: serde_json::Value| {
        s.request("PATCH", &format!("/api/admin/users/{id}"), Some(token), Some(body))
    };
    for body in [
        json!({"role": "user"}),
        json!({"status": "suspended"}),
        json!({"role": "agent", "status": "active"}),
        json!({"role": "admin", "status": "suspended"}),
    ] {
        let r = patch(&root_id, &root.access, body.clone());
        r.expect(409, Some("LAST_ADMIN"));
        assert_eq!(r.body["message"], "Last active admin", "{body}");
        assert!(r.body["error"]["details"].is_string(), "{}", r.text);
    }
    // Nothing changed: still an active admin.
    s.get("/api/audit", Some(&root.access)).expect(200, None);
    let r = patch(&root_id, &root.access, json!({"role": "admin", "status": "active"}));
    r.expect(200, None);

    // With a second active admin, the first may step down.
    let bob_id = s.register("bob", PW)["_id"].as_str().expect("_id").to_owned();
    patch(&bob_id, &root.access, json!({"role": "admin"})).expect(200, None);
    let r = patch(&root_id, &root.access, json!({"role": "user"}));
    r.expect(200, None);
    assert_eq!(r.body["data"]["role"], "user");
    s.get("/api/audit", Some(&root.access)).expect(403, Some("FORBIDDEN"));

    // Now bob is the last one, for his own changes as for the command line.
    let bob = s.login("bob", PW, CHROME_WINDOWS);
    patch(&bob_id, &bob.access, json!({"status": "suspended"})).expect(409, Some("LAST_ADMIN"));
    let out = s.cli(&["user", "suspend", "--username", "bob"], None);
    assert!(!out.status.success(), "suspend of the last admin succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("last active admin"), "{err}");
    std::thread::sleep(CROSS_PROCESS);
    s.get("/api/audit", Some(&bob.access)).expect(200, None);

    // A suspended admin does not count as one.
    patch(&root_id, &bob.access, json!({"role": "admin", "status": "suspended"})).expect(200, None);
    patch(&bob_id, &bob.access, json!({"role": "user"})).expect(409, Some("LAST_ADMIN"));
    patch(&root_id, &bob.access, json!({"status": "active"})).expect(200, None);
    patch(&bob_id, &bob.access, json!({"role": "user"})).expect(200, None);
}

fn set_role_on_the_command_line(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let root = create_admin(&s, "root", PW);
    s.register("carol", PW);
    let carol = s.login("carol", PW, CHROME_WINDOWS);
    s.get("/api/audit", Some(&carol.access)).expect(403, Some("FORBIDDEN"));

    let out = s.cli(&["user", "set-role", "--username", "Carol", "--role", "admin"], None);
    assert!(out.status.success(), "set-role: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "user carol now has role admin");
    std::thread::sleep(CROSS_PROCESS);
    s.get("/api/audit", Some(&carol.access)).expect(200, None);

    // Two admins: root may go; then carol is the last and stays.
    let out = s.cli(&["user", "set-role", "--username", "root", "--role", "user"], None);
    assert!(out.status.success(), "set-role: {}", String::from_utf8_lossy(&out.stderr));
    let out = s.cli(&["user", "set-role", "--username", "carol", "--role", "user"], None);
    assert!(!out.status.success(), "demoted the last admin");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("last active admin"), "{err}");
    std::thread::sleep(CROSS_PROCESS);
    s.get("/api/audit", Some(&root.access)).expect(403, Some("FORBIDDEN"));
    s.get("/api/audit", Some(&carol.access)).expect(200, None);

    for (args, says) in [
        (["user", "set-role", "--username", "nobody", "--role", "admin"], "no such user"),
        (["user", "set-role", "--username", "root", "--role", "Boss"], "invalid --role"),
    ] {
        let out = s.cli(&args, None);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
