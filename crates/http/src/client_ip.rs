//! The client's address: the TCP peer, unless the peer is a configured
//! trusted proxy, in which case the address that proxy forwarded.
//!
//! `X-Forwarded-For` and `Forwarded` are written by whoever sends the
//! request, so they are believed only as far as a chain of trusted proxies
//! vouches for them: walking the list from the right (the hop nearest to
//! us), trusted proxies are skipped and the first address that is not one
//! is the client. Anything to its left was written by the client itself and
//! is ignored. The rule is nginx's `real_ip_recursive on`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::http::header::{FORWARDED, HeaderMap, X_FORWARDED_FOR};

/// One network of trusted proxies, its address already masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Net {
    fn v4(addr: Ipv4Addr, prefix: u8) -> Self {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
        Self::V4 { net: u32::from(addr) & mask, mask }
    }

    fn v6(addr: Ipv6Addr, prefix: u8) -> Self {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
        Self::V6 { net: u128::from(addr) & mask, mask }
    }

    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Self::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == net,
            (Self::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == net,
            _ => false,
        }
    }
}

/// The networks whose forwarding headers are believed (none by default).
///
/// Addresses are compared in canonical form: an IPv4-mapped IPv6 address
/// (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer)
/// is the IPv4 address, and a network written in mapped form
/// (`::ffff:10.0.0.0/104`) is the IPv4 network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

/// The IPv4-mapped range `::ffff:0:0/96`.
const MAPPED: u128 = 0xffff_0000_0000;

