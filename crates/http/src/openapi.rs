//! The OpenAPI 3.1 document: every route with its body, its success
//! envelope and the error envelopes it can answer.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{self as oa, ContentBuilder, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

pub(crate) use crate::envelope::ErrorEnvelope;
use crate::envelope::{ErrorBody, Null};
use crate::error::{ApiError, ErrorCode, ErrorDetails};
use crate::routes::analytics::{
    PageReportBody, PagedReportBody, ReportBody, StartBody, TransitionBody,
};
use crate::routes::pages::TrackBody;
use crate::routes::{
    admin, analytics, audit, auth, docs, health, keys, oauth, pages, sessions, verify,
};
use crate::views::{
    AuditEventView, AuditPageData, ClaimsView, DailyTimeData, DateRangeView, DetailEntryView,
    DetailTimelineData, DeviceInfoView, HeatmapData, LoginData, LogoutAllData, MostActiveData,
    PageStatView, PageStatsData, PageTimeData, PageTrackedData, RefreshData, SessionEndedData,
    SessionEventView, SessionListV1Data, SessionPausedData, SessionResumedData, SessionStartedData,
    SessionView, StatsData, SummaryData, TerminatedCountData, TerminatedSessionData, TimelineData,
    TimelineEntryView, UserView, ValidateTokenData,
};
use ::auth::AuthError;

/// Declares a success-envelope schema whose `data` is `$data`. These types
/// only describe the wire format (the envelope is written generically), so
/// they are never built.
macro_rules! envelope_schema {
    ($(#[doc = $doc:literal] $name:ident => $data:ty;)+) => {$(
        #[doc = $doc]
        #[derive(ToSchema)]
        #[expect(dead_code, reason = "describes the wire format for OpenAPI only")]
        pub(crate) struct $name {
            /// Always `true`.
            success: bool,
            /// Always `"success"`.
            #[schema(example = "success")]
            status: String,
            /// What happened, for people.
            message: String,
            /// The payload.
            data: $data,
            /// When the answer was made (RFC 3339, UTC, milliseconds).
            #[schema(example = "2024-04-05T12:00:00.000Z")]
            timestamp: String,
            /// The request id, as in the `X-Request-Id` header.
            #[schema(rename = "requestId")]
            request_id: String,
        }
    )+};
}

envelope_schema! {
    /// A success envelope without data (`data` is null).
    EmptyEnvelope => Null;
    /// The signing keys (no private material).
    KeyListEnvelope => keys::KeyListData;
    /// A success envelope carrying a user view.
    UserEnvelope => UserView;
    /// The answer to a login.
    LoginEnvelope => LoginData;
    /// The answer to a refresh.
    RefreshEnvelope => RefreshData;
    /// The answer to logout-all.
    LogoutAllEnvelope => LogoutAllData;
    /// The answer to validate-token.
    ValidateTokenEnvelope => ValidateTokenData;
    /// A success envelope carrying a token's claims.
    ClaimsEnvelope => ClaimsView;
    /// A success envelope carrying a list of sessions (the `/api/sessions` form).
    SessionListEnvelope => Vec<SessionView>;
    /// A success envelope carrying one session.
    SessionEnvelope => SessionView;
    /// A success envelope carrying the `/api/v1` session listing.
    SessionListV1Envelope => SessionListV1Data;
    /// The answer to deleting (terminating) many sessions.
    TerminatedCountEnvelope => TerminatedCountData;
    /// The answer to the `/api/v1` form's terminating one session.
    TerminatedSessionEnvelope => TerminatedSessionData;
    /// A success envelope carrying a page of audit events.
    AuditPageEnvelope => AuditPageData;
    /// The answer to starting a tracked session.
    SessionStartedEnvelope => SessionStartedData;
    /// The answer to pausing a tracked session.
    SessionPausedEnvelope => SessionPausedData;
    /// The answer to resuming a tracked session.
    SessionResumedEnvelope => SessionResumedData;
    /// The answer to ending a tracked session.
    SessionEndedEnvelope => SessionEndedData;
    /// The most-active report.
    MostActiveEnvelope => MostActiveData;
    /// The stats report.
    StatsEnvelope => StatsData;
    /// The summary report (also the public one).
    SummaryEnvelope => SummaryData;
    /// A page of the timeline (also the public one).
    TimelineEnvelope => TimelineData;
    /// The daily-time-spent report.
    DailyTimeEnvelope => DailyTimeData;
    /// The time-by-page report.
    TimeByPageEnvelope => PageTimeData;
    /// A page of the detailed session timeline.
    DetailTimelineEnvelope => DetailTimelineData;
    /// The answer to tracking a page visit.
    PageTrackedEnvelope => PageTrackedData;
    /// The page-stats report.
    PageStatsEnvelope => PageStatsData;
}

