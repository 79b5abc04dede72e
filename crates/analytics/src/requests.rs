//! What the analytics use cases take: who is calling, the settings in
//! force, and each request parsed from its fields as received (one
//! collector per request, so a 422 names every bad field), plus the states a page visit
//! passes through on its way to the store.

use kernel::{AppName, Duration, OffsetDateTime, Username, Uuid, Violations};

#[cfg(doc)]
use crate::AnalyticsService;
use crate::cursor::{parse_cursor, parse_event_cursor, parse_page_cursor};
use crate::{
    AnalyticsError, MAX_CLOCK_SKEW, PagePath, PagePosition, PageVisit, Subject, TimeSpent,
    TimelinePosition, Tz, parse_bound,
};

/// Who is calling, from a verified bearer token: names the edge parsed
/// from the token's stored account and session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's username.
    pub username: Username,
    /// The token's app.
    pub app: AppName,
    /// Whether the account has the admin role.
    pub is_admin: bool,
}

/// Configuration of the analytics use cases.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// `/api/pages/track` works without a token.
    pub public_tracking: bool,
    /// `public-summary` and `public-timeline` are on.
    pub public_analytics: bool,
    /// Open tracked sessions without events for this long are closed.
    pub idle_timeout: Duration,
}

/// An event or visit time: RFC 3339 with an offset, kept to the store's
/// millisecond precision so what is answered is what is stored, at most
/// [`MAX_CLOCK_SKEW`] ahead of `now`.
fn event_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let at = kernel::parse_instant(s).map(kernel::truncate_millis).map_err(|e| e.to_string())?;
    if at > now + MAX_CLOCK_SKEW {
        return Err("is in the future".into());
    }
    Ok(at)
}

/// `POST /api/sessions/start`, fields as received: the input of
/// [`StartRequest::parse`].
#[derive(Debug, Clone, Default)]
pub struct RawStart {
    /// Username to track.
    pub user: String,
    /// Application.
    pub app: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
    /// Must be `active` when given.
    pub status: Option<String>,
}

/// `POST /api/sessions/start`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// Username to track.
    pub user: Username,
    /// Application.
    pub app: AppName,
    /// Event time, at millisecond precision; the server clock when absent.
    pub time: Option<OffsetDateTime>,
}

impl StartRequest {
    /// Parses every field, reporting every bad one at once. `now` is the
    /// service's clock ([`AnalyticsService::now`]): an event time may not
    /// be more than [`MAX_CLOCK_SKEW`] ahead of it.
    pub fn parse(raw: RawStart, now: OffsetDateTime) -> Result<Self, AnalyticsError> {
        let mut v = Violations::new();
        let user = v.check("user", Username::parse(&raw.user));
        let app = v.check("app", AppName::parse(&raw.app));
        let time = raw.time.as_deref().and_then(|t| v.check("time", event_time(t, now)));
        if let Some(status) = raw.status.as_deref()
            && status != "active"
        {
            v.add("status", "must be \"active\" when given");
        }
        let (Some(user), Some(app), true) = (user, app, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        Ok(Self { user, app, time })
    }
}

/// `POST /api/sessions/pause|resume|end`, fields as received: the input of
/// [`TransitionRequest::parse`].
#[derive(Debug, Clone, Default)]
pub struct RawTransition {
    /// Username.
    pub user: String,
    /// Application.
    pub app: String,
    /// The tracked session (not a UUID → 404).
    pub session_id: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
}

/// `POST /api/sessions/pause|resume|end`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRequest {
    /// Username.
    pub user: Username,
    /// Application.
    pub app: AppName,
    /// The tracked session; `None` when the id received is not a UUID,
    /// which the use case answers like another user's session (404),
    /// after authorising the caller.
    pub session_id: Option<Uuid>,
    /// Event time, at millisecond precision; the server clock when absent.
    pub time: Option<OffsetDateTime>,
}

