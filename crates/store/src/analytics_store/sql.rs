//! The SQL text of the analytics reads that diesel's query builder cannot
//! express (unions of aggregates and raw rows, conditional sums), written
//! once per backend: PostgreSQL numbers parameters `$n` where SQLite wants
//! `?n` (it would read `$n` as a named parameter), PostgreSQL's
//! two-argument `GREATEST` is SQLite's `MAX`, and byte order is `COLLATE
//! "C"` on PostgreSQL and `BINARY` on SQLite (it knows no collation "C").
//! [`Dialect`] picks a backend's [`Texts`] from its connection type, inside
//! `per_backend!`, so no text is rewritten at run time.
//!
//! The parameters, the same in both texts of a pair:
//!
//! - Window (the aggregates of one partial bucket `[$3, $4)` of bucket
//!   `$5`, for app `$1` and subject `$2`, from raw rows): sessions started
//!   in the window, and the interval pieces of that bucket clipped to it;
//!   the user variant keeps the rows of user `$2`.
//! - Pages (everyone's per-page totals over a bounded range of app `$1`,
//!   `$2` being `ALL`): whole days `[$3, $4)`, two runs of whole buckets
//!   `[$5, $6)` and `[$7, $8)`, two raw remainders `[$9, $10)` and `[$11,
//!   $12)` (an unused part is an empty range), and the raw visits that the
//!   aggregates of `[$13, $14)` (the days and buckets read) do not hold yet.
//! - Totals (everyone's per-page totals of app `$1` over all time, `$2`
//!   being `ALL`): `page_totals`, and the raw visits not aggregated yet,
//!   `$3` = -`FAR` and `$4` = `FAR`.
//! - User pages (one user's per-page totals over a range of app `$1` for
//!   user `$2`): whole days `[$3, $4)`, the user's raw visits of the cut
//!   days, `[$5, $6)` and `[$7, $8)` (an unused part is an empty range),
//!   and the user's raw visits that the day rows of `[$9, $10)` (= `[$3,
//!   $4)`) do not hold yet.
//!
//! The aggregates of an app hold exactly its visits dated before its
//! watermark (`page_folds`, see `Store::fold_pages_in_steps`); those dated
//! at or after it are read raw (an app without a watermark has nothing
//! aggregated). One statement reads the watermark, the aggregates and the
//! raw visits, so they agree (one snapshot) whatever a fold does meanwhile.

use analytics::Subject;
use diesel::{PgConnection, SqliteConnection};

/// The read texts of one backend.
pub(super) struct Texts {
    /// A partial bucket of everyone's sessions.
    window_all: &'static str,
    /// A partial bucket of one user's sessions.
    window_user: &'static str,
    /// Everyone's per-page sums over a bounded range.
    pages: &'static str,
    /// Everyone's per-page sums over all time.
    totals: &'static str,
    /// One user's per-page sums over a range.
    user_pages: &'static str,
    /// How a numbered parameter starts: `$` or `?`.
    param: char,
    /// The collation that compares text as bytes.
    bytes: &'static str,
}

/// Which per-page sum a report reads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sum {
    /// Everyone's, over a bounded range.
    Pages,
    /// Everyone's, over all time.
    Totals,
    /// One user's, over a range.
    UserPages,
}

/// A connection type's SQL dialect.
pub(super) trait Dialect {
    /// The texts in this dialect.
    const TEXTS: &'static Texts;
}

impl Dialect for PgConnection {
    const TEXTS: &'static Texts = &Texts {
        window_all: PG_WINDOW_ALL,
        window_user: PG_WINDOW_USER,
        pages: PG_PAGES,
        totals: PG_TOTALS,
        user_pages: PG_USER_PAGES,
        param: '$',
        bytes: "COLLATE \"C\"",
    };
}

impl Dialect for SqliteConnection {
    const TEXTS: &'static Texts = &Texts {
        window_all: SQLITE_WINDOW_ALL,
        window_user: SQLITE_WINDOW_USER,
        pages: SQLITE_PAGES,
        totals: SQLITE_TOTALS,
        user_pages: SQLITE_USER_PAGES,
        param: '?',
        bytes: "COLLATE BINARY",
    };
}

/// The texts of the dialect of `_conn`.
pub(super) fn texts<C: Dialect>(_conn: &C) -> &'static Texts {
    C::TEXTS
}

impl Texts {
    /// The partial-bucket query for `subject`.
    pub(super) fn window(&self, subject: &Subject) -> &'static str {
        match subject {
            Subject::User(_) => self.window_user,
            Subject::All => self.window_all,
        }
    }

    /// One page of the per-page sum `sum`, whose parameters end at
    /// `$<first - 1>`, in report order: pages with a visit, by total time
    /// (most first), then path in byte order, after the position `($first,
    /// $<first + 1>)` when `keyset`, at most `$<last>` of them.
    ///
    /// The database groups, orders and limits (a top-N sort keeps only the
    /// `limit` best rows), so what reaches this process is bounded by the
    /// limit whatever the number of pages. Paths compare as bytes in both
    /// databases, as the cursor does.
    pub(super) fn paged_sums(&self, sum: Sum, first: usize, keyset: bool) -> String {
        let Texts { param: p, bytes, .. } = self;
        let sum = match sum {
            Sum::Pages => self.pages,
            Sum::Totals => self.totals,
            Sum::UserPages => self.user_pages,
        };
        let (time, page) = (first, first + 1);
        let after = if keyset {
            format!(
                " AND (time_sum < {p}{time} OR (time_sum = {p}{time} AND page {bytes} > {p}{page}))"
            )
        } else {
            String::new()
        };
        let limit = if keyset { first + 2 } else { first };
        format!(
            "SELECT page, visits, time_sum FROM ({sum}) AS sums WHERE visits > 0{after} \
             ORDER BY time_sum DESC, page {bytes} ASC LIMIT {p}{limit}"
        )
    }
}

