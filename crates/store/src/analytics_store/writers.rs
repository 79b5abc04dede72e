//! The page-visit writers, one per backend, and the folds that add raw
//! visits to the page aggregates behind them: on PostgreSQL one call of a
//! PL/pgSQL function per batch and per fold step (migration
//! `000010_page_folds`), on SQLite the same algorithm in Rust inside one
//! `BEGIN IMMEDIATE` transaction (the contract test `page_folds_agree`
//! holds the two to the same aggregates).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use analytics::{BUCKET_MS, PageVisit};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::upsert::excluded;
use kernel::{OffsetDateTime, to_millis};

use super::plan::{DAY_MS, floor_to};
use super::rows::{FoldStep, PageBucketRow, PageDayRow, PageTotalRow, VisitRow};
use super::{ALL, CHUNK_ROWS, check_user};
use crate::conn::DbConn;
use crate::schema::{
    page_buckets as pb, page_days as pd, page_folds as pf, page_totals as pt, page_visits as pv,
};
use crate::{Backend, Store};

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

/// Visits folded per [`FOLD_PAGES_SQL`] call (one transaction): bounds
/// how long a fold keeps batches waiting, and keeps a step well inside
/// the statement timeout (measured: about 110,000 visits a second folded on
/// PostgreSQL here), so that a backlog is folded step by step instead of
/// timing out whole, again and again.
pub(super) const FOLD_BUDGET: u32 = 10_000;

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

/// Writes a batch on PostgreSQL: one call of [`pg_track_visits()`], which
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

/// Writes a batch of page visits, atomically: on PostgreSQL one call of
/// [`pg_track_visits()`], on SQLite one immediate transaction.
pub(super) fn record_pages(store: &Store, visits: &[PageVisit]) -> anyhow::Result<()> {
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
    store.run("recording page visits", |conn| match conn {
        DbConn::Pg(c) => pg_track_visits_call(c, &raw),
        DbConn::Sqlite(c) => c.immediate_transaction(|c| sqlite_track_visits(c, &raw)),
    })
}

impl Store {
    /// Adds the visits dated before `upto` that
    /// [`record_pages`](analytics::TrackingStore::record_pages) left outside
    /// the aggregates to them, in steps of 10,000 visits; returns how many.
    /// Reports are the same before and after (exact either way); a fold
    /// makes them cheaper.
    pub fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64> {
        self.fold_pages_in_steps(upto, FOLD_BUDGET)
    }

    /// How many [`record_pages`](analytics::TrackingStore::record_pages)
    /// calls the store serves well at once: the page batcher runs that many
    /// writers. Two on PostgreSQL: one batch is written while the other
    /// waits for its commit's fsync (batches write raw rows only, so they do
    /// not queue on shared rows). SQLite has one writer at a time.
    pub fn page_writers(&self) -> usize {
        match self.backend() {
            Backend::Postgres => 2,
            Backend::Sqlite => 1,
        }
    }

    /// [`Store::fold_pages`] in steps of about `budget` visits, each a
    /// transaction of its own, so that batches wait for one step at most,
    /// never for a whole backlog ([`Store::fold_pages`] takes 10,000).
    pub fn fold_pages_in_steps(&self, upto: OffsetDateTime, budget: u32) -> anyhow::Result<u64> {
        let (upto, budget) = (to_millis(upto), i64::from(budget.max(1)));
        let mut total: i64 = 0;
        loop {
            let (folded, done) = self.fold_step(upto, budget)?;
            total += folded;
            if done {
                return Ok(u64::try_from(total).unwrap_or(0));
            }
        }
    }

    /// One step of a fold up to `upto` (ms) of about `budget` visits, in a
    /// transaction of its own: the visits folded, and whether every app is
    /// folded up to `upto`.
    pub(crate) fn fold_step(&self, upto: i64, budget: i64) -> anyhow::Result<(i64, bool)> {
        self.run("folding page visits", |conn| match conn {
            DbConn::Pg(c) => diesel::sql_query(FOLD_PAGES_SQL)
                .bind::<BigInt, _>(upto)
                .bind::<BigInt, _>(budget)
                .get_result::<FoldStep>(c)
                .map(|s| (s.folded, s.done)),
            DbConn::Sqlite(c) => c.immediate_transaction(|c| sqlite_fold_step(c, upto, budget)),
        })
    }
}