impl TransitionRequest {
    /// Parses every field, reporting every bad one at once (a session id
    /// that is not a UUID is not one of them: see
    /// [`session_id`](Self::session_id)). `now` as in
    /// [`StartRequest::parse`].
    pub fn parse(raw: RawTransition, now: OffsetDateTime) -> Result<Self, AnalyticsError> {
        let mut v = Violations::new();
        let user = v.check("user", Username::parse(&raw.user));
        let app = v.check("app", AppName::parse(&raw.app));
        let time = raw.time.as_deref().and_then(|t| v.check("time", event_time(t, now)));
        let (Some(user), Some(app), true) = (user, app, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        Ok(Self { user, app, session_id: Uuid::parse_str(&raw.session_id).ok(), time })
    }
}

/// `POST /api/pages/track`, fields as received: the input of
/// [`TrackPageRequest::parse`].
#[derive(Debug, Clone, Default)]
pub struct RawTrackPage {
    /// Username.
    pub user: String,
    /// Page path.
    pub page: String,
    /// Seconds spent; the HTTP layer passes `None` when the JSON value is
    /// not a whole number (a 422 names the field).
    pub timespent: Option<i64>,
    /// Application.
    pub app: String,
    /// Tracked session, optional (must be of this app and user).
    pub session_id: Option<String>,
    /// Visit time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
}

/// `POST /api/pages/track`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPageRequest {
    /// Username.
    pub user: Username,
    /// Page path.
    pub page: PagePath,
    /// Seconds spent.
    pub timespent: TimeSpent,
    /// Application.
    pub app: AppName,
    /// Tracked session, optional (must be of this app and user).
    pub session_id: Option<Uuid>,
    /// Visit time, at millisecond precision; the server clock when absent.
    pub time: Option<OffsetDateTime>,
}

impl TrackPageRequest {
    /// Parses every field, reporting every bad one at once. `now` as in
    /// [`StartRequest::parse`].
    ///
    /// Whether the caller may track at all is the use case's to say, and
    /// comes first: an edge asks
    /// [`AnalyticsService::may_track_pages`] before parsing.
    pub fn parse(raw: RawTrackPage, now: OffsetDateTime) -> Result<Self, AnalyticsError> {
        let mut v = Violations::new();
        let user = v.check("user", Username::parse(&raw.user));
        let page = v.check("page", PagePath::parse(&raw.page));
        let timespent = match raw.timespent {
            Some(t) => v.check("timespent", TimeSpent::parse(t)),
            None => {
                v.add("timespent", "must be a whole number of seconds");
                None
            }
        };
        let app = v.check("app", AppName::parse(&raw.app));
        let session_id = raw.session_id.as_deref().and_then(|s| {
            v.check("session_id", Uuid::parse_str(s).map_err(|_| "must be a session id (UUID)"))
        });
        let time = raw.time.as_deref().and_then(|t| v.check("time", event_time(t, now)));
        let (Some(user), Some(page), Some(timespent), Some(app), true) =
            (user, page, timespent, app, v.is_empty())
        else {
            return Err(AnalyticsError::Invalid(v));
        };
        Ok(Self { user, page, timespent, app, session_id, time })
    }
}

/// Any report request, fields as received: the input of
/// [`ReportRequest::parse`].
#[derive(Debug, Clone, Default)]
pub struct RawReport {
    /// Application.
    pub app: String,
    /// Username or `all`.
    pub user: String,
    /// Inclusive start (RFC 3339 or `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Exclusive end (timestamp) or last day included (date).
    pub to: Option<String>,
    /// IANA zone, default `UTC`.
    pub tz: Option<String>,
    /// Page size of the paged reports, 1–1000: sessions for the timelines
    /// (default 100), pages for time-by-page and pages/stats (default
    /// 1000). Ignored by the other reports.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page of the same paged report.
    pub cursor: Option<String>,
}

/// Default and largest timeline page (sessions).
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Default and largest page of time-by-page and pages/stats (pages). One
/// page path is at most 2048 characters, so an answer stays within a few
/// megabytes however many pages a user has.
const DEFAULT_PAGES_LIMIT: i64 = 1000;
const MAX_PAGES_LIMIT: i64 = 1000;

/// Which paging a report takes: how [`ReportRequest::parse`] reads
/// `limit` and `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Paging {
    /// None: `limit` and `cursor` are ignored (heatmap, most-active,
    /// stats, summary, daily time).
    #[default]
    No,
    /// Sessions by start time ([`AnalyticsService::timeline`]).
    Sessions,
    /// Sessions by start time, with a cursor that may point inside a
    /// session ([`AnalyticsService::session_timeline_detail`]).
    Events,
    /// Pages by total time ([`AnalyticsService::time_by_page`],
    /// [`AnalyticsService::page_stats`]).
    Pages,
}

/// Where a page of a paged report starts, and how long it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportPage {
    /// The paging it was parsed for.
    pub paging: Paging,
    /// Most entries on the page (the paging's default when not asked).
    pub limit: u32,
    /// Sessions: after this one.
    pub after: Option<TimelinePosition>,
    /// Detailed timeline: not after but AT the session `after`, from this
    /// event on.
    pub inside: Option<i32>,
    /// Page reports: after this page.
    pub after_page: Option<PagePosition>,
}

