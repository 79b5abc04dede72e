//! The default run: the hot paths of sessiond compared on PostgreSQL and
//! SQLite, with the issue's targets (see the crate documentation for what
//! is measured and how).

mod endpoints;
mod flood;
mod paired;
mod report;
mod rss;
mod scaling;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use accounts::UserStore as _;
use analytics::EventKind;
use serde_json::{Value, json};
use store::bulk::BulkSession;
use store::{Store, StoreOptions};

use crate::client::{self, Conn, Response};
use crate::load::{self, Cycle, Group, Once, Outcome, Script};
use crate::progress::thousands;
use crate::server::{PgDatabase, Server};
use crate::{Context, cpu_model, ms, ms_us, rate, secs};
use endpoints::*;
use flood::*;
use paired::*;
use report::*;
use rss::*;
use scaling::*;

const USERNAME: &str = "bench_user";
const PASSWORD: &str = "bench-password-0123456789";
/// The application the benchmark user logs in to, tracks pages of and
/// asks the heatmap of (a token only sees its own app's analytics).
const APP: &str = "bench";
const ARGON2_RUNS: usize = 5;

/// Sessions the benchmark user has when `GET /api/sessions` is measured.
const SESSIONS_PER_USER: usize = 20;
/// Tracked sessions (over the last 30 days) behind the heatmap, so that it
/// reports something rather than nothing.
const HEATMAP_SESSIONS: usize = 1000;
/// Distinct `POST /api/pages/track` bodies, cycled by the connections.
const TRACK_VARIETY: usize = 4096;
/// Rounds of the login flood (each: idle, then flooded).
const FLOOD_ROUNDS: usize = 3;
/// Extra connections posting logins during the login flood.
const FLOOD_CONNECTIONS: usize = 16;
/// Live device sessions behind the RSS measurement.
const RSS_SESSIONS: usize = 100_000;
/// Sessions per `Store::bulk_create_sessions` call (one transaction each).
const RSS_BATCH: usize = 10_000;
/// The longest the RSS run may take (it stops earlier when every token has
/// been used once).
const RSS_RUN_CAP: Duration = Duration::from_secs(600);
/// The signing algorithms measured besides the default (EdDSA), each on a
/// server of its own on a fresh database (a key set keeps the algorithm it
/// was made with), with the settings it needs.
const OTHER_ALGORITHMS: [(&str, &[(&str, &str)]); 3] = [
    ("ES256", &[("SESSIOND_JWT_ALG", "ES256")]),
    ("RS256", &[("SESSIOND_JWT_ALG", "RS256")]),
    (
        "HS256",
        &[
            ("SESSIOND_JWT_ALG", "HS256"),
            ("SESSIOND_JWT_SECRET", "bench-hs256-secret-0123456789abcdef0123456789abcdef"),
        ],
    ),
];
/// sessiond instances sharing the PostgreSQL database in the scaling run.
const INSTANCES: usize = 3;

/// Issuer of access tokens: what `sessiond` writes (its `ISSUER`), so that
/// tokens minted here validate there.
const ISSUER: &str = "sessiond";
/// The server's default access-token lifetime (`SESSIOND_ACCESS_TOKEN_TTL_SECS`).
const ACCESS_TOKEN_TTL_SECS: i64 = 900;

/// Targets of the issue.
const FLOOD_P99_MAX_RATIO: f64 = 2.0;
const REFRESH_TARGET_PER_SEC: f64 = 5000.0;
const RSS_TARGET_KIB: u64 = 64 * 1024;
/// Throughput as a share of the bare endpoint's, and login's of the Argon2
/// bound.
const TOKEN_INFO_MIN_RATIO: f64 = 0.8;
const ME_MIN_RATIO: f64 = 0.6;
const VERIFY_MIN_RATIO: f64 = 0.85;
const INTROSPECT_MIN_RATIO: f64 = 0.7;
const LOGIN_MIN_RATIO: f64 = 0.8;
/// Rounds of (bare, endpoint) windows back to back for the endpoints with
/// a ratio target; the median round's ratio is reported. One bare window
/// at the start compared with an endpoint measured a minute later moved
/// the same path between 0.68× and 0.95× from run to run on the shared
/// machine; adjacent windows see the same neighbours.
const RATIO_ROUNDS: usize = 3;

