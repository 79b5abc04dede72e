//! The default run: the hot paths of sessiond compared on PostgreSQL and
//! SQLite, with the issue's targets (see the crate documentation for what
//! is measured and how).

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

/// The endpoints measured on each database, in the order they run (the
/// session listing before the endpoints that add sessions to the user).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Live,
    TokenInfo,
    Me,
    Sessions,
    Refresh,
    Login,
    Track,
    Heatmap,
    Verify,
    Introspect,
}

impl Endpoint {
    const ALL: [Self; 10] = [
        Self::Live,
        Self::TokenInfo,
        Self::Verify,
        Self::Introspect,
        Self::Me,
        Self::Sessions,
        Self::Refresh,
        Self::Login,
        Self::Track,
        Self::Heatmap,
    ];

    /// The endpoint's name for `--only`.
    fn part(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::TokenInfo => "token-info",
            Self::Me => "me",
            Self::Sessions => "sessions",
            Self::Refresh => "refresh",
            Self::Login => "login",
            Self::Track => "track",
            Self::Heatmap => "heatmap",
            Self::Verify => "verify",
            Self::Introspect => "introspect",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Live => "GET /health/live",
            Self::TokenInfo => "POST /api/auth/token-info",
            Self::Me => "GET /api/auth/me",
            Self::Sessions => "GET /api/sessions (20)",
            Self::Refresh => "POST /api/auth/refresh",
            Self::Login => "POST /api/auth/login",
            Self::Track => "POST /api/pages/track",
            Self::Heatmap => "POST /api/sessions/heatmap",
            Self::Verify => "GET /api/auth/verify",
            Self::Introspect => "POST /oauth/introspect",
        }
    }

    /// The least share of the bare endpoint's throughput the endpoint
    /// must reach, for the endpoints with such a target.
    fn min_ratio(self) -> Option<f64> {
        match self {
            Self::TokenInfo => Some(TOKEN_INFO_MIN_RATIO),
            Self::Me => Some(ME_MIN_RATIO),
            Self::Verify => Some(VERIFY_MIN_RATIO),
            Self::Introspect => Some(INTROSPECT_MIN_RATIO),
            _ => None,
        }
    }

    /// The requests the connections cycle through; none for
    /// [`Endpoint::Refresh`], whose requests depend on the answers (see
    /// [`RefreshChain`]).
    fn requests(self, addr: SocketAddr, token: &str) -> Vec<Vec<u8>> {
        let one = |r: Vec<u8>| vec![r];
        match self {
            Self::Live => one(client::request("GET", "/health/live", addr, None, None)),
            Self::TokenInfo => one(token_info(addr, token)),
            Self::Verify => {
                one(client::request("GET", "/api/auth/verify", addr, Some(token), None))
            }
            Self::Introspect => one(introspect(addr, token)),
            Self::Refresh => Vec::new(),
            Self::Me => one(client::request("GET", "/api/auth/me", addr, Some(token), None)),
            Self::Sessions => one(client::request("GET", "/api/sessions", addr, Some(token), None)),
            Self::Login => one(login_request(addr)),
            Self::Track => track_requests(addr),
            Self::Heatmap => {
                let body = json!({"user": USERNAME, "app": APP}).to_string();
                one(client::request(
                    "POST",
                    "/api/sessions/heatmap",
                    addr,
                    Some(token),
                    Some(&body),
                ))
            }
        }
    }
}

fn token_info(addr: SocketAddr, token: &str) -> Vec<u8> {
    client::request("POST", "/api/auth/token-info", addr, Some(token), Some("{}"))
}

/// The introspection client the benchmark's servers know
/// (`SESSIOND_INTROSPECTION_CLIENTS`).
pub(crate) const INTROSPECTION_CLIENT: (&str, &str) = ("bench", "bench-introspection-secret");

