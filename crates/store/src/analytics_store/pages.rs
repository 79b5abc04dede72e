//! Page reports: per-page sums of visits and time over a range, read from
//! the page aggregates where they hold the range and from raw visits where
//! they do not (see [`page_plan`] and the texts of [`super::sql`]).

use analytics::{BUCKET_MS, MsRange, PagePosition, PageTotal, Subject};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::plan::{FAR, bounds, ceil_to, floor_to, page_plan, user_page_plan};
use super::rows::PageRow;
use super::sql::{Sum, texts};
use super::subject_key;
use crate::{Store, per_backend};

/// One page of the report on the pages of `app` for `subject` over `range`
/// (see [`analytics::TrackingStore::page_totals`]).
pub(super) fn page_totals(
    store: &Store,
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
        sum_pages(store, what, sql, app, key, bounds, after, limit)
    };
    let rows: Vec<PageRow> = if everyone && range.from.is_none() && range.to.is_none() {
        sum("loading page totals", Sum::Totals, &[(-FAR, FAR)])?
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
            sum("summing page visits", Sum::Pages, &[plan.days, b0, b1, r0, r1, aggregated])?
        } else {
            let (days, [r0, r1]) = user_page_plan(lo, hi);
            sum("summing a user's page visits", Sum::UserPages, &[days, r0, r1, days])?
        }
    };
    // Already grouped, ordered and limited by the database.
    Ok(rows
        .into_iter()
        .map(|r| PageTotal { page: r.page, visits: r.visits, time_sum: r.time_sum })
        .collect())
}

/// Runs one page of the per-page sum `sum` (paged by
/// [`super::sql::Texts::paged_sums`]): `$1` the app, `$2` the subject,
/// then each range of `bounds` as two parameters, then the position to go
/// on after (if any) and the limit.
#[expect(clippy::too_many_arguments, reason = "one statement's parameters, named")]
fn sum_pages(
    store: &Store,
    what: &'static str,
    sum: Sum,
    app: &str,
    key: &str,
    bounds: &[(i64, i64)],
    after: Option<&PagePosition>,
    limit: u32,
) -> anyhow::Result<Vec<PageRow>> {
    let first = 3 + 2 * bounds.len();
    store.run(what, |conn| {
        per_backend!(conn, |c| {
            let query = texts(c).paged_sums(sum, first, after.is_some());
            let mut q =
                diesel::sql_query(query).into_boxed().bind::<Text, _>(app).bind::<Text, _>(key);
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
