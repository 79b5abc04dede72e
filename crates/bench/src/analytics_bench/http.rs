//! The HTTP side: logins, exactness checks, timed reports and ingest.

use super::*;

/// One JSON request on `conn` (reconnecting when needed): status, body,
/// time.
pub(super) async fn call(
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

pub(super) async fn post(
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

pub(super) async fn login(addr: SocketAddr) -> Result<String, String> {
    let body = json!({"username": ADMIN, "password": ADMIN_PASSWORD, "app": APP});
    let v = post(addr, "/api/auth/login", None, &body).await?;
    v.pointer("/data/access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /api/auth/login: no data.access_token in {v}"))
}

/// `summary` of `subject` over all time against the generator's totals.
pub(super) async fn check_summary(
    addr: SocketAddr,
    token: &str,
    subject: &str,
    exp: &Expected,
) -> Check {
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
pub(super) async fn measure_reports(
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
pub(super) async fn ingest(
    ctx: &Context<'_>,
    plan: &Plan,
    addr: SocketAddr,
    token: &str,
) -> Ingest {
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
pub(super) async fn stored_visits(
    addr: SocketAddr,
    token: &str,
    mut body: Value,
) -> Result<u64, String> {
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
