//! Loading slices of the data set through the store, with a progress bar.

use super::*;

/// Loads `slices` of the plan: a generator thread feeds chunks to this
/// thread, which writes them.
pub(super) fn load(
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

pub(super) fn database_size(url: &str, pg: bool) -> String {
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

pub(super) fn print_load(label: &str, r: &LoadReport) {
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
