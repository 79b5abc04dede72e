//! Token-info on one instance against several on one database.

use super::*;

/// Token-info on `first` alone, then spread over it and [`INSTANCES`] − 1
/// more servers on the same database (started for this, stopped after).
pub(super) fn instances(
    ctx: &Context<'_>,
    url: &str,
    first: &Server,
    token: &str,
) -> Result<Scaling, String> {
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
