//! Usage tracking and analytics (SPEC §4, seed 004): the tracked-session
//! state machine under `/api/sessions/{start,pause,resume,end}` and the
//! reports under `/api/sessions/<report>`; page tracking is in
//! [`super::pages`].
//!
//! Handlers read the body, parse it into the use case's request with the
//! domain's parser (`StartRequest::parse`, …: one 422 naming every bad
//! field), build the [`Caller`] from the
//! bearer token, run the use case on the blocking pool and reshape its
//! answer.

use std::sync::Arc;

use actix_web::HttpResponse;
use analytics::{
    AnalyticsError, AnalyticsService, Caller, Paging, RawReport, RawStart, RawTransition,
    ReportRequest, StartRequest, TrackedSession, TransitionRequest,
};
use auth::Principal;
use kernel::{AppName, Username, Violations};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, blocking};
use crate::body::Body;
use crate::envelope;
use crate::error::ApiError;
use crate::openapi::{
    DailyTimeEnvelope, DetailTimelineEnvelope, ErrorEnvelope, HeatmapEnvelope, MostActiveEnvelope,
    SessionEndedEnvelope, SessionPausedEnvelope, SessionResumedEnvelope, SessionStartedEnvelope,
    StatsEnvelope, SummaryEnvelope, TimeByPageEnvelope, TimelineEnvelope,
};
use crate::views::{
    DailyTimeData, DetailTimelineData, HeatmapData, HeatmapTopLevel, MostActiveData, PageTimeData,
    SessionEndedData, SessionPausedData, SessionResumedData, SessionStartedData, StatsData,
    SummaryData, TimelineData,
};

/// The analytics caller of a verified bearer token. Its names were
/// checked when they were stored, so one that does not parse now is a
/// server bug: an internal error, never a panic.
pub(crate) fn caller(p: &Principal) -> Result<Caller, ApiError> {
    caller_named(&p.user.username, &p.session.app, p.is_admin())
}

/// [`caller`] of the names as stored.
fn caller_named(username: &str, app: &str, is_admin: bool) -> Result<Caller, ApiError> {
    let stored = |what: &str, e: &str| {
        ApiError::from(AnalyticsError::Unknown(anyhow::anyhow!(
            "the token's stored {what} does not parse: {e}"
        )))
    };
    Ok(Caller {
        username: Username::parse(username).map_err(|e| stored("username", e))?,
        app: AppName::parse(app).map_err(|e| stored("app", e))?,
        is_admin,
    })
}

/// Runs an analytics use case on the blocking pool (they block on the
/// store).
pub(crate) async fn run<T, F>(state: ApiState, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&AnalyticsService) -> Result<T, AnalyticsError> + Send + 'static,
    T: Send + 'static,
{
    let service: Arc<AnalyticsService> = state.analytics;
    blocking(move || f(&service)).await
}

/// Body of `/api/sessions/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": "john_doe",
    "time": "2024-01-01T12:00:00.000Z",
    "status": "active",
    "app": "my_app"
}))]
pub(crate) struct StartBody {
    /// The username to track: the token's own, or any with the admin role.
    #[schema(example = "john_doe")]
    user: String,
    /// When the session started (RFC 3339 with an offset); the server's
    /// clock when absent.
    #[schema(example = "2024-01-01T12:00:00.000Z", format = DateTime)]
    time: Option<String>,
    /// Optional; when given, must be `active`.
    #[schema(example = "active")]
    status: Option<String>,
    /// The application: 1–64 characters of `[A-Za-z0-9_.:-]`, the token's
    /// own unless the caller is admin.
    #[schema(example = "my_app")]
    app: String,
}

/// Body of `/api/sessions/pause`, `/resume` and `/end`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": "john_doe",
    "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
    "time": "2024-01-01T12:30:00.000Z",
    "app": "my_app"
}))]
pub(crate) struct TransitionBody {
    /// The session's user.
    #[schema(example = "john_doe")]
    user: String,
    /// The tracked session's id, as `start` returned it.
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    session_id: String,
    /// When it happened (RFC 3339 with an offset, not before the session's
    /// last event); the server's clock when absent.
    #[schema(example = "2024-01-01T12:30:00.000Z", format = DateTime)]
    time: Option<String>,
    /// The session's application.
    #[schema(example = "my_app")]
    app: String,
}

