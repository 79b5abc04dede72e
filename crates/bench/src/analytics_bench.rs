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

/// Loads `slices` of the plan: a generator thread feeds chunks to this
/// thread, which writes them.
fn load(
    store: &Store,
    plan: &Plan,
    slices: std::ops::Range<usize>,
    label: &str,
    expected: &mut [Expected],
) -> Result<LoadReport, String> {
    let sessions_total = plan.sessions_in(slices.clone());
    let visits_total = sessions_total * dataset::VISITS_PER_SESSION;
    let mut report = LoadReport::default();
    let t0 = Instant::now();
    let mut progress = Progress::new(&format!("loading {label:<11}"), sessions_total, visits_total);
    let outcome = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Chunk>(2);
        let generator = scope.spawn(move || {
            plan.generate(slices, |chunk| tx.send(chunk).map_err(|_| "loader stopped".to_owned()))
        });
        let written = (|| {
            for chunk in rx {
                let t = Instant::now();
                let counts = store
                    .bulk_load_tracking(&chunk.sessions)
                    .map_err(|e| format!("bulk-loading sessions: {e:#}"))?;
                report.session_time += t.elapsed();
                report.sessions += counts.sessions;
                report.events += counts.events;
                report.pieces += counts.interval_pieces;
                report.bucket_rows += counts.bucket_rows;
                progress.add(counts.sessions, 0);
                for batch in chunk.visits.chunks(VISIT_BATCH) {
                    let t = Instant::now();
                    store
                        .record_pages(batch)
                        .map_err(|e| format!("recording page visits: {e:#}"))?;
                    report.visit_time += t.elapsed();
                    report.visits += batch.len() as u64;
                    progress.add(0, batch.len() as u64);
                }
                for (user, e) in &chunk.expected {
                    expected[*user].add(e);
                }
            }
            // Folds what was written into the aggregates, as the server's
            // batcher does. Once, at the end: every visit of the data set
            // is dated before `plan.end_ms`, so the first fold moves the
            // watermark past everything written after it, which is then
            // aggregated as it is written (the late-visit path), as the
            // later load of the whole set is.
            let t = Instant::now();
            store
                .fold_pages(kernel::from_millis(plan.end_ms))
                .map_err(|e| format!("folding page visits: {e:#}"))?;
            report.visit_time += t.elapsed();
            report.fold_time += t.elapsed();
            Ok::<(), String>(())
        })();
        let generated = generator.join().unwrap_or_else(|_| Err("the generator panicked".into()));
        // The loader's error explains the generator's ("loader stopped").
        written.and(generated)
    });
    progress.finish();
    outcome?;
    report.wall = t0.elapsed();
    Ok(report)
}

fn database_size(url: &str, pg: bool) -> String {
    if pg {
        server::psql_output(url, "SELECT pg_size_pretty(pg_database_size(current_database()))")
            .unwrap_or_else(|_| "?".to_owned())
    } else {
        let path = url.trim_start_matches("sqlite://");
        let bytes: u64 = ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{path}{s}")).ok())
            .map(|m| m.len())
            .sum();
        format!("{:.1} GB", bytes as f64 / 1e9)
    }
}

fn print_load(label: &str, r: &LoadReport) {
    println!(
        "loaded {label}: {} sessions ({} events, {} interval pieces, {} bucket-row upserts) in \
         {:.1} s = {}/s; {} page visits in {:.1} s (folds {:.1} s) = {}/s; wall {:.1} s{}; \
         database {}",
        thousands(r.sessions),
        thousands(r.events),
        thousands(r.pieces),
        thousands(r.bucket_rows),
        r.session_time.as_secs_f64(),
        rate(r.sessions as f64 / r.session_time.as_secs_f64().max(1e-9)),
        thousands(r.visits),
        r.visit_time.as_secs_f64(),
        r.fold_time.as_secs_f64(),
        rate(r.visits as f64 / r.visit_time.as_secs_f64().max(1e-9)),
        r.wall.as_secs_f64(),
        r.vacuum
            .map_or(String::new(), |v| format!(", then VACUUM (ANALYZE) {:.1} s", v.as_secs_f64())),
        r.size,
    );
}

// ---------------------------------------------------------------- HTTP