/// The heatmap answer: clients read `heatmap_data` at the top level, so
/// it is there, and `data` holds the same object.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format for OpenAPI only")]
pub(crate) struct HeatmapEnvelope {
    /// Always `true`.
    success: bool,
    /// Always `"success"`.
    #[schema(example = "success")]
    status: String,
    /// What happened, for people.
    #[schema(example = "Heatmap retrieved successfully")]
    message: String,
    /// The heatmap.
    data: HeatmapData,
    /// The same object as `data` (where clients read it).
    heatmap_data: HeatmapData,
    /// When the answer was made (RFC 3339, UTC, milliseconds).
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    timestamp: String,
    /// The request id, as in the `X-Request-Id` header.
    #[schema(rename = "requestId")]
    request_id: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        version = env!("CARGO_PKG_VERSION"),
        description = "Authentication, device sessions and usage analytics in one server. \
            Every response is an envelope: `success`, `status`, `message`, `data` or `error`, \
            `timestamp` and `requestId` (also in the `X-Request-Id` header).",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        health::root,
        health::root_post,
        health::api_health,
        health::api_health_post,
        health::live,
        health::ready,
        health::metrics,
        health::auth_health,
        docs::openapi_json,
        docs::page,
        auth::register,
        auth::login,
        auth::me,
        auth::refresh,
        auth::logout,
        auth::logout_all,
        auth::change_password,
        auth::logout_all_v1,
        auth::validate_token,
        auth::token_info,
        verify::verify,
        verify::verify_post,
        oauth::introspect,
        oauth::revoke,
        keys::jwks,
        keys::rotate,
        admin::update_user,
        admin::list_user_sessions,
        admin::delete_all_user_sessions,
        admin::get_user_session,
        admin::delete_user_session,
        sessions::list,
        sessions::delete_all,
        sessions::delete,
        sessions::deactivate,
        sessions::list_v1,
        sessions::terminate_all_v1,
        sessions::terminate_all_v1_all,
        sessions::terminate_v1,
        audit::mine,
        audit::everyone,
        analytics::start,
        analytics::pause,
        analytics::resume,
        analytics::end,
        analytics::heatmap,
        analytics::most_active,
        analytics::stats,
        analytics::summary,
        analytics::public_summary,
        analytics::timeline,
        analytics::public_timeline,
        analytics::daily_time_spent,
        analytics::time_by_page,
        analytics::session_timeline_detail,
        pages::track,
        pages::stats,
    ),
    components(schemas(
        ErrorEnvelope, ErrorBody, ErrorCode, ErrorDetails,
        EmptyEnvelope, UserEnvelope, LoginEnvelope, RefreshEnvelope, LogoutAllEnvelope,
        ValidateTokenEnvelope, ClaimsEnvelope,
        SessionListEnvelope, SessionEnvelope, SessionListV1Envelope, TerminatedCountEnvelope,
        TerminatedSessionEnvelope, AuditPageEnvelope,
        UserView, SessionView, DeviceInfoView, ClaimsView, LoginData, RefreshData,
        LogoutAllData, ValidateTokenData, SessionListV1Data, TerminatedCountData,
        TerminatedSessionData, AuditEventView, AuditPageData,
        StartBody, TransitionBody, ReportBody, PagedReportBody, PageReportBody, TrackBody,
        SessionStartedEnvelope, SessionPausedEnvelope, SessionResumedEnvelope,
        SessionEndedEnvelope, HeatmapEnvelope, MostActiveEnvelope, StatsEnvelope,
        SummaryEnvelope, TimelineEnvelope, DailyTimeEnvelope, TimeByPageEnvelope,
        DetailTimelineEnvelope, PageTrackedEnvelope, PageStatsEnvelope,
        SessionStartedData, SessionPausedData, SessionResumedData, SessionEndedData,
        HeatmapData, DateRangeView, MostActiveData, StatsData, SummaryData, TimelineData,
        TimelineEntryView, DailyTimeData, PageTimeData, DetailTimelineData, DetailEntryView,
        SessionEventView, PageTrackedData, PageStatsData, PageStatView,
        oauth::TokenForm, oauth::OAuthError, oauth::IntrospectionAnswer,
        keys::JwksDocument, keys::JwkDocument, keys::KeyView, keys::KeyListData, KeyListEnvelope,
    )),
    modifiers(&Security, &CommonErrors, &OptionalBodies, &ErrorExamples, &Links),
    tags(
        (name = "health", description = "Liveness, readiness and the clients' health checks"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "sessions", description = "The caller's device sessions (the `/api/sessions` and `/api/v1` forms)"),
        (name = "admin", description = "Administration (admin role)"),
        (name = "keys", description = "The public keys tokens are signed with (JWKS, RFC 7517)"),
        (name = "audit", description = "The audit trail of security events"),
        (name = "analytics", description = "Usage tracking: tracked sessions and their reports"),
        (name = "pages", description = "Page visits and their statistics"),
        (name = "oauth", description = "Token introspection (RFC 7662) and revocation (RFC 7009): form bodies, answers in the RFCs' shapes (not enveloped)"),
    )
)]
struct ApiDoc;

