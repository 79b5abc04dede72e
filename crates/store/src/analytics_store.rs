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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use analytics::{
    BUCKET_MS, EventKind, EventSpan, Interval, MsRange, PagePosition, PageTotal, PageVisit,
    SessionBucket, Subject, TimelinePosition, TrackEvent, TrackState, TrackedSession,
    TrackingStore,
};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel::upsert::excluded;
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};

use crate::conn::DbConn;
use crate::schema::{
    page_buckets as pb, page_days as pd, page_folds as pf, page_totals as pt, page_visits as pv,
    track_buckets as tb, tracked_events as te, tracked_intervals as ti, tracked_sessions as ts,
};
use crate::{Backend, Store, parse_id, per_backend};

/// The subject of the all-users aggregates. Usernames cannot contain `*`.
pub(crate) const ALL: &str = "*";

/// A UTC day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Stands for an unbounded side of a range: a whole number of days (so of
/// buckets) beyond any storable instant (year 9999 is about 2.5e14 ms), so
/// that an unbounded side never cuts a bucket.
const FAR: i64 = DAY_MS * 11_000_000;

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

/// The aggregates of one partial bucket `[$3, $4)` of bucket `$5`, for app
/// `$1` and subject `$2`, from raw rows: sessions started in the window,
/// and the interval pieces of that bucket clipped to it. `{user}` is
/// replaced by the subject filter. Written with `$n` placeholders;
/// [`Store::dialect`] turns them into SQLite's `?n`.
const WINDOW_SQL: &str = "\
SELECT CAST(COUNT(*) AS BIGINT) AS starts, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN 1 ELSE 0 END), 0) AS BIGINT) AS ended, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN active_ms ELSE 0 END), 0) AS BIGINT) \
           AS dur_sum_ms, \
       MIN(CASE WHEN state = 'ended' THEN active_ms END) AS dur_min_ms, \
       MAX(CASE WHEN state = 'ended' THEN active_ms END) AS dur_max_ms, \
       (SELECT CAST(COALESCE(SUM( \
                   (CASE WHEN to_ms < $4 THEN to_ms ELSE $4 END) \
                 - (CASE WHEN from_ms > $3 THEN from_ms ELSE $3 END)), 0) AS BIGINT) \
          FROM tracked_intervals \
         WHERE app = $1 {user} AND bucket_ms = $5 AND to_ms > $3 AND from_ms < $4) AS active_ms \
  FROM tracked_sessions \
 WHERE app = $1 {user} AND started_at_ms >= $3 AND started_at_ms < $4";

/// Everyone's per-page totals over a bounded range of app `$1` (`$2` is
/// [`ALL`]): whole days `[$3, $4)`, two runs of whole buckets `[$5, $6)`
/// and `[$7, $8)`, two raw remainders `[$9, $10)` and `[$11, $12)`
/// (an unused part is an empty range), and the raw visits that the
/// aggregates of `[$13, $14)` (the days and buckets read) do not hold yet.
///
/// The aggregates of an app hold exactly its visits dated before its
/// watermark (`page_folds`, see [`Store::fold_pages`]); those dated at or
/// after it are read raw (an app without a watermark has nothing
/// aggregated). One statement reads the watermark, the aggregates and the
/// raw visits, so they agree (one snapshot) whatever a fold does meanwhile.
const PAGES_SQL: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_days \
   WHERE app = $1 AND subject = $2 AND day_ms >= $3 AND day_ms < $4 \
  UNION ALL SELECT page, visits, time_sum FROM page_buckets \
   WHERE app = $1 AND subject = $2 AND bucket_ms >= $5 AND bucket_ms < $6 \
  UNION ALL SELECT page, visits, time_sum FROM page_buckets \
   WHERE app = $1 AND subject = $2 AND bucket_ms >= $7 AND bucket_ms < $8 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 AND at_ms >= $9 AND at_ms < $10 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 AND at_ms >= $11 AND at_ms < $12 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 \
     AND at_ms >= GREATEST($13, COALESCE((SELECT folded_ms FROM page_folds WHERE app = $1), $13)) \
     AND at_ms < $14 \
) AS parts GROUP BY page";

/// Everyone's per-page totals of app `$1` over all time (`$2` is
/// [`ALL`]): `page_totals`, and the raw visits not aggregated yet (see
/// [`PAGES_SQL`]), `$3` = -[`FAR`] and `$4` = [`FAR`].
const TOTALS_SQL: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_totals WHERE app = $1 AND subject = $2 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 \
     AND at_ms >= GREATEST($3, COALESCE((SELECT folded_ms FROM page_folds WHERE app = $1), $3)) \
     AND at_ms < $4 \
) AS parts GROUP BY page";

/// One user's per-page totals over a range of app `$1` for user `$2`:
/// whole days `[$3, $4)`, the user's raw visits of the cut days,
/// `[$5, $6)` and `[$7, $8)` (an unused part is an empty range), and the
/// user's raw visits that the day rows of `[$9, $10)` (= `[$3, $4)`) do
/// not hold yet, as in [`PAGES_SQL`].
const USER_PAGES_SQL: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_days \
   WHERE app = $1 AND subject = $2 AND day_ms >= $3 AND day_ms < $4 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 AND user_name = $2 AND at_ms >= $5 AND at_ms < $6 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 AND user_name = $2 AND at_ms >= $7 AND at_ms < $8 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 AND user_name = $2 \
     AND at_ms >= GREATEST($9, COALESCE((SELECT folded_ms FROM page_folds WHERE app = $1), $9)) \
     AND at_ms < $10 \
) AS parts GROUP BY page";

/// One page of a per-page sum ([`PAGES_SQL`], [`TOTALS_SQL`],
/// [`USER_PAGES_SQL`], whose parameters end at `$<first - 1>`) in report
/// order: pages with a visit, by total time (most first), then path in
/// byte order, after the position `($first, $<first + 1>)` when `keyset`,
/// at most `$<last>` of them.
///
/// The database groups, orders and limits (a top-N sort keeps only the
/// `limit` best rows), so what reaches this process is bounded by the
/// limit whatever the number of pages. Paths compare as bytes in both
/// databases (`COLLATE "C"`, SQLite's `BINARY`), as the cursor does.
fn paged_sums(sum: &str, first: usize, keyset: bool) -> String {
    let (time, page) = (first, first + 1);
    let after = if keyset {
        format!(
            " AND (time_sum < ${time} OR (time_sum = ${time} AND page COLLATE \"C\" > ${page}))"
        )
    } else {
        String::new()
    };
    let limit = if keyset { first + 2 } else { first };
    format!(
        "SELECT page, visits, time_sum FROM ({sum}) AS sums WHERE visits > 0{after} \
         ORDER BY time_sum DESC, page COLLATE \"C\" ASC LIMIT ${limit}"
    )
}

