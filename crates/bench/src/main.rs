//! `bench`: a load benchmark of sessiond on this machine.
//!
//! ```text
//! make bench                                  # 1 s warm-up + 5 s per endpoint
//! make bench BENCH_ARGS="--duration 2"
//! cargo run --release -p bench -- --duration 10 --connections 32
//! ```
//!
//! Flags: `--duration SECS` (measured time per endpoint, default 5),
//! `--warmup SECS` (default 1), `--connections N` (default 64),
//! `--sessiond PATH` (use this binary instead of building
//! `cargo build --release -p sessiond`, which is otherwise run first and is
//! a no-op when the binary is up to date).
//!
//! For PostgreSQL and then SQLite it starts ONE real `sessiond serve`
//! process (`SESSIOND_BIND=127.0.0.1:0`, `SESSIOND_RATE_LIMIT_ENABLED=false`,
//! `RUST_LOG=warn`) on a fresh database: PostgreSQL gets a new database
//! `bench_<id>` created with `psql` on the server of `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped
//! afterwards, SQLite a new file in a temporary directory. When PostgreSQL
//! cannot be reached it says so loudly and goes on with SQLite.
//!
//! Against each server it registers and logs in one user, then drives a
//! closed loop (every connection sends its next request as soon as the
//! previous answer is in) over keep-alive HTTP/1.1 connections on
//! `GET /health/live` (the bare endpoint), `POST /api/auth/token-info` (bearer
//! authentication alone), `GET /api/auth/me`, `GET /api/sessions` for a user
//! with 20 sessions and `POST /api/auth/login`, and
//! reports throughput, p50/p99 latency, errors (non-2xx and I/O failures),
//! each endpoint's throughput relative to the bare one, and login throughput
//! relative to the Argon2 bound: cores ÷ the time of one
//! `accounts::PasswordHasher::default()` hash, measured in-process (median of
//! five). It ends with a markdown table of everything.
//!
//! The load generator runs on one thread on the same machine, so it takes
//! part of a core away from the server; the numbers are a report, not a
//! test, and nothing asserts on them. The exit status is non-zero when a
//! server fails to start or to accept the benchmark user.
//!
//! # Analytics
//!
//! ```text
//! make bench BENCH_ARGS="--analytics"               # 1M sessions, 10M visits
//! make bench BENCH_ARGS="--analytics --scale 0.1"   # a tenth of that
//! ```
//!
//! `--analytics` runs the analytics part instead (see `analytics_bench`):
//! it loads one app with 1,000 users, 365 days, `--scale` × 1,000,000
//! tracked sessions and × 10,000,000 page visits directly through the store
//! (with a progress bar), then against the real server prints the ingest
//! rate of `POST /api/pages/track` at `--connections` connections and the
//! median and p99 latency of every report, for one user and for `all`,
//! after the first tenth of the data and after all of it.
//! `--report-calls N` (default 50) sets the timed calls per report case.

mod analytics_bench;
mod client;
mod dataset;
mod load;
mod progress;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use client::Conn;
use load::Outcome;
use server::{PgDatabase, Server, TempDir};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const USERNAME: &str = "bench_user";
const PASSWORD: &str = "bench-password-0123456789";
const ARGON2_RUNS: usize = 5;

/// The command line.
struct Options {
    duration: Duration,
    warmup: Duration,
    connections: usize,
    sessiond: Option<PathBuf>,
    /// Run the analytics part instead of the auth hot paths.
    analytics: bool,
    /// Size of the analytics data set (1.0 = 1M sessions, 10M visits).
    scale: f64,
    /// Timed calls per report case.
    report_calls: usize,
    args: Vec<String>,
}

const USAGE: &str = "usage: bench [--duration SECS] [--warmup SECS] [--connections N] \
                     [--sessiond PATH] [--analytics [--scale F] [--report-calls N]]";