/// The `bearerAuth` scheme the authenticated operations name.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut oa::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from login or refresh"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basicAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "An introspection client of `SESSIOND_INTROSPECTION_CLIENTS` (id and \
                         secret, form-encoded before Base64 as RFC 6749 §2.3.1 says)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "verifyCookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "sessiond_at",
                    "An access token in the cookie `SESSIOND_VERIFY_COOKIE` names (off by \
                     default; the name here is an example)",
                ),
            )),
        );
    }
}

/// Answers every operation can give (a wrong method, a server fault),
/// those of every operation that reads a body, and 429 on rate-limited
/// paths.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut oa::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(oa::Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build()
        };
        const ALWAYS: [(&str, &str); 2] = [
            ("405", "METHOD_NOT_ALLOWED: the path does not answer this method"),
            ("500", "INTERNAL_ERROR: an unexpected fault (never with details)"),
        ];
        const WITH_BODY: [(&str, &str); 3] = [
            ("400", "BAD_REQUEST: the body is not JSON, or not declared as JSON"),
            ("413", "PAYLOAD_TOO_LARGE: the body is larger than 64 KiB"),
            ("422", "VALIDATION_ERROR: a field is missing, of the wrong type or invalid"),
        ];
        const LIMITED: [(&str, &str); 1] = [(
            "429",
            "RATE_LIMITED: over a rate limit (or a login lock); `Retry-After` says when to retry",
        )];
        const STORED: [(&str, &str); 1] = [(
            "503",
            "SERVICE_UNAVAILABLE: the database cannot be reached; retry shortly (answered at once, \
             not after a timeout)",
        )];
        for (path, item) in doc.paths.paths.iter_mut() {
            // The OAuth endpoints document their own answers, in the RFCs'
            // shapes rather than the envelope.
            if path.starts_with("/oauth/") {
                continue;
            }
            let limited: &[(&str, &str)] =
                if crate::rate_limit::limited(path) { &LIMITED } else { &[] };
            let stored: &[(&str, &str)] = if uses_database(path) { &STORED } else { &[] };
            for op in operations(item) {
                let body: &[(&str, &str)] =
                    if op.request_body.is_some() { &WITH_BODY } else { &[] };
                let responses = &mut op.responses.responses;
                for (status, description) in ALWAYS.iter().chain(body).chain(limited).chain(stored)
                {
                    // Forward auth answers every method.
                    if *status == "405" && path == "/api/auth/verify" {
                        continue;
                    }
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| error(description).into());
                }
            }
        }
    }
}

/// Whether answering `path` reads or writes the database, so that it
/// answers 503 while the database is down: everything under `/api/` but the
/// two health checks, which answer from the process alone.
fn uses_database(path: &str) -> bool {
    path.starts_with("/api/") && !matches!(path, "/api/health" | "/api/auth/health")
}

/// Every error answer in the document shows an example envelope, made by
/// the code that makes the real answers (so an example cannot drift from
/// the wire), with the timestamp and request id of the documented examples.
struct ErrorExamples;