/// One hash's time and the login bound it implies.
struct Argon2Bound {
    hash: Duration,
    logins_per_sec: f64,
}

/// The introspection client the benchmark's servers know
/// (`SESSIOND_INTROSPECTION_CLIENTS`).
pub(crate) const INTROSPECTION_CLIENT: (&str, &str) = ("bench", "bench-introspection-secret");

/// Token-info while logins flood the same server, against token-info alone
/// just before: [`FLOOD_ROUNDS`] such pairs, the round with the median
/// ratio reported (the machine is shared: an idle p99 measured a minute
/// earlier varied from 1.6 to 4.6 ms between runs, more than the flood
/// adds).
struct Flood {
    /// Token-info alone, just before the flood of the median round.
    idle: Outcome,
    token_info: Outcome,
    logins: Outcome,
    /// Every round's flood p99 ÷ idle p99, in the order measured.
    ratios: Vec<f64>,
}

impl Flood {
    /// The median round's flood p99 ÷ idle p99.
    fn ratio(&self) -> f64 {
        self.token_info.p99_us as f64 / self.idle.p99_us.max(1) as f64
    }
}

/// Token-info on one instance and on [`INSTANCES`], measured back to back
/// (the machine is shared: minutes apart, the two would not compare).
struct Scaling {
    one: Outcome,
    many: Outcome,
}

/// The resident memory of a fresh server before and after every one of
/// [`RSS_SESSIONS`] sessions was used once.
struct Rss {
    /// VmRSS after the warm-up, KiB.
    before_kib: u64,
    /// VmRSS after the run, KiB.
    after_kib: u64,
    /// VmHWM (peak RSS) after the run, KiB.
    peak_kib: u64,
    /// Writing the sessions through the store.
    insert: Duration,
    /// The token-info run over every session.
    run: Outcome,
}

/// Everything measured on one database.
#[derive(Default)]
struct DbResults {
    endpoints: Vec<(Endpoint, Outcome)>,
    /// Every round's ratio to the bare window just before it, in the order
    /// measured, for the endpoints with a ratio target.
    paired: Vec<(Endpoint, Vec<f64>)>,
    /// Token-info signed with each of [`OTHER_ALGORITHMS`]: the median
    /// round's outcome and every round's ratio to the bare endpoint of the
    /// same server.
    algorithms: Vec<(&'static str, Result<Paired, String>)>,
    flood: Option<Flood>,
    /// Token-info on one server, then over [`INSTANCES`] (PostgreSQL only).
    instances: Option<Result<Scaling, String>>,
    rss: Option<Result<Rss, String>>,
}

impl DbResults {
    fn endpoint(&self, e: Endpoint) -> Option<&Outcome> {
        self.endpoints.iter().find(|(x, _)| *x == e).map(|(_, o)| o)
    }

    fn bare_rps(&self) -> f64 {
        self.endpoint(Endpoint::Live).map_or(0.0, |o| o.rps)
    }

    /// The endpoint's throughput as a share of the bare endpoint's: the
    /// median of its paired rounds when it had them, else against the bare
    /// endpoint measured first.
    fn ratio(&self, e: Endpoint) -> Option<f64> {
        if let Some((_, rounds)) = self.paired.iter().find(|(x, _)| *x == e) {
            return Some(median(rounds));
        }
        let (o, bare) = (self.endpoint(e)?, self.bare_rps());
        (bare > 0.0).then(|| o.rps / bare)
    }

