//! The rows of the analytics tables as diesel reads and writes them. Named
//! after their tables (`TrackedSessionRow`, `IntervalPieceRow`) so that
//! none shares a name with a row type elsewhere in the crate (the device
//! sessions' `SessionRow`).

use analytics::{TrackState, TrackedSession};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use kernel::{from_millis, to_millis};

use crate::parse_id;
use crate::schema::{
    page_buckets as pb, page_days as pd, page_totals as pt, page_visits as pv, track_buckets as tb,
    tracked_intervals as ti, tracked_sessions as ts,
};

/// A row of `tracked_sessions`.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = ts, treat_none_as_default_value = false)]
pub(crate) struct TrackedSessionRow {
    pub(crate) id: String,
    pub(crate) app: String,
    pub(crate) user_name: String,
    pub(crate) state: String,
    pub(crate) started_at_ms: i64,
    pub(crate) last_event_at_ms: i64,
    pub(crate) last_seen_at_ms: i64,
    pub(crate) active_since_ms: Option<i64>,
    pub(crate) active_ms: i64,
    pub(crate) ended_at_ms: Option<i64>,
    pub(crate) events: i32,
}

impl TrackedSessionRow {
    /// The row of `s`.
    pub(crate) fn of(s: &TrackedSession) -> Self {
        Self {
            id: s.id.to_string(),
            app: s.app.clone(),
            user_name: s.user.clone(),
            state: s.state.as_str().to_owned(),
            started_at_ms: to_millis(s.started_at),
            last_event_at_ms: to_millis(s.last_event_at),
            last_seen_at_ms: to_millis(s.last_seen_at),
            active_since_ms: s.active_since.map(to_millis),
            active_ms: s.active_ms,
            ended_at_ms: s.ended_at.map(to_millis),
            events: s.events,
        }
    }

    /// The domain's session, or an error for a state this build does not
    /// know.
    pub(crate) fn into_session(self) -> anyhow::Result<TrackedSession> {
        Ok(TrackedSession {
            id: parse_id(&self.id)?,
            state: TrackState::parse(&self.state).ok_or_else(|| {
                anyhow::anyhow!("stored tracked-session state {:?} is unknown", self.state)
            })?,
            app: self.app,
            user: self.user_name,
            started_at: from_millis(self.started_at_ms),
            last_event_at: from_millis(self.last_event_at_ms),
            last_seen_at: from_millis(self.last_seen_at_ms),
            active_since: self.active_since_ms.map(from_millis),
            active_ms: self.active_ms,
            ended_at: self.ended_at_ms.map(from_millis),
            events: self.events,
        })
    }
}

/// A piece of a closed active interval, inside one bucket.
#[derive(Insertable)]
#[diesel(table_name = ti)]
pub(crate) struct IntervalPieceRow<'a> {
    pub(crate) session_id: &'a str,
    pub(crate) app: &'a str,
    pub(crate) user_name: &'a str,
    pub(crate) bucket_ms: i64,
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
}

/// A change to one row of `track_buckets`, added to it (min and max
/// merged) by an upsert.
#[derive(Insertable)]
#[diesel(table_name = tb, treat_none_as_default_value = false)]
pub(crate) struct BucketRow<'a> {
    pub(crate) app: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) bucket_ms: i64,
    pub(crate) starts: i64,
    pub(crate) ended: i64,
    pub(crate) dur_sum_ms: i64,
    pub(crate) dur_min_ms: Option<i64>,
    pub(crate) dur_max_ms: Option<i64>,
    pub(crate) active_ms: i64,
}

/// A row of `track_buckets` as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = tb)]
pub(crate) struct StoredBucket {
    pub(crate) bucket_ms: i64,
    pub(crate) starts: i64,
    pub(crate) ended: i64,
    pub(crate) dur_sum_ms: i64,
    pub(crate) dur_min_ms: Option<i64>,
    pub(crate) dur_max_ms: Option<i64>,
    pub(crate) active_ms: i64,
}

/// The aggregates of a partial bucket (`sql::Texts::window_all`, `window_user`).
#[derive(QueryableByName)]
pub(crate) struct WindowRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) starts: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) ended: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) dur_sum_ms: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) dur_min_ms: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) dur_max_ms: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub(crate) active_ms: i64,
}

/// A row of `page_visits`.
#[derive(Insertable)]
#[diesel(table_name = pv, treat_none_as_default_value = false)]
pub(crate) struct VisitRow<'a> {
    pub(crate) id: String,
    pub(crate) app: &'a str,
    pub(crate) user_name: &'a str,
    pub(crate) page: &'a str,
    pub(crate) timespent: i64,
    pub(crate) session_id: Option<String>,
    pub(crate) at_ms: i64,
}

/// A change to one row of `page_totals` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pt, treat_none_as_default_value = false)]
pub(crate) struct PageTotalRow<'a> {
    pub(crate) app: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) page: &'a str,
    pub(crate) visits: i64,
    pub(crate) time_sum: i64,
}

/// A change to one row of `page_days` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pd, treat_none_as_default_value = false)]
pub(crate) struct PageDayRow<'a> {
    pub(crate) app: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) day_ms: i64,
    pub(crate) page: &'a str,
    pub(crate) visits: i64,
    pub(crate) time_sum: i64,
}

/// A change to one row of `page_buckets` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pb, treat_none_as_default_value = false)]
pub(crate) struct PageBucketRow<'a> {
    pub(crate) app: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) bucket_ms: i64,
    pub(crate) page: &'a str,
    pub(crate) visits: i64,
    pub(crate) time_sum: i64,
}

/// One step of a fold on PostgreSQL (`FOLD_PAGES_SQL` of the writers).
#[derive(QueryableByName)]
pub(crate) struct FoldStep {
    #[diesel(sql_type = BigInt)]
    pub(crate) folded: i64,
    #[diesel(sql_type = Bool)]
    pub(crate) done: bool,
}

/// Per-page totals (the per-page sums of `sql::Texts`).
#[derive(QueryableByName)]
pub(crate) struct PageRow {
    #[diesel(sql_type = Text)]
    pub(crate) page: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) visits: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) time_sum: i64,
}