impl Modify for ErrorExamples {
    fn modify(&self, doc: &mut oa::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let allow = allowed_methods(item);
            for op in operations(item) {
                for (status, response) in op.responses.responses.iter_mut() {
                    let oa::RefOr::T(response) = response else { continue };
                    let Some(oa::RefOr::T(content)) = response.content.get_mut("application/json")
                    else {
                        continue;
                    };
                    let is_error = matches!(&content.schema, Some(oa::RefOr::Ref(r)) if r.ref_location.ends_with("/ErrorEnvelope"));
                    if !is_error || content.example.is_some() {
                        continue;
                    }
                    let Some(e) = example_error(path, &allow, status, &response.description) else {
                        continue;
                    };
                    content.example = Some(crate::envelope::error_json(
                        &e,
                        "2024-04-05T12:00:00.000Z",
                        "550e8400-e29b-41d4-a716-446655440000",
                    ));
                }
            }
        }
    }
}

/// The methods a path answers, as its 405 names them in `Allow` (`GET`
/// always comes with `HEAD`).
fn allowed_methods(item: &oa::path::PathItem) -> String {
    [
        (item.get.is_some(), "GET, HEAD"),
        (item.post.is_some(), "POST"),
        (item.put.is_some(), "PUT"),
        (item.delete.is_some(), "DELETE"),
        (item.patch.is_some(), "PATCH"),
    ]
    .into_iter()
    .filter_map(|(has, methods)| has.then_some(methods))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The error a response of `status` on `path` shows: the code its
/// description names first (`"INVALID_CREDENTIALS: …"`), else the usual one
/// for the status.
fn example_error(path: &str, allow: &str, status: &str, description: &str) -> Option<ApiError> {
    let status: u16 = status.parse().ok()?;
    let named = ErrorCode::ALL
        .into_iter()
        .filter(|c| c.status().as_u16() == status)
        .filter_map(|c| description.find(c.as_str()).map(|at| (at, c)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, c)| c);
    // Otherwise the usual code of the status, made specific by the path.
    let code = named.or_else(|| {
        let usual = ErrorCode::ALL.into_iter().find(|c| c.status().as_u16() == status)?;
        Some(match usual {
            ErrorCode::NotFound if path.contains("/users/{user_id}") => ErrorCode::UserNotFound,
            ErrorCode::NotFound if path.contains("session") => ErrorCode::SessionNotFound,
            ErrorCode::Unauthorized if path.ends_with("/login") => ErrorCode::InvalidCredentials,
            code => code,
        })
    })?;
    Some(match code {
        ErrorCode::BadRequest => ApiError::bad_request("Content-Type must be application/json"),
        ErrorCode::ValidationError => ApiError::invalid_field("password", "is required"),
        ErrorCode::Unauthorized => ApiError::unauthorized(crate::authn::MISSING_TOKEN),
        ErrorCode::InvalidCredentials => AuthError::InvalidCredentials.into(),
        ErrorCode::RefreshTokenReused => AuthError::RefreshReused.into(),
        ErrorCode::Forbidden if description.contains("suspended") => AuthError::Suspended.into(),
        ErrorCode::Forbidden if description.contains("Registration") => {
            AuthError::RegistrationClosed.into()
        }
        ErrorCode::Forbidden if path.ends_with("/token-info") => {
            ApiError::forbidden("The token was not issued for this app")
        }
        ErrorCode::Forbidden => ApiError::forbidden("Admin role required"),
        ErrorCode::NotFound => ApiError::route_not_found(),
        ErrorCode::SessionNotFound => ApiError::session_not_found("access"),
        ErrorCode::UserNotFound => ApiError::user_not_found(),
        // As `ApiError::method_not_allowed` words it, for this path's methods.
        ErrorCode::MethodNotAllowed => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "Method not allowed",
            ApiError::not_allowed_details(allow),
        ),
        ErrorCode::UsernameTaken => AuthError::UsernameTaken.into(),
        ErrorCode::EmailTaken => AuthError::EmailTaken.into(),
        ErrorCode::LastAdmin => AuthError::LastAdmin.into(),
        ErrorCode::InvalidStateTransition => match path.rsplit('/').next() {
            Some("pause") => ApiError::invalid_transition("pause", "paused"),
            Some("resume") => ApiError::invalid_transition("resume", "active"),
            _ => ApiError::invalid_transition("end", "ended"),
        },
        ErrorCode::PayloadTooLarge => ApiError::payload_too_large(crate::body::LIMIT),
        ErrorCode::RateLimited => {
            ApiError::rate_limited("Rate limit of 100 requests exceeded; retry in 12 seconds", 12)
        }
        ErrorCode::InternalError => ApiError::internal(),
        ErrorCode::ServiceUnavailable => {
            ApiError::unavailable("The database cannot be reached; try again shortly")
        }
    })
}