impl Options {
    fn parse() -> Result<Self, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut opts = Self {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            connections: 64,
            sessiond: None,
            analytics: false,
            scale: 1.0,
            report_calls: 50,
            args: args.clone(),
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            let mut value = || {
                inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{flag} needs a value"))
            };
            let secs = |v: String| -> Result<Duration, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{flag}: not a number of seconds: {v:?}"))
            };
            match flag.as_str() {
                "--duration" => opts.duration = secs(value()?)?,
                "--warmup" => opts.warmup = secs(value()?)?,
                "--connections" => {
                    let v = value()?;
                    opts.connections = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--connections: not a positive count: {v:?}"))?;
                }
                "--sessiond" => opts.sessiond = Some(PathBuf::from(value()?)),
                "--analytics" => opts.analytics = true,
                "--scale" => {
                    let v = value()?;
                    opts.scale = v
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 100.0)
                        .ok_or_else(|| format!("--scale: not a factor in (0, 100]: {v:?}"))?;
                }
                "--report-calls" => {
                    let v = value()?;
                    opts.report_calls =
                        v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("--report-calls: not a positive count: {v:?}")
                        })?;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if opts.duration.is_zero() {
            return Err("--duration must be positive".to_owned());
        }
        Ok(opts)
    }

    /// The command as the user typed it, as far as we can tell.
    fn command(&self) -> String {
        let args = self.args.join(" ");
        if std::env::var_os("MAKELEVEL").is_some() {
            if args.is_empty() {
                "make bench".to_owned()
            } else {
                format!("make bench BENCH_ARGS=\"{args}\"")
            }
        } else {
            format!("cargo run --release -p bench -- {args}").trim_end().to_owned()
        }
    }
}

/// One hash's time and the login bound it implies.
struct Argon2Bound {
    hash: Duration,
    logins_per_sec: f64,
}

/// The endpoints measured on each database.
#[derive(Clone, Copy)]
enum Endpoint {
    Live,
    TokenInfo,
    Me,
    Sessions,
    Login,
}

/// Sessions the benchmark user has when `GET /api/sessions` is measured.
const SESSIONS_PER_USER: usize = 20;

impl Endpoint {
    const ALL: [Self; 5] = [Self::Live, Self::TokenInfo, Self::Me, Self::Sessions, Self::Login];

    fn label(self) -> &'static str {
        match self {
            Self::Live => "GET /health/live",
            Self::TokenInfo => "POST /api/auth/token-info",
            Self::Me => "GET /api/auth/me",
            Self::Sessions => "GET /api/sessions (20)",
            Self::Login => "POST /api/auth/login",
        }
    }

    fn request(self, addr: SocketAddr, token: &str) -> Vec<u8> {
        match self {
            Self::Live => client::request("GET", "/health/live", addr, None, None),
            Self::TokenInfo => {
                client::request("POST", "/api/auth/token-info", addr, Some(token), Some("{}"))
            }
            Self::Me => client::request("GET", "/api/auth/me", addr, Some(token), None),
            Self::Sessions => client::request("GET", "/api/sessions", addr, Some(token), None),
            Self::Login => {
                client::request("POST", "/api/auth/login", addr, None, Some(&credentials()))
            }
        }
    }
}

fn credentials() -> String {
    serde_json::json!({ "username": USERNAME, "password": PASSWORD }).to_string()
}

/// What happened on one database.
enum DbReport {
    Skipped(String),
    Failed(String),
    Ran(Vec<(Endpoint, Outcome)>),
}

