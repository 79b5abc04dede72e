//! `analytics::TrackingStore`: tracked sessions, page visits, and their
//! aggregates: kept current by every session write in its own transaction,
//! and for page visits folded in behind the raw rows.
//!
//! Aggregates are kept per `(app, subject)`, where the subject is the
//! lowercased username or [`ALL`] (every user of the app); each change
//! writes both rows, so a report for one user or for everyone reads the
//! same number of rows.
//!
//! - `track_buckets`: per 15-minute UTC bucket, the sessions that started
//!   in it (count; of the ended ones: count, sum, min, max of durations)
//!   and the closed active time that fell in it.
//! - `tracked_intervals`: the closed active intervals, split at bucket
//!   edges, so that a bucket a range cuts in two is recomputed from its own
//!   pieces (and the sessions started in it) exactly.
//! - Page visits: `page_days` per UTC day for each user and for everyone;
//!   for everyone also `page_totals` (all time) and `page_buckets` (15
//!   minutes). Everyone's range reads its whole days, the whole buckets of
//!   its edge days, and raw visits only for the sub-bucket remainders; a
//!   user's range reads its whole days and the user's own raw visits of
//!   the (at most two) cut days. A user's visits in a day are few, so
//!   user totals and buckets would cost every visit two more upserts and
//!   save a report next to nothing.
//! - `page_folds`: per app, the watermark below which its page aggregates
//!   hold every visit and above which they hold none. A batch writes raw
//!   visits (and aggregates only those dated below the watermark);
//!   [`Store::fold_pages_in_steps`] adds the visits up to a new watermark,
//!   many batches' worth in one go; a report adds the raw visits at or
//!   after the watermark, in the statement that reads the aggregates.
//!
//! Concurrency: aggregates are written by multi-row upserts whose rows are
//! sorted by primary key, in a fixed order of statements (session buckets:
//! one statement; pages: the users' day rows, then the all-users rows), so
//! concurrent PostgreSQL transactions take row locks in one global order
//! and cannot deadlock (SQLite serialises writers with `BEGIN IMMEDIATE`).
//! Page batches hold an advisory lock shared and a fold holds it
//! exclusively, so a fold never misses a visit written under the old
//! watermark. Transitions are a compare-and-swap on the session row, like
//! refresh-token rotation.
//!
//! Ingest: a batch of page visits is written whatever its size, atomically.
//! On PostgreSQL the whole batch is one call of a PL/pgSQL function (one
//! statement, one round trip, its own commit) binding one array per
//! column; on SQLite it is one `BEGIN IMMEDIATE` transaction of multi-row
//! `VALUES` in chunks.
//!
//! Files: `rows` (the rows as diesel sees them), `sql` (the SQL text of
//! the raw reads, once per backend), `plan` (the pure range arithmetic and
//! its tests), `sessions` (tracked sessions and their aggregates), `pages`
//! (page reports), `writers` (page-visit writers and folds per backend);
//! this file holds the shared constants and the port's implementation,
//! which only delegates.

use analytics::{
    EventSpan, Interval, MsRange, PagePosition, PageTotal, PageVisit, SessionBucket, Subject,
    TrackEvent, TrackedSession, TrackingStore,
};
use kernel::{OffsetDateTime, Uuid};

use crate::Store;

mod pages;
mod plan;
mod rows;
mod sessions;
mod sql;
mod writers;

// What bulk loading shares with the one-event path, so that both write
// the same rows and aggregates.
#[cfg(any(test, feature = "bulk"))]
pub(crate) use plan::{floor_to, split_at_buckets};
#[cfg(any(test, feature = "bulk"))]
pub(crate) use rows::{IntervalPieceRow, TrackedSessionRow};
#[cfg(any(test, feature = "bulk"))]
pub(crate) use sessions::{BucketDeltas, upsert_buckets};

/// The subject of the all-users aggregates. Usernames cannot contain `*`.
pub(crate) const ALL: &str = "*";

/// Rows per multi-row statement: 1000 rows of at most 9 columns stay far
/// below both databases' limits on bind parameters (65535 and 32766).
pub(crate) const CHUNK_ROWS: usize = 1000;

/// Event spans per statement: each is an `OR`ed term of three
/// parameters, and SQLite parses a chain of `OR`s as a tree as deep as it
/// is long (its limit is 1000 levels).
const CHUNK_SPANS: usize = 100;

/// Open sessions, spelt exactly as the predicate of the partial index
/// `tracked_sessions_open_idx` (a bound parameter would not match it).
const OPEN: &str = "state <> 'ended'";

/// Upsert of the shortest duration (NULL = none yet on either side).
pub(crate) const MERGE_MIN: &str = "CASE WHEN track_buckets.dur_min_ms IS NULL \
     OR excluded.dur_min_ms < track_buckets.dur_min_ms \
     THEN excluded.dur_min_ms ELSE track_buckets.dur_min_ms END";

/// Upsert of the longest duration.
pub(crate) const MERGE_MAX: &str = "CASE WHEN track_buckets.dur_max_ms IS NULL \
     OR excluded.dur_max_ms > track_buckets.dur_max_ms \
     THEN excluded.dur_max_ms ELSE track_buckets.dur_max_ms END";

/// The aggregate subject of `subject`.
fn subject_key(subject: &Subject) -> &str {
    match subject {
        Subject::User(name) => name,
        Subject::All => ALL,
    }
}

/// Refuses [`ALL`] as a username: it would add to everyone's aggregates
/// as if it were a user.
pub(crate) fn check_user(user: &str) -> anyhow::Result<()> {
    anyhow::ensure!(user != ALL, "{ALL:?} is not a username");
    Ok(())
}

impl TrackingStore for Store {
    fn insert_session(&self, session: &TrackedSession) -> anyhow::Result<()> {
        sessions::insert_session(self, session)
    }

    fn get_session(&self, app: &str, id: Uuid) -> anyhow::Result<Option<TrackedSession>> {
        sessions::get_session(self, app, id)
    }

    fn apply_transition(
        &self,
        before: &TrackedSession,
        after: &TrackedSession,
        event: &TrackEvent,
        closed: Option<Interval>,
    ) -> anyhow::Result<bool> {
        sessions::apply_transition(self, before, after, event, closed)
    }

    fn stale_open_sessions(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        sessions::stale_open_sessions(self, cutoff, limit)
    }

    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        writers::record_pages(self, visits)
    }

    fn session_buckets(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
    ) -> anyhow::Result<Vec<SessionBucket>> {
        sessions::session_buckets(self, app, subject, range)
    }

    fn page_totals(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageTotal>> {
        pages::page_totals(self, app, subject, range, after, limit)
    }

    fn timeline(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<analytics::TimelinePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        sessions::timeline(self, app, subject, range, after, limit)
    }

    fn events_of(&self, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>> {
        sessions::events_of(self, spans)
    }
}