/// `POST /oauth/introspect` of `token`, as a resource server sends it:
/// HTTP Basic client credentials and a form body.
fn introspect(addr: SocketAddr, token: &str) -> Vec<u8> {
    use base64::Engine as _;
    let (id, secret) = INTROSPECTION_CLIENT;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = format!("token={token}&token_type_hint=access_token");
    format!(
        "POST /oauth/introspect HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: sessiond-bench/0.1\r\n\
         Accept: application/json\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn login_request(addr: SocketAddr) -> Vec<u8> {
    let body = json!({"username": USERNAME, "password": PASSWORD, "app": APP}).to_string();
    client::request("POST", "/api/auth/login", addr, None, Some(&body))
}

/// Page visits of the benchmark user: 500 pages, 1–600 s each, varied so
/// that the server's aggregates see many keys (no token: public tracking).
fn track_requests(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut rng = crate::dataset::Rng::new(0x7ac6);
    (0..TRACK_VARIETY)
        .map(|_| {
            let body = json!({
                "user": USERNAME,
                "page": format!("/p/{}", rng.below(500)),
                "timespent": 1 + rng.below(600),
                "app": APP,
            });
            client::request("POST", "/api/pages/track", addr, None, Some(&body.to_string()))
        })
        .collect()
}

/// A connection's own refresh-token chain: every request presents the
/// refresh token the previous answer returned (tokens rotate on each use,
/// and an old one presented after the grace window revokes the session).
struct RefreshChain {
    addr: SocketAddr,
    request: Vec<u8>,
}

impl RefreshChain {
    fn new(addr: SocketAddr, refresh_token: &str) -> Self {
        let mut chain = Self { addr, request: Vec::new() };
        chain.present(refresh_token);
        chain
    }

    fn present(&mut self, refresh_token: &str) {
        let body = json!({ "refresh_token": refresh_token }).to_string();
        self.request = client::request("POST", "/api/auth/refresh", self.addr, None, Some(&body));
    }
}

impl Script for RefreshChain {
    fn next_request(&mut self) -> Option<&[u8]> {
        Some(&self.request)
    }

    fn answered(&mut self, response: &Response) {
        // A failed answer keeps the current token: presenting it again
        // within the grace window still works, and the error is counted.
        if response.is_success()
            && let Some(next) = json_str(&response.body, "/data/refresh_token")
        {
            self.present(&next);
        }
    }
}

fn json_str(body: &[u8], pointer: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

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

/// `(rounds 0.91, 0.88, 0.93)`.
fn rounds_text(rounds: &[f64]) -> String {
    let each: Vec<String> = rounds.iter().map(|x| format!("{x:.2}")).collect();
    format!("(rounds {})", each.join(", "))
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

/// Token-info against the bare endpoint, paired, on a server signing with
/// `alg` (started with `env`) on a fresh database of the run's kind.
fn token_info_with(
    ctx: &Context<'_>,
    pg: bool,
    alg: &str,
    env: &[(&str, &str)],
) -> Result<Paired, String> {
    let suffix = alg.to_ascii_lowercase();
    let measure = |url: &str| {
        let server = ctx.start_server(url, env)?;
        let token = ctx.rt.block_on(sign_up(server.addr))?;
        let signed_with = token_alg(&token);
        if signed_with.as_deref() != Some(alg) {
            return Err(format!("the server signs with {signed_with:?}, not {alg}"));
        }
        let live = Endpoint::Live.requests(server.addr, &token);
        let info = Endpoint::TokenInfo.requests(server.addr, &token);
        paired_rounds(ctx, server.addr, &live, &info)
    };
    if pg {
        let db = PgDatabase::create(ctx.pg_admin_url, &format!("{}_{suffix}", ctx.id))?;
        measure(&db.url)
    } else {
        let path = ctx.tmp.0.join(format!("bench-{suffix}.db"));
        measure(&format!("sqlite://{}", path.display()))
    }
}

/// The `alg` of a JWT's header.
fn token_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// [`RATIO_ROUNDS`] rounds of the bare endpoint then `requests`, each
/// for `--duration` after `--warmup`.
fn paired_rounds(
    ctx: &Context<'_>,
    addr: SocketAddr,
    bare: &[Vec<u8>],
    requests: &[Vec<u8>],
) -> Result<Paired, String> {
    let (opts, rt) = (ctx.opts, ctx.rt);
    let window = |requests: &[Vec<u8>]| {
        let group =
            Group { addrs: vec![addr], scripts: Cycle::all(requests.to_vec(), opts.connections) };
        rt.block_on(load::run_groups(vec![group], opts.warmup, opts.duration))
            .pop()
            .ok_or("the load generator returned nothing")
    };
    let mut rounds = Vec::with_capacity(RATIO_ROUNDS);
    for _ in 0..RATIO_ROUNDS {
        let bare = window(bare)?;
        let outcome = window(requests)?;
        let ratio = if bare.rps > 0.0 { outcome.rps / bare.rps } else { 0.0 };
        rounds.push((ratio, outcome));
    }
    let ratios: Vec<f64> = rounds.iter().map(|(x, _)| *x).collect();
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (_, outcome) = rounds.swap_remove(rounds.len() / 2);
    Ok(Paired { outcome, rounds: ratios })
}

fn ratio_text(endpoint: Endpoint, o: &Outcome, ratio: Option<f64>, argon: &Argon2Bound) -> String {
    let vs_bare = ratio.map_or_else(|| "- x bare".to_owned(), |x| format!("{x:.2} x bare"));
    match endpoint {
        Endpoint::Login => format!(
            "{vs_bare}; {:.2} of the Argon2 bound ({:.1}/s)",
            o.rps / argon.logins_per_sec,
            argon.logins_per_sec
        ),
        _ => vs_bare,
    }
}

/// [`FLOOD_ROUNDS`] rounds of: token-info alone on `--connections`
/// connections, then token-info again while [`FLOOD_CONNECTIONS`] more
/// post logins as fast as the server answers, in the same window; the
/// round with the median p99 ratio is kept.
fn login_flood(ctx: &Context<'_>, addr: SocketAddr, token: &str) -> Flood {
    let opts = ctx.opts;
    let info = || Group {
        addrs: vec![addr],
        scripts: Cycle::all(vec![token_info(addr, token)], opts.connections),
    };
    let mut rounds: Vec<Flood> = (0..FLOOD_ROUNDS)
        .map(|_| {
            let idle = ctx
                .rt
                .block_on(load::run_groups(vec![info()], opts.warmup, opts.duration))
                .pop()
                .unwrap_or_default();
            let login_group = Group {
                addrs: vec![addr],
                scripts: Cycle::all(vec![login_request(addr)], FLOOD_CONNECTIONS),
            };
            let mut outcomes = ctx.rt.block_on(load::run_groups(
                vec![info(), login_group],
                opts.warmup,
                opts.duration,
            ));
            let logins = outcomes.pop().unwrap_or_default();
            let token_info = outcomes.pop().unwrap_or_default();
            Flood { idle, token_info, logins, ratios: Vec::new() }
        })
        .collect();
    let ratios: Vec<f64> = rounds.iter().map(Flood::ratio).collect();
    rounds.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let mut median = rounds.swap_remove(rounds.len() / 2);
    median.ratios = ratios;
    median
}

/// Token-info on `first` alone, then spread over it and [`INSTANCES`] − 1
/// more servers on the same database (started for this, stopped after).
fn instances(ctx: &Context<'_>, url: &str, first: &Server, token: &str) -> Result<Scaling, String> {
    let opts = ctx.opts;
    let measure = |addrs: Vec<SocketAddr>| {
        // The Host header names the first server; sessiond does not read it.
        let scripts = Cycle::all(vec![token_info(first.addr, token)], opts.connections);
        ctx.rt
            .block_on(load::run_groups(vec![Group { addrs, scripts }], opts.warmup, opts.duration))
            .pop()
            .ok_or("the load generator returned nothing")
    };
    let one = measure(vec![first.addr])?;
    let mut more = Vec::new();
    for _ in 1..INSTANCES {
        more.push(start_server(ctx, url)?);
    }
    let addrs: Vec<SocketAddr> =
        std::iter::once(first.addr).chain(more.iter().map(|s| s.addr)).collect();
    for &addr in &addrs {
        ctx.rt.block_on(probe(addr, &token_info(addr, token)))?;
    }
    let many = measure(addrs)?;
    drop(more);
    Ok(Scaling { one, many })
}

/// On a fresh server: RSS after a short token-info warm-up, then
/// [`RSS_SESSIONS`] live sessions of the benchmark user written through the
/// store, one access token minted for each (with the server's own secret,
/// so they validate), token-info once with each over `--connections`
/// connections (every one a cache miss, loaded and then cached by the
/// server), and RSS again.
fn rss(ctx: &Context<'_>, url: &str, store: &Store) -> Result<Rss, String> {
    let (opts, rt) = (ctx.opts, ctx.rt);
    let server = start_server(ctx, url)?;
    let addr = server.addr;
    let user = store
        .find_by_username(USERNAME)
        .map_err(|e| format!("loading {USERNAME}: {e}"))?
        .ok_or_else(|| format!("{USERNAME} does not exist"))?;
    // Connections, buffers and the allocator's arenas of a server under
    // load, before any of the sessions: the difference is the sessions'.
    let token = rt.block_on(login(addr))?;
    if !opts.warmup.is_zero() {
        let group = Group {
            addrs: vec![addr],
            scripts: Cycle::all(vec![token_info(addr, &token)], opts.connections),
        };
        rt.block_on(load::run_groups(vec![group], Duration::ZERO, opts.warmup));
    }
    let before_kib = proc_status_kib(server.pid(), "VmRSS")?;

    let t0 = Instant::now();
    let now = kernel::OffsetDateTime::now_utc();
    // Logged in ten minutes ago and not seen since: every first use is
    // activity to record (the write-behind buffer fills too), as for
    // sessions coming back rather than sessions just made.
    let created = now - kernel::Duration::minutes(10);
    let mut new_sessions = Vec::with_capacity(RSS_SESSIONS);
    for i in 0..RSS_SESSIONS {
        new_sessions.push(sessions::NewSession {
            session: sessions::DeviceSession {
                id: kernel::new_id(),
                user_id: user.id,
                app: APP.to_owned(),
                ip_address: Some(format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) sessiond-bench/0.1".to_owned()),
                location: None,
                login_method: "password".to_owned(),
                created_at: created,
                expires_at: created + kernel::Duration::days(1),
                last_activity: created,
                state: sessions::SessionState::Active,
                ended_at: None,
            },
            refresh_hash: tokens::RefreshToken::generate().hash,
        });
    }
    for batch in new_sessions.chunks(RSS_BATCH) {
        store.bulk_create_sessions(batch).map_err(|e| format!("writing sessions: {e:#}"))?;
    }
    let insert = t0.elapsed();

    // The server generated its signing keys at its first start and keeps
    // them in the database; the key ring loads them (it creates a set only
    // where there is none), so these tokens carry the server's current kid.
    let ring = tokens::KeyRing::open(
        std::sync::Arc::new(store.clone()),
        None,
        tokens::SigningAlg::EdDSA,
        ISSUER,
        kernel::Duration::seconds(ACCESS_TOKEN_TTL_SECS),
        kernel::OffsetDateTime::now_utc(),
    )
    .map_err(|e| format!("reading the signing keys: {e:#}"))?;
    let codec = ring.codec().clone();
    let requests: Vec<Vec<u8>> = new_sessions
        .iter()
        .map(|s| {
            let grant = tokens::AccessGrant {
                user_id: user.id,
                username: user.username.clone(),
                session_id: s.session.id,
                app: s.session.app.clone(),
                role: user.role.as_str().to_owned(),
            };
            token_info(addr, &codec.issue(&grant, now).0)
        })
        .collect();
    drop(new_sessions);
    let first = requests.first().ok_or("no sessions")?;
    rt.block_on(probe(addr, first)).map_err(|e| format!("a minted token is refused: {e}"))?;

    let group = Group { addrs: vec![addr], scripts: Once::all(requests, opts.connections) };
    let run = rt
        .block_on(load::run_groups(vec![group], Duration::ZERO, RSS_RUN_CAP))
        .pop()
        .ok_or("the load generator returned nothing")?;
    let after_kib = proc_status_kib(server.pid(), "VmRSS")?;
    let peak_kib = proc_status_kib(server.pid(), "VmHWM")?;
    drop(server);
    Ok(Rss { before_kib, after_kib, peak_kib, insert, run })
}

fn rss_text(r: &Rss) -> String {
    format!(
        "RSS: {} after warm-up; {} sessions written through the store in {:.1} s; token-info \
         once with each in {:.1} s ({} req/s, p99 {}, {} errors); RSS {} ({}, peak {}), target \
         < {} {}",
        mib(r.before_kib),
        thousands(RSS_SESSIONS as u64),
        r.insert.as_secs_f64(),
        r.run.completed as f64 / r.run.rps.max(1e-9),
        rate(r.run.rps),
        ms_us(r.run.p99_us),
        r.run.errors(),
        mib(r.after_kib),
        per_session(r),
        mib(r.peak_kib),
        mib(RSS_TARGET_KIB),
        tick(r.after_kib < RSS_TARGET_KIB)
    )
}

/// The growth from before to after, per session.
fn per_session(r: &Rss) -> String {
    let grown = r.after_kib as f64 - r.before_kib as f64;
    format!("{:+.2} KiB per session", grown / RSS_SESSIONS as f64)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn tick(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
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

/// Registers the benchmark user and logs in [`SESSIONS_PER_USER`] times
/// (so that listing sessions lists that many); returns the last access token.
async fn sign_up(addr: SocketAddr) -> Result<String, String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let credentials = json!({ "username": USERNAME, "password": PASSWORD }).to_string();
    let register = client::request("POST", "/api/auth/register", addr, None, Some(&credentials));
    let resp =
        conn.roundtrip(&register).await.map_err(|e| format!("POST /api/auth/register: {e}"))?;
    if resp.status != 201 {
        return Err(format!(
            "POST /api/auth/register answered {} (want 201): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    for _ in 1..SESSIONS_PER_USER {
        login(addr).await?;
    }
    login(addr).await
}

/// Logs the benchmark user in once; its access token.
async fn login(addr: SocketAddr) -> Result<String, String> {
    login_json(addr).await.and_then(|v| {
        v.pointer("/data/access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("POST /api/auth/login: no data.access_token in {v}"))
    })
}

async fn login_json(addr: SocketAddr) -> Result<Value, String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let resp = conn
        .roundtrip(&login_request(addr))
        .await
        .map_err(|e| format!("POST /api/auth/login: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "POST /api/auth/login answered {} (want 200): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| format!("POST /api/auth/login: body is not JSON: {e}"))
}

/// `count` logins, `parallel` at a time (the server hashes on every core);
/// their refresh tokens.
async fn login_many(
    addr: SocketAddr,
    count: usize,
    parallel: usize,
) -> Result<Vec<String>, String> {
    let local = tokio::task::LocalSet::new();
    let parallel = parallel.clamp(1, count.max(1));
    let handles: Vec<_> = (0..parallel)
        .map(|i| {
            // Worker i does logins i, i + parallel, …
            let mine = (i..count).step_by(parallel).count();
            local.spawn_local(async move {
                let mut tokens = Vec::with_capacity(mine);
                for _ in 0..mine {
                    let v = login_json(addr).await?;
                    let t = v.pointer("/data/refresh_token").and_then(Value::as_str).ok_or_else(
                        || format!("POST /api/auth/login: no data.refresh_token in {v}"),
                    )?;
                    tokens.push(t.to_owned());
                }
                Ok::<_, String>(tokens)
            })
        })
        .collect();
    local
        .run_until(async move {
            let mut all = Vec::with_capacity(count);
            for h in handles {
                all.extend(h.await.map_err(|e| format!("a login task failed: {e}"))??);
            }
            Ok(all)
        })
        .await
}

/// Sends one request and complains unless it succeeds.
async fn probe(addr: SocketAddr, request: &[u8]) -> Result<(), String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| e.to_string())?;
    let resp = conn.roundtrip(request).await.map_err(|e| e.to_string())?;
    if resp.is_success() {
        Ok(())
    } else {
        Err(format!("{}: {}", resp.status, resp.body_snippet()))
    }
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

// ---------------------------------------------------------------- tables

fn print_tables(ctx: &Context<'_>, reports: &[(&str, DbReport)], argon: &Argon2Bound) {
    let opts = ctx.opts;
    let cores = ctx.cores;
    println!("## sessiond benchmark");
    println!();
    println!("- date: {}", ctx.date);
    println!("- machine: {cores} cores (`available_parallelism`), {}", cpu_model());
    println!("- command: `{}`", opts.command());
    println!(
        "- server: `cargo build --release -p sessiond`, then per database `sessiond serve` with \
         `SESSIOND_BIND=127.0.0.1:0 SESSIOND_RATE_LIMIT_ENABLED=false RUST_LOG=warn`, \
         everything else default (EdDSA tokens), on a fresh database; the token-info rows of \
         another algorithm on a server and fresh database of their own"
    );
    println!(
        "- load: closed loop, {} keep-alive HTTP/1.1 connections, {} warm-up + {} measured per \
         row; generator on 1 tokio thread on the same machine; token-info, verify, introspect \
         and me: {RATIO_ROUNDS} rounds of the bare endpoint then the row's, the median round's \
         ratio",
        opts.connections,
        secs(opts.warmup),
        secs(opts.duration)
    );
    println!(
        "- Argon2 bound: {cores} cores / {} per hash (`PasswordHasher::default()`, median of \
         {ARGON2_RUNS}) = {:.1} logins/s",
        ms(argon.hash),
        argon.logins_per_sec
    );
    println!(
        "- refresh: each connection logged in once beforehand and presents the refresh token \
         of its previous answer; track: {TRACK_VARIETY} distinct bodies, no token; heatmap: \
         the user's own, over {HEATMAP_SESSIONS} tracked sessions"
    );
    println!(
        "- profile of the token-info path: `bench/profile-token-info.sh` \
         (`bench/token-info-profile.md`)"
    );
    println!();

    // Hot paths: one column group per database.
    let dbs: Vec<&str> = reports.iter().map(|(db, _)| *db).collect();
    print!("| hot path |");
    for db in &dbs {
        print!(" {db} req/s | p50 | p99 | ratio |");
    }
    println!();
    print!("|---|");
    for _ in &dbs {
        print!("---:|---:|---:|---|");
    }
    println!();
    for endpoint in Endpoint::ALL {
        print!("| `{}` |", endpoint.label());
        for (_, report) in reports {
            match report.results().and_then(|r| r.endpoint(endpoint).map(|o| (r, o))) {
                Some((r, o)) => {
                    let errors = if o.errors() > 0 {
                        format!(" ({} errors)", o.errors())
                    } else {
                        String::new()
                    };
                    print!(
                        " {}{errors} | {} | {} | {} |",
                        rate(o.rps),
                        ms_us(o.p50_us),
                        ms_us(o.p99_us),
                        ratio_text(endpoint, o, r.ratio(endpoint), argon).replace(" x ", " × ")
                    );
                }
                None => print!(" {} | | | |", not_run(report)),
            }
        }
        println!();
    }
    for (i, (alg, _)) in OTHER_ALGORITHMS.iter().enumerate() {
        let cells: Vec<String> = reports
            .iter()
            .map(|(_, report)| match report.results().and_then(|r| r.algorithms.get(i)) {
                Some((_, Ok(p))) => format!(
                    " {} | {} | {} | {:.2} × bare |",
                    with_errors(&p.outcome),
                    ms_us(p.outcome.p50_us),
                    ms_us(p.outcome.p99_us),
                    p.ratio()
                ),
                Some((_, Err(_))) => " failed | | | |".to_owned(),
                None => format!(" {} | | | |", not_run(report)),
            })
            .collect();
        if cells.iter().any(|c| !c.starts_with(" - ")) {
            println!("| `POST /api/auth/token-info`, {alg} |{}", cells.concat());
        }
    }
    println!();

    // Everything else: one column per database.
    print!("| measure |");
    for db in &dbs {
        print!(" {db} |");
    }
    println!();
    print!("|---|");
    for _ in &dbs {
        print!("---:|");
    }
    println!();
    type Cell = Box<dyn Fn(&DbResults) -> Option<String>>;
    let rows: Vec<(String, Cell)> = vec![
        (
            format!("token-info p99, idle ({} connections)", opts.connections),
            Box::new(|r: &DbResults| r.endpoint(Endpoint::TokenInfo).map(|o| ms_us(o.p99_us))),
        ),
        (
            format!("token-info p99 just before the flood (median of {FLOOD_ROUNDS} rounds)"),
            Box::new(|r: &DbResults| r.flood.as_ref().map(|f| ms_us(f.idle.p99_us))),
        ),
        (
            format!(
                "token-info p99 during a login flood ({} + {FLOOD_CONNECTIONS} login connections)",
                opts.connections
            ),
            Box::new(|r: &DbResults| r.flood.as_ref().map(|f| ms_us(f.token_info.p99_us))),
        ),
        (
            format!("flood p99 ÷ p99 just before (target ≤ {FLOOD_P99_MAX_RATIO}×; every round)"),
            Box::new(|r: &DbResults| {
                r.flood.as_ref().map(|f| {
                    let all: Vec<String> = f.ratios.iter().map(|x| format!("{x:.2}")).collect();
                    let x = f.ratio();
                    format!("{x:.2}× {} ({})", tick(x <= FLOOD_P99_MAX_RATIO), all.join(", "))
                })
            }),
        ),
        (
            "token-info req/s during the flood".to_owned(),
            Box::new(|r: &DbResults| r.flood.as_ref().map(|f| with_errors(&f.token_info))),
        ),
        (
            "logins/s during the flood".to_owned(),
            Box::new(|r: &DbResults| r.flood.as_ref().map(|f| with_errors(&f.logins))),
        ),
        (
            format!(
                "refresh/s (target ≥ {} on PostgreSQL)",
                thousands(REFRESH_TARGET_PER_SEC as u64)
            ),
            Box::new(|r: &DbResults| r.endpoint(Endpoint::Refresh).map(with_errors)),
        ),
        (
            "token-info req/s, 1 instance (just before the next row)".to_owned(),
            Box::new(|r: &DbResults| scaling_cell(r, |s| with_errors(&s.one))),
        ),
        (
            format!("token-info req/s, {INSTANCES} instances on the same database"),
            Box::new(|r: &DbResults| scaling_cell(r, |s| with_errors(&s.many))),
        ),
        (
            format!("{INSTANCES} instances ÷ 1 instance"),
            Box::new(|r: &DbResults| {
                scaling_cell(r, |s| format!("{:.2}×", s.many.rps / s.one.rps.max(1e-9)))
            }),
        ),
        (
            "RSS, fresh server after warm-up".to_owned(),
            Box::new(|r: &DbResults| rss_cell(r, |x| mib(x.before_kib))),
        ),
        (
            format!(
                "RSS after token-info with {} sessions (target < {})",
                thousands(RSS_SESSIONS as u64),
                mib(RSS_TARGET_KIB)
            ),
            Box::new(|r: &DbResults| {
                rss_cell(r, |x| {
                    format!(
                        "{} {} ({})",
                        mib(x.after_kib),
                        tick(x.after_kib < RSS_TARGET_KIB),
                        per_session(x)
                    )
                })
            }),
        ),
        ("peak RSS (VmHWM)".to_owned(), Box::new(|r: &DbResults| rss_cell(r, |x| mib(x.peak_kib)))),
        (
            format!(
                "token-info, {} distinct sessions (cache misses)",
                thousands(RSS_SESSIONS as u64)
            ),
            Box::new(|r: &DbResults| {
                rss_cell(r, |x| {
                    format!("{} req/s, p99 {}", with_errors(&x.run), ms_us(x.run.p99_us))
                })
            }),
        ),
    ];
    for (label, cell) in &rows {
        print!("| {label} |");
        for (_, report) in reports {
            let text = report.results().and_then(cell).unwrap_or_else(|| not_run(report));
            print!(" {text} |");
        }
        println!();
    }
    println!();

    // One line per target.
    println!("Targets:");
    for (db, report) in reports {
        let Some(r) = report.results() else { continue };
        for endpoint in Endpoint::ALL {
            if let (Some(min), Some(o), Some(x)) =
                (endpoint.min_ratio(), r.endpoint(endpoint), r.ratio(endpoint))
            {
                println!(
                    "- {} {db}: {} at {x:.2}× the bare endpoint (target ≥ {min}×)",
                    tick(x >= min && o.errors() == 0),
                    endpoint.label()
                );
            }
        }
        for (alg, p) in &r.algorithms {
            match p {
                Ok(p) => println!(
                    "- {} {db}: POST /api/auth/token-info with {alg} at {:.2}× the bare endpoint \
                     (target ≥ {TOKEN_INFO_MIN_RATIO}×)",
                    tick(p.ratio() >= TOKEN_INFO_MIN_RATIO && p.outcome.errors() == 0),
                    p.ratio()
                ),
                Err(e) => println!("- {} {db}: token-info with {alg} failed: {e}", tick(false)),
            }
        }
        if let Some(o) = r.endpoint(Endpoint::Login) {
            let x = o.rps / argon.logins_per_sec;
            println!(
                "- {} {db}: login at {x:.2}× the Argon2 bound (target ≥ {LOGIN_MIN_RATIO}×)",
                tick(x >= LOGIN_MIN_RATIO && o.errors() == 0)
            );
        }
        if let Some(f) = r.flood.as_ref() {
            let x = f.ratio();
            println!(
                "- {} {db}: token-info p99 during a login flood {} = {x:.2}× {} just before \
                 (median of {FLOOD_ROUNDS} rounds; target ≤ {FLOOD_P99_MAX_RATIO}×)",
                tick(x <= FLOOD_P99_MAX_RATIO),
                ms_us(f.token_info.p99_us),
                ms_us(f.idle.p99_us)
            );
        }
        if *db == "PostgreSQL"
            && let Some(o) = r.endpoint(Endpoint::Refresh)
        {
            println!(
                "- {} {db}: {} refresh/s (target ≥ {}/s){}",
                tick(o.rps >= REFRESH_TARGET_PER_SEC && o.errors() == 0),
                rate(o.rps),
                thousands(REFRESH_TARGET_PER_SEC as u64),
                if o.errors() > 0 { format!(", {} errors", o.errors()) } else { String::new() }
            );
        }
        if let Some(Ok(x)) = &r.rss {
            println!(
                "- {} {db}: RSS {} with {} sessions used once (target < {}){}",
                tick(x.after_kib < RSS_TARGET_KIB && x.run.errors() == 0),
                mib(x.after_kib),
                thousands(RSS_SESSIONS as u64),
                mib(RSS_TARGET_KIB),
                if x.run.errors() > 0 {
                    format!(", but {} token-info errors", x.run.errors())
                } else {
                    String::new()
                }
            );
        }
    }
    for (db, report) in reports {
        match report {
            DbReport::Skipped(why) => println!("- {db}: skipped ({why})"),
            DbReport::Failed(why, _) => println!("- {db}: FAILED ({why})"),
            DbReport::Ran(_) => {}
        }
    }
}

fn not_run(report: &DbReport) -> String {
    match report {
        DbReport::Skipped(_) => "skipped".to_owned(),
        DbReport::Failed(..) => "failed".to_owned(),
        DbReport::Ran(_) => "-".to_owned(),
    }
}

fn with_errors(o: &Outcome) -> String {
    if o.errors() > 0 { format!("{} ({} errors)", rate(o.rps), o.errors()) } else { rate(o.rps) }
}

fn scaling_cell(r: &DbResults, f: impl Fn(&Scaling) -> String) -> Option<String> {
    match r.instances.as_ref()? {
        Ok(s) => Some(f(s)),
        Err(e) => Some(format!("failed: {e}")),
    }
}

fn rss_cell(r: &DbResults, f: impl Fn(&Rss) -> String) -> Option<String> {
    match r.rss.as_ref()? {
        Ok(x) => Some(f(x)),
        Err(e) => Some(format!("failed: {e}")),
    }
}