/// Visits folded per [`FOLD_PAGES_SQL`] call (one transaction): bounds
/// how long a fold keeps batches waiting, and keeps a step well inside
/// the statement timeout (measured: about 110,000 visits a second folded on
/// PostgreSQL here), so that a backlog is folded step by step instead of
/// timing out whole, again and again.
const FOLD_BUDGET: u32 = 10_000;

/// One step of a fold on PostgreSQL (migration `000010_page_folds`): `$1`
/// the instant to fold up to, `$2` the budget.
const FOLD_PAGES_SQL: &str = "SELECT folded, done FROM sessiond_fold_pages($1, $2)";

diesel::define_sql_function! {
    /// PostgreSQL ingest (migration `000010_page_folds`): a batch of page
    /// visits in one statement, so one round trip and one commit: the raw
    /// rows, and the aggregates of those dated before their app's
    /// watermark (the rest wait for a fold). Parameters are one array per
    /// column, unnested by the server: the text is fixed however many rows
    /// there are, so the statement is prepared once per connection and
    /// there is no limit on parameters to chunk around.
    #[sql_name = "sessiond_track_visits"]
    fn pg_track_visits(
        v_id: Array<Text>,
        v_app: Array<Text>,
        v_user: Array<Text>,
        v_page: Array<Text>,
        v_timespent: Array<BigInt>,
        v_session: Array<Nullable<Text>>,
        v_at: Array<BigInt>,
    ) -> BigInt;
}

// ---------------------------------------------------------------- rows

/// A row of `tracked_sessions`.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = ts, treat_none_as_default_value = false)]
pub(crate) struct SessionRow {
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

impl SessionRow {
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

    fn into_session(self) -> anyhow::Result<TrackedSession> {
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
struct PieceRow<'a> {
    session_id: &'a str,
    app: &'a str,
    user_name: &'a str,
    bucket_ms: i64,
    from_ms: i64,
    to_ms: i64,
}

/// A change to one row of `track_buckets`, added to it (min and max
/// merged) by an upsert.
#[derive(Insertable)]
#[diesel(table_name = tb, treat_none_as_default_value = false)]
pub(crate) struct BucketRow<'a> {
    app: &'a str,
    subject: &'a str,
    bucket_ms: i64,
    starts: i64,
    ended: i64,
    dur_sum_ms: i64,
    dur_min_ms: Option<i64>,
    dur_max_ms: Option<i64>,
    active_ms: i64,
}

/// A row of `track_buckets` as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = tb)]
struct StoredBucket {
    bucket_ms: i64,
    starts: i64,
    ended: i64,
    dur_sum_ms: i64,
    dur_min_ms: Option<i64>,
    dur_max_ms: Option<i64>,
    active_ms: i64,
}

/// The aggregates of a partial bucket ([`WINDOW_SQL`]).
#[derive(QueryableByName)]
struct WindowRow {
    #[diesel(sql_type = BigInt)]
    starts: i64,
    #[diesel(sql_type = BigInt)]
    ended: i64,
    #[diesel(sql_type = BigInt)]
    dur_sum_ms: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    dur_min_ms: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    dur_max_ms: Option<i64>,
    #[diesel(sql_type = BigInt)]
    active_ms: i64,
}

/// A row of `page_visits`.
#[derive(Insertable)]
#[diesel(table_name = pv, treat_none_as_default_value = false)]
struct VisitRow<'a> {
    id: String,
    app: &'a str,
    user_name: &'a str,
    page: &'a str,
    timespent: i64,
    session_id: Option<String>,
    at_ms: i64,
}

/// A change to one page aggregate row: `at_ms` is the day or bucket start
/// (unused for all-time totals).
#[derive(Debug, Clone, Copy)]
struct PageAgg<'a> {
    app: &'a str,
    subject: &'a str,
    at_ms: i64,
    page: &'a str,
    visits: i64,
    time_sum: i64,
}

/// The page aggregates a visit changes, in the order a writer writes (and
/// so locks) them: the user's day, then everyone's total, day and bucket,
/// which every concurrent writer of the app also updates, last. The
/// PostgreSQL function `sessiond_aggregate_visits` goes in the same order.
const PARTS: [(Grain, bool); 4] =
    [(Grain::Day, false), (Grain::Total, true), (Grain::Day, true), (Grain::Bucket, true)];

/// The grains of the page aggregates.
#[derive(Debug, Clone, Copy)]
enum Grain {
    /// `page_totals`.
    Total,
    /// `page_days`.
    Day,
    /// `page_buckets`.
    Bucket,
}

/// A change to one row of `page_totals` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pt, treat_none_as_default_value = false)]
struct PageTotalRow<'a> {
    app: &'a str,
    subject: &'a str,
    page: &'a str,
    visits: i64,
    time_sum: i64,
}

/// A change to one row of `page_days` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pd, treat_none_as_default_value = false)]
struct PageDayRow<'a> {
    app: &'a str,
    subject: &'a str,
    day_ms: i64,
    page: &'a str,
    visits: i64,
    time_sum: i64,
}

/// A change to one row of `page_buckets` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = pb, treat_none_as_default_value = false)]
struct PageBucketRow<'a> {
    app: &'a str,
    subject: &'a str,
    bucket_ms: i64,
    page: &'a str,
    visits: i64,
    time_sum: i64,
}

/// One step of a fold on PostgreSQL ([`FOLD_PAGES_SQL`]).
#[derive(QueryableByName)]
struct FoldStep {
    #[diesel(sql_type = BigInt)]
    folded: i64,
    #[diesel(sql_type = Bool)]
    done: bool,
}

/// Per-page totals ([`PAGES_SQL`]).
#[derive(QueryableByName)]
struct PageRow {
    #[diesel(sql_type = Text)]
    page: String,
    #[diesel(sql_type = BigInt)]
    visits: i64,
    #[diesel(sql_type = BigInt)]
    time_sum: i64,
}

