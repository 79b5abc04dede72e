//! The client address as the whole app sees it.

use crate::test_support::*;

#[test]
fn the_client_address_honours_only_trusted_proxies() {
    let f = fixture();
    let req = |state: &ApiState, peer: &str| {
        atest::TestRequest::default()
            .peer_addr(peer.parse().unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0))))
            .insert_header(("X-Forwarded-For", "198.51.100.7, 10.1.1.1"))
            .app_data(web::Data::new(state.clone()))
            .to_http_request()
    };
    // By default nothing is trusted: the peer, whatever the headers say.
    let r = req(&f.state, "10.0.0.1:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("10.0.0.1"));
    assert_eq!(authn::meta(&r).ip.as_deref(), Some("10.0.0.1"));
    let r = req(&f.state, "[::ffff:10.0.0.1]:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("10.0.0.1"));
    let trusting = ApiState {
        trusted_proxies: TrustedProxies::new([(
            "10.0.0.0".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            8,
        )]),
        ..f.state.clone()
    };
    let r = req(&trusting, "10.0.0.1:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("198.51.100.7"));
    let r = req(&trusting, "[::ffff:10.0.0.1]:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("198.51.100.7"));
    let r = req(&trusting, "203.0.113.9:5000");
    assert_eq!(authn::client_ip(&r).as_deref(), Some("203.0.113.9"));
}