fn main() -> ExitCode {
    let opts = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let date = now_utc();
    println!("sessiond benchmark, {date}");
    println!("machine: {cores} cores (available_parallelism), {}", cpu_model());
    if opts.analytics {
        return run_analytics(&opts, cores, &date);
    }
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

    let argon = match measure_argon2(cores) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Argon2: accounts::PasswordHasher::default().hash() takes {} (median of {ARGON2_RUNS}) \
         -> bound = {cores} cores / {} = {:.1} logins/s",
        ms(argon.hash),
        ms(argon.hash),
        argon.logins_per_sec
    );
    println!();

    let (binary, id, tmp, rt) = match setup(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut reports: Vec<(&str, DbReport)> = Vec::new();

    // PostgreSQL first.
    let admin_url = pg_admin_url();
    println!("== PostgreSQL ==");
    let pg_report = match PgDatabase::create(&admin_url, &id) {
        Err(e) => {
            println!(
                "\n************************************************************\n\
                 PostgreSQL unreachable at {admin_url}, skipping:\n  {e}\n\
                 (start it or set TEST_DATABASE_URL)\n\
                 ************************************************************\n"
            );
            DbReport::Skipped(format!("unreachable at {admin_url}"))
        }
        Ok(db) => {
            println!("database: {}", db.url);
            let report = bench_database(&rt, &binary, &db.url, &tmp, &opts, &argon);
            drop(db); // after the server, which bench_database has stopped
            report
        }
    };
    reports.push(("PostgreSQL", pg_report));
    println!();

    println!("== SQLite ==");
    let sqlite_url = format!("sqlite://{}", tmp.0.join("bench.db").display());
    println!("database: {sqlite_url}");
    let report = bench_database(&rt, &binary, &sqlite_url, &tmp, &opts, &argon);
    reports.push(("SQLite", report));
    println!();

    print_table(&reports, &opts, cores, &date, &argon);
    if reports.iter().any(|(_, r)| matches!(r, DbReport::Failed(_))) {
        eprintln!("bench: a server failed; see above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The `sessiond` binary, a run id, a temporary directory and the runtime.
fn setup(opts: &Options) -> Result<(PathBuf, String, TempDir, tokio::runtime::Runtime), String> {
    let binary = match &opts.sessiond {
        // The server runs in a temporary directory: a relative path would
        // not name it there.
        Some(path) => std::fs::canonicalize(path)
            .map_err(|e| format!("--sessiond {}: {e}", path.display()))?,
        None => server::build_sessiond()?,
    };
    let id = random_id();
    let tmp = TempDir::new(&id)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("building the tokio runtime: {e}"))?;
    Ok((binary, id, tmp, rt))
}

/// The PostgreSQL server's URL: `TEST_DATABASE_URL` or the default.
fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// `bench --analytics`.
fn run_analytics(opts: &Options, cores: usize, date: &str) -> ExitCode {
    let (binary, id, tmp, rt) = match setup(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pg_admin_url = pg_admin_url();
    analytics_bench::run(&analytics_bench::Context {
        opts,
        binary: &binary,
        rt: &rt,
        tmp: &tmp,
        id: &id,
        cores,
        date,
        pg_admin_url: &pg_admin_url,
    })
}

/// Starts a server on `url`, runs every endpoint, stops the server.
fn bench_database(
    rt: &tokio::runtime::Runtime,
    binary: &std::path::Path,
    url: &str,
    dir: &TempDir,
    opts: &Options,
    argon: &Argon2Bound,
) -> DbReport {
    let server = match Server::start(binary, url, &dir.0) {
        Ok(s) => s,
        Err(e) => {
            println!("FAILED to start sessiond: {e}");
            return DbReport::Failed(format!("server did not start: {e}"));
        }
    };
    println!(
        "sessiond pid {} listening on http://{} (ready after {:.2} s)",
        server.pid(),
        server.addr,
        server.started_in.as_secs_f64()
    );
    let addr = server.addr;
    let token = match rt.block_on(sign_up(addr)) {
        Ok(t) => t,
        Err(e) => {
            println!("FAILED to set up the benchmark user: {e}");
            return DbReport::Failed(e);
        }
    };
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>8}  ratio",
        "endpoint", "req/s", "p50", "p99", "errors"
    );
    let mut results: Vec<(Endpoint, Outcome)> = Vec::new();
    for endpoint in Endpoint::ALL {
        let request = endpoint.request(addr, &token);
        if let Err(e) = rt.block_on(probe(addr, &request)) {
            println!("  warning: {} answers {e}", endpoint.label());
        }
        let outcome = rt.block_on(load::run(
            addr,
            vec![request],
            opts.connections,
            opts.warmup,
            opts.duration,
        ));
        let bare = results.first().map_or(outcome.rps, |(_, o)| o.rps);
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>8}  {}",
            endpoint.label(),
            rate(outcome.rps),
            ms_us(outcome.p50_us),
            ms_us(outcome.p99_us),
            outcome.errors(),
            ratio_text(endpoint, &outcome, bare, argon)
        );
        if outcome.io_errors > 0 {
            println!("  ({} of the errors were connection failures)", outcome.io_errors);
        }
        results.push((endpoint, outcome));
    }
    drop(server);
    DbReport::Ran(results)
}