    /// ` (rounds 0.91, 0.88, 0.93)` for an endpoint measured in rounds,
    /// else nothing.
    fn rounds_text(&self, e: Endpoint) -> String {
        self.paired
            .iter()
            .find(|(x, _)| *x == e)
            .map(|(_, rounds)| format!(" {}", rounds_text(rounds)))
            .unwrap_or_default()
    }
}

/// The median of `xs` (the upper one of an even count; 0 when empty).
fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// What happened on one database.
enum DbReport {
    Skipped(String),
    /// A step failed; what ran before it is kept.
    Failed(String, DbResults),
    Ran(DbResults),
}

impl DbReport {
    fn results(&self) -> Option<&DbResults> {
        match self {
            Self::Skipped(_) => None,
            Self::Failed(_, r) | Self::Ran(r) => Some(r),
        }
    }
}

/// The default run on both databases; prints as it goes and ends with the
/// markdown tables and one line per target.
pub(crate) fn run(ctx: &Context<'_>) -> ExitCode {
    let opts = ctx.opts;
    println!(
        "(this is the auth part; the analytics part runs with \
         `make bench BENCH_ARGS=\"--analytics\"`, `--scale 0.1` for a tenth of its data)"
    );
    println!(
        "load: closed loop, {} keep-alive HTTP/1.1 connections, {} warm-up + {} measured \
         per endpoint",
        opts.connections,
        secs(opts.warmup),
        secs(opts.duration)
    );
    println!(
        "generator: 1 tokio thread (current_thread runtime) on this machine, sharing the cores \
         with the server"
    );
    println!();
    let argon = match measure_argon2(ctx.cores) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Argon2: accounts::PasswordHasher::default().hash() takes {} (median of {ARGON2_RUNS}) \
         -> bound = {} cores / {} = {:.1} logins/s",
        ms(argon.hash),
        ctx.cores,
        ms(argon.hash),
        argon.logins_per_sec
    );
    println!();

    let mut reports: Vec<(&str, DbReport)> = Vec::new();
    println!("== PostgreSQL ==");
    let pg_report = PgDatabase::bench_or_skip(
        ctx.pg_admin_url,
        ctx.id,
        |url| bench_database(ctx, url, true, &argon),
        DbReport::Skipped,
    );
    reports.push(("PostgreSQL", pg_report));
    println!();

    println!("== SQLite ==");
    let sqlite_url = format!("sqlite://{}", ctx.tmp.0.join("bench.db").display());
    println!("database: {sqlite_url}");
    reports.push(("SQLite", bench_database(ctx, &sqlite_url, false, &argon)));
    println!();

