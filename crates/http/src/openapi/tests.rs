//! The OpenAPI document: served as generated, deterministic, complete, and
//! describing every operation with examples and working links.

use crate::test_support::*;

#[actix_web::test]
async fn the_openapi_document_is_served_as_generated() {
    let f = fixture();
    let app = atest::init_service(app(web::Data::new(f.state.clone()))).await;
    let res = atest::call_service(
        &app,
        atest::TestRequest::get().uri("/api-docs/openapi.json").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = atest::read_body(res).await;
    assert_eq!(bytes, openapi_json().as_bytes());
}

/// Path, method, operation id, tag, query parameters, error statuses.
type DocumentedOp = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn the_openapi_document_is_deterministic_and_complete() {
    let json = openapi_json();
    assert_eq!(json, openapi_json());
    let doc: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "sessiond");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An access token from login or refresh"})
    );
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for c in error::ErrorCode::ALL {
        assert!(codes.as_array().is_some_and(|a| a.contains(&Value::from(c.as_str()))), "{c}");
    }
    let ops = [
        ("/", "get", false),
        ("/", "post", false),
        ("/api/health", "get", false),
        ("/api/health", "post", false),
        ("/health/live", "get", false),
        ("/health/ready", "get", false),
        ("/api/auth/health", "post", false),
        ("/api/auth/register", "post", false),
        ("/api/auth/login", "post", false),
        ("/api/auth/me", "get", true),
        ("/api/auth/refresh", "post", true),
        ("/api/auth/logout", "post", true),
        ("/api/auth/logout-all", "post", true),
        ("/api/v1/auth/logout-all", "post", true),
        ("/api/auth/validate-token", "post", true),
        ("/api/auth/token-info", "post", true),
        ("/api/admin/users/{user_id}", "patch", true),
        ("/api-docs/openapi.json", "get", false),
    ];
    // The session, admin and audit operations: path, method, operation id,
    // tag, query parameters, and the error statuses documented.
    let more: [DocumentedOp; 14] = [
        (
            "/api/sessions",
            "get",
            "listSessions",
            "sessions",
            &["include_inactive"],
            &["401", "405", "422"],
        ),
        (
            "/api/sessions",
            "delete",
            "deleteAllSessions",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        ("/api/sessions/{id}", "delete", "deleteSession", "sessions", &[], &["401", "404"]),
        (
            "/api/sessions/{id}/deactivate",
            "patch",
            "deactivateSession",
            "sessions",
            &[],
            &["401", "404"],
        ),
        (
            "/api/v1/auth/users/me/sessions",
            "get",
            "listMySessionsV1",
            "sessions",
            &["include_inactive"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions",
            "delete",
            "terminateAllMySessionsV1",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions/all",
            "delete",
            "terminateAllMySessionsV1All",
            "sessions",
            &["exclude_current"],
            &["401", "422"],
        ),
        (
            "/api/v1/auth/users/me/sessions/{id}",
            "delete",
            "terminateMySessionV1",
            "sessions",
            &[],
            &["401", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions",
            "get",
            "adminListUserSessions",
            "admin",
            &["include_inactive"],
            &["401", "403", "404", "422"],
        ),
        (
            "/api/admin/users/{user_id}/sessions",
            "delete",
            "adminDeleteAllUserSessions",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions/{id}",
            "get",
            "adminGetUserSession",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/admin/users/{user_id}/sessions/{id}",
            "delete",
            "adminDeleteUserSession",
            "admin",
            &[],
            &["401", "403", "404"],
        ),
        (
            "/api/audit/me",
            "get",
            "listMyAuditEvents",
            "audit",
            &["action", "from", "to", "limit", "cursor", "user_id"],
            &["401", "403", "422"],
        ),
        (
            "/api/audit",
            "get",
            "listAuditEvents",
            "audit",
            &["action", "from", "to", "limit", "cursor", "user_id"],
            &["401", "403", "422"],
        ),
    ];
    for (path, method, id, tag, query, errors) in more {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        assert_eq!(op["tags"], json!([tag]), "{method} {path}");
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, query, "{method} {path}");
        for status in errors.iter().chain(&["405", "500"]) {
            assert!(op["responses"][status].is_object(), "{method} {path} {status}");
        }
        assert!(op["requestBody"].is_null(), "{method} {path}");
    }
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    for tag in ["sessions", "admin", "audit"] {
        assert!(tags.contains(&tag), "{tag}");
    }
    for schema in [
        "SessionListEnvelope",
        "SessionEnvelope",
        "SessionListV1Envelope",
        "TerminatedCountEnvelope",
        "TerminatedSessionEnvelope",
        "AuditPageEnvelope",
        "AuditEventView",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let ops: Vec<(&str, &str, bool)> = ops
        .into_iter()
        .chain(more.iter().map(|(path, method, ..)| (*path, *method, true)))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, secured) in ops {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path}");
        assert!(ids.insert(op["operationId"].to_string()), "{method} {path}");
        assert_eq!(op["security"].is_array(), secured, "{method} {path}");
        assert!(op["responses"]["500"].is_object(), "{method} {path}");
    }
}

