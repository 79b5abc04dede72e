//! `bench`: a load benchmark of sessiond on this machine.
//!
//! ```text
//! make bench                                  # 1 s warm-up + 5 s per measurement
//! make bench BENCH_ARGS="--duration 2"
//! cargo run --release -p bench -- --duration 10 --connections 32
//! ```
//!
//! Flags: `--duration SECS` (measured time per endpoint or step, default 5),
//! `--warmup SECS` (default 1), `--connections N` (default 64),
//! `--sessiond PATH` (use this binary instead of building
//! `cargo build --release -p sessiond`, which is otherwise run first and is
//! a no-op when the binary is up to date).
//!
//! For PostgreSQL and then SQLite it starts a real `sessiond serve`
//! process (`SESSIOND_BIND=127.0.0.1:0`, `SESSIOND_RATE_LIMIT_ENABLED=false`,
//! `RUST_LOG=warn`, everything else default) on a fresh database:
//! PostgreSQL gets a new database `bench_<id>` created with `psql` on the
//! server of `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards,
//! SQLite a new file in a temporary directory. When PostgreSQL cannot be
//! reached it says so loudly and goes on with SQLite. Everything below is
//! one run (`hot_paths`); with the defaults it takes about three minutes
//! once `sessiond` is built.
//!
//! 1. **Hot paths.** It registers one user and logs it in 20 times (app
//!    `bench`), then drives a closed loop (every connection sends its next
//!    request as soon as the previous answer is in) over `--connections`
//!    keep-alive HTTP/1.1 connections on, in turn: `GET /health/live` (the
//!    bare endpoint), `POST /api/auth/token-info` (bearer authentication
//!    alone), `GET /api/auth/me`, `GET /api/sessions` (20 sessions),
//!    `GET /api/auth/verify` (forward auth), `POST /oauth/introspect` (HTTP
//!    Basic client), `POST /api/auth/refresh` (each connection logs in once beforehand,
//!    then presents the refresh token of its own previous answer, since
//!    tokens rotate), `POST /api/auth/login`, `POST /api/pages/track` (no
//!    token, 4,096 distinct bodies) and `POST /api/sessions/heatmap` (the
//!    user's own, over 1,000 tracked sessions loaded through the store). For
//!    each: throughput, p50/p99 latency, errors (non-2xx and I/O failures)
//!    and throughput relative to the bare endpoint; for login also relative
//!    to the Argon2 bound: cores ÷ the time of one
//!    `accounts::PasswordHasher::default()` hash, measured in-process
//!    (median of five). Token-info, verify, introspect and me are measured
//!    in three rounds of the bare endpoint then theirs, back to back, and
//!    the median round's ratio is reported (one bare figure taken minutes
//!    earlier moves more than the paths differ). Then token-info again,
//!    so, on servers signing with ES256, RS256 and HS256 (each on a fresh
//!    database of its own; the main server uses the default, EdDSA).
//! 2. **Login flood.** Three rounds of: token-info alone on
//!    `--connections` connections, then token-info again while 16 more
//!    connections post logins in the same window; the p99 during the flood
//!    against the p99 just before it, the median round reported (target:
//!    at most 2×). Measured back to back because the shared machine's idle
//!    p99 moves more between minutes than a flood moves it.
//! 3. **Three instances** (PostgreSQL only). Token-info on the one server,
//!    then, back to back, spread over it and two more servers started on
//!    the same database: throughput with three instances against one.
//! 4. **RSS with 100,000 sessions.** On a fresh server: `VmRSS` of
//!    `/proc/<pid>/status` after a token-info warm-up; then 100,000 live
//!    sessions of the user written with `Store::bulk_create_sessions`, an
//!    access token minted for each with the server's own signing keys
//!    (loaded from its database with `tokens::KeyRing`),
//!    token-info once with each over `--connections` connections (so the
//!    server loads and caches every session), and `VmRSS` (and the peak,
//!    `VmHWM`) again (target: under 64 MiB).
//!
//! It ends with markdown tables of everything and one line per target
//! (✓/✗): token-info (with every algorithm), verify, introspect and me
//! against the bare endpoint (0.8×, 0.85×, 0.7×, 0.6×), login
//! against the Argon2 bound (0.8×), the login-flood p99 ratio, refresh/s on
//! PostgreSQL against 5,000/s, and the RSS. A profile of the token-info path is made apart,
//! by `bench/profile-token-info.sh` (see `bench/token-info-profile.md`).
//!
//! The load generator runs on one thread on the same machine, so it takes
//! part of a core away from the server; the numbers are a report, not a
//! test, and nothing asserts on them. The exit status is non-zero when a
//! server fails to start, to accept the benchmark user, or a step fails.
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
mod hot_paths;
mod load;
mod progress;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use server::{Server, TempDir};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
    /// `--only`: the parts of the auth run to do (all when `None`).
    only: Option<Vec<String>>,
    args: Vec<String>,
}

const USAGE: &str = "usage: bench [--duration SECS] [--warmup SECS] [--connections N] \
                     [--sessiond PATH] [--only PART,...] [--analytics [--scale F] [--report-calls N]]
parts of the auth run: live token-info verify introspect me sessions refresh login track heatmap flood instances rss
parts of the analytics run: postgres sqlite (databases), reports ingest (measurements)";

/// What `--only` accepts in the analytics run: databases, then
/// measurements (a group left unnamed runs whole).
const ANALYTICS_PARTS: [&str; 4] = ["postgres", "sqlite", "reports", "ingest"];

