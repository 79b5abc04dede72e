//! The resident memory of a server that has used many sessions.

use super::*;

/// On a fresh server: RSS after a short token-info warm-up, then
/// [`RSS_SESSIONS`] live sessions of the benchmark user written through the
/// store, one access token minted for each (with the server's own secret,
/// so they validate), token-info once with each over `--connections`
/// connections (every one a cache miss, loaded and then cached by the
/// server), and RSS again.
pub(super) fn rss(ctx: &Context<'_>, url: &str, store: &Store) -> Result<Rss, String> {
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

pub(super) fn rss_text(r: &Rss) -> String {
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
pub(super) fn per_session(r: &Rss) -> String {
    let grown = r.after_kib as f64 - r.before_kib as f64;
    format!("{:+.2} KiB per session", grown / RSS_SESSIONS as f64)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub(super) fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in {path}"))
}

pub(super) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