// ---------------------------------------------------------------- arithmetic

/// The start of the `unit` containing `ms`.
pub(crate) fn floor_to(ms: i64, unit: i64) -> i64 {
    ms - ms.rem_euclid(unit)
}

/// The first multiple of `unit` at or after `ms`.
fn ceil_to(ms: i64, unit: i64) -> i64 {
    let floor = floor_to(ms, unit);
    if floor == ms { ms } else { floor + unit }
}

/// `range` as `[lo, hi)` with unbounded sides at ∓[`FAR`]; `None` when
/// empty.
fn bounds(range: MsRange) -> Option<(i64, i64)> {
    let lo = range.from.unwrap_or(-FAR).clamp(-FAR, FAR);
    let hi = range.to.unwrap_or(FAR).clamp(-FAR, FAR);
    (lo < hi).then_some((lo, hi))
}

/// `[from, to)` split at bucket edges: `(bucket, from, to)` pieces.
pub(crate) fn split_at_buckets(from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    let mut pieces = Vec::new();
    let mut at = from;
    while at < to {
        let bucket = floor_to(at, BUCKET_MS);
        let end = to.min(bucket + BUCKET_MS);
        pieces.push((bucket, at, end));
        at = end;
    }
    pieces
}

/// The windows of `[lo, hi)` that cut a bucket: `(bucket, from, to)`, at
/// most two.
fn partial_windows(lo: i64, hi: i64) -> Vec<(i64, i64, i64)> {
    let mut windows = Vec::with_capacity(2);
    let lo_cut = lo.rem_euclid(BUCKET_MS) != 0;
    if lo_cut {
        windows.push((floor_to(lo, BUCKET_MS), lo, hi.min(ceil_to(lo, BUCKET_MS))));
    }
    let hi_bucket = floor_to(hi, BUCKET_MS);
    if hi.rem_euclid(BUCKET_MS) != 0 && !(lo_cut && floor_to(lo, BUCKET_MS) == hi_bucket) {
        windows.push((hi_bucket, lo.max(hi_bucket), hi));
    }
    windows
}

/// How a bounded range `[lo, hi)` of everyone's page visits is read: whole
/// days, runs of whole buckets, raw remainders.
#[derive(Debug, Default, PartialEq, Eq)]
struct PagePlan {
    days: (i64, i64),
    buckets: [(i64, i64); 2],
    raw: [(i64, i64); 2],
}

fn page_plan(lo: i64, hi: i64) -> PagePlan {
    let (d0, d1) = (ceil_to(lo, DAY_MS), floor_to(hi, DAY_MS));
    let (days, rest) =
        if d0 < d1 { ((d0, d1), [(lo, d0), (d1, hi)]) } else { ((0, 0), [(lo, hi), (0, 0)]) };
    let (mut buckets, mut raw) = (Vec::new(), Vec::new());
    for (a, b) in rest.into_iter().filter(|(a, b)| a < b) {
        let (b0, b1) = (ceil_to(a, BUCKET_MS), floor_to(b, BUCKET_MS));
        if b0 < b1 {
            buckets.push((b0, b1));
            raw.extend([(a, b0), (b1, b)]);
        } else {
            raw.push((a, b));
        }
    }
    raw.retain(|(a, b)| a < b);
    // Whole days, if any, are flanked by aligned edges: each side leaves at
    // most one run of buckets and one remainder on its outer end. Without
    // whole days, one run with a remainder on each end.
    debug_assert!(buckets.len() <= 2 && raw.len() <= 2, "{buckets:?} {raw:?}");
    let pick = |v: &[(i64, i64)], i: usize| v.get(i).copied().unwrap_or((0, 0));
    PagePlan {
        days,
        buckets: [pick(&buckets, 0), pick(&buckets, 1)],
        raw: [pick(&raw, 0), pick(&raw, 1)],
    }
}

/// How a range `[lo, hi)` of one user's page visits is read: whole days
/// and the raw visits of the cut days (`[lo, hi)` itself when it holds no
/// whole day).
fn user_page_plan(lo: i64, hi: i64) -> ((i64, i64), [(i64, i64); 2]) {
    let (d0, d1) = (ceil_to(lo, DAY_MS), floor_to(hi, DAY_MS));
    if d0 < d1 { ((d0, d1), [(lo, d0), (d1, hi)]) } else { ((0, 0), [(lo, hi), (0, 0)]) }
}

/// Changes to the session aggregates, by `(subject, bucket)`: sorted, so
/// that upserts lock rows in primary-key order.
#[derive(Default)]
pub(crate) struct BucketDeltas<'a>(pub(crate) BTreeMap<(&'a str, i64), SessionBucket>);

impl<'a> BucketDeltas<'a> {
    /// Applies `f` to the change of `bucket` for `user` and for everyone.
    pub(crate) fn add(&mut self, user: &'a str, bucket: i64, f: impl Fn(&mut SessionBucket)) {
        for subject in [user, ALL] {
            f(self.0.entry((subject, bucket)).or_default());
        }
    }

    pub(crate) fn rows(&self, app: &'a str) -> Vec<BucketRow<'a>> {
        self.0
            .iter()
            .map(|(&(subject, bucket_ms), d)| BucketRow {
                app,
                subject,
                bucket_ms,
                starts: d.starts,
                ended: d.ended,
                dur_sum_ms: d.dur_sum_ms,
                dur_min_ms: d.dur_min_ms,
                dur_max_ms: d.dur_max_ms,
                active_ms: d.active_ms,
            })
            .collect()
    }
}

fn subject_key(subject: &Subject) -> &str {
    match subject {
        Subject::User(name) => name,
        Subject::All => ALL,
    }
}

pub(crate) fn check_user(user: &str) -> anyhow::Result<()> {
    anyhow::ensure!(user != ALL, "{ALL:?} is not a username");
    Ok(())
}

fn is_empty(b: &SessionBucket) -> bool {
    b.starts == 0 && b.ended == 0 && b.active_ms == 0
}

// ---------------------------------------------------------------- writes

/// Adds `rows` (sorted by key) to `track_buckets`: one statement per
/// thousand rows.
pub(crate) fn upsert_buckets(conn: &mut DbConn, rows: &[BucketRow<'_>]) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        per_backend!(&mut *conn, |c| {
            diesel::insert_into(tb::table)
                .values(chunk)
                .on_conflict((tb::app, tb::subject, tb::bucket_ms))
                .do_update()
                .set((
                    tb::starts.eq(tb::starts + excluded(tb::starts)),
                    tb::ended.eq(tb::ended + excluded(tb::ended)),
                    tb::dur_sum_ms.eq(tb::dur_sum_ms + excluded(tb::dur_sum_ms)),
                    tb::dur_min_ms.eq(sql::<Nullable<BigInt>>(MERGE_MIN)),
                    tb::dur_max_ms.eq(sql::<Nullable<BigInt>>(MERGE_MAX)),
                    tb::active_ms.eq(tb::active_ms + excluded(tb::active_ms)),
                ))
                .execute(c)
        })?;
    }
    Ok(())
}