/// What `--only` accepts: the auth run's endpoints and its later steps.
const PARTS: [&str; 14] = [
    "live",
    "token-info",
    "algorithms",
    "verify",
    "introspect",
    "me",
    "sessions",
    "refresh",
    "login",
    "track",
    "heatmap",
    "flood",
    "instances",
    "rss",
];

impl Options {
    fn parse() -> Result<Self, String> {
        Self::parse_from(std::env::args().skip(1).collect())
    }

    /// [`Self::parse`] of the given arguments (without the program name).
    fn parse_from(args: Vec<String>) -> Result<Self, String> {
        let mut opts = Self {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            connections: 64,
            sessiond: None,
            analytics: false,
            scale: 1.0,
            report_calls: 50,
            only: None,
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
                "--only" => {
                    let v = value()?;
                    opts.only = Some(v.split(',').map(|p| p.trim().to_owned()).collect());
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        // Checked once every flag is read: `--analytics` may come later.
        let known: &[&str] = if opts.analytics { &ANALYTICS_PARTS } else { &PARTS };
        if let Some(bad) = opts.only.iter().flatten().find(|p| !known.contains(&p.as_str())) {
            return Err(format!("--only: unknown part {bad:?}"));
        }
        if opts.duration.is_zero() {
            return Err("--duration must be positive".to_owned());
        }
        Ok(opts)
    }

    /// Whether `--only` leaves `part` (one of [`PARTS`]) in the run. The
    /// bare endpoint always runs: every ratio is to it.
    fn wants(&self, part: &str) -> bool {
        part == "live" || self.only.as_ref().is_none_or(|only| only.iter().any(|p| p == part))
    }

    /// Whether `--only` leaves `part` (one of [`ANALYTICS_PARTS`]) in the
    /// analytics run: a database when no database is named or this one is,
    /// a measurement likewise.
    fn wants_analytics(&self, part: &str) -> bool {
        let Some(only) = &self.only else { return true };
        let group: &[&str] = if ["postgres", "sqlite"].contains(&part) {
            &ANALYTICS_PARTS[..2]
        } else {
            &ANALYTICS_PARTS[2..]
        };
        only.iter().any(|p| p == part) || !only.iter().any(|p| group.contains(&p.as_str()))
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
    let (binary, id, tmp, rt) = match setup(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pg_admin_url = pg_admin_url();
    let ctx = Context {
        opts: &opts,
        binary: &binary,
        rt: &rt,
        tmp: &tmp,
        id: &id,
        cores,
        date: &date,
        pg_admin_url: &pg_admin_url,
    };
    if opts.analytics { analytics_bench::run(&ctx) } else { hot_paths::run(&ctx) }
}

/// What either part of the benchmark needs from `main`.
pub(crate) struct Context<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) binary: &'a Path,
    pub(crate) rt: &'a tokio::runtime::Runtime,
    pub(crate) tmp: &'a TempDir,
    pub(crate) id: &'a str,
    pub(crate) cores: usize,
    pub(crate) date: &'a str,
    pub(crate) pg_admin_url: &'a str,
}

impl Context<'_> {
    /// Starts `sessiond` on `url`, with `env` added to the benchmark's
    /// settings, and says where it listens.
    pub(crate) fn start_server(&self, url: &str, env: &[(&str, &str)]) -> Result<Server, String> {
        let server = Server::start_with(self.binary, url, &self.tmp.0, env)
            .map_err(|e| format!("starting sessiond: {e}"))?;
        println!(
            "sessiond pid {} listening on http://{} (ready after {:.2} s)",
            server.pid(),
            server.addr,
            server.started_in.as_secs_f64()
        );
        Ok(server)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse_from(args.iter().map(|a| (*a).to_owned()).collect())
    }

    #[test]
    fn only_selects_parts_and_keeps_the_bare_endpoint() {
        let all = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(PARTS.iter().all(|p| all.wants(p)));
        let some = parse(&["--only", "refresh,token-info"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(some.wants("refresh") && some.wants("token-info"));
        assert!(some.wants("live"), "every ratio is to the bare endpoint");
        assert!(!some.wants("rss") && !some.wants("flood") && !some.wants("me"));
        let inline = parse(&["--only=rss"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(inline.wants("rss") && !inline.wants("refresh"));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            parse(&["--only", "refresh,nope"]).err().as_deref(),
            Some("--only: unknown part \"nope\"")
        );
        assert_eq!(parse(&["--only"]).err().as_deref(), Some("--only needs a value"));
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--connections", "-1"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--only", "ingest"]).is_err(), "an analytics part without --analytics");
        assert!(parse(&["--only", "rss", "--analytics"]).is_err());
    }

    #[test]
    fn analytics_only_selects_databases_and_measurements_apart() {
        let pg = parse(&["--only", "postgres", "--analytics"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(pg.wants_analytics("postgres") && !pg.wants_analytics("sqlite"));
        assert!(pg.wants_analytics("reports") && pg.wants_analytics("ingest"));
        let ingest = parse(&["--analytics", "--only=ingest"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(ingest.wants_analytics("postgres") && ingest.wants_analytics("sqlite"));
        assert!(ingest.wants_analytics("ingest") && !ingest.wants_analytics("reports"));
        let all = parse(&["--analytics"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(ANALYTICS_PARTS.iter().all(|p| all.wants_analytics(p)));
    }
}