/// Every operation of the document, with its path and method.
fn documented_operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn every_operation_is_tagged_named_and_answers_with_examples() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    let ops = documented_operations(&doc);
    assert!(ops.len() >= 50, "{} operations", ops.len());
    let areas =
        ["auth", "sessions", "analytics", "pages", "health", "admin", "audit", "oauth", "keys"];
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in &ops {
        let id = op["operationId"].as_str().unwrap_or_default();
        // Generated clients turn these into method names: lowerCamelCase.
        assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{method} {path}: {id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{method} {path}: {id}");
        assert!(ids.insert(id.to_owned()), "{id} twice");
        let tags = op["tags"].as_array().cloned().unwrap_or_default();
        assert!(
            tags.len() == 1 && areas.iter().any(|a| tags[0] == *a),
            "{method} {path}: {tags:?}"
        );
        // The database behind every /api/ operation but the two health
        // checks, behind readiness and behind the OAuth endpoints.
        let stored =
            path.starts_with("/api/") && path != "/api/health" && path != "/api/auth/health"
                || path == "/health/ready"
                || path.starts_with("/oauth/");
        assert_eq!(op["responses"]["503"].is_object(), stored, "{method} {path} 503");
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let content = &response["content"]["application/json"];
            if content["schema"]["$ref"] != "#/components/schemas/ErrorEnvelope" {
                continue;
            }
            // The example is a real error envelope of its status; when the
            // description names a code, the example has that code.
            let example = &content["example"];
            assert_eq!(example["success"], false, "{method} {path} {status}");
            let code = example["error"]["code"].as_str().unwrap_or_default();
            let code = error::ErrorCode::ALL
                .into_iter()
                .find(|c| c.as_str() == code)
                .unwrap_or_else(|| panic!("{method} {path} {status}: no example code"));
            assert_eq!(code.status().as_str(), status, "{method} {path}");
            let description = response["description"].as_str().unwrap_or_default();
            let named = error::ErrorCode::ALL
                .into_iter()
                .filter_map(|c| description.find(c.as_str()).map(|at| (at, c)))
                .min_by_key(|(at, _)| *at);
            if let Some((_, named)) = named {
                assert_eq!(code, named, "{method} {path} {status}");
            }
        }
    }
    // Security exactly where a token is needed: never on the probes, the
    // document, the docs page, register and login.
    for (path, method, op) in &ops {
        let public = matches!(
            (path.as_str(), method.as_str()),
            ("/api/auth/register" | "/api/auth/login" | "/api/auth/health", "post")
        ) || !path.starts_with("/api/") && path != "/oauth/introspect"
            || path.starts_with("/api/health")
            || path.starts_with("/api/sessions/public-");
        if public {
            assert!(op["security"].is_null(), "{method} {path} needs no token");
        } else {
            assert!(op["security"].is_array(), "{method} {path} needs a token");
            assert!(op["responses"]["401"].is_object(), "{method} {path} 401");
        }
    }
    // A 405's example names the methods the path really answers.
    for (path, method, allow) in [
        ("/api/auth/login", "post", "POST"),
        ("/api/sessions", "get", "GET, HEAD, DELETE"),
        ("/", "get", "GET, HEAD, POST"),
    ] {
        let example = &doc["paths"][path][method]["responses"]["405"]["content"]["application/json"]
            ["example"];
        assert_eq!(example["error"]["details"], format!("This path answers only {allow}"));
    }
    // The audit actions are an enum in the view and in both filters.
    let actions: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    let view = &doc["components"]["schemas"]["AuditEventView"]["properties"]["action"];
    assert_eq!(view["enum"], json!(actions));
    for path in ["/api/audit", "/api/audit/me"] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().cloned();
        let action = params.into_iter().flatten().find(|p| p["name"] == "action");
        assert_eq!(action.map(|p| p["schema"]["enum"].clone()), Some(json!(actions)), "{path}");
    }
    let docs = &doc["paths"]["/docs"]["get"];
    assert!(docs["responses"]["200"]["content"]["text/html"].is_object(), "{docs}");
}

#[test]
fn links_name_real_operations_and_their_parameters() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    let ops = documented_operations(&doc);
    let by_id = |id: &str| ops.iter().find(|(.., op)| op["operationId"] == id).map(|(.., op)| op);
    let mut links = 0;
    for (path, method, op) in &ops {
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap_or_default();
                let target = by_id(target)
                    .unwrap_or_else(|| panic!("{method} {path} {status} {name}: no {target}"));
                let params: Vec<&str> = target["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for (param, expr) in link["parameters"].as_object().into_iter().flatten() {
                    assert!(params.contains(&param.as_str()), "{name}: {param} of {params:?}");
                    assert!(expr.as_str().is_some_and(|e| e.starts_with('$')), "{name}");
                }
            }
        }
    }
    assert!(links >= 10, "{links} links");
}