    print_tables(ctx, &reports, &argon);
    if reports.iter().any(|(_, r)| matches!(r, DbReport::Failed(..))) {
        eprintln!("bench: a step failed; see above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bench_database(ctx: &Context<'_>, url: &str, pg: bool, argon: &Argon2Bound) -> DbReport {
    let mut results = DbResults::default();
    match bench_steps(ctx, url, pg, argon, &mut results) {
        Ok(()) => DbReport::Ran(results),
        Err(e) => {
            println!("FAILED: {e}");
            DbReport::Failed(e, results)
        }
    }
}

fn start_server(ctx: &Context<'_>, url: &str) -> Result<Server, String> {
    let (id, secret) = INTROSPECTION_CLIENT;
    let clients = format!("{id}:{secret}");
    ctx.start_server(url, &[("SESSIOND_INTROSPECTION_CLIENTS", &clients)])
}

/// An endpoint measured in [`RATIO_ROUNDS`] rounds against the bare
/// endpoint just before each.
struct Paired {
    /// The median round's outcome.
    outcome: Outcome,
    /// Every round's ratio, in the order measured.
    rounds: Vec<f64>,
}

impl Paired {
    /// The median round's ratio.
    fn ratio(&self) -> f64 {
        median(&self.rounds)
    }
}

/// Every step on one database, in order; stops at the first failure.
fn bench_steps(
    ctx: &Context<'_>,
    url: &str,
    pg: bool,
    argon: &Argon2Bound,
    results: &mut DbResults,
) -> Result<(), String> {
    let (opts, rt) = (ctx.opts, ctx.rt);
    let server = start_server(ctx, url)?;
    let addr = server.addr;
    // The store beside the server, for what would take too long over HTTP
    // (the heatmap's data, 100,000 sessions); the server has migrated.
    let store = Store::connect(url, &StoreOptions { max_connections: 2, ..Default::default() })
        .map_err(|e| format!("connecting the store: {e:#}"))?;
    let token = rt.block_on(sign_up(addr))?;
    seed_heatmap(&store)?;

    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>8}  ratio",
        "endpoint", "req/s", "p50", "p99", "errors"
    );
    for endpoint in Endpoint::ALL.into_iter().filter(|e| opts.wants(e.part())) {
        let scripts = if endpoint == Endpoint::Refresh {
            // One session per connection, logged in beforehand.
            let refresh_tokens = rt.block_on(login_many(addr, opts.connections, ctx.cores))?;
            refresh_tokens
                .iter()
                .map(|t| Box::new(RefreshChain::new(addr, t)) as Box<dyn Script>)
                .collect()
        } else {
            let requests = endpoint.requests(addr, &token);
            if let Some(first) = requests.first()
                && let Err(e) = rt.block_on(probe(addr, first))
            {
                println!("  warning: {} answers {e}", endpoint.label());
            }
            Cycle::all(requests, opts.connections)
        };
        let paired = if endpoint.min_ratio().is_some() && results.bare_rps() > 0.0 {
            let live = Endpoint::Live.requests(addr, &token);
            Some(paired_rounds(ctx, addr, &live, &endpoint.requests(addr, &token))?)
        } else {
            None
        };
        let outcome = match paired {
            Some(Paired { outcome, rounds }) => {
                results.paired.push((endpoint, rounds));
                outcome
            }
            None => {
                let group = Group { addrs: vec![addr], scripts };
                rt.block_on(load::run_groups(vec![group], opts.warmup, opts.duration))
                    .pop()
                    .ok_or("the load generator returned nothing")?
            }
        };
        if outcome.io_errors > 0 {
            println!("  ({} of the errors were connection failures)", outcome.io_errors);
        }
        results.endpoints.push((endpoint, outcome));
        let (ratio, rounds) = (results.ratio(endpoint), results.rounds_text(endpoint));
        if let Some((_, o)) = results.endpoints.last() {
            println!(
                "{:<28} {:>10} {:>10} {:>10} {:>8}  {}{rounds}",
                endpoint.label(),
                rate(o.rps),
                ms_us(o.p50_us),
                ms_us(o.p99_us),
                o.errors(),
                ratio_text(endpoint, o, ratio, argon)
            );
        }
    }

    if opts.wants("algorithms") {
        for (alg, env) in OTHER_ALGORITHMS {
            let measured = token_info_with(ctx, pg, alg, env);
            match &measured {
                Ok(p) => println!(
                    "{:<28} {:>10} {:>10} {:>10} {:>8}  {:.2} x bare {}",
                    format!("token-info, {alg}"),
                    rate(p.outcome.rps),
                    ms_us(p.outcome.p50_us),
                    ms_us(p.outcome.p99_us),
                    p.outcome.errors(),
                    p.ratio(),
                    rounds_text(&p.rounds)
                ),
                Err(e) => println!("token-info, {alg}: FAILED: {e}"),
            }
            results.algorithms.push((alg, measured));
        }
    }
    if opts.wants("flood") {
        login_flood_step(ctx, addr, &token, results);
    }
    if pg && opts.wants("instances") {
        instances_step(ctx, url, &server, &token, results);
    }
    drop(server);

