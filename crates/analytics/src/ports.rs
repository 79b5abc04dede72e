//! Storage port of the analytics domain, and the rows it speaks in.
//!
//! Reports never scan raw events: the store keeps aggregates per
//! 15-minute UTC bucket (every real time-zone offset is a multiple of 15
//! minutes, so any local day or hour is a whole number of buckets), per
//! `(app, user)` and per `(app, all users)`, updated in the same
//! transaction as the event. Where a requested range starts or ends inside
//! a bucket, the store recomputes that partial bucket from raw rows, so
//! what it returns covers the range exactly.

use std::future::Future;
use std::pin::Pin;

use kernel::{OffsetDateTime, Uuid};

use crate::{EventKind, PageVisit, Subject, TrackedSession};

/// Length of an aggregation bucket.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// A half-open range of instants `[from, to)`, in milliseconds since the
/// epoch; `None` = unbounded on that side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsRange {
    /// Inclusive start.
    pub from: Option<i64>,
    /// Exclusive end.
    pub to: Option<i64>,
}

/// Aggregates of one 15-minute bucket `[bucket_ms, bucket_ms + BUCKET_MS)`
/// (or of the part of it inside the requested range).
///
/// The session counts and durations are keyed by the bucket in which the
/// session STARTED; `active_ms` is the active time (closed intervals only)
/// that FELL in the bucket, whichever session it belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionBucket {
    /// Bucket start, ms since the epoch, a multiple of [`BUCKET_MS`].
    pub bucket_ms: i64,
    /// Sessions started in the bucket.
    pub starts: i64,
    /// Of those, how many have ended.
    pub ended: i64,
    /// Sum of the durations (active time) of those ended sessions, ms.
    pub dur_sum_ms: i64,
    /// Shortest of those durations, ms.
    pub dur_min_ms: Option<i64>,
    /// Longest of those durations, ms.
    pub dur_max_ms: Option<i64>,
    /// Active time that fell in this bucket, ms.
    pub active_ms: i64,
}

/// Totals of one page over a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTotal {
    /// The page path.
    pub page: String,
    /// Number of visits.
    pub visits: i64,
    /// Sum of `timespent`, seconds.
    pub time_sum: i64,
}

impl PageTotal {
    /// Where this page stands in the order of the page reports, for paging
    /// on after it.
    pub fn position(&self) -> PagePosition {
        PagePosition { time_sum: self.time_sum, page: self.page.clone() }
    }
}

/// A position in the order of the page reports: total time, most first,
/// then path in byte order (how both databases compare the page column).
/// A page comes after `self` when its total is smaller, or equal with a
/// greater path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PagePosition {
    /// Total time of the last page of the previous call, seconds.
    pub time_sum: i64,
    /// Its path.
    pub page: String,
}

impl PagePosition {
    /// Whether `total` comes after this position in report order.
    pub fn precedes(&self, total: &PageTotal) -> bool {
        total.time_sum < self.time_sum
            || (total.time_sum == self.time_sum && total.page.as_bytes() > self.page.as_bytes())
    }
}

/// The events `[from_seq, to_seq)` of one session: a detailed timeline
/// asks for exactly the events a page has room for, so that a session
/// with very many events never loads them all at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpan {
    /// The session.
    pub session_id: Uuid,
    /// First event (`seq`) wanted.
    pub from_seq: i32,
    /// First event no longer wanted.
    pub to_seq: i32,
}

/// One recorded event of a tracked session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackEvent {
    /// The session.
    pub session_id: Uuid,
    /// 0 for the start, then 1, 2, …
    pub seq: i32,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: OffsetDateTime,
}

/// A closed active interval `[from, to)` of a session, produced by a pause
/// or an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start (the session's start or last resume).
    pub from: OffsetDateTime,
    /// End (the pause or end).
    pub to: OffsetDateTime,
}

impl Interval {
    /// Length in whole milliseconds (the store's precision: both ends
    /// truncated to milliseconds first), 0 when `to` is not after `from`.
    pub fn duration_ms(&self) -> i64 {
        kernel::to_millis(self.to).saturating_sub(kernel::to_millis(self.from)).max(0)
    }

    /// The interval cut at bucket edges: `(bucket_ms, ms of the interval in
    /// that bucket)` for every bucket it overlaps, ascending, skipping
    /// empty pieces. The pieces add up to [`Interval::duration_ms`]. This
    /// is the split a store applies to `closed` in
    /// [`TrackingStore::apply_transition`].
    pub fn split_by_bucket(&self) -> Vec<(i64, i64)> {
        let (from, to) = (kernel::to_millis(self.from), kernel::to_millis(self.to));
        let mut out = Vec::new();
        let mut at = from;
        while at < to {
            let bucket = at.div_euclid(BUCKET_MS) * BUCKET_MS;
            let end = to.min(bucket.saturating_add(BUCKET_MS));
            out.push((bucket, end - at));
            at = end;
        }
        out
    }
}

