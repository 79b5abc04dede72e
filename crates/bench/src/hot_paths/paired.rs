//! Ratios to the bare endpoint, measured in paired rounds, and token-info
//! signed with other algorithms.

use super::*;

/// `(rounds 0.91, 0.88, 0.93)`.
pub(super) fn rounds_text(rounds: &[f64]) -> String {
    let each: Vec<String> = rounds.iter().map(|x| format!("{x:.2}")).collect();
    format!("(rounds {})", each.join(", "))
}

/// Token-info against the bare endpoint, paired, on a server signing with
/// `alg` (started with `env`) on a fresh database of the run's kind.
pub(super) fn token_info_with(
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
pub(super) fn token_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

/// [`RATIO_ROUNDS`] rounds of the bare endpoint then `requests`, each
/// for `--duration` after `--warmup`.
pub(super) fn paired_rounds(
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

pub(super) fn ratio_text(
    endpoint: Endpoint,
    o: &Outcome,
    ratio: Option<f64>,
    argon: &Argon2Bound,
) -> String {
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
