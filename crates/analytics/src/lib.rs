//! Usage-analytics domain of sessiond: tracked usage sessions (a state
//! machine of start, pause, resume, end), page visits, and the reports of
//! seed 004 (heatmap, most-active, stats, summary, timelines, daily time,
//! time by page, page stats), exact in every IANA time zone.
//!
//! Storage is the [`TrackingStore`] port; [`AnalyticsService`] holds the
//! use cases. Reports are built from 15-minute UTC bucket aggregates that
//! the store keeps current in the same transaction as every event.

mod ports;
mod reports;
mod service;
mod tracking;
mod values;

pub use ports::{
    BUCKET_MS, Interval, MsRange, PageTotal, SessionBucket, TimelinePosition, TrackEvent,
    TrackingStore,
};
pub use reports::{
    DailyTime, DetailEntry, DetailPage, Heatmap, LocalSlot, MostActive, PageStat, PageStats,
    PageTime, Stats, Summary, TimelineEntry, TimelinePage, WEEKDAYS,
};
pub use service::{
    AnalyticsService, AnalyticsSettings, Caller, ReportRequest, StartRequest, TrackPageRequest,
    TransitionRequest,
};
pub use tracking::{EventKind, PageVisit, TrackState, TrackedSession, Transition};
pub use values::{App, PagePath, Subject, TimeSpent, Tz, parse_bound, parse_username};

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