impl TransitionBody {
    /// The fields as the domain's parser takes them.
    fn into_raw(self) -> RawTransition {
        RawTransition {
            user: self.user,
            app: self.app,
            session_id: self.session_id,
            time: self.time,
        }
    }
}

/// The range of a report and the zone its dates are read in: the fields
/// every report body shares.
// Flattened into each body. The fields are read as any JSON value and
// their type is checked in `try_into_domain`: serde reports a flattened
// field's type error without the field's name, and a 422 names the field.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ReportRange {
    /// Inclusive start: RFC 3339 with an offset, or a date `YYYY-MM-DD`
    /// (that day's start in `tz`). Sessions are selected by start time,
    /// page visits by visit time.
    #[schema(value_type = Option<String>, example = "2024-01-01")]
    from: Option<Value>,
    /// End: an RFC 3339 timestamp (exclusive), or a date `YYYY-MM-DD`
    /// (that whole day included).
    #[schema(value_type = Option<String>, example = "2024-01-31")]
    to: Option<Value>,
    /// IANA time zone of dates, days, weekdays and hours; `UTC` when
    /// absent.
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    tz: Option<Value>,
}

/// The range and zone as the domain's request takes them.
struct DomainRange {
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
}

impl ReportRange {
    /// Each field a string when given; every field that is not is named
    /// in one 422, as serde names the fields of the rest of the body.
    fn try_into_domain(self) -> Result<DomainRange, ApiError> {
        let mut v = Violations::new();
        let mut text = |field: &str, value: Option<Value>| match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                v.add(field, "must be a string");
                None
            }
        };
        let range = DomainRange {
            from: text("from", self.from),
            to: text("to", self.to),
            tz: text("tz", self.tz),
        };
        v.into_result().map(|()| range).map_err(|v| ApiError::validation(&v))
    }
}

/// Body of a report.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"app": "my_app", "user": "john_doe"}))]
pub(crate) struct ReportBody {
    /// The application.
    #[schema(example = "my_app")]
    app: String,
    /// A username, or `all` for every user of the app (admin only, except
    /// on the public endpoints).
    #[schema(example = "john_doe")]
    user: String,
    /// The range and zone.
    #[serde(flatten)]
    range: ReportRange,
}

/// Body of a paged report (the timelines).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"app": "my_app", "user": "john_doe"}))]
pub(crate) struct PagedReportBody {
    /// The application.
    #[schema(example = "my_app")]
    app: String,
    /// A username, or `all` for every user of the app (admin only, except
    /// on the public endpoints).
    #[schema(example = "john_doe")]
    user: String,
    /// The range and zone.
    #[serde(flatten)]
    range: ReportRange,
    /// Most sessions on the page, 1–1000 (default 100); 0 or more than
    /// 1000 is a 422.
    #[schema(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page (opaque); one that no page gave
    /// is a 422.
    cursor: Option<String>,
}

/// Body of a page report (time-by-page, pages/stats), paged by pages.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"app": "my_app", "user": "john_doe"}))]
pub(crate) struct PageReportBody {
    /// The application.
    #[schema(example = "my_app")]
    app: String,
    /// A username, or `all` for every user of the app (admin only).
    #[schema(example = "john_doe")]
    user: String,
    /// The range and zone.
    #[serde(flatten)]
    range: ReportRange,
    /// Most pages in the answer, 1–1000 (default 1000); 0 or more than
    /// 1000 is a 422.
    #[schema(minimum = 1, maximum = 1000, example = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page (opaque); one that no page gave
    /// is a 422.
    cursor: Option<String>,
}

/// A report body as the domain's fields: the range and zone, and the
/// page asked for (none for an unpaged report).
fn domain_request(
    app: String,
    user: String,
    range: ReportRange,
    limit: Option<i64>,
    cursor: Option<String>,
) -> Result<RawReport, ApiError> {
    let DomainRange { from, to, tz } = range.try_into_domain()?;
    Ok(RawReport { app, user, from, to, tz, limit, cursor })
}