/// A position in start-time order, for paging timelines: `(started_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePosition {
    /// Start of the last session of the previous page.
    pub started_at: OffsetDateTime,
    /// Its id (ties at one instant are ordered by id).
    pub id: Uuid,
}

/// Storage of tracked sessions, page visits and their aggregates. Reports
/// are exact and never lag: every session write updates the aggregates in
/// its own transaction, and page visits are counted from the moment they
/// are durable (see [`TrackingStore::record_pages`]).
pub trait TrackingStore: Send + Sync {
    /// Stores a new session (state active) with its start event, and counts
    /// it in its start bucket.
    fn insert_session(&self, session: &TrackedSession) -> anyhow::Result<()>;

    /// The session with this id in this app (any user, any state).
    fn get_session(&self, app: &str, id: Uuid) -> anyhow::Result<Option<TrackedSession>>;

    /// Applies a transition atomically, as a compare-and-swap: when the
    /// stored session still equals `before` (same state and last event
    /// time), stores `after`, appends `event`, adds `closed` (if any) to the
    /// active time of every bucket it overlaps (split at bucket edges), and,
    /// when `after` has ended, counts it as ended with its duration in its
    /// start bucket. `false` when the session changed meanwhile (nothing is
    /// written then).
    fn apply_transition(
        &self,
        before: &TrackedSession,
        after: &TrackedSession,
        event: &TrackEvent,
        closed: Option<Interval>,
    ) -> anyhow::Result<bool>;

    /// Sessions not ended whose last event ARRIVED (`last_seen_at`) before
    /// `cutoff`, oldest first, at most `limit` (for the sweeper).
    fn stale_open_sessions(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>>;

    /// Stores page visits, all in ONE transaction (group commit): when this
    /// returns Ok, every visit is durable and counted by
    /// [`page_totals`](Self::page_totals).
    ///
    /// A store may leave the aggregation of visits to a later fold, which
    /// adds many batches' visits at once, and meanwhile read them raw, so
    /// that reports stay exact and never lag.
    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()>;

    /// Session aggregates per bucket over `range` for `subject` in `app`,
    /// exact at partial buckets, in ascending bucket order; buckets with
    /// nothing in them may be omitted.
    fn session_buckets(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
    ) -> anyhow::Result<Vec<SessionBucket>>;

    /// Per-page totals of visits in `range` for `subject` in `app`: pages
    /// with at least one visit, by total time (most first) then path (byte
    /// order), after `after` (exclusive), at most `limit`.
    ///
    /// The grouping, order and limit are the store's (a database does them
    /// in SQL), so that the memory of a call is bounded by `limit`, however
    /// many pages a user has.
    fn page_totals(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageTotal>>;

    /// Sessions started in `range`, ascending by `(started_at, id)`, after
    /// `after` (exclusive), at most `limit`.
    fn timeline(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<TimelinePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>>;

    /// The events of these spans (at most `to_seq - from_seq` each), span
    /// after span in the order given, each by `seq`; a session is named by
    /// one span at most. Only those events are read, so a call's memory is
    /// bounded by the spans, not by how long the sessions are.
    fn events_of(&self, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>>;
}

/// The commit of one page visit handed to a [`PageWriter`]: resolves to the
/// visit once it is durable, or to the error of the write that failed. It
/// needs no particular runtime.
pub type PendingVisit = Pin<Box<dyn Future<Output = anyhow::Result<PageVisit>> + Send>>;

/// Writes checked page visits durably, the busiest write of the domain.
///
/// A writer may group the visits of many callers into one commit (the
/// store's batcher does), so that ingest is not one fsync per visit; either
/// way a visit is answered only once it is durable and counted by
/// [`TrackingStore::page_totals`].
pub trait PageWriter: Send + Sync {
    /// Writes one visit and returns once it is durable (blocks the caller).
    fn write(&self, visit: PageVisit) -> anyhow::Result<PageVisit>;

    /// Hands one visit over for writing and returns the future of its
    /// commit, so an async caller waits without holding a thread. The
    /// visit is written even if the future is dropped first.
    fn submit(&self, visit: PageVisit) -> PendingVisit;

    /// Visits this writer made durable since it started (the metrics'
    /// share of page visits in the events ingested).
    fn visits_written(&self) -> u64;
}