// ---------------------------------------------------------------- PostgreSQL

const PG_WINDOW_ALL: &str = "\
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
         WHERE app = $1 AND bucket_ms = $5 AND to_ms > $3 AND from_ms < $4) AS active_ms \
  FROM tracked_sessions \
 WHERE app = $1 AND started_at_ms >= $3 AND started_at_ms < $4";

const PG_WINDOW_USER: &str = "\
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
         WHERE app = $1 AND user_name = $2 AND bucket_ms = $5 AND to_ms > $3 AND from_ms < $4) AS active_ms \
  FROM tracked_sessions \
 WHERE app = $1 AND user_name = $2 AND started_at_ms >= $3 AND started_at_ms < $4";

const PG_PAGES: &str = "\
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

const PG_TOTALS: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_totals WHERE app = $1 AND subject = $2 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = $1 \
     AND at_ms >= GREATEST($3, COALESCE((SELECT folded_ms FROM page_folds WHERE app = $1), $3)) \
     AND at_ms < $4 \
) AS parts GROUP BY page";

const PG_USER_PAGES: &str = "\
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

// ---------------------------------------------------------------- SQLite

const SQLITE_WINDOW_ALL: &str = "\
SELECT CAST(COUNT(*) AS BIGINT) AS starts, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN 1 ELSE 0 END), 0) AS BIGINT) AS ended, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN active_ms ELSE 0 END), 0) AS BIGINT) \
           AS dur_sum_ms, \
       MIN(CASE WHEN state = 'ended' THEN active_ms END) AS dur_min_ms, \
       MAX(CASE WHEN state = 'ended' THEN active_ms END) AS dur_max_ms, \
       (SELECT CAST(COALESCE(SUM( \
                   (CASE WHEN to_ms < ?4 THEN to_ms ELSE ?4 END) \
                 - (CASE WHEN from_ms > ?3 THEN from_ms ELSE ?3 END)), 0) AS BIGINT) \
          FROM tracked_intervals \
         WHERE app = ?1 AND bucket_ms = ?5 AND to_ms > ?3 AND from_ms < ?4) AS active_ms \
  FROM tracked_sessions \
 WHERE app = ?1 AND started_at_ms >= ?3 AND started_at_ms < ?4";

const SQLITE_WINDOW_USER: &str = "\
SELECT CAST(COUNT(*) AS BIGINT) AS starts, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN 1 ELSE 0 END), 0) AS BIGINT) AS ended, \
       CAST(COALESCE(SUM(CASE WHEN state = 'ended' THEN active_ms ELSE 0 END), 0) AS BIGINT) \
           AS dur_sum_ms, \
       MIN(CASE WHEN state = 'ended' THEN active_ms END) AS dur_min_ms, \
       MAX(CASE WHEN state = 'ended' THEN active_ms END) AS dur_max_ms, \
       (SELECT CAST(COALESCE(SUM( \
                   (CASE WHEN to_ms < ?4 THEN to_ms ELSE ?4 END) \
                 - (CASE WHEN from_ms > ?3 THEN from_ms ELSE ?3 END)), 0) AS BIGINT) \
          FROM tracked_intervals \
         WHERE app = ?1 AND user_name = ?2 AND bucket_ms = ?5 AND to_ms > ?3 AND from_ms < ?4) AS active_ms \
  FROM tracked_sessions \
 WHERE app = ?1 AND user_name = ?2 AND started_at_ms >= ?3 AND started_at_ms < ?4";

const SQLITE_PAGES: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_days \
   WHERE app = ?1 AND subject = ?2 AND day_ms >= ?3 AND day_ms < ?4 \
  UNION ALL SELECT page, visits, time_sum FROM page_buckets \
   WHERE app = ?1 AND subject = ?2 AND bucket_ms >= ?5 AND bucket_ms < ?6 \
  UNION ALL SELECT page, visits, time_sum FROM page_buckets \
   WHERE app = ?1 AND subject = ?2 AND bucket_ms >= ?7 AND bucket_ms < ?8 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 AND at_ms >= ?9 AND at_ms < ?10 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 AND at_ms >= ?11 AND at_ms < ?12 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 \
     AND at_ms >= MAX(?13, COALESCE((SELECT folded_ms FROM page_folds WHERE app = ?1), ?13)) \
     AND at_ms < ?14 \
) AS parts GROUP BY page";

const SQLITE_TOTALS: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_totals WHERE app = ?1 AND subject = ?2 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 \
     AND at_ms >= MAX(?3, COALESCE((SELECT folded_ms FROM page_folds WHERE app = ?1), ?3)) \
     AND at_ms < ?4 \
) AS parts GROUP BY page";

const SQLITE_USER_PAGES: &str = "\
SELECT page, CAST(SUM(v) AS BIGINT) AS visits, CAST(SUM(t) AS BIGINT) AS time_sum FROM ( \
  SELECT page, visits AS v, time_sum AS t FROM page_days \
   WHERE app = ?1 AND subject = ?2 AND day_ms >= ?3 AND day_ms < ?4 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 AND user_name = ?2 AND at_ms >= ?5 AND at_ms < ?6 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 AND user_name = ?2 AND at_ms >= ?7 AND at_ms < ?8 \
  UNION ALL SELECT page, 1, timespent FROM page_visits \
   WHERE app = ?1 AND user_name = ?2 \
     AND at_ms >= MAX(?9, COALESCE((SELECT folded_ms FROM page_folds WHERE app = ?1), ?9)) \
     AND at_ms < ?10 \
) AS parts GROUP BY page";