fn ratio_text(endpoint: Endpoint, o: &Outcome, bare: f64, argon: &Argon2Bound) -> String {
    match endpoint {
        Endpoint::Login => format!(
            "{:.2} of the Argon2 bound ({:.1}/s)",
            o.rps / argon.logins_per_sec,
            argon.logins_per_sec
        ),
        _ if bare > 0.0 => format!("{:.2} x bare", o.rps / bare),
        _ => "-".to_owned(),
    }
}

/// Registers the benchmark user and logs in [`SESSIONS_PER_USER`] times
/// (so that listing sessions lists that many); returns the last access token.
async fn sign_up(addr: SocketAddr) -> Result<String, String> {
    let mut conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let register = client::request("POST", "/api/auth/register", addr, None, Some(&credentials()));
    let resp =
        conn.roundtrip(&register).await.map_err(|e| format!("POST /api/auth/register: {e}"))?;
    if resp.status != 201 {
        return Err(format!(
            "POST /api/auth/register answered {} (want 201): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    if resp.close {
        conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    }
    let login = client::request("POST", "/api/auth/login", addr, None, Some(&credentials()));
    for _ in 1..SESSIONS_PER_USER {
        let resp =
            conn.roundtrip(&login).await.map_err(|e| format!("POST /api/auth/login: {e}"))?;
        if resp.close {
            conn = Conn::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        }
    }
    let resp = conn.roundtrip(&login).await.map_err(|e| format!("POST /api/auth/login: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "POST /api/auth/login answered {} (want 200): {}",
            resp.status,
            resp.body_snippet()
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| format!("POST /api/auth/login: body is not JSON: {e}"))?;
    json.pointer("/data/access_token").and_then(|t| t.as_str()).map(str::to_owned).ok_or_else(
        || format!("POST /api/auth/login: no data.access_token in {}", resp.body_snippet()),
    )
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

fn print_table(
    reports: &[(&str, DbReport)],
    opts: &Options,
    cores: usize,
    date: &str,
    argon: &Argon2Bound,
) {
    println!("## sessiond benchmark");
    println!();
    println!("- date: {date}");
    println!("- machine: {cores} cores (`available_parallelism`), {}", cpu_model());
    println!("- command: `{}`", opts.command());
    println!(
        "- load: closed loop, {} keep-alive HTTP/1.1 connections, {} warm-up + {} measured per \
         endpoint; generator on 1 tokio thread on the same machine",
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
    println!();
    println!("| database | endpoint | req/s | p50 | p99 | errors | ratio |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for (db, report) in reports {
        match report {
            DbReport::Skipped(why) => println!("| {db} | skipped: {why} | | | | | |"),
            DbReport::Failed(why) => println!("| {db} | FAILED: {why} | | | | | |"),
            DbReport::Ran(results) => {
                let bare = results.first().map_or(0.0, |(_, o)| o.rps);
                for (endpoint, o) in results {
                    println!(
                        "| {db} | `{}` | {} | {} | {} | {} | {} |",
                        endpoint.label(),
                        rate(o.rps),
                        ms_us(o.p50_us),
                        ms_us(o.p99_us),
                        o.errors(),
                        ratio_text(*endpoint, o, bare, argon)
                    );
                }
            }
        }
    }
}

fn rate(rps: f64) -> String {
    if rps >= 100.0 { format!("{rps:.0}") } else { format!("{rps:.1}") }
}

fn ms(d: Duration) -> String {
    ms_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn ms_us(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_else(|_| "unknown date".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// A short random lowercase hex id for database and directory names.
fn random_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}
