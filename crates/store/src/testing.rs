//! Throwaway databases for tests: a fresh PostgreSQL schema or SQLite file
//! per test, so tests run in parallel without seeing each other's rows.
//! Behind the `testing` feature.

use std::io::Write as _;
use std::sync::Once;

use diesel::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::Store;
use crate::schema::{page_buckets as pb, page_days as pd, page_folds as pf, page_totals as pt};

/// The server used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Schemas of earlier runs older than this are dropped.
const STALE_AFTER_MS: u64 = 6 * 3600 * 1000;

/// A URL to a fresh, empty (unmigrated) PostgreSQL schema for one test: it
/// connects to `TEST_DATABASE_URL` (default
/// [`DEFAULT_TEST_DATABASE_URL`]), creates a schema `t_<uuid>` and returns
/// the same URL with libpq's `options=-csearch_path%3D<schema>`, so every
/// connection made from it works in that schema. Schemas left by runs more
/// than six hours old are dropped on the first call.
///
/// `None`, after a loud warning on stderr (once per process), when
/// PostgreSQL cannot be reached; panics instead when the environment
/// variable `CI` is `true`, so that CI never silently skips PostgreSQL.
pub fn fresh_postgres_url() -> Option<String> {
    let (base, mut conn) = postgres_admin()?;
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| drop_stale_schemas(&mut conn));
    let schema = format!("t_{}", kernel::new_id().simple());
    if let Err(e) = diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut conn) {
        panic!("creating test schema {schema}: {e}");
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// `TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]) and a
/// connection to it, for tests that need more than a schema (a database of
/// their own, say). `None` after a loud warning when PostgreSQL cannot be
/// reached; a panic instead under `CI=true` (see [`fresh_postgres_url`]).
pub fn postgres_admin() -> Option<(String, PgConnection)> {
    let base = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned());
    let conn = match PgConnection::establish(&crate::conn::with_connect_timeout(
        &base,
        std::time::Duration::from_secs(3),
    )) {
        Ok(conn) => conn,
        Err(e) => {
            let base = redact(&base);
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is required on CI but cannot be reached at {base}: {e}");
            }
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                // Straight to the process's stderr: the test harness captures
                // `eprintln!` of passing tests, and this must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n\
                     ************************************************************\n\
                     WARNING: PostgreSQL is unreachable at {base}:\n  {e}\n\
                     PostgreSQL tests are SKIPPED. Start it or set TEST_DATABASE_URL.\n\
                     ************************************************************\n"
                );
            });
            return None;
        }
    };
    Some((base, conn))
}

/// The URL without its user and password, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => "<unparsable URL>".to_owned(),
    }
}

#[derive(QueryableByName)]
struct SchemaName {
    #[diesel(sql_type = Text)]
    nspname: String,
}

/// Drops `t_<uuid v7>` schemas whose uuid is older than [`STALE_AFTER_MS`].
fn drop_stale_schemas(conn: &mut PgConnection) {
    let Ok(names) = diesel::sql_query(
        "SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
    )
    .load::<SchemaName>(conn) else {
        return;
    };
    let now_ms = u64::try_from(kernel::to_millis(kernel::OffsetDateTime::now_utc())).unwrap_or(0);
    for SchemaName { nspname } in names {
        let Some(born_ms) = nspname
            .strip_prefix("t_")
            .filter(|hex| hex.len() == 32)
            .and_then(|hex| kernel::Uuid::parse_str(hex).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                secs * 1000 + u64::from(nanos / 1_000_000)
            })
        else {
            continue;
        };
        if now_ms.saturating_sub(born_ms) > STALE_AFTER_MS {
            // Another process may be sweeping too; losing that race is fine.
            let _ =
                diesel::sql_query(format!("DROP SCHEMA IF EXISTS {nspname} CASCADE")).execute(conn);
        }
    }
}

/// A URL to a new SQLite file in a new directory under the system's temp
/// directory (left behind for inspection; the OS cleans temp).
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!("sessiond-test-{}", kernel::new_id().simple()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("creating {}: {e}", dir.display());
    }
    format!("sqlite://{}", dir.join("sessiond.sqlite3").display())
}

/// Every row of the page aggregates and of the fold watermarks, each table
/// sorted by key with text in byte order: what two backends must agree on
/// after the same visits and folds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageAggregates {
    /// `page_days`: app, subject, day (ms), page, visits, time.
    pub days: Vec<(String, String, i64, String, i64, i64)>,
    /// `page_buckets`: app, subject, bucket (ms), page, visits, time.
    pub buckets: Vec<(String, String, i64, String, i64, i64)>,
    /// `page_totals`: app, subject, page, visits, time.
    pub totals: Vec<(String, String, String, i64, i64)>,
    /// `page_folds`: app, watermark (ms).
    pub folds: Vec<(String, i64)>,
}

/// Reads [`PageAggregates`] of `store`. Sorted here rather than by the
/// database, whose text order depends on its collation.
pub fn page_aggregates(store: &Store) -> anyhow::Result<PageAggregates> {
    store.run("reading the page aggregates", |c| {
        let cols = (pd::app, pd::subject, pd::day_ms, pd::page, pd::visits, pd::time_sum);
        let mut days: Vec<(String, String, i64, String, i64, i64)> =
            pd::table.select(cols).load(c)?;
        let cols = (pb::app, pb::subject, pb::bucket_ms, pb::page, pb::visits, pb::time_sum);
        let mut buckets: Vec<(String, String, i64, String, i64, i64)> =
            pb::table.select(cols).load(c)?;
        let cols = (pt::app, pt::subject, pt::page, pt::visits, pt::time_sum);
        let mut totals: Vec<(String, String, String, i64, i64)> = pt::table.select(cols).load(c)?;
        let mut folds: Vec<(String, i64)> = pf::table.select((pf::app, pf::folded_ms)).load(c)?;
        days.sort();
        buckets.sort();
        totals.sort();
        folds.sort();
        Ok(PageAggregates { days, buckets, totals, folds })
    })
}

/// One step of a page fold on `store` up to `upto` of about `budget`
/// visits, as [`Store::fold_pages_in_steps`] takes them: the visits folded,
/// and whether every app is folded up to `upto`. Lets a test compare the
/// backends step by step.
pub fn fold_step(
    store: &Store,
    upto: kernel::OffsetDateTime,
    budget: u32,
) -> anyhow::Result<(i64, bool)> {
    store.fold_step(kernel::to_millis(upto), i64::from(budget.max(1)))
}