impl TrustedProxies {
    /// No trusted proxy: the client is always the TCP peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// The networks `(address, prefix length)`, CIDR style (`10.0.0.0/8`
    /// is `(10.0.0.0, 8)`, a single host `(addr, 32)` or `(addr, 128)`).
    /// Host bits of the address are ignored; a prefix longer than the
    /// address is taken as the full length.
    pub fn new(networks: impl IntoIterator<Item = (IpAddr, u8)>) -> Self {
        let mut nets = Vec::new();
        for (addr, prefix) in networks {
            match addr {
                IpAddr::V4(a) => nets.push(Net::v4(a, prefix)),
                IpAddr::V6(a) => {
                    let prefix = prefix.min(128);
                    let net = Net::v6(a, prefix);
                    match a.to_ipv4_mapped() {
                        // Entirely inside the mapped range: the IPv4 network.
                        Some(v4) if prefix >= 96 => nets.push(Net::v4(v4, prefix - 96)),
                        _ => {
                            // A wider network holding the whole mapped range
                            // (`::/0`, say) holds every IPv4 address too.
                            if net.contains(IpAddr::V6(Ipv6Addr::from(MAPPED))) && prefix <= 96 {
                                nets.push(Net::v4(Ipv4Addr::UNSPECIFIED, 0));
                            }
                            nets.push(net);
                        }
                    }
                }
            }
        }
        Self { nets }
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` (in any form) is in a trusted network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(ip))
    }
}

/// One entry of a forwarding list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// An address.
    Addr(IpAddr),
    /// `unknown`, an obfuscated identifier (`_hidden`), an element without
    /// `for=`, or garbage: whoever wrote it did not say who sent the
    /// request.
    Unusable,
}

/// The client address of a request that came from `peer` with `headers`,
/// `None` only when the peer is unknown. Pure, so it is tested on its own.
pub(crate) fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        // Anyone can write forwarding headers: only the peer is a fact.
        return Some(peer);
    }
    let mut hops = x_forwarded_for(headers);
    if hops.is_empty() {
        hops = forwarded(headers);
    }
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Hop::Addr(ip) => {
                let ip = ip.to_canonical();
                if !trusted.contains(ip) {
                    return Some(ip);
                }
                nearest = ip;
            }
            // What lies left of an entry a trusted hop could not vouch for
            // may be the client's own invention: stop at the last hop known.
            Hop::Unusable => return Some(nearest),
        }
    }
    // Every hop is trusted (or there was none): the leftmost is as close to
    // the client as anyone can tell.
    Some(nearest)
}

/// The entries of every `X-Forwarded-For` header, in order (leftmost
/// first); empty entries are skipped.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        match value.to_str() {
            Ok(s) => hops.extend(
                s.split(',').map(str::trim).filter(|e| !e.is_empty()).map(|e| node(unquote(e))),
            ),
            Err(_) => hops.push(Hop::Unusable),
        }
    }
    hops
}

/// The `for=` of each element of every `Forwarded` header (RFC 7239), in
/// order (leftmost first).
fn forwarded(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED) {
        let Ok(s) = value.to_str() else {
            hops.push(Hop::Unusable);
            continue;
        };
        for element in split_outside_quotes(s, ',') {
            if element.trim().is_empty() {
                continue;
            }
            let node_value = split_outside_quotes(element, ';').into_iter().find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
            });
            hops.push(node_value.map_or(Hop::Unusable, |v| node(unquote(v))));
        }
    }
    hops
}

/// `s` split at each `sep` that is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A quoted string's content (backslash escapes removed), or `s` itself.
fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let s = s.trim();
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            out.into()
        }
        Some(inner) => inner.into(),
        None => s.into(),
    }
}

/// A node identifier: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711` (the port may be obfuscated);
/// `unknown`, `_obfuscated` and anything else are unusable.
fn node(s: impl AsRef<str>) -> Hop {
    let s = s.as_ref().trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Hop::Addr(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Hop::Addr(sa.ip());
    }
    let host = if let Some(rest) = s.strip_prefix('[') {
        // `[v6]` or `[v6]:port`, whatever the port says.
        rest.split_once(']').map(|(h, _)| h)
    } else {
        // `v4:port` with an obfuscated port.
        s.split_once(':').map(|(h, _)| h).filter(|h| h.parse::<Ipv4Addr>().is_ok())
    };
    host.and_then(|h| h.parse::<IpAddr>().ok()).map_or(Hop::Unusable, Hop::Addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn nets(list: &[(&str, u8)]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|(a, p)| (ip(a), *p)))
    }

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in list {
            h.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        h
    }

    /// The client of a request from `peer` with `hs`, behind the usual
    /// proxies: 10.0.0.0/8 and 2001:db8:ffff::/48.
    fn client(peer: &str, hs: &[(&'static str, &'static str)]) -> String {
        let t = nets(&[("10.0.0.0", 8), ("2001:db8:ffff::", 48)]);
        resolve(Some(ip(peer)), &headers(hs), &t).map(|a| a.to_string()).unwrap_or_default()
    }

    const XFF: &str = "x-forwarded-for";
    const FWD: &str = "forwarded";

    #[test]
    fn networks_match_by_prefix() {
        let t = nets(&[("10.1.2.3", 8), ("192.168.1.7", 32), ("2001:db8::", 32), ("fd00::1", 128)]);
        assert!(t.contains(ip("10.200.0.1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("2001:db8:1::5")));
        assert!(!t.contains(ip("2001:db9::5")));
        assert!(t.contains(ip("fd00::1")));
        assert!(!t.contains(ip("fd00::2")));
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
        assert!(TrustedProxies::none().is_empty() && !t.is_empty());
        // Prefix 0 is everything of the family; too long a prefix is a host.
        let all4 = nets(&[("0.0.0.0", 0)]);
        assert!(all4.contains(ip("203.0.113.9")) && !all4.contains(ip("::1")));
        let host = nets(&[("10.0.0.1", 99)]);
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let t = nets(&[("10.0.0.0", 8)]);
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        let mapped = nets(&[("::ffff:10.0.0.0", 104)]);
        assert!(mapped.contains(ip("10.9.9.9")) && mapped.contains(ip("::ffff:10.9.9.9")));
        assert!(!mapped.contains(ip("11.0.0.1")));
        let all6 = nets(&[("::", 0)]);
        assert!(all6.contains(ip("2001:db8::1")) && all6.contains(ip("192.0.2.1")));
        // A peer in mapped form is reported in IPv4 form.
        assert_eq!(client("::ffff:192.0.2.7", &[(XFF, "198.51.100.1")]), "192.0.2.7");
        assert_eq!(client("::ffff:10.0.0.2", &[(XFF, "::ffff:198.51.100.1")]), "198.51.100.1");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_headers_say() {
        let hs = [(XFF, "198.51.100.1"), (FWD, "for=198.51.100.2")];
        assert_eq!(client("203.0.113.5", &hs), "203.0.113.5");
        assert_eq!(client("2001:db8:1::1", &hs), "2001:db8:1::1");
        let none = TrustedProxies::none();
        let got = resolve(Some(ip("10.0.0.1")), &headers(&hs), &none);
        assert_eq!(got, Some(ip("10.0.0.1")));
        assert_eq!(resolve(None, &headers(&hs), &none), None);
    }

    #[test]
    fn a_trusted_peer_forwards_the_first_untrusted_address_from_the_right() {
        assert_eq!(client("10.0.0.1", &[(XFF, "198.51.100.1")]), "198.51.100.1");
        // The client prepended a lie; the proxy appended the truth.
        assert_eq!(client("10.0.0.1", &[(XFF, "1.1.1.1, 198.51.100.1")]), "198.51.100.1");
        // Trusted hops are skipped.
        assert_eq!(client("10.0.0.1", &[(XFF, "1.1.1.1, 198.51.100.1, 10.0.0.9")]), "198.51.100.1");
        assert_eq!(
            client("10.0.0.1", &[(XFF, "1.1.1.1,198.51.100.1,10.0.0.9 ,10.3.3.3")]),
            "198.51.100.1"
        );
        // Several header instances are one list, in order.
        let hs = [(XFF, "1.1.1.1, 198.51.100.1"), (XFF, "10.0.0.9")];
        assert_eq!(client("10.0.0.1", &hs), "198.51.100.1");
        let hs = [(XFF, "10.0.0.9"), (XFF, "198.51.100.1")];
        assert_eq!(client("10.0.0.1", &hs), "198.51.100.1");
        // IPv6, bare or bracketed, with ports.
        assert_eq!(client("2001:db8:ffff::1", &[(XFF, "2001:db8:1::7")]), "2001:db8:1::7");
        assert_eq!(client("10.0.0.1", &[(XFF, "[2001:db8:1::7]:443")]), "2001:db8:1::7");
        assert_eq!(client("10.0.0.1", &[(XFF, "198.51.100.1:5555")]), "198.51.100.1");
        assert_eq!(client("10.0.0.1", &[(XFF, "\"198.51.100.1\"")]), "198.51.100.1");
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client() {
        assert_eq!(client("10.0.0.1", &[(XFF, "10.0.0.7, 10.0.0.8")]), "10.0.0.7");
        assert_eq!(client("10.0.0.1", &[(XFF, "10.0.0.7")]), "10.0.0.7");
    }

    #[test]
    fn without_a_usable_header_the_peer_is_the_client() {
        assert_eq!(client("10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(XFF, "")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(XFF, " , ,")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(XFF, "garbage")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(XFF, "unknown")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=unknown")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=_hidden")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "proto=https;by=10.0.0.1")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "")]), "10.0.0.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=\"[2001:db8::1\"")]), "10.0.0.1");
    }

    #[test]
    fn an_unusable_entry_stops_the_walk_at_the_last_trusted_hop() {
        // Whatever is left of the garbage may be the client's own.
        assert_eq!(client("10.0.0.1", &[(XFF, "198.51.100.1, garbage, 10.0.0.9")]), "10.0.0.9");
        assert_eq!(client("10.0.0.1", &[(XFF, "198.51.100.1, unknown")]), "10.0.0.1");
        let hs = [(FWD, "for=198.51.100.1, for=_gateway, for=10.0.0.9")];
        assert_eq!(client("10.0.0.1", &hs), "10.0.0.9");
        // An element without `for` says nothing about who sent it.
        let hs = [(FWD, "for=198.51.100.1, proto=https")];
        assert_eq!(client("10.0.0.1", &hs), "10.0.0.1");
    }

    #[test]
    fn forwarded_is_used_when_x_forwarded_for_is_absent() {
        assert_eq!(client("10.0.0.1", &[(FWD, "for=198.51.100.1")]), "198.51.100.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "For=198.51.100.1;proto=https")]), "198.51.100.1");
        assert_eq!(
            client("10.0.0.1", &[(FWD, "for=\"[2001:db8::1]:4711\";proto=http;by=10.0.0.1")]),
            "2001:db8::1"
        );
        assert_eq!(client("10.0.0.1", &[(FWD, "for=\"[2001:db8::1]\"")]), "2001:db8::1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=\"198.51.100.1:4711\"")]), "198.51.100.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=\"198.51.100.1:_port\"")]), "198.51.100.1");
        assert_eq!(client("10.0.0.1", &[(FWD, "for=\"[2001:db8::1]:_p\"")]), "2001:db8::1");
        assert_eq!(
            client("10.0.0.1", &[(FWD, "for=1.1.1.1, for=198.51.100.1;by=x, for=10.0.0.5")]),
            "198.51.100.1"
        );
        // Quoted commas and semicolons do not split.
        let hs = [(FWD, "for=198.51.100.1;ext=\"a,b;c\\\"d\", for=10.0.0.5")];
        assert_eq!(client("10.0.0.1", &hs), "198.51.100.1");
        // Several instances are one list.
        let hs = [(FWD, "for=1.1.1.1"), (FWD, "for=198.51.100.1")];
        assert_eq!(client("10.0.0.1", &hs), "198.51.100.1");
        // X-Forwarded-For wins when both are there.
        let hs = [(FWD, "for=198.51.100.2"), (XFF, "198.51.100.1")];
        assert_eq!(client("10.0.0.1", &hs), "198.51.100.1");
        // An untrusted peer's Forwarded is ignored too.
        assert_eq!(client("203.0.113.5", &[(FWD, "for=198.51.100.1")]), "203.0.113.5");
    }

    #[test]
    fn headers_that_are_not_text_are_unusable() {
        let mut h = HeaderMap::new();
        let opaque =
            HeaderValue::from_bytes(b"\xff198.51.100.1").unwrap_or(HeaderValue::from_static(""));
        h.append(X_FORWARDED_FOR, opaque);
        let t = nets(&[("10.0.0.0", 8)]);
        assert_eq!(resolve(Some(ip("10.0.0.1")), &h, &t), Some(ip("10.0.0.1")));
    }

    #[test]
    fn node_identifiers() {
        assert_eq!(node("192.0.2.1"), Hop::Addr(ip("192.0.2.1")));
        assert_eq!(node(" 2001:db8::1 "), Hop::Addr(ip("2001:db8::1")));
        assert_eq!(node("[2001:db8::1]:80"), Hop::Addr(ip("2001:db8::1")));
        for bad in
            ["", "unknown", "UNKNOWN", "_x", "300.1.1.1", "[nope]", "[::1", "fe80::1%eth0", "a:b"]
        {
            assert_eq!(node(bad), Hop::Unusable, "{bad}");
        }
        assert_eq!(unquote("\"a\\\"b\""), "a\"b");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(split_outside_quotes("a,\"b,c\",d", ','), vec!["a", "\"b,c\"", "d"]);
    }
}

#[cfg(test)]
mod app_tests;
