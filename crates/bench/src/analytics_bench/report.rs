//! The markdown tables at the end of a run, with the targets.

use super::*;

pub(super) fn ingest_text(i: &Ingest) -> String {
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

pub(super) fn print_tables(ctx: &Context<'_>, plan: &Plan, outcomes: &[(&str, DbOutcome)]) {
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
