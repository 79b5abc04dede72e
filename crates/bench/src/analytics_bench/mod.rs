//! `bench --analytics`: the analytics part of the benchmark.
//!
//! For PostgreSQL and then SQLite, on a fresh database:
//!
//! 1. loads the first tenth of the data set ([`crate::dataset`]) directly
//!    through the store (sessions with `Store::bulk_load_tracking`, page
//!    visits with `TrackingStore::record_pages` in batches of 5,000, folded
//!    into the aggregates with `Store::fold_pages` at the end),
//!    with a progress bar on stderr;
//! 2. starts the real `sessiond` on it, checks one user's and everyone's
//!    `summary` against the totals the generator computed (exactness),
//!    and times every report (3 warm-ups, then `--report-calls`
//!    sequential calls each) for that user and for `all`, in UTC and
//!    America/New_York, over all time, a 30-day date range and a 30-day
//!    range with edges inside 15-minute buckets;
//! 3. stops the server, loads the other nine tenths, and does 2 again;
//! 4. measures ingest: `--connections` connections posting
//!    `/api/pages/track` (public, varied users and pages) for `--warmup` +
//!    `--duration`, then checks that every acknowledged visit is stored.
//!
//! PostgreSQL gets `VACUUM (ANALYZE)` after each load, as autovacuum would
//! do in time on a live database. Reports are called as `bench_admin` (made
//! with `sessiond user create --role admin`) with `user: <name>` and
//! `user: "all"`; `public-summary` without a token. Nothing asserts on
//! timings; a wrong total or a failed server makes the exit status
//! non-zero.

mod http;
mod loading;
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use analytics::TrackingStore as _;
use serde_json::{Value, json};
use store::{Store, StoreOptions};

use crate::client::{self, Conn};
use crate::dataset::{self, APP, Chunk, DAY_MS, Expected, Plan, SLICES, USERS};
use crate::load::{self, Outcome};
use crate::progress::{Progress, thousands};
use crate::server::{self, PgDatabase, Server};
use crate::{Context, cpu_model, ms_us, rate, secs};
use http::*;
use loading::*;
use report::*;

const ADMIN: &str = "bench_admin";
const ADMIN_PASSWORD: &str = "bench-admin-password-0123456789";
/// Page visits per `record_pages` call.
const VISIT_BATCH: usize = 5000;
/// Median targets: one user, and `all`.
const USER_TARGET_US: u64 = 10_000;
const ALL_TARGET_US: u64 = 100_000;
const WARMUP_CALLS: usize = 3;
/// Distinct ingest requests, cycled by the connections.
const INGEST_VARIETY: usize = 4096;

/// The reports: label, path, paged (timelines), public (no token).
const REPORTS: [(&str, &str, bool, bool); 10] = [
    ("heatmap", "/api/sessions/heatmap", false, false),
    ("most-active", "/api/sessions/most-active", false, false),
    ("stats", "/api/sessions/stats", false, false),
    ("summary", "/api/sessions/summary", false, false),
    ("timeline (100)", "/api/sessions/timeline", true, false),
    ("daily-time-spent", "/api/sessions/daily-time-spent", false, false),
    ("time-by-page", "/api/sessions/time-by-page", false, false),
    ("session-timeline-detail (100)", "/api/sessions/session-timeline-detail", true, false),
    ("pages/stats", "/api/pages/stats", false, false),
    ("public-summary", "/api/sessions/public-summary", false, true),
];

const ZONES: [&str; 2] = ["UTC", "America/New_York"];

/// The ranges every report is timed over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Span {
    AllTime,
    Days30,
    Odd30,
}

impl Span {
    const ALL: [Self; 3] = [Self::AllTime, Self::Days30, Self::Odd30];

    fn label(self) -> &'static str {
        match self {
            Self::AllTime => "all time",
            Self::Days30 => "30 days",
            Self::Odd30 => "30 d, odd edges",
        }
    }

    /// `(from, to)` in the request: a 30-day date range two months before
    /// the window's end, or the same with RFC 3339 edges 10:07:13.500 and
    /// 13:48:20.750 (inside buckets).
    fn bounds(self, plan: &Plan) -> Option<(String, String)> {
        let first = plan.end_ms - 61 * DAY_MS;
        match self {
            Self::AllTime => None,
            Self::Days30 => Some((date(first), date(first + 29 * DAY_MS))),
            Self::Odd30 => {
                let from = first + 10 * 3_600_000 + 7 * 60_000 + 13_500;
                let to = from + 30 * DAY_MS + 3 * 3_600_000 + 41 * 60_000 + 7_250;
                Some((instant(from), instant(to)))
            }
        }
    }
}