/// The usage-tracking operations: path, operation id, tag, security (`None` for
/// public, `Some(true)` for bearer, `Some(false)` for optional bearer),
/// and the error statuses documented.
type AnalyticsOp =
    (&'static str, &'static str, &'static str, Option<bool>, &'static [&'static str]);

#[test]
fn the_openapi_document_describes_usage_tracking() {
    let doc: Value = serde_json::from_str(&openapi_json()).unwrap_or(Value::Null);
    const BEARER: &[&str] = &["400", "401", "403", "413", "422"];
    const STEP: &[&str] = &["400", "401", "403", "404", "409", "413", "422"];
    const PUBLIC: &[&str] = &["400", "404", "413", "422"];
    const TRACK: &[&str] = &["400", "401", "403", "404", "413", "422"];
    let ops: [AnalyticsOp; 16] = [
        ("/api/sessions/start", "startSession", "analytics", Some(true), BEARER),
        ("/api/sessions/pause", "pauseSession", "analytics", Some(true), STEP),
        ("/api/sessions/resume", "resumeSession", "analytics", Some(true), STEP),
        ("/api/sessions/end", "endSession", "analytics", Some(true), STEP),
        ("/api/sessions/heatmap", "getHeatmap", "analytics", Some(true), BEARER),
        ("/api/sessions/most-active", "getMostActive", "analytics", Some(true), BEARER),
        ("/api/sessions/stats", "getStats", "analytics", Some(true), BEARER),
        ("/api/sessions/summary", "getSummary", "analytics", Some(true), BEARER),
        ("/api/sessions/public-summary", "getPublicSummary", "analytics", None, PUBLIC),
        ("/api/sessions/timeline", "getTimeline", "analytics", Some(true), BEARER),
        ("/api/sessions/public-timeline", "getPublicTimeline", "analytics", None, PUBLIC),
        ("/api/sessions/daily-time-spent", "getDailyTimeSpent", "analytics", Some(true), BEARER),
        ("/api/sessions/time-by-page", "getTimeByPage", "analytics", Some(true), BEARER),
        (
            "/api/sessions/session-timeline-detail",
            "getSessionTimelineDetail",
            "analytics",
            Some(true),
            BEARER,
        ),
        ("/api/pages/track", "trackPage", "pages", Some(false), TRACK),
        ("/api/pages/stats", "getPageStats", "pages", Some(true), BEARER),
    ];
    for (path, id, tag, security, errors) in ops {
        let item = doc["paths"][path].as_object().cloned().unwrap_or_default();
        assert_eq!(item.keys().collect::<Vec<_>>(), ["post"], "{path}");
        let op = &doc["paths"][path]["post"];
        assert_eq!(op["operationId"], id, "{path}");
        assert_eq!(op["tags"], json!([tag]), "{path}");
        let bearer = json!({"bearerAuth": []});
        match security {
            None => assert!(op["security"].is_null(), "{path}"),
            Some(true) => assert_eq!(op["security"], json!([bearer]), "{path}"),
            Some(false) => assert_eq!(op["security"], json!([{}, bearer]), "{path}"),
        }
        let body = &op["requestBody"]["content"]["application/json"];
        assert!(body["schema"]["$ref"].is_string(), "{path}");
        assert!(body["example"].is_object(), "{path}");
        assert_eq!(op["requestBody"]["required"], true, "{path}");
        let ok = &op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert!(ok.as_str().is_some_and(|r| r.ends_with("Envelope")), "{path}");
        for status in errors.iter().chain(&["405", "500"]) {
            assert!(op["responses"][status].is_object(), "{path} {status}");
        }
        if security.is_none() {
            assert!(op["responses"]["401"].is_null(), "{path}");
        }
    }
    let schemas = &doc["components"]["schemas"];
    // The heatmap envelope has `heatmap_data` beside `data`.
    let heatmap = &schemas["HeatmapEnvelope"];
    assert_eq!(heatmap["properties"]["data"]["$ref"], "#/components/schemas/HeatmapData");
    assert_eq!(heatmap["properties"]["heatmap_data"]["$ref"], "#/components/schemas/HeatmapData");
    assert!(
        heatmap["required"].as_array().is_some_and(|r| r.contains(&json!("heatmap_data"))),
        "{heatmap}"
    );
    // The usage-tracking examples are in the schemas.
    assert_eq!(schemas["HeatmapData"]["example"]["weekly_hourly"]["1"]["10"], 15);
    assert_eq!(schemas["SessionEndedData"]["example"]["total_duration"], "01:00:00");
    assert_eq!(schemas["StatsData"]["example"]["total_time_spent"], "112:15:00");
    assert_eq!(schemas["TrackBody"]["example"]["timespent"], 120);
    assert_eq!(schemas["TrackBody"]["properties"]["timespent"]["maximum"], 86_400);
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(tags.contains(&"analytics") && tags.contains(&"pages"));
}