    if opts.wants("rss") {
        let rss = rss(ctx, url, &store);
        match &rss {
            Ok(r) => println!("{}", rss_text(r)),
            Err(e) => println!("RSS: FAILED: {e}"),
        }
        results.rss = Some(rss);
    }
    Ok(())
}

/// Token-info under a login flood, against token-info alone just before.
fn login_flood_step(ctx: &Context<'_>, addr: SocketAddr, token: &str, results: &mut DbResults) {
    let opts = ctx.opts;
    let flood = login_flood(ctx, addr, token);
    println!(
        "login flood: token-info on {} connections {} req/s, p99 {} (idle just before {}: \
         {:.2}x; rounds {}), {} errors; meanwhile {} login connections {} logins/s, {} errors",
        opts.connections,
        rate(flood.token_info.rps),
        ms_us(flood.token_info.p99_us),
        ms_us(flood.idle.p99_us),
        flood.ratio(),
        flood.ratios.iter().map(|x| format!("{x:.2}x")).collect::<Vec<_>>().join(", "),
        flood.token_info.errors(),
        FLOOD_CONNECTIONS,
        rate(flood.logins.rps),
        flood.logins.errors()
    );
    results.flood = Some(flood);
}

/// Token-info through [`INSTANCES`] processes on one PostgreSQL.
fn instances_step(
    ctx: &Context<'_>,
    url: &str,
    server: &Server,
    token: &str,
    results: &mut DbResults,
) {
    let opts = ctx.opts;
    let three = instances(ctx, url, server, token);
    match &three {
        Ok(s) => {
            println!(
                "{INSTANCES} instances: token-info over {} connections {} req/s, p99 {}, \
                     {} errors; one instance just before {} req/s, p99 {}: {:.2}x",
                opts.connections,
                rate(s.many.rps),
                ms_us(s.many.p99_us),
                s.many.errors(),
                rate(s.one.rps),
                ms_us(s.one.p99_us),
                s.many.rps / s.one.rps.max(1e-9),
            );
        }
        Err(e) => println!("{INSTANCES} instances: FAILED: {e}"),
    }
    results.instances = Some(three);
}

/// Tracked sessions of the benchmark user in [`APP`] over the last 30
/// days, 1 to 60 minutes each, for the heatmap to count.
fn seed_heatmap(store: &Store) -> Result<(), String> {
    let mut rng = crate::dataset::Rng::new(0x4ea7);
    let now_ms = kernel::to_millis(kernel::OffsetDateTime::now_utc());
    let sessions: Vec<BulkSession> = (0..HEATMAP_SESSIONS)
        .map(|_| {
            let start_ms = now_ms - 3_600_000 - rng.below(30 * 86_400_000) as i64;
            let end_ms = start_ms + 60_000 * (1 + rng.below(60) as i64);
            let (start, end) = (kernel::from_millis(start_ms), kernel::from_millis(end_ms));
            BulkSession {
                id: kernel::new_id(),
                app: APP.to_owned(),
                user: USERNAME.to_owned(),
                events: vec![(EventKind::Start, start), (EventKind::End, end)],
                last_seen_at: end,
            }
        })
        .collect();
    store.bulk_load_tracking(&sessions).map_err(|e| format!("loading tracked sessions: {e:#}"))?;
    Ok(())
}

/// Times `PasswordHasher::default().hash` (median of [`ARGON2_RUNS`]).
fn measure_argon2(cores: usize) -> Result<Argon2Bound, String> {
    let hasher = accounts::PasswordHasher::default();
    let password = accounts::Password::parse(PASSWORD).map_err(|e| format!("password: {e}"))?;
    let mut times: Vec<Duration> = (0..ARGON2_RUNS)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(hasher.hash(&password));
            t0.elapsed()
        })
        .collect();
    times.sort_unstable();
    let hash = times[ARGON2_RUNS / 2];
    Ok(Argon2Bound { hash, logins_per_sec: cores as f64 / hash.as_secs_f64() })
}