fn date(ms: i64) -> String {
    let d = kernel::from_millis(ms).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn instant(ms: i64) -> String {
    kernel::format_instant(kernel::from_millis(ms))
}

/// One load of some slices.
#[derive(Default, Clone)]
struct LoadReport {
    sessions: u64,
    events: u64,
    pieces: u64,
    bucket_rows: u64,
    visits: u64,
    wall: Duration,
    /// Time in `bulk_load_tracking`.
    session_time: Duration,
    /// Time in `record_pages` and `fold_pages` (both parts of ingest).
    visit_time: Duration,
    /// The part of `visit_time` in `fold_pages`.
    fold_time: Duration,
    /// `VACUUM (ANALYZE)` afterwards (PostgreSQL).
    vacuum: Option<Duration>,
    /// Database size afterwards.
    size: String,
}

/// One report case, timed.
struct CaseResult {
    report: &'static str,
    all: bool,
    tz: &'static str,
    span: Span,
    p50_us: u64,
    p99_us: u64,
    errors: usize,
    /// Response body size of the last call.
    bytes: usize,
}

impl CaseResult {
    fn target_us(&self) -> u64 {
        if self.all { ALL_TARGET_US } else { USER_TARGET_US }
    }

    fn over(&self) -> bool {
        self.p50_us > self.target_us()
    }
}

/// An exactness check.
struct Check {
    what: String,
    ok: bool,
}

/// The ingest measurement.
struct Ingest {
    outcome: Outcome,
    /// Visits the store holds from the ingest window (`None`: not checked).
    stored: Option<u64>,
}

/// Everything measured on one database.
#[derive(Default)]
struct DbResults {
    durability: String,
    loads: Vec<(String, LoadReport)>,
    checks: Vec<Check>,
    /// Per phase (first tenth, all): the cases.
    phases: Vec<(String, Vec<CaseResult>)>,
    ingest: Option<Ingest>,
}

enum DbOutcome {
    Skipped(String),
    Failed(String, DbResults),
    Ran(DbResults),
}

/// Runs the analytics benchmark on both databases; prints as it goes and
/// ends with the markdown tables.
pub(crate) fn run(ctx: &Context<'_>) -> ExitCode {
    let now_ms = kernel::to_millis(kernel::OffsetDateTime::now_utc());
    let plan = Plan::new(ctx.opts.scale, now_ms);
    let total_sessions = plan.sessions_in(0..SLICES);
    let first_sessions = plan.sessions_in(0..1);
    let busiest = &plan.users[plan.busiest_user()];
    println!(
        "data set: app {APP:?}, {USERS} users, {} days [{}, {}), {} sessions and about {} page \
         visits (scale {}); the first tenth ({} sessions) is measured on its own first",
        dataset::DAYS,
        date(plan.start_ms),
        date(plan.end_ms),
        thousands(total_sessions),
        thousands(total_sessions * dataset::VISITS_PER_SESSION),
        ctx.opts.scale,
        thousands(first_sessions),
    );
    println!(
        "reports: as {ADMIN} (admin) for user {} (the busiest: {} sessions, {} pages) and for \
         `all`; {WARMUP_CALLS} warm-ups + {} sequential calls per case on one keep-alive \
         connection; targets: median < {} for one user, < {} for all (✗ = over)",
        busiest.name,
        thousands(busiest.sessions()),
        busiest.pages(&plan).count(),
        ctx.opts.report_calls,
        ms_us(USER_TARGET_US),
        ms_us(ALL_TARGET_US),
    );
    println!(
        "ingest: {} keep-alive connections POST /api/pages/track (no token, {INGEST_VARIETY} \
         distinct bodies), {} warm-up + {} measured",
        ctx.opts.connections,
        secs(ctx.opts.warmup),
        secs(ctx.opts.duration)
    );
    println!();

    let mut outcomes: Vec<(&str, DbOutcome)> = Vec::new();
    if ctx.opts.wants_analytics("postgres") {
        println!("== PostgreSQL ==");
        let pg = PgDatabase::bench_or_skip(
            ctx.pg_admin_url,
            ctx.id,
            |url| bench_database(ctx, &plan, url, true),
            DbOutcome::Skipped,
        );
        outcomes.push(("PostgreSQL", pg));
        println!();
    }

    if ctx.opts.wants_analytics("sqlite") {
        println!("== SQLite ==");
        let path = ctx.tmp.0.join("analytics.db");
        let url = format!("sqlite://{}", path.display());
        println!("database: {url}");
        outcomes.push(("SQLite", bench_database(ctx, &plan, &url, false)));
        println!();
    }

    print_tables(ctx, &plan, &outcomes);
    let failed = outcomes.iter().any(|(_, o)| match o {
        DbOutcome::Failed(..) => true,
        DbOutcome::Ran(r) => r.checks.iter().any(|c| !c.ok),
        DbOutcome::Skipped(_) => false,
    });
    if failed {
        eprintln!("bench: a server failed or a total was wrong; see above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bench_database(ctx: &Context<'_>, plan: &Plan, url: &str, pg: bool) -> DbOutcome {
    let mut results = DbResults::default();
    match bench_phases(ctx, plan, url, pg, &mut results) {
        Ok(()) => DbOutcome::Ran(results),
        Err(e) => {
            println!("FAILED: {e}");
            DbOutcome::Failed(e, results)
        }
    }
}

fn bench_phases(
    ctx: &Context<'_>,
    plan: &Plan,
    url: &str,
    pg: bool,
    results: &mut DbResults,
) -> Result<(), String> {
    // Bulk statements may take long: no 2-second statement timeout here.
    let options = StoreOptions { max_connections: 2, timeout: Duration::from_secs(3600) };
    let store = Store::connect(url, &options).map_err(|e| format!("connecting: {e:#}"))?;
    store.migrate().map_err(|e| format!("migrating: {e:#}"))?;
    results.durability = if pg {
        server::psql_output(
            url,
            "SELECT 'fsync=' || current_setting('fsync') || ', synchronous_commit=' || \
             current_setting('synchronous_commit') || ', wal_sync_method=' || \
             current_setting('wal_sync_method')",
        )
        .unwrap_or_else(|e| format!("settings unknown: {e}"))
    } else {
        "journal_mode=WAL, synchronous=FULL (the store's settings: a commit survives a power \
         loss)"
            .to_owned()
    };
    println!("durability: {}", results.durability);
    server::run_sessiond(
        ctx.binary,
        url,
        &ctx.tmp.0,
        &["user", "create", "--username", ADMIN, "--role", "admin", "--password-stdin"],
        ADMIN_PASSWORD,
    )?;
    let mut expected = vec![Expected::default(); USERS];
    let phases = [("first tenth", 0..1), ("all", 1..SLICES)];
    for (label, slices) in phases {
        let mut report = load(&store, plan, slices, label, &mut expected)?;
        if pg {
            let t0 = Instant::now();
            server::psql_output(url, "VACUUM (ANALYZE)")?;
            report.vacuum = Some(t0.elapsed());
        }
        report.size = database_size(url, pg);
        print_load(label, &report);
        results.loads.push((label.to_owned(), report));
        let total: Expected = expected.iter().fold(Expected::default(), |mut a, e| {
            a.add(e);
            a
        });
        let server = start_server(ctx, url)?;
        let addr = server.addr;
        let token = ctx.rt.block_on(login(addr))?;
        let busiest = plan.busiest_user();
        for (subject, exp) in
            [(plan.users[busiest].name.as_str(), expected[busiest]), ("all", total)]
        {
            let check = ctx.rt.block_on(check_summary(addr, &token, subject, &exp));
            println!("exactness: {}", check.what);
            results.checks.push(check);
        }
        let phase = format!(
            "{label}: {} sessions, {} visits",
            thousands(total.sessions),
            thousands(total.visits)
        );
        if ctx.opts.wants_analytics("reports") {
            println!("reports ({phase}):");
            let cases = ctx.rt.block_on(measure_reports(
                addr,
                &token,
                plan,
                &plan.users[busiest].name,
                ctx.opts.report_calls,
            ));
            results.phases.push((phase, cases));
        }
        if label == "all" && ctx.opts.wants_analytics("ingest") {
            results.ingest = Some(ctx.rt.block_on(ingest(ctx, plan, addr, &token)));
        }
        drop(server);
    }
    drop(store);
    Ok(())
}

/// Open sessions are the data set's, dated up to the window's end: a
/// 20-year idle timeout keeps the sweeper from closing them meanwhile.
fn start_server(ctx: &Context<'_>, url: &str) -> Result<Server, String> {
    ctx.start_server(url, &[("SESSIOND_TRACKING_IDLE_TIMEOUT_SECS", "631152000")])
}
