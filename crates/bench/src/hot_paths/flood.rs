//! Token-info while logins flood the same server.

use super::*;

/// [`FLOOD_ROUNDS`] rounds of: token-info alone on `--connections`
/// connections, then token-info again while [`FLOOD_CONNECTIONS`] more
/// post logins as fast as the server answers, in the same window; the
/// round with the median p99 ratio is kept.
pub(super) fn login_flood(ctx: &Context<'_>, addr: SocketAddr, token: &str) -> Flood {
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