fn insert_event(
    conn: &mut DbConn,
    id: &str,
    seq: i32,
    kind: EventKind,
    at_ms: i64,
) -> QueryResult<()> {
    diesel::insert_into(te::table)
        .values((
            te::session_id.eq(id),
            te::seq.eq(seq),
            te::kind.eq(kind.as_str()),
            te::at_ms.eq(at_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// One visit as the aggregates see it: app, user, page, seconds spent,
/// instant (ms).
type VisitFacts<'a> = (&'a str, &'a str, &'a str, i64, i64);

/// The aggregate rows that `visits` add to, coalesced (a batch of many
/// visits to few pages becomes few upserts), one list per part of
/// [`PARTS`], each in primary-key order: written in that order, every
/// writer locks rows in one global order and none can deadlock another.
fn aggregate<'a>(visits: impl IntoIterator<Item = VisitFacts<'a>>) -> Vec<Vec<PageAgg<'a>>> {
    type Key<'a> = (&'a str, &'a str, i64, &'a str);
    let mut sums: [BTreeMap<Key<'_>, (i64, i64)>; PARTS.len()] = Default::default();
    for (app, user, page, timespent, at_ms) in visits {
        for (sum, (grain, everyone)) in sums.iter_mut().zip(PARTS) {
            let at = match grain {
                Grain::Total => 0,
                Grain::Day => floor_to(at_ms, DAY_MS),
                Grain::Bucket => floor_to(at_ms, BUCKET_MS),
            };
            let subject = if everyone { ALL } else { user };
            let e = sum.entry((app, subject, at, page)).or_default();
            e.0 += 1;
            e.1 += timespent;
        }
    }
    sums.into_iter()
        .map(|m| {
            m.into_iter()
                .map(|((app, subject, at_ms, page), (visits, time_sum))| PageAgg {
                    app,
                    subject,
                    at_ms,
                    page,
                    visits,
                    time_sum,
                })
                .collect()
        })
        .collect()
}

/// Writes a batch on PostgreSQL: one call of [`pg_track_visits`], which
/// commits on its own.
fn pg_track_visits_call<'a>(c: &mut PgConnection, raw: &[VisitRow<'a>]) -> QueryResult<()> {
    let text = |f: for<'r> fn(&'r VisitRow<'a>) -> &'r str| raw.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&VisitRow<'a>) -> i64| raw.iter().map(f).collect::<Vec<_>>();
    diesel::select(pg_track_visits(
        text(|r| r.id.as_str()),
        text(|r| r.app),
        text(|r| r.user_name),
        text(|r| r.page),
        int(|r| r.timespent),
        raw.iter().map(|r| r.session_id.as_deref()).collect::<Vec<_>>(),
        int(|r| r.at_ms),
    ))
    .get_result::<i64>(c)?;
    Ok(())
}

