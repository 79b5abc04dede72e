//! The committed OpenAPI document is what the binary prints and serves.

use crate::support::{Db, Server, binary};

#[test]
fn committed_document_matches_the_binary() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let out =
        std::process::Command::new(binary()).arg("openapi").output().expect("sessiond openapi");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        committed.trim_end(),
        printed.trim_end(),
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    );

    let Some(s) = Server::start(Db::Sqlite) else { return };
    let served = s.get("/api-docs/openapi.json", None);
    assert_eq!(served.status, 200);
    let committed: serde_json::Value = serde_json::from_str(&committed).expect("json");
    assert_eq!(served.body, committed);
    assert!(committed["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/me",
        "/api/auth/refresh",
        "/api/auth/logout",
        "/api/auth/logout-all",
        "/api/v1/auth/logout-all",
        "/api/auth/validate-token",
        "/api/auth/token-info",
        "/api/auth/health",
        "/api/admin/users/{user_id}",
        "/",
        "/api/health",
        "/health/live",
        "/health/ready",
    ] {
        assert!(committed["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert!(committed["components"]["securitySchemes"].get("bearerAuth").is_some());
}