/// One JSON request on `conn` (reconnecting when needed): status, body,
/// time.
async fn call(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    request: &[u8],
) -> Result<(u16, Vec<u8>, Duration), String> {
    for attempt in 0..2 {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => conn.insert(Conn::connect(addr).await.map_err(|e| format!("connecting: {e}"))?),
        };
        let t0 = Instant::now();
        match c.roundtrip(request).await {
            Ok(resp) => {
                let took = t0.elapsed();
                if resp.close {
                    *conn = None;
                }
                return Ok((resp.status, resp.body, took));
            }
            // A keep-alive connection the server closed: once more, fresh.
            Err(_) if attempt == 0 => *conn = None,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("no answer after reconnecting".to_owned())
}

async fn post(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Value, String> {
    let request = client::request("POST", path, addr, token, Some(&body.to_string()));
    let (status, body, _) = call(&mut None, addr, &request).await?;
    let text = String::from_utf8_lossy(&body);
    if !(200..300).contains(&status) {
        return Err(format!(
            "POST {path} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("POST {path}: body is not JSON: {e}"))
}

async fn login(addr: SocketAddr) -> Result<String, String> {
    let body = json!({"username": ADMIN, "password": ADMIN_PASSWORD, "app": APP});
    let v = post(addr, "/api/auth/login", None, &body).await?;
    v.pointer("/data/access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /api/auth/login: no data.access_token in {v}"))
}

/// `summary` of `subject` over all time against the generator's totals.
async fn check_summary(addr: SocketAddr, token: &str, subject: &str, exp: &Expected) -> Check {
    let body = json!({"app": APP, "user": subject});
    let want_sessions = exp.sessions;
    let want_duration = kernel::format_hms(exp.duration_ms / 1000);
    match post(addr, "/api/sessions/summary", Some(token), &body).await {
        Err(e) => Check { what: format!("summary of {subject}: {e} ✗"), ok: false },
        Ok(v) => {
            let got_sessions = v.pointer("/data/total_sessions").and_then(Value::as_u64);
            let got_duration = v.pointer("/data/total_duration").and_then(Value::as_str);
            let ok = got_sessions == Some(want_sessions) && got_duration == Some(&want_duration);
            Check {
                what: format!(
                    "summary of {subject}: total_sessions {}, total_duration {} {} generated {} \
                     and {} ({} ended) {}",
                    got_sessions.map_or("?".to_owned(), thousands),
                    got_duration.unwrap_or("?"),
                    if ok { "=" } else { "≠" },
                    thousands(want_sessions),
                    want_duration,
                    thousands(exp.ended),
                    if ok { "✓" } else { "✗ MISMATCH" }
                ),
                ok,
            }
        }
    }
}

/// Times every report case; prints each as it completes.
async fn measure_reports(
    addr: SocketAddr,
    token: &str,
    plan: &Plan,
    user: &str,
    calls: usize,
) -> Vec<CaseResult> {
    println!(
        "  {:<30} {:<10} {:<17} {:<16} {:>9} {:>9} {:>7} {:>6}",
        "report", "user", "tz", "range", "median", "p99", "bytes", "errors"
    );
    let mut out = Vec::new();
    let mut conn: Option<Conn> = None;
    for (label, path, paged, public) in REPORTS {
        for all in [false, true] {
            for tz in ZONES {
                for span in Span::ALL {
                    let mut body =
                        json!({"app": APP, "user": if all { "all" } else { user }, "tz": tz});
                    if let Some((from, to)) = span.bounds(plan) {
                        body["from"] = json!(from);
                        body["to"] = json!(to);
                    }
                    if paged {
                        body["limit"] = json!(100);
                    }
                    let bearer = if public { None } else { Some(token) };
                    let request =
                        client::request("POST", path, addr, bearer, Some(&body.to_string()));
                    let mut times: Vec<u32> = Vec::with_capacity(calls);
                    let (mut errors, mut bytes, mut first_error) = (0, 0, None);
                    for i in 0..WARMUP_CALLS + calls {
                        match call(&mut conn, addr, &request).await {
                            Ok((status, body, took)) => {
                                bytes = body.len();
                                if status != 200 {
                                    errors += 1;
                                    first_error.get_or_insert_with(|| {
                                        format!("{status}: {}", String::from_utf8_lossy(&body))
                                    });
                                }
                                if i >= WARMUP_CALLS {
                                    times.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    times.sort_unstable();
                    let case = CaseResult {
                        report: label,
                        all,
                        tz,
                        span,
                        p50_us: load::percentile(&times, 0.50),
                        p99_us: load::percentile(&times, 0.99),
                        errors,
                        bytes,
                    };
                    println!(
                        "  {:<30} {:<10} {:<17} {:<16} {:>9} {:>9} {:>7} {:>6} {}",
                        label,
                        if all { "all" } else { user },
                        tz,
                        span.label(),
                        ms_us(case.p50_us),
                        ms_us(case.p99_us),
                        case.bytes,
                        case.errors,
                        if case.over() { "✗" } else { "" }
                    );
                    if let Some(e) = first_error {
                        println!("    first error: {}", e.chars().take(300).collect::<String>());
                    }
                    out.push(case);
                }
            }
        }
    }
    out
}

/// Ingest over HTTP, then counts what the store holds from its window.
async fn ingest(ctx: &Context<'_>, plan: &Plan, addr: SocketAddr, token: &str) -> Ingest {
    let mut rng = dataset::Rng::new(0x1a9e57);
    let requests: Vec<Vec<u8>> = (0..INGEST_VARIETY)
        .map(|_| {
            let user = &plan.users[rng.below(USERS as u64) as usize];
            let pages: Vec<&str> = user.pages(plan).collect();
            let page = pages[rng.below(pages.len() as u64) as usize];
            let body = json!({"user": user.name, "page": page,
                              "timespent": 1 + rng.below(600), "app": APP});
            client::request("POST", "/api/pages/track", addr, None, Some(&body.to_string()))
        })
        .collect();
    // Visits without a time are dated by the server's clock: everything
    // from one second before the run is the ingest's (the data set ends
    // at the last midnight).
    let since = kernel::to_millis(kernel::OffsetDateTime::now_utc()) - 1000;
    let outcome =
        load::run(addr, requests, ctx.opts.connections, ctx.opts.warmup, ctx.opts.duration).await;
    let body = json!({"app": APP, "user": "all", "from": instant(since)});
    let stored = match stored_visits(addr, token, body).await {
        Ok(n) => Some(n),
        Err(e) => {
            println!("  counting the ingested visits failed: {e}");
            None
        }
    };
    let result = Ingest { outcome, stored };
    println!("ingest: {}", ingest_text(&result));
    result
}

/// The visits `/api/pages/stats` counts for `body`, over every page of the
/// report (at most 1,000 pages a call).
async fn stored_visits(addr: SocketAddr, token: &str, mut body: Value) -> Result<u64, String> {
    let mut visits = 0;
    loop {
        let v = post(addr, "/api/pages/stats", Some(token), &body).await?;
        let pages = v.pointer("/data/page_stats").and_then(Value::as_object);
        visits += pages
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(|p| p["visits"].as_u64())
            .sum::<u64>();
        match v.pointer("/data/next_cursor").and_then(Value::as_str) {
            Some(cursor) => body["cursor"] = json!(cursor),
            None => return Ok(visits),
        }
    }
}

fn ingest_text(i: &Ingest) -> String {
    let o = &i.outcome;
    let check = match i.stored {
        None => "stored: unknown".to_owned(),
        Some(s) if s >= o.acked && s <= o.acked + o.abandoned => format!(
            "stored {} ≥ acknowledged {} (+{} in flight at the end) ✓",
            thousands(s),
            thousands(o.acked),
            o.abandoned
        ),
        Some(s) => format!(
            "stored {} but acknowledged {} (+{} in flight) ✗",
            thousands(s),
            thousands(o.acked),
            o.abandoned
        ),
    };
    format!(
        "{} events/s, p50 {}, p99 {}, {} errors; {check}",
        rate(o.rps),
        ms_us(o.p50_us),
        ms_us(o.p99_us),
        o.errors()
    )
}

// ---------------------------------------------------------------- tables

fn print_tables(ctx: &Context<'_>, plan: &Plan, outcomes: &[(&str, DbOutcome)]) {
    let total = plan.sessions_in(0..SLICES);
    println!("## sessiond analytics benchmark");
    println!();
    println!("- date: {}", ctx.date);
    println!("- machine: {} cores (`available_parallelism`), {}", ctx.cores, cpu_model());
    println!("- command: `{}`", ctx.opts.command());
    println!(
        "- data set: app `{APP}`, {USERS} users, {} days ({} to {}), {} tracked sessions, {} \
         page visits (scale {}); first tenth loaded and measured, then the rest",
        dataset::DAYS,
        date(plan.start_ms),
        date(plan.end_ms - DAY_MS),
        thousands(total),
        thousands(total * dataset::VISITS_PER_SESSION),
        ctx.opts.scale
    );
    println!(
        "- reports: {WARMUP_CALLS} warm-ups + {} sequential calls per case, one keep-alive \
         connection, as an admin (`public-summary` without a token); p99 = nearest rank of \
         those calls; user = {} (the busiest); ✗ = median over target ({} one user, {} all)",
        ctx.opts.report_calls,
        plan.users[plan.busiest_user()].name,
        ms_us(USER_TARGET_US),
        ms_us(ALL_TARGET_US)
    );
    println!(
        "- ingest: {} connections, closed loop, {} warm-up + {} measured",
        ctx.opts.connections,
        secs(ctx.opts.warmup),
        secs(ctx.opts.duration)
    );
    println!();
    println!("### Load (through the store)");
    println!();
    println!(
        "| database | part | sessions | sessions/s | page visits | visits/s | wall | VACUUM \
         ANALYZE | size |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (db, o) in outcomes {
        let r = match o {
            DbOutcome::Skipped(why) => {
                println!("| {db} | skipped: {why} | | | | | | | |");
                continue;
            }
            DbOutcome::Failed(why, r) => {
                println!("| {db} | FAILED: {why} | | | | | | | |");
                r
            }
            DbOutcome::Ran(r) => r,
        };
        for (part, l) in &r.loads {
            println!(
                "| {db} | {part} | {} | {} | {} | {} | {:.0} s | {} | {} |",
                thousands(l.sessions),
                rate(l.sessions as f64 / l.session_time.as_secs_f64().max(1e-9)),
                thousands(l.visits),
                rate(l.visits as f64 / l.visit_time.as_secs_f64().max(1e-9)),
                l.wall.as_secs_f64(),
                l.vacuum.map_or("-".to_owned(), |v| format!("{:.0} s", v.as_secs_f64())),
                l.size
            );
        }
    }
    println!();
    println!("### Exactness and durability");
    println!();
    for (db, o) in outcomes {
        if let DbOutcome::Ran(r) | DbOutcome::Failed(_, r) = o {
            println!("- {db}: {}", r.durability);
            for c in &r.checks {
                println!("  - {}", c.what);
            }
        }
    }
    println!();
    println!("### Ingest: `POST /api/pages/track`");
    println!();
    println!("| database | events/s | p50 | p99 | errors | acknowledged | stored |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (db, o) in outcomes {
        if let DbOutcome::Ran(r) | DbOutcome::Failed(_, r) = o
            && let Some(i) = &r.ingest
        {
            let o = &i.outcome;
            println!(
                "| {db} | {} | {} | {} | {} | {} | {} |",
                rate(o.rps),
                ms_us(o.p50_us),
                ms_us(o.p99_us),
                o.errors(),
                thousands(o.acked),
                i.stored.map_or("?".to_owned(), |s| {
                    if s >= o.acked && s <= o.acked + o.abandoned {
                        format!("{} ✓", thousands(s))
                    } else {
                        format!("{} ✗", thousands(s))
                    }
                })
            );
        }
    }
    println!();
    println!("### Report latency (median / p99), first tenth → all");
    println!();
    let head = |i: usize, r: &DbResults| r.phases.get(i).map_or("-".to_owned(), |p| p.0.clone());
    for (db, o) in outcomes {
        let r = match o {
            DbOutcome::Skipped(_) => continue,
            DbOutcome::Failed(_, r) | DbOutcome::Ran(r) => r,
        };
        if r.phases.is_empty() {
            continue;
        }
        println!("{db}: columns = {} → {}", head(0, r), head(1, r));
        println!();
        println!(
            "| database | report | user | tz | range | median | p99 | median | p99 | × median |"
        );
        println!("|---|---|---|---|---|---:|---:|---:|---:|---:|");
        let Some((_, first)) = r.phases.first() else { continue };
        let full = r.phases.get(1).map(|p| &p.1);
        for (i, a) in first.iter().enumerate() {
            let b = full.and_then(|f| f.get(i));
            let cell = |c: Option<&CaseResult>, median: bool| {
                c.map_or("-".to_owned(), |c| {
                    let v = if median { c.p50_us } else { c.p99_us };
                    let flag = if median && c.over() { " ✗" } else { "" };
                    let err = if median && c.errors > 0 {
                        format!(" ({} errors)", c.errors)
                    } else {
                        String::new()
                    };
                    format!("{}{flag}{err}", ms_us(v))
                })
            };
            let growth = b.map_or("-".to_owned(), |b| {
                format!("{:.1}", b.p50_us as f64 / a.p50_us.max(1) as f64)
            });
            println!(
                "| {db} | {} | {} | {} | {} | {} | {} | {} | {} | {growth} |",
                a.report,
                if a.all { "all" } else { "one" },
                a.tz,
                a.span.label(),
                cell(Some(a), true),
                cell(Some(a), false),
                cell(b, true),
                cell(b, false),
            );
        }
        println!();
    }
    let misses: Vec<String> = outcomes
        .iter()
        .filter_map(|(db, o)| match o {
            DbOutcome::Ran(r) | DbOutcome::Failed(_, r) => Some((db, r)),
            DbOutcome::Skipped(_) => None,
        })
        .flat_map(|(db, r)| {
            r.phases.iter().flat_map(move |(phase, cases)| {
                cases.iter().filter(|c| c.over()).map(move |c| {
                    format!(
                        "{db}, {phase}: {} for {} in {} over {}: median {} (target {})",
                        c.report,
                        if c.all { "all" } else { "one user" },
                        c.tz,
                        c.span.label(),
                        ms_us(c.p50_us),
                        ms_us(c.target_us())
                    )
                })
            })
        })
        .collect();
    if misses.is_empty() {
        println!("Every report median is within its target.");
    } else {
        println!("Report medians over target:");
        for m in misses {
            println!("- {m}");
        }
    }
}
