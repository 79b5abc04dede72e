//! What the analytics use cases take: who is calling, the settings in
//! force, and each request as received, plus the states a page visit
//! passes through on its way to the store.

use kernel::Duration;

#[cfg(doc)]
use crate::AnalyticsService;
use crate::PageVisit;

/// Who is calling, from a verified bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's username.
    pub username: String,
    /// The token's app.
    pub app: String,
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

/// `POST /api/sessions/start`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Username to track.
    pub user: String,
    /// Application.
    pub app: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
    /// Must be `active` when given.
    pub status: Option<String>,
}

/// `POST /api/sessions/pause|resume|end`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct TransitionRequest {
    /// Username.
    pub user: String,
    /// Application.
    pub app: String,
    /// The tracked session (as received; not a UUID → 404).
    pub session_id: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
}

/// `POST /api/pages/track`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct TrackPageRequest {
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

/// Any report request, fields as received.
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
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
