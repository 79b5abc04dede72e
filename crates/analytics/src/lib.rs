//! Usage-analytics domain of sessiond: tracked usage sessions (a state
//! machine of start, pause, resume, end), page visits, and the reports of
//! seed 004 (heatmap, most-active, stats, summary, timelines, daily time,
//! time by page, page stats), exact in every IANA time zone.
//!
//! Storage is the [`TrackingStore`] port, and page visits are made durable
//! through the [`PageWriter`] port (the store's group-commit batcher in a
//! server); [`AnalyticsService`] holds the use cases. Reports are built
//! from 15-minute UTC bucket aggregates that the store keeps current in the
//! same transaction as every event.
//!
//! The tracking use cases take parsed requests: an edge parses what it
//! received with [`StartRequest::parse`], [`TransitionRequest::parse`] and
//! [`TrackPageRequest::parse`] (each naming every bad field of a request
//! at once, event times held to the service's clock,
//! [`AnalyticsService::now`]), and [`ReportRequest::parse`] for the
//! [`Paging`] of the report asked for. With a [`Caller`] (who the verified access token says is
//! calling) the use cases authorize and answer with typed reports. Its methods block
//! on the store: call them from a blocking thread pool, never from an
//! async executor. Page tracking, the busiest write, also comes in a form
//! for async callers: [`AnalyticsService::check_page_visit`] (no I/O), then
//! [`AnalyticsService::confirm_page_visit`] on a blocking thread only when
//! the visit names a tracked session, then
//! [`AnalyticsService::record_page_visit`], a future of any runtime that
//! resolves once the visit's commit is durable.
//!
//! Here it runs over the SQLite adapter of sessiond's `store` crate, with a
//! private in-memory database; any [`TrackingStore`] will do.
//!
//! ```
//! use std::sync::Arc;
//! use analytics::{AnalyticsService, AnalyticsSettings, Caller};
//! use analytics::{Paging, RawReport, ReportRequest};
//! use analytics::{RawStart, RawTrackPage, RawTransition};
//! use analytics::{StartRequest, TrackPageRequest, TransitionRequest};
//! use kernel::{AppName, Duration, ManualClock, Username};
//!
//! let store = store::Store::connect("sqlite::memory:", &Default::default())?;
//! store.migrate()?;
//! // Friday 5 April 2024, 09:00 UTC; the clock moves only when told to.
//! let clock = Arc::new(ManualClock::at(kernel::parse_instant("2024-04-05T09:00:00Z")?));
//! let settings = AnalyticsSettings {
//!     public_tracking: false,
//!     public_analytics: false,
//!     idle_timeout: Duration::minutes(30),
//! };
//! // Page visits are group-committed by the store's batcher threads.
//! let store = Arc::new(store);
//! let batcher = Arc::new(store::PageBatcher::start(store.clone(), clock.clone()));
//! let analytics =
//!     AnalyticsService::new(store, clock.clone(), settings).with_page_writer(batcher.clone());
//!
//! // Alice, as her access token names her, tracks herself in the app "web".
//! let alice = Caller {
//!     username: Username::parse("alice").map_err(anyhow::Error::msg)?,
//!     app: AppName::parse("web").map_err(anyhow::Error::msg)?,
//!     is_admin: false,
//! };
//! let (user, app) = (String::from("alice"), String::from("web"));
//! // Requests are parsed from their fields as received, with the
//! // service's clock for the event times.
//! let start = RawStart { user: user.clone(), app: app.clone(), ..Default::default() };
//! let session = analytics.start(&alice, StartRequest::parse(start, analytics.now())?)?;
//! let visit = RawTrackPage {
//!     user: user.clone(),
//!     app: app.clone(),
//!     page: "/home".into(),
//!     timespent: Some(42),
//!     session_id: Some(session.id.to_string()),
//!     time: None, // now
//! };
//! analytics.track_page(Some(&alice), TrackPageRequest::parse(visit, analytics.now())?)?;
//! clock.advance(Duration::minutes(10));
//! let session_id = session.id.to_string();
//! let end = RawTransition { user: user.clone(), app: app.clone(), session_id, time: None };
//! analytics.end(&alice, TransitionRequest::parse(end, analytics.now())?)?;
//!
//! // Reports of Alice's usage, in her time zone (UTC+2 in April).
//! let raw = RawReport { app, user, tz: Some("Europe/Paris".into()), ..Default::default() };
//! let report = ReportRequest::parse(raw.clone(), Paging::No)?;
//! let heatmap = analytics.heatmap(&alice, report.clone())?;
//! assert_eq!(heatmap.total_sessions, 1);
//! assert_eq!(heatmap.daily_sessions["2024-04-05"], 1);
//! assert_eq!(heatmap.weekly_hourly[&4][&11], 1); // Friday (0 = Monday), 11:00 local
//! let stats = analytics.stats(&alice, report.clone())?;
//! assert_eq!(stats.total_time_spent, 600); // seconds
//! // Pages by total time, most first, at most `limit` (default 1000) a call.
//! let pages = analytics.page_stats(&alice, ReportRequest::parse(raw, Paging::Pages)?)?;
//! let (page, stat) = &pages.page_stats[0];
//! assert_eq!((page.as_str(), stat.visits, stat.total_time), ("/home", 1, 42));
//! assert_eq!(pages.next_cursor, None); // the last page
//!
//! batcher.stop(); // writes what the group-commit batcher still holds
//! # anyhow::Ok(())
//! ```

mod authorisation;
mod cursor;
#[cfg(test)]
mod fake;
mod ports;
mod reports;
mod requests;
mod service;
mod tracking;
mod values;

pub use kernel::{AppName, Username};
pub use ports::{
    BUCKET_MS, EventSpan, Interval, MsRange, PagePosition, PageTotal, PageWriter, PendingVisit,
    SessionBucket, TimelinePosition, TrackEvent, TrackingStore,
};
pub use reports::{
    DailyTime, DetailEntry, DetailPage, Heatmap, LocalSlot, MostActive, PageStat, PageStats,
    PageTime, Stats, Summary, TimelineEntry, TimelinePage, WEEKDAYS,
};
pub use requests::{
    AnalyticsSettings, Caller, CheckedVisit, Paging, RawReport, RawStart, RawTrackPage,
    RawTransition, Readiness, ReportPage, ReportRequest, StartRequest, TrackPageRequest,
    TransitionRequest, VisitRequest,
};
pub use service::{AnalyticsService, MAX_CLOCK_SKEW, MAX_DETAIL_EVENTS, PageCommit};
pub use tracking::{EventKind, PageVisit, TrackState, TrackedSession, Transition};
pub use values::{PagePath, Subject, TimeSpent, Tz, parse_bound};

use kernel::Violations;

/// Why an analytics use case refused.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// Well-formed but invalid input (422); field → problem.
    #[error("validation failed: {0}")]
    Invalid(Violations),
    /// The step is not allowed from the session's state (409).
    #[error("cannot {action} a session that is {state}")]
    InvalidTransition {
        /// The requested step.
        action: &'static str,
        /// The session's state.
        state: &'static str,
    },
    /// No such session for this app and user (404).
    #[error("tracked session not found")]
    SessionNotFound,
    /// The caller may not act for this user or app (403); why.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A token is required (public access is switched off) (401).
    #[error("authentication required")]
    Unauthenticated,
    /// The endpoint is switched off by configuration (404).
    #[error("this endpoint is disabled")]
    Disabled,
    /// What the domain cannot name (store failures).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}