/// Writes a batch on SQLite, inside the caller's immediate transaction
/// (which keeps folds out): the raw rows, a watermark for an app never seen
/// before (nothing of it is aggregated yet), and the aggregates of the
/// visits dated before their app's watermark, as the PostgreSQL function
/// does.
fn sqlite_track_visits(c: &mut SqliteConnection, raw: &[VisitRow<'_>]) -> QueryResult<()> {
    for chunk in raw.chunks(CHUNK_ROWS) {
        diesel::insert_into(pv::table).values(chunk).execute(c)?;
    }
    let apps: BTreeSet<&str> = raw.iter().map(|r| r.app).collect();
    let fresh: Vec<_> =
        apps.iter().map(|&app| (pf::app.eq(app), pf::folded_ms.eq(i64::MIN))).collect();
    diesel::insert_or_ignore_into(pf::table).values(&fresh).execute(c)?;
    let marks: HashMap<String, i64> = pf::table
        .filter(pf::app.eq_any(&apps))
        .select((pf::app, pf::folded_ms))
        .load::<(String, i64)>(c)?
        .into_iter()
        .collect();
    let late = raw.iter().filter(|r| marks.get(r.app).is_some_and(|&mark| r.at_ms < mark));
    let parts = aggregate(late.map(|r| (r.app, r.user_name, r.page, r.timespent, r.at_ms)));
    sqlite_upsert_parts(c, &parts)
}

/// One step of a fold on SQLite, inside the caller's immediate transaction:
/// what `sessiond_fold_pages` does on PostgreSQL (migration
/// `000010_page_folds`), step for step. Returns the visits folded and
/// whether every app is folded up to `upto`.
fn sqlite_fold_step(c: &mut SqliteConnection, upto: i64, budget: i64) -> QueryResult<(i64, bool)> {
    let marks: Vec<(String, i64)> = pf::table
        .filter(pf::folded_ms.lt(upto))
        .order(pf::app)
        .select((pf::app, pf::folded_ms))
        .load(c)?;
    let mut folded = 0;
    for (app, mark) in marks {
        if folded >= budget {
            return Ok((folded, false));
        }
        let pending = || {
            pv::table.filter(pv::app.eq(&app)).filter(pv::at_ms.ge(mark)).filter(pv::at_ms.lt(upto))
        };
        let Some(first) = pending().select(diesel::dsl::min(pv::at_ms)).first::<Option<i64>>(c)?
        else {
            continue;
        };
        let end = match pending()
            .order(pv::at_ms)
            .select(pv::at_ms)
            .offset(budget - folded)
            .first::<i64>(c)
            .optional()?
        {
            None => upto,
            Some(at) if at == first => first + 1,
            Some(at) => at,
        };
        let rows: Vec<(String, String, i64, i64)> = pv::table
            .filter(pv::app.eq(&app))
            .filter(pv::at_ms.ge(mark))
            .filter(pv::at_ms.lt(end))
            .select((pv::user_name, pv::page, pv::timespent, pv::at_ms))
            .load(c)?;
        let parts = aggregate(rows.iter().map(|(user, page, timespent, at_ms)| {
            (app.as_str(), user.as_str(), page.as_str(), *timespent, *at_ms)
        }));
        sqlite_upsert_parts(c, &parts)?;
        diesel::update(pf::table.find(&app)).set(pf::folded_ms.eq(end)).execute(c)?;
        folded += i64::try_from(rows.len()).unwrap_or(i64::MAX);
        if end < upto {
            return Ok((folded, false));
        }
    }
    Ok((folded, true))
}

/// Adds the aggregate rows of [`aggregate`] on SQLite, part after part.
fn sqlite_upsert_parts(c: &mut SqliteConnection, parts: &[Vec<PageAgg<'_>>]) -> QueryResult<()> {
    for (rows, (grain, _)) in parts.iter().zip(PARTS) {
        sqlite_upsert_pages(c, grain, rows)?;
    }
    Ok(())
}

/// Adds `rows` to the page aggregates of `grain` (SQLite).
fn sqlite_upsert_pages(
    c: &mut SqliteConnection,
    grain: Grain,
    rows: &[PageAgg<'_>],
) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        match grain {
            Grain::Total => {
                let chunk: Vec<PageTotalRow<'_>> = chunk
                    .iter()
                    .map(|r| PageTotalRow {
                        app: r.app,
                        subject: r.subject,
                        page: r.page,
                        visits: r.visits,
                        time_sum: r.time_sum,
                    })
                    .collect();
                diesel::insert_into(pt::table)
                    .values(&chunk)
                    .on_conflict((pt::app, pt::subject, pt::page))
                    .do_update()
                    .set((
                        pt::visits.eq(pt::visits + excluded(pt::visits)),
                        pt::time_sum.eq(pt::time_sum + excluded(pt::time_sum)),
                    ))
                    .execute(c)?;
            }
            Grain::Day => {
                let chunk: Vec<PageDayRow<'_>> = chunk
                    .iter()
                    .map(|r| PageDayRow {
                        app: r.app,
                        subject: r.subject,
                        day_ms: r.at_ms,
                        page: r.page,
                        visits: r.visits,
                        time_sum: r.time_sum,
                    })
                    .collect();
                diesel::insert_into(pd::table)
                    .values(&chunk)
                    .on_conflict((pd::app, pd::subject, pd::day_ms, pd::page))
                    .do_update()
                    .set((
                        pd::visits.eq(pd::visits + excluded(pd::visits)),
                        pd::time_sum.eq(pd::time_sum + excluded(pd::time_sum)),
                    ))
                    .execute(c)?;
            }
            Grain::Bucket => {
                let chunk: Vec<PageBucketRow<'_>> = chunk
                    .iter()
                    .map(|r| PageBucketRow {
                        app: r.app,
                        subject: r.subject,
                        bucket_ms: r.at_ms,
                        page: r.page,
                        visits: r.visits,
                        time_sum: r.time_sum,
                    })
                    .collect();
                diesel::insert_into(pb::table)
                    .values(&chunk)
                    .on_conflict((pb::app, pb::subject, pb::bucket_ms, pb::page))
                    .do_update()
                    .set((
                        pb::visits.eq(pb::visits + excluded(pb::visits)),
                        pb::time_sum.eq(pb::time_sum + excluded(pb::time_sum)),
                    ))
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// The aggregates of the partial bucket `[from, to)` of `bucket`, from raw
/// rows ([`WINDOW_SQL`], `query` in the connection's dialect).
fn window(
    conn: &mut DbConn,
    query: &str,
    app: &str,
    key: &str,
    (bucket, from, to): (i64, i64, i64),
) -> QueryResult<SessionBucket> {
    let row: WindowRow = per_backend!(conn, |c| {
        diesel::sql_query(query)
            .bind::<Text, _>(app)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .bind::<BigInt, _>(bucket)
            .get_result(c)
    })?;
    Ok(SessionBucket {
        bucket_ms: bucket,
        starts: row.starts,
        ended: row.ended,
        dur_sum_ms: row.dur_sum_ms,
        dur_min_ms: row.dur_min_ms,
        dur_max_ms: row.dur_max_ms,
        active_ms: row.active_ms,
    })
}

/// The subject filter of the raw-row queries.
fn user_filter(sql: &str, subject: &Subject) -> String {
    sql.replace(
        "{user}",
        match subject {
            Subject::User(_) => "AND user_name = $2",
            Subject::All => "",
        },
    )
}

impl Store {
    /// [`Store::fold_pages`] in steps of about `budget` visits,
    /// each a transaction of its own, so that batches wait for one step at
    /// most, never for a whole backlog ([`Store::fold_pages`] takes 10,000).
    pub fn fold_pages_in_steps(&self, upto: OffsetDateTime, budget: u32) -> anyhow::Result<u64> {
        let (upto, budget) = (to_millis(upto), i64::from(budget.max(1)));
        let mut total: i64 = 0;
        loop {
            let (folded, done) = self.run("folding page visits", |conn| match conn {
                DbConn::Pg(c) => diesel::sql_query(FOLD_PAGES_SQL)
                    .bind::<BigInt, _>(upto)
                    .bind::<BigInt, _>(budget)
                    .get_result::<FoldStep>(c)
                    .map(|s| (s.folded, s.done)),
                DbConn::Sqlite(c) => c.immediate_transaction(|c| sqlite_fold_step(c, upto, budget)),
            })?;
            total += folded;
            if done {
                return Ok(u64::try_from(total).unwrap_or(0));
            }
        }
    }

    /// Runs one page of a per-page sum ([`PAGES_SQL`], [`TOTALS_SQL`],
    /// [`USER_PAGES_SQL`], paged by [`paged_sums`]): `$1` the app, `$2`
    /// the subject, then each range of `bounds` as two parameters, then
    /// the position to go on after (if any) and the limit.
    #[expect(clippy::too_many_arguments, reason = "one statement's parameters, named")]
    fn sum_pages(
        &self,
        what: &'static str,
        pg_sql: &str,
        app: &str,
        key: &str,
        bounds: &[(i64, i64)],
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageRow>> {
        let query = self.dialect(paged_sums(pg_sql, 3 + 2 * bounds.len(), after.is_some()));
        self.run(what, |conn| {
            per_backend!(conn, |c| {
                let mut q = diesel::sql_query(&query)
                    .into_boxed()
                    .bind::<Text, _>(app)
                    .bind::<Text, _>(key);
                for &(from, to) in bounds {
                    q = q.bind::<BigInt, _>(from).bind::<BigInt, _>(to);
                }
                if let Some(p) = after {
                    q = q.bind::<BigInt, _>(p.time_sum).bind::<Text, _>(&p.page);
                }
                q.bind::<BigInt, _>(i64::from(limit)).load(c)
            })
        })
    }

    /// `pg_sql` (with `$n` placeholders) in this store's dialect: SQLite
    /// would read `$n` as a named parameter, so it gets the numbered `?n`,
    /// its two-argument `MAX` is PostgreSQL's `GREATEST`, and its byte
    /// order is `BINARY` (it knows no collation "C").
    fn dialect(&self, pg_sql: String) -> String {
        match self.backend {
            Backend::Postgres => pg_sql,
            Backend::Sqlite => pg_sql
                .replace('$', "?")
                .replace("GREATEST(", "MAX(")
                .replace("COLLATE \"C\"", "COLLATE BINARY"),
        }
    }

    /// Runs `f` in a read-only transaction that sees one snapshot
    /// (PostgreSQL: REPEATABLE READ; SQLite: a deferred transaction reads
    /// one WAL snapshot), so that several queries agree with each other.
    fn snapshot<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let pg = self.backend == Backend::Postgres;
        self.run(what, |conn| {
            conn.transaction(|c| {
                if pg {
                    diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .execute(c)?;
                }
                f(c)
            })
        })
    }

    /// Adds the visits dated before `upto` that
    /// [`record_pages`](TrackingStore::record_pages) left outside the
    /// aggregates to them, in steps of 10,000 visits; returns how many.
    /// Reports are the same before and after (exact either way); a fold
    /// makes them cheaper.
    pub fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64> {
        self.fold_pages_in_steps(upto, FOLD_BUDGET)
    }

    /// How many [`record_pages`](TrackingStore::record_pages) calls the
    /// store serves well at once: the page batcher runs that many writers.
    /// Two on PostgreSQL: one batch is written while the other waits for
    /// its commit's fsync (batches write raw rows only, so they do not
    /// queue on shared rows). SQLite has one writer at a time.
    pub fn page_writers(&self) -> usize {
        match self.backend() {
            Backend::Postgres => 2,
            Backend::Sqlite => 1,
        }
    }
}

impl TrackingStore for Store {
    fn insert_session(&self, session: &TrackedSession) -> anyhow::Result<()> {
        check_user(&session.user)?;
        let row = SessionRow::of(session);
        let mut deltas = BucketDeltas::default();
        deltas.add(&session.user, floor_to(row.started_at_ms, BUCKET_MS), |d| d.starts += 1);
        let buckets = deltas.rows(&session.app);
        self.write_tx("storing a tracked session", |c| {
            diesel::insert_into(ts::table).values(&row).execute(c)?;
            insert_event(c, &row.id, 0, EventKind::Start, row.started_at_ms)?;
            upsert_buckets(c, &buckets)
        })
    }

    fn get_session(&self, app: &str, id: Uuid) -> anyhow::Result<Option<TrackedSession>> {
        let id = id.to_string();
        self.run("loading a tracked session", |c| {
            ts::table
                .find(&id)
                .filter(ts::app.eq(app))
                .select(SessionRow::as_select())
                .first(c)
                .optional()
        })?
        .map(SessionRow::into_session)
        .transpose()
    }

    fn apply_transition(
        &self,
        before: &TrackedSession,
        after: &TrackedSession,
        event: &TrackEvent,
        closed: Option<Interval>,
    ) -> anyhow::Result<bool> {
        anyhow::ensure!(
            before.id == after.id
                && event.session_id == after.id
                && before.app == after.app
                && before.user == after.user
                && before.started_at == after.started_at,
            "a transition must keep the session's identity"
        );
        let row = SessionRow::of(after);
        let pieces = closed
            .map(|i| split_at_buckets(to_millis(i.from), to_millis(i.to)))
            .unwrap_or_default();
        let mut deltas = BucketDeltas::default();
        for &(bucket, from, to) in &pieces {
            deltas.add(&after.user, bucket, |d| d.active_ms += to - from);
        }
        if after.state == TrackState::Ended && before.state != TrackState::Ended {
            let duration = after.active_ms;
            deltas.add(&after.user, floor_to(row.started_at_ms, BUCKET_MS), |d| {
                d.ended += 1;
                d.dur_sum_ms += duration;
                d.dur_min_ms = Some(d.dur_min_ms.map_or(duration, |m| m.min(duration)));
                d.dur_max_ms = Some(d.dur_max_ms.map_or(duration, |m| m.max(duration)));
            });
        }
        let buckets = deltas.rows(&after.app);
        let piece_rows: Vec<PieceRow<'_>> = pieces
            .iter()
            .map(|&(bucket_ms, from_ms, to_ms)| PieceRow {
                session_id: &row.id,
                app: &row.app,
                user_name: &row.user_name,
                bucket_ms,
                from_ms,
                to_ms,
            })
            .collect();
        let (state, last_event_at, events) =
            (before.state.as_str(), to_millis(before.last_event_at), before.events);
        self.write_tx("applying a tracked-session transition", |c| {
            // The compare-and-swap: on PostgreSQL a concurrent transition
            // waits for the row lock, then re-checks the predicate against
            // the committed row (READ COMMITTED) and matches nothing; on
            // SQLite writers are serialised. `events` only grows, so it
            // tells apart a state that went away and came back at the same
            // millisecond.
            let n = diesel::update(
                ts::table
                    .find(&row.id)
                    .filter(ts::app.eq(&row.app))
                    .filter(ts::state.eq(state))
                    .filter(ts::last_event_at_ms.eq(last_event_at))
                    .filter(ts::events.eq(events)),
            )
            .set((
                ts::state.eq(&row.state),
                ts::last_event_at_ms.eq(row.last_event_at_ms),
                ts::last_seen_at_ms.eq(row.last_seen_at_ms),
                ts::active_since_ms.eq(row.active_since_ms),
                ts::active_ms.eq(row.active_ms),
                ts::ended_at_ms.eq(row.ended_at_ms),
                ts::events.eq(row.events),
            ))
            .execute(c)?;
            if n == 0 {
                return Ok(false);
            }
            insert_event(c, &row.id, event.seq, event.kind, to_millis(event.at))?;
            for chunk in piece_rows.chunks(CHUNK_ROWS) {
                per_backend!(&mut *c, |c| diesel::insert_into(ti::table).values(chunk).execute(c))?;
            }
            upsert_buckets(c, &buckets)?;
            Ok(true)
        })
    }

    fn stale_open_sessions(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        let cutoff = to_millis(cutoff);
        let rows = self.run("listing stale tracked sessions", |c| {
            ts::table
                .filter(sql::<Bool>(OPEN))
                .filter(ts::last_seen_at_ms.lt(cutoff))
                .order((ts::last_seen_at_ms.asc(), ts::id.asc()))
                .limit(i64::from(limit))
                .select(SessionRow::as_select())
                .load(c)
        })?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        if visits.is_empty() {
            return Ok(());
        }
        let mut raw = Vec::with_capacity(visits.len());
        for v in visits {
            check_user(&v.user)?;
            raw.push(VisitRow {
                id: v.id.to_string(),
                app: &v.app,
                user_name: &v.user,
                page: &v.page,
                timespent: v.timespent,
                session_id: v.session_id.map(|id| id.to_string()),
                at_ms: to_millis(v.at),
            });
        }
        self.run("recording page visits", |conn| match conn {
            DbConn::Pg(c) => pg_track_visits_call(c, &raw),
            DbConn::Sqlite(c) => c.immediate_transaction(|c| sqlite_track_visits(c, &raw)),
        })
    }

    fn session_buckets(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
    ) -> anyhow::Result<Vec<SessionBucket>> {
        let Some((lo, hi)) = bounds(range) else {
            return Ok(Vec::new());
        };
        let key = subject_key(subject);
        let (full_lo, full_hi) = (ceil_to(lo, BUCKET_MS), floor_to(hi, BUCKET_MS));
        let windows = partial_windows(lo, hi);
        let query = self.dialect(user_filter(WINDOW_SQL, subject));
        let read = |c: &mut DbConn| {
            let mut out: Vec<SessionBucket> = Vec::new();
            if full_lo < full_hi {
                let stored: Vec<StoredBucket> = tb::table
                    .filter(tb::app.eq(app))
                    .filter(tb::subject.eq(key))
                    .filter(tb::bucket_ms.ge(full_lo))
                    .filter(tb::bucket_ms.lt(full_hi))
                    .order(tb::bucket_ms.asc())
                    .select(StoredBucket::as_select())
                    .load(c)?;
                out.extend(stored.into_iter().map(|b| SessionBucket {
                    bucket_ms: b.bucket_ms,
                    starts: b.starts,
                    ended: b.ended,
                    dur_sum_ms: b.dur_sum_ms,
                    dur_min_ms: b.dur_min_ms,
                    dur_max_ms: b.dur_max_ms,
                    active_ms: b.active_ms,
                }));
            }
            for &w in &windows {
                out.push(window(c, &query, app, key, w)?);
            }
            QueryResult::Ok(out)
        };
        let what = "loading session buckets";
        // Several queries read one snapshot; one needs no transaction.
        let mut out =
            if windows.is_empty() { self.run(what, read)? } else { self.snapshot(what, read)? };
        out.retain(|b| !is_empty(b));
        out.sort_by_key(|b| b.bucket_ms);
        Ok(out)
    }

    fn page_totals(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageTotal>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = subject_key(subject);
        let everyone = matches!(subject, Subject::All);
        let sum = |what, sql, bounds: &[(i64, i64)]| {
            self.sum_pages(what, sql, app, key, bounds, after, limit)
        };
        let rows: Vec<PageRow> = if everyone && range.from.is_none() && range.to.is_none() {
            sum("loading page totals", TOTALS_SQL, &[(-FAR, FAR)])?
        } else {
            let Some((lo, hi)) = bounds(range) else {
                return Ok(Vec::new());
            };
            if everyone {
                let plan = page_plan(lo, hi);
                let [b0, b1] = plan.buckets;
                let [r0, r1] = plan.raw;
                // Days and buckets: what the aggregates may not hold yet.
                let aggregated = (ceil_to(lo, BUCKET_MS), floor_to(hi, BUCKET_MS));
                sum("summing page visits", PAGES_SQL, &[plan.days, b0, b1, r0, r1, aggregated])?
            } else {
                let (days, [r0, r1]) = user_page_plan(lo, hi);
                sum("summing a user's page visits", USER_PAGES_SQL, &[days, r0, r1, days])?
            }
        };
        // Already grouped, ordered and limited by the database.
        Ok(rows
            .into_iter()
            .map(|r| PageTotal { page: r.page, visits: r.visits, time_sum: r.time_sum })
            .collect())
    }

    fn timeline(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<TimelinePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        let after = after.map(|p| (to_millis(p.started_at), p.id.to_string()));
        let rows = self.run("listing tracked sessions", |c| {
            // Ids compare as bytes in both databases (BINARY; COLLATE "C"),
            // so the order and the keyset comparison agree everywhere. Both
            // filters have an index ending in (started_at_ms, id).
            let mut q = ts::table
                .filter(ts::app.eq(app))
                .select(SessionRow::as_select())
                .order((ts::started_at_ms.asc(), ts::id.asc()))
                .limit(i64::from(limit))
                .into_boxed();
            if let Subject::User(name) = subject {
                q = q.filter(ts::user_name.eq(name));
            }
            if let Some(from) = range.from {
                q = q.filter(ts::started_at_ms.ge(from));
            }
            if let Some(to) = range.to {
                q = q.filter(ts::started_at_ms.lt(to));
            }
            if let Some((at, id)) = &after {
                // The first conjunct is implied by the second; it bounds
                // the index scan.
                q = q.filter(ts::started_at_ms.ge(*at)).filter(
                    ts::started_at_ms.gt(*at).or(ts::started_at_ms.eq(*at).and(ts::id.gt(id))),
                );
            }
            q.load(c)
        })?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    fn events_of(&self, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>> {
        // In the order of the spans (a timeline page's order), each
        // session's events by seq. Every span bounds its `seq` range in
        // SQL (the primary key's order), so only the events asked for are
        // read, however long a session is.
        let mut position: HashMap<String, usize> = HashMap::with_capacity(spans.len());
        for span in spans {
            let next = position.len();
            position.entry(span.session_id.to_string()).or_insert(next);
        }
        let mut rows: Vec<(String, i32, String, i64)> = Vec::new();
        for chunk in spans.chunks(CHUNK_SPANS) {
            let terms: Vec<(String, i32, i32)> = chunk
                .iter()
                .filter(|s| s.from_seq < s.to_seq)
                .map(|s| (s.session_id.to_string(), s.from_seq, s.to_seq))
                .collect();
            if terms.is_empty() {
                continue;
            }
            rows.extend(self.run("loading tracked-session events", |c| {
                let mut q =
                    te::table.select((te::session_id, te::seq, te::kind, te::at_ms)).into_boxed();
                for (id, from, to) in &terms {
                    q = q.or_filter(
                        te::session_id.eq(id).and(te::seq.ge(*from)).and(te::seq.lt(*to)),
                    );
                }
                q.load::<(String, i32, String, i64)>(c)
            })?);
        }
        rows.sort_by_key(|(id, seq, _, _)| (position.get(id).copied(), *seq));
        rows.into_iter()
            .map(|(id, seq, kind, at_ms)| {
                Ok(TrackEvent {
                    session_id: parse_id(&id)?,
                    seq,
                    kind: EventKind::parse(&kind)
                        .ok_or_else(|| anyhow::anyhow!("stored event kind {kind:?} is unknown"))?,
                    at: from_millis(at_ms),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: i64 = BUCKET_MS;

    #[test]
    fn rounding() {
        assert_eq!((floor_to(0, B), ceil_to(0, B)), (0, 0));
        assert_eq!((floor_to(1, B), ceil_to(1, B)), (0, B));
        assert_eq!((floor_to(-1, B), ceil_to(-1, B)), (-B, 0));
        assert_eq!((floor_to(B, B), ceil_to(B, B)), (B, B));
        assert_eq!((floor_to(FAR, B), ceil_to(-FAR, B)), (FAR, -FAR));
    }

    #[test]
    fn intervals_split_at_bucket_edges() {
        assert_eq!(split_at_buckets(5, 5), vec![]);
        assert_eq!(split_at_buckets(5, 10), vec![(0, 5, 10)]);
        assert_eq!(
            split_at_buckets(B - 1, 2 * B + 1),
            vec![(0, B - 1, B), (B, B, 2 * B), (2 * B, 2 * B, 2 * B + 1)]
        );
        assert_eq!(split_at_buckets(B, 2 * B), vec![(B, B, 2 * B)]);
    }

    #[test]
    fn partial_windows_cover_the_cut_buckets() {
        assert_eq!(partial_windows(0, 3 * B), vec![]);
        assert_eq!(partial_windows(5, 10), vec![(0, 5, 10)]);
        assert_eq!(partial_windows(5, B + 10), vec![(0, 5, B), (B, B, B + 10)]);
        assert_eq!(partial_windows(5, 3 * B), vec![(0, 5, B)]);
        assert_eq!(partial_windows(B, B + 7), vec![(B, B, B + 7)]);
        assert_eq!(partial_windows(-FAR, B + 7), vec![(B, B, B + 7)]);
        assert_eq!(partial_windows(B + 7, FAR), vec![(B, B + 7, 2 * B)]);
    }

    #[test]
    fn page_plans() {
        let d = DAY_MS;
        // Whole days only.
        assert_eq!(page_plan(d, 3 * d), PagePlan { days: (d, 3 * d), ..PagePlan::default() });
        // Whole days, edge buckets, edge remainders.
        assert_eq!(
            page_plan(d - B - 5, 3 * d + B + 7),
            PagePlan {
                days: (d, 3 * d),
                buckets: [(d - B, d), (3 * d, 3 * d + B)],
                raw: [(d - B - 5, d - B), (3 * d + B, 3 * d + B + 7)],
            }
        );
        // Inside one day.
        assert_eq!(
            page_plan(d + 5, d + 3 * B + 7),
            PagePlan {
                buckets: [(d + B, d + 3 * B), (0, 0)],
                raw: [(d + 5, d + B), (d + 3 * B, d + 3 * B + 7)],
                ..PagePlan::default()
            }
        );
        // Inside one bucket, and across one edge without a whole bucket.
        assert_eq!(page_plan(5, 7), PagePlan { raw: [(5, 7), (0, 0)], ..PagePlan::default() });
        assert_eq!(
            page_plan(5, B + 7),
            PagePlan { raw: [(5, B + 7), (0, 0)], ..PagePlan::default() }
        );
        // Unbounded on one side.
        assert_eq!(
            page_plan(-FAR, d + B + 3),
            PagePlan {
                days: (-FAR, d),
                buckets: [(d, d + B), (0, 0)],
                raw: [(d + B, d + B + 3), (0, 0)],
            }
        );
    }
    #[test]
    fn user_page_plans() {
        let d = DAY_MS;
        // Whole days only: nothing raw.
        assert_eq!(user_page_plan(d, 3 * d), ((d, 3 * d), [(d, d), (3 * d, 3 * d)]));
        // Cut days on both sides are read raw.
        assert_eq!(
            user_page_plan(d - 5, 3 * d + 7),
            ((d, 3 * d), [(d - 5, d), (3 * d, 3 * d + 7)])
        );
        // No whole day: all of it raw.
        assert_eq!(user_page_plan(d + 5, 2 * d + 7), ((0, 0), [(d + 5, 2 * d + 7), (0, 0)]));
        // Unbounded: days only.
        assert_eq!(user_page_plan(-FAR, FAR), ((-FAR, FAR), [(-FAR, -FAR), (FAR, FAR)]));
    }
}
