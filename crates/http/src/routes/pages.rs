//! Page tracking (SPEC §4, seed 004): `/api/pages/track` and
//! `/api/pages/stats`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use analytics::{RawTrackPage, Readiness, TrackPageRequest};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, authenticate};
use crate::body::Body;
use crate::envelope;
use crate::error::ApiError;
use crate::openapi::{ErrorEnvelope, PageStatsEnvelope, PageTrackedEnvelope};
use crate::routes::analytics::{PageReportBody, caller, page_report_request, run};
use crate::views::{PageStatsData, PageTrackedData};

/// Body of `/api/pages/track`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"user": "john_doe", "page": "/dashboard", "timespent": 120, "app": "my_app"}))]
pub(crate) struct TrackBody {
    /// Whose visit it is (with a token: the token's own username unless
    /// the caller is admin).
    #[schema(example = "john_doe")]
    user: String,
    /// The page path: starts with `/`, at most 2048 characters.
    #[schema(example = "/dashboard", pattern = "^/", max_length = 2048)]
    page: String,
    /// Whole seconds spent on the page, 0–86400. A number with a fraction
    /// (`1.5`), a string or null is refused; `120.0` counts as `120`.
    #[schema(value_type = i64, minimum = 0, maximum = 86400, example = 120)]
    timespent: Value,
    /// The application.
    #[schema(example = "my_app")]
    app: String,
    /// The tracked session the visit belongs to (of this user and app).
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    session_id: Option<String>,
    /// When the visit happened (RFC 3339 with an offset); the server's
    /// clock when absent.
    #[schema(example = "2024-01-01T12:00:00.000Z", format = DateTime)]
    time: Option<String>,
}

/// `timespent` as whole seconds, or `None` when it is not a whole number
/// (the use case then refuses it, naming the field).
///
/// Integers are taken as they are, and so are numbers without a fraction
/// written as decimals (`120.0`, `1.2e2`: some clients serialise every
/// number as a float). Whole numbers beyond `i64` saturate, so that they
/// are refused as out of range rather than as not whole. Fractions,
/// strings, booleans, null, arrays and objects are `None`.
pub(crate) fn whole_seconds(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    // `as` saturates at the bounds of i64.
    (f.is_finite() && f.fract() == 0.0).then_some(f as i64)
}

/// Records a page visit.
///
/// Public by default: without an `Authorization` header the visit is
/// recorded anonymously (unless configuration requires a token, then 401);
/// with one, the token must be valid and the visit is checked against it
/// like any authenticated request. Answers once the visit is durable.
#[utoipa::path(
    post, path = "/api/pages/track", tag = "pages", operation_id = "trackPage",
    security((), ("bearerAuth" = [])),
    request_body(content = TrackBody, example = json!({
        "user": "john_doe", "page": "/dashboard", "timespent": 120, "app": "my_app"
    })),
    responses(
        (status = 200, description = "The visit is recorded", body = PageTrackedEnvelope),
        (status = 401, description = "UNAUTHORIZED: an `Authorization` header with no valid token, or none while configuration requires one", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: with a token, another user or app without the admin role", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: `session_id` names no session of this user and app", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`timespent` not a whole number in 0–86400, `page` not a path, `time` without an offset)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn track(
    req: HttpRequest,
    state: ApiState,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let caller = if req.headers().contains_key(header::AUTHORIZATION) {
        Some(caller(&authenticate(&req).await?)?)
    } else {
        None
    };
    let b: TrackBody = body.json()?;
    let analytics = state.analytics.clone();
    // Whether this caller may track at all comes before the fields.
    analytics.may_track_pages(caller.as_ref())?;
    let raw = RawTrackPage {
        user: b.user,
        page: b.page,
        timespent: whole_seconds(&b.timespent),
        app: b.app,
        session_id: b.session_id,
        time: b.time,
    };
    let request = TrackPageRequest::parse(raw, analytics.now())?;
    // Validation and authorization need no I/O, so they run here; only a
    // visit that names a tracked session goes to the blocking pool for
    // the store read. The commit is then awaited without holding a
    // thread: under load a whole batch of visits is answered with one
    // wake-up of this worker instead of three thread hand-offs each.
    let checked = match analytics.check_page_visit(caller.as_ref(), request)?.ready() {
        Readiness::Ready(checked) => checked,
        Readiness::SessionToConfirm(req) => run(state, move |a| a.confirm_page_visit(req)).await?,
    };
    let visit = analytics.record_page_visit(checked).await?;
    Ok(envelope::ok("Page visit tracked successfully", &PageTrackedData::from(&visit)))
}

/// Visits, total and average time per page, paged.
///
/// Pages are listed by total time, most first, then by path (byte order),
/// at most `limit` a call (default 1000, at most 1000); `page_stats` is
/// written in that order. While more pages remain, `next_cursor` is set:
/// pass it as `cursor` with the same body for the next page; it is null
/// on the last page. A page whose total changes between two calls may
/// move across the cursor (seen twice, or not at all).
#[utoipa::path(
    post, path = "/api/pages/stats", tag = "pages", operation_id = "getPageStats",
    security(("bearerAuth" = [])),
    request_body(content = PageReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "A page of statistics per page, most time first", body = PageStatsEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`, `limit` outside 1–1000, `cursor`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn stats(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = page_report_request(&state, &p, &body)?;
    let s = run(state, move |a| a.page_stats(&caller, req)).await?;
    Ok(envelope::ok("Page statistics retrieved successfully", &PageStatsData::from(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timespent_must_be_a_whole_number() {
        let parse = |s: &str| whole_seconds(&serde_json::from_str(s).unwrap_or(json!("bad")));
        for (text, want) in [
            ("120", Some(120)),
            ("0", Some(0)),
            ("-5", Some(-5)),
            ("86401", Some(86_401)),
            ("120.0", Some(120)),
            ("1.2e2", Some(120)),
            ("-0.0", Some(0)),
            ("9223372036854775807", Some(i64::MAX)),
            ("18446744073709551615", Some(i64::MAX)),
            ("1e300", Some(i64::MAX)),
            ("-1e300", Some(i64::MIN)),
            ("12.5", None),
            ("0.1", None),
            ("\"120\"", None),
            ("null", None),
            ("true", None),
            ("[120]", None),
            ("{\"s\":120}", None),
        ] {
            assert_eq!(parse(text), want, "{text}");
        }
    }
}