impl ReportBody {
    fn try_into_domain(self) -> Result<RawReport, ApiError> {
        domain_request(self.app, self.user, self.range, None, None)
    }
}

impl PagedReportBody {
    fn try_into_domain(self) -> Result<RawReport, ApiError> {
        domain_request(self.app, self.user, self.range, self.limit, self.cursor)
    }
}

impl PageReportBody {
    fn try_into_domain(self) -> Result<RawReport, ApiError> {
        domain_request(self.app, self.user, self.range, self.limit, self.cursor)
    }
}

/// The report request of `raw` for `paging`, once `caller` may ask for
/// reports at all (a switched-off public endpoint answers before any 422).
fn parse_report(
    state: &ApiState,
    caller: Option<&Caller>,
    raw: RawReport,
    paging: Paging,
) -> Result<ReportRequest, ApiError> {
    state.analytics.may_report(caller)?;
    Ok(ReportRequest::parse(raw, paging)?)
}

/// Starts a tracked usage session.
#[utoipa::path(
    post, path = "/api/sessions/start", tag = "analytics", operation_id = "startSession",
    security(("bearerAuth" = [])),
    request_body(content = StartBody, example = json!({
        "user": "john_doe", "time": "2024-01-01T12:00:00.000Z", "status": "active", "app": "my_app"
    })),
    responses(
        (status = 200, description = "The session is started", body = SessionStartedEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user or app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`time` without an offset, `status` other than `active`, a bad `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn start(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: StartBody = body.json()?;
    let raw = RawStart { user: b.user, app: b.app, time: b.time, status: b.status };
    let req = StartRequest::parse(raw, state.analytics.now())?;
    let caller = caller(&p)?;
    let s = run(state, move |a| a.start(&caller, req)).await?;
    Ok(envelope::ok("Session started successfully", &SessionStartedData::from(&s)))
}

/// A transition use case (`AnalyticsService::pause`, …).
type Step =
    fn(&AnalyticsService, &Caller, TransitionRequest) -> Result<TrackedSession, AnalyticsError>;

/// Runs a transition; a missing session is worded for `verb`.
async fn transition(
    state: ApiState,
    p: &Principal,
    body: &Body,
    step: Step,
    verb: &str,
) -> Result<TrackedSession, ApiError> {
    let raw = body.json::<TransitionBody>()?.into_raw();
    let req = TransitionRequest::parse(raw, state.analytics.now())?;
    let caller = caller(p)?;
    run(state, move |a| step(a, &caller, req)).await.map_err(|e| e.for_session(verb))
}

/// Pauses an active tracked session.
#[utoipa::path(
    post, path = "/api/sessions/pause", tag = "analytics", operation_id = "pauseSession",
    security(("bearerAuth" = [])),
    request_body(content = TransitionBody, example = json!({
        "user": "john_doe", "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
        "time": "2024-01-01T12:30:00.000Z", "app": "my_app"
    })),
    responses(
        (status = 200, description = "The session is paused", body = SessionPausedEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user or app without the admin role", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of this user and app", body = ErrorEnvelope),
        (status = 409, description = "INVALID_STATE_TRANSITION: the session is not active", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid, or `time` is before the session's last event", body = ErrorEnvelope),
    )
)]
pub(crate) async fn pause(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let s = transition(state, &p, &body, AnalyticsService::pause, "pause").await?;
    Ok(envelope::ok("Session paused successfully", &SessionPausedData::from(&s)))
}

/// Resumes a paused tracked session.
#[utoipa::path(
    post, path = "/api/sessions/resume", tag = "analytics", operation_id = "resumeSession",
    security(("bearerAuth" = [])),
    request_body(content = TransitionBody, example = json!({
        "user": "john_doe", "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
        "time": "2024-01-01T12:45:00.000Z", "app": "my_app"
    })),
    responses(
        (status = 200, description = "The session is active again", body = SessionResumedEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user or app without the admin role", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of this user and app", body = ErrorEnvelope),
        (status = 409, description = "INVALID_STATE_TRANSITION: the session is not paused", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid, or `time` is before the session's last event", body = ErrorEnvelope),
    )
)]
pub(crate) async fn resume(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let s = transition(state, &p, &body, AnalyticsService::resume, "resume").await?;
    Ok(envelope::ok("Session resumed successfully", &SessionResumedData::from(&s)))
}

/// Ends an active or paused tracked session.
#[utoipa::path(
    post, path = "/api/sessions/end", tag = "analytics", operation_id = "endSession",
    security(("bearerAuth" = [])),
    request_body(content = TransitionBody, example = json!({
        "user": "john_doe", "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
        "time": "2024-01-01T13:00:00.000Z", "app": "my_app"
    })),
    responses(
        (status = 200, description = "The session is ended, with its active time", body = SessionEndedEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user or app without the admin role", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of this user and app", body = ErrorEnvelope),
        (status = 409, description = "INVALID_STATE_TRANSITION: the session has already ended", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid, or `time` is before the session's last event", body = ErrorEnvelope),
    )
)]
pub(crate) async fn end(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let s = transition(state, &p, &body, AnalyticsService::end, "end").await?;
    Ok(envelope::ok("Session ended successfully", &SessionEndedData::from(&s)))
}

/// A report body and the caller.
pub(crate) fn report_request(
    state: &ApiState,
    p: &Principal,
    body: &Body,
) -> Result<(Caller, ReportRequest), ApiError> {
    let caller = caller(p)?;
    let raw = body.json::<ReportBody>()?.try_into_domain()?;
    let req = parse_report(state, Some(&caller), raw, Paging::No)?;
    Ok((caller, req))
}

/// A paged report body (the timelines, by `paging`) and the caller.
fn paged_request(
    state: &ApiState,
    p: &Principal,
    body: &Body,
    paging: Paging,
) -> Result<(Caller, ReportRequest), ApiError> {
    let caller = caller(p)?;
    let raw = body.json::<PagedReportBody>()?.try_into_domain()?;
    let req = parse_report(state, Some(&caller), raw, paging)?;
    Ok((caller, req))
}

/// A page report body (time-by-page, pages/stats) and the caller.
pub(crate) fn page_report_request(
    state: &ApiState,
    p: &Principal,
    body: &Body,
) -> Result<(Caller, ReportRequest), ApiError> {
    let caller = caller(p)?;
    let raw = body.json::<PageReportBody>()?.try_into_domain()?;
    let req = parse_report(state, Some(&caller), raw, Paging::Pages)?;
    Ok((caller, req))
}

/// Session starts by day, and by weekday and hour.
///
/// Seed 004 shows `heatmap_data` at the top level of the answer: it is
/// there, and `data` holds the same object.
#[utoipa::path(
    post, path = "/api/sessions/heatmap", tag = "analytics", operation_id = "getHeatmap",
    security(("bearerAuth" = [])),
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "The heatmap, in `data` and in `heatmap_data`", body = HeatmapEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn heatmap(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = report_request(&state, &p, &body)?;
    let h = run(state, move |a| a.heatmap(&caller, req)).await?;
    let data = HeatmapData::from(&h);
    Ok(envelope::ok_with(
        "Heatmap retrieved successfully",
        &data,
        &HeatmapTopLevel { heatmap_data: &data },
    ))
}

/// The weekday and hour with the most session starts.
#[utoipa::path(
    post, path = "/api/sessions/most-active", tag = "analytics", operation_id = "getMostActive",
    security(("bearerAuth" = [])),
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "The busiest weekday and hour (nulls and 0 when there are no sessions)", body = MostActiveEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn most_active(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = report_request(&state, &p, &body)?;
    let m = run(state, move |a| a.most_active(&caller, req)).await?;
    Ok(envelope::ok("Most active times retrieved successfully", &MostActiveData::from(&m)))
}

/// Session count, total and average active time, active days.
#[utoipa::path(
    post, path = "/api/sessions/stats", tag = "analytics", operation_id = "getStats",
    security(("bearerAuth" = [])),
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "The statistics", body = StatsEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn stats(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = report_request(&state, &p, &body)?;
    let s = run(state, move |a| a.stats(&caller, req)).await?;
    Ok(envelope::ok("Session statistics retrieved successfully", &StatsData::from(&s)))
}

const SUMMARY: &str = "Session summary retrieved successfully";

/// Session count, and total, average, longest and shortest active time.
#[utoipa::path(
    post, path = "/api/sessions/summary", tag = "analytics", operation_id = "getSummary",
    security(("bearerAuth" = [])),
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "The summary", body = SummaryEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn summary(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = report_request(&state, &p, &body)?;
    let s = run(state, move |a| a.summary(Some(&caller), req)).await?;
    Ok(envelope::ok(SUMMARY, &SummaryData::from(&s)))
}

/// The summary, without authentication.
///
/// Any user of any app, `all` included; configuration can switch it off
/// (then 404).
#[utoipa::path(
    post, path = "/api/sessions/public-summary", tag = "analytics", operation_id = "getPublicSummary",
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "The summary", body = SummaryEnvelope),
        (status = 404, description = "NOT_FOUND: public analytics are switched off", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn public_summary(state: ApiState, body: Body) -> Result<HttpResponse, ApiError> {
    let raw = body.json::<ReportBody>()?.try_into_domain()?;
    let req = parse_report(&state, None, raw, Paging::No)?;
    let s = run(state, move |a| a.summary(None, req)).await?;
    Ok(envelope::ok(SUMMARY, &SummaryData::from(&s)))
}

const TIMELINE: &str = "Session timeline retrieved successfully";

/// Sessions in ascending start time, paged.
#[utoipa::path(
    post, path = "/api/sessions/timeline", tag = "analytics", operation_id = "getTimeline",
    security(("bearerAuth" = [])),
    request_body(content = PagedReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "A page of the timeline", body = TimelineEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`, `limit` above 1000, `cursor`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn timeline(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = paged_request(&state, &p, &body, Paging::Sessions)?;
    let t = run(state, move |a| a.timeline(Some(&caller), req)).await?;
    Ok(envelope::ok(TIMELINE, &TimelineData::from(&t)))
}

/// The timeline, without authentication.
///
/// Any user of any app, `all` included; configuration can switch it off
/// (then 404).
#[utoipa::path(
    post, path = "/api/sessions/public-timeline", tag = "analytics", operation_id = "getPublicTimeline",
    request_body(content = PagedReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "A page of the timeline", body = TimelineEnvelope),
        (status = 404, description = "NOT_FOUND: public analytics are switched off", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`, `limit` above 1000, `cursor`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn public_timeline(state: ApiState, body: Body) -> Result<HttpResponse, ApiError> {
    let raw = body.json::<PagedReportBody>()?.try_into_domain()?;
    let req = parse_report(&state, None, raw, Paging::Sessions)?;
    let t = run(state, move |a| a.timeline(None, req)).await?;
    Ok(envelope::ok(TIMELINE, &TimelineData::from(&t)))
}

/// Active time per local day (intervals split at midnight).
#[utoipa::path(
    post, path = "/api/sessions/daily-time-spent", tag = "analytics", operation_id = "getDailyTimeSpent",
    security(("bearerAuth" = [])),
    request_body(content = ReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "Active time per day", body = DailyTimeEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn daily_time_spent(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = report_request(&state, &p, &body)?;
    let d = run(state, move |a| a.daily_time_spent(&caller, req)).await?;
    Ok(envelope::ok("Daily time spent retrieved successfully", &DailyTimeData::from(&d)))
}

/// Time spent per page (the sum of tracked `timespent`), paged.
///
/// Pages are listed by total time, most first, then by path (byte order),
/// at most `limit` a call (default 1000, at most 1000); `page_time` is
/// written in that order. While more pages remain, `next_cursor` is set:
/// pass it as `cursor` with the same body for the next page; it is null
/// on the last page. A page whose total changes between two calls may
/// move across the cursor (seen twice, or not at all).
#[utoipa::path(
    post, path = "/api/sessions/time-by-page", tag = "analytics", operation_id = "getTimeByPage",
    security(("bearerAuth" = [])),
    request_body(content = PageReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "A page of time per page, most time first", body = TimeByPageEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`, `limit` outside 1–1000, `cursor`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn time_by_page(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = page_report_request(&state, &p, &body)?;
    let t = run(state, move |a| a.time_by_page(&caller, req)).await?;
    Ok(envelope::ok("Time by page retrieved successfully", &PageTimeData::from(&t)))
}

/// Sessions with their events in order, paged.
///
/// Sessions in ascending start time, at most `limit` a page (default 100,
/// at most 1000), and at most 10,000 events a page: the page also ends
/// once it holds 10,000 events. Sessions are shown whole while they fit;
/// a session whose events do not fit in what is left of the page is cut
/// there, and the next page opens with the same session (the same
/// `session_id`) holding the rest of its events, so no answer grows with
/// a session's length. `next_cursor` is null on the last page.
#[utoipa::path(
    post, path = "/api/sessions/session-timeline-detail", tag = "analytics", operation_id = "getSessionTimelineDetail",
    security(("bearerAuth" = [])),
    request_body(content = PagedReportBody, example = json!({"app": "my_app", "user": "john_doe"})),
    responses(
        (status = 200, description = "A page of sessions with their events (at most `limit` sessions and 10,000 events)", body = DetailTimelineEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: another user, `all` or another app without the admin role", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a field is missing or invalid (`from`, `to`, `tz`, `app`, `limit` above 1000, `cursor`)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn session_timeline_detail(
    state: ApiState,
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let (caller, req) = paged_request(&state, &p, &body, Paging::Events)?;
    let d = run(state, move |a| a.session_timeline_detail(&caller, req)).await?;
    Ok(envelope::ok(
        "Detailed session timeline retrieved successfully",
        &DetailTimelineData::from(&d),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("a body")
    }

    #[test]
    fn a_stored_name_that_does_not_parse_is_an_internal_error() {
        let c = caller_named("Alice", "web", true).expect("valid");
        assert_eq!((c.username.as_str(), c.app.as_str(), c.is_admin), ("Alice", "web", true));
        for (user, app) in [("a", "web"), ("alice", "we b")] {
            let e = caller_named(user, app, false).expect_err("a server bug");
            assert_eq!(e.code, crate::error::ErrorCode::InternalError, "{user} {app}");
        }
    }

    #[test]
    fn every_report_body_reads_the_one_range() {
        let range = json!({"app": "web", "user": "bob", "from": "2024-01-01", "to": "2024-01-31",
            "tz": "UTC", "limit": 5, "cursor": "c"});
        let want = |r: RawReport| (r.from, r.to, r.tz, r.app, r.user);
        let expected = (
            Some("2024-01-01".to_owned()),
            Some("2024-01-31".to_owned()),
            Some("UTC".to_owned()),
            "web".to_owned(),
            "bob".to_owned(),
        );
        let r = parse::<ReportBody>(range.clone()).try_into_domain().expect("valid");
        assert_eq!((r.limit, r.cursor.clone()), (None, None), "an unpaged report takes no page");
        assert_eq!(want(r), expected);
        let r = parse::<PagedReportBody>(range.clone()).try_into_domain().expect("valid");
        assert_eq!((r.limit, r.cursor.clone()), (Some(5), Some("c".into())));
        assert_eq!(want(r), expected);
        let r = parse::<PageReportBody>(range).try_into_domain().expect("valid");
        assert_eq!((r.limit, r.cursor.clone()), (Some(5), Some("c".into())));
        assert_eq!(want(r), expected);
        let r = parse::<ReportBody>(json!({"app": "web", "user": "bob", "tz": null}));
        assert_eq!(r.try_into_domain().map(|r| r.tz).ok(), Some(None), "null is absent");
    }

    #[test]
    fn a_mistyped_range_field_is_named() {
        let body = json!({"app": "web", "user": "bob", "from": 5, "to": ["x"], "tz": true});
        let e = parse::<ReportBody>(body).try_into_domain().expect_err("mistyped");
        assert_eq!(e.code, crate::error::ErrorCode::ValidationError);
        let details = serde_json::to_value(&e.details).expect("details");
        assert_eq!(
            details,
            json!({"from": "must be a string", "to": "must be a string", "tz": "must be a string"})
        );
    }
}