/// An answer that carries ids, and where they go: its path, method and
/// status, then each operation that takes them with its parameters as
/// runtime expressions. The link is named after the operation.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [(&'static str, &'static str)])],
);

/// OpenAPI links: where the ids an answer carries can be used next. They
/// tell readers (and Swagger UI, and schemathesis's stateful phase) that
/// the session in a login answer is what `DELETE /api/sessions/{id}` takes.
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut oa::OpenApi) {
        use oa::link::LinkBuilder;
        const SESSION: &[(&str, &str)] = &[("id", "$response.body#/data/session/id")];
        const USER_SESSION: &[(&str, &str)] = &[
            ("user_id", "$response.body#/data/user/_id"),
            ("id", "$response.body#/data/session/id"),
        ];
        const USER: &[(&str, &str)] = &[("user_id", "$response.body#/data/user/_id")];
        const REGISTERED: &[(&str, &str)] = &[("user_id", "$response.body#/data/_id")];
        const LISTED: &[(&str, &str)] =
            &[("user_id", "$request.path.user_id"), ("id", "$response.body#/data/0/id")];
        let links: [LinkSpec; 3] = [
            (
                "/api/auth/login",
                "post",
                "200",
                &[
                    ("deleteSession", SESSION),
                    ("deactivateSession", SESSION),
                    ("terminateMySessionV1", SESSION),
                    ("adminGetUserSession", USER_SESSION),
                    ("adminDeleteUserSession", USER_SESSION),
                    ("adminListUserSessions", USER),
                ],
            ),
            (
                "/api/auth/register",
                "post",
                "201",
                &[
                    ("updateUser", REGISTERED),
                    ("adminListUserSessions", REGISTERED),
                    ("adminDeleteAllUserSessions", REGISTERED),
                ],
            ),
            (
                "/api/admin/users/{user_id}/sessions",
                "get",
                "200",
                &[("adminDeleteUserSession", LISTED)],
            ),
        ];
        for (path, method, status, targets) in links {
            let Some(op) = doc.paths.paths.get_mut(path).and_then(|item| match method {
                "get" => item.get.as_mut(),
                _ => item.post.as_mut(),
            }) else {
                continue;
            };
            let Some(oa::RefOr::T(response)) = op.responses.responses.get_mut(status) else {
                continue;
            };
            for (target, parameters) in targets {
                let link = parameters
                    .iter()
                    .fold(LinkBuilder::new().operation_id(*target), |b, (p, v)| {
                        b.parameter(*p, *v)
                    });
                // `deleteSession` → `DeleteSession`.
                let mut name = target.to_string();
                name[..1].make_ascii_uppercase();
                response.links.insert(name, link.build().into());
            }
        }
    }
}

/// `content = Option<T>` documents an optional body as "T or null"; but a
/// JSON `null` is refused like any non-object. What is optional is the
/// body itself: show `T`, with the body not required.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, doc: &mut oa::OpenApi) {
        use oa::schema::{Schema, SchemaType, Type};
        let is_null = |s: &oa::RefOr<Schema>| matches!(s, oa::RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                let Some(oa::RefOr::T(body)) = op.request_body.as_mut() else {
                    continue;
                };
                for content in body.content.values_mut() {
                    let oa::RefOr::T(content) = content else {
                        continue;
                    };
                    let Some(oa::RefOr::T(Schema::OneOf(one_of))) = content.schema.as_ref() else {
                        continue;
                    };
                    if let [a, b] = one_of.items.as_slice() {
                        let inner = if is_null(b) {
                            a
                        } else if is_null(a) {
                            b
                        } else {
                            continue;
                        };
                        let inner = inner.clone();
                        content.schema = Some(inner);
                        body.required = Some(oa::Required::False);
                    }
                }
            }
        }
    }
}

fn operations(item: &mut oa::path::PathItem) -> impl Iterator<Item = &mut oa::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The document.
pub(crate) fn document() -> oa::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests;
