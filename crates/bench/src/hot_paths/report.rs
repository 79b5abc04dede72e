//! The markdown tables at the end of a run, with the targets.

use super::*;

pub(super) fn tick(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

pub(super) fn print_tables(ctx: &Context<'_>, reports: &[(&str, DbReport)], argon: &Argon2Bound) {
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

pub(super) fn not_run(report: &DbReport) -> String {
    match report {
        DbReport::Skipped(_) => "skipped".to_owned(),
        DbReport::Failed(..) => "failed".to_owned(),
        DbReport::Ran(_) => "-".to_owned(),
    }
}

pub(super) fn with_errors(o: &Outcome) -> String {
    if o.errors() > 0 { format!("{} ({} errors)", rate(o.rps), o.errors()) } else { rate(o.rps) }
}

pub(super) fn scaling_cell(r: &DbResults, f: impl Fn(&Scaling) -> String) -> Option<String> {
    match r.instances.as_ref()? {
        Ok(s) => Some(f(s)),
        Err(e) => Some(format!("failed: {e}")),
    }
}

pub(super) fn rss_cell(r: &DbResults, f: impl Fn(&Rss) -> String) -> Option<String> {
    match r.rss.as_ref()? {
        Ok(x) => Some(f(x)),
        Err(e) => Some(format!("failed: {e}")),
    }
}