/// Any report request, parsed.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Application.
    pub app: AppName,
    /// A user, or all of them.
    pub subject: Subject,
    /// The zone of dates, days, weekdays and hours.
    pub tz: Tz,
    /// Inclusive start.
    pub from: Option<OffsetDateTime>,
    /// Exclusive end (a date's following midnight).
    pub to: Option<OffsetDateTime>,
    /// The page asked for.
    pub page: ReportPage,
}

impl ReportRequest {
    /// Parses every field, reporting every bad one at once; `limit` and
    /// `cursor` are read as `paging` says (the report's own).
    ///
    /// Whether the public reports are open is the use case's to say, and
    /// comes first: an edge asks [`AnalyticsService::may_report`] before
    /// parsing.
    pub fn parse(raw: RawReport, paging: Paging) -> Result<Self, AnalyticsError> {
        let mut v = Violations::new();
        let app = v.check("app", AppName::parse(&raw.app));
        let subject = v.check("user", Subject::parse(&raw.user));
        let tz = match raw.tz.as_deref() {
            None => Some(Tz::utc()),
            Some(name) => v.check("tz", Tz::parse(name)),
        };
        // Dates are read in the zone asked for; if that zone is invalid the
        // request fails on `tz` anyway.
        let date_tz = tz.clone().unwrap_or_default();
        let from =
            raw.from.as_deref().and_then(|s| v.check("from", parse_bound(s, &date_tz, false)));
        let to = raw.to.as_deref().and_then(|s| v.check("to", parse_bound(s, &date_tz, true)));
        // (Dates read in a zone that is not valid mean nothing to compare.)
        if let (Some(from), Some(to), Some(_)) = (from, to, &tz)
            && from >= to
        {
            v.add("to", "must be later than from");
        }
        let (default, max) = match paging {
            Paging::Pages => (DEFAULT_PAGES_LIMIT, MAX_PAGES_LIMIT),
            _ => (DEFAULT_LIMIT, MAX_LIMIT),
        };
        let mut page = ReportPage {
            paging,
            limit: u32::try_from(default).unwrap_or(1),
            ..ReportPage::default()
        };
        if paging != Paging::No {
            match raw.limit {
                None => {}
                Some(l) if (1..=max).contains(&l) => {
                    page.limit = u32::try_from(l).unwrap_or(page.limit);
                }
                Some(_) => v.add("limit", format!("must be between 1 and {max}")),
            }
        }
        if let Some(c) = raw.cursor.as_deref() {
            match paging {
                Paging::No => {}
                Paging::Sessions => page.after = v.check("cursor", parse_cursor(c)),
                Paging::Events => {
                    if let Some((after, inside)) = v.check("cursor", parse_event_cursor(c)) {
                        (page.after, page.inside) = (Some(after), inside);
                    }
                }
                Paging::Pages => page.after_page = v.check("cursor", parse_page_cursor(c)),
            }
        }
        let (Some(app), Some(subject), Some(tz), true) = (app, subject, tz, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        Ok(Self { app, subject, tz, from, to, page })
    }
}

/// A page visit that passed [`AnalyticsService::check_page_visit`]: valid
/// and authorized. If it names a tracked session, that session is still to
/// be confirmed ([`AnalyticsService::confirm_page_visit`]) before it can be
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRequest(pub(crate) PageVisit);

impl VisitRequest {
    /// The visit as it will be recorded.
    pub fn visit(&self) -> &PageVisit {
        &self.0
    }

    /// The visit, ready to record without I/O when it names no tracked
    /// session; otherwise the request back, for
    /// [`AnalyticsService::confirm_page_visit`] (a store read).
    pub fn ready(self) -> Readiness {
        if self.0.session_id.is_none() {
            Readiness::Ready(CheckedVisit(self.0))
        } else {
            Readiness::SessionToConfirm(self)
        }
    }
}

/// What a [`VisitRequest`] still needs before it can be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Nothing: record it.
    Ready(CheckedVisit),
    /// Its tracked session confirmed ([`AnalyticsService::confirm_page_visit`]).
    SessionToConfirm(VisitRequest),
}

/// A page visit ready to record: valid, authorized, and its tracked
/// session (if any) confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedVisit(pub(crate) PageVisit);

impl CheckedVisit {
    /// The visit as it will be recorded.
    pub fn visit(&self) -> &PageVisit {
        &self.0
    }
}
