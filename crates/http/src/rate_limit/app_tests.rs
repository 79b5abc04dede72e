//! Rate limits over the whole app: per address before routing, per user
//! after authentication, logout-all on its own limit, headers on every
//! limited answer.

use crate::test_support::*;

fn limited(f: &Fixture, ip_per_minute: u32, user_per_hour: u32, logout_all: u32) -> ApiState {
    let config = RateLimitConfig {
        enabled: true,
        ip_per_minute,
        user_per_hour,
        logout_all_per_minute: logout_all,
    };
    ApiState { rate_limits: Arc::new(RateLimits::new(config)), ..f.state.clone() }
}

fn from(req: atest::TestRequest, peer: [u8; 4]) -> atest::TestRequest {
    req.peer_addr(std::net::SocketAddr::from((peer, 40000)))
}

fn header_u64(h: &header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

#[actix_web::test]
async fn an_address_gets_its_quota_then_429_with_retry_after() {
    let f = fixture();
    let state = limited(&f, 3, 1000, 60);
    for remaining in [2, 1, 0] {
        let (status, h, _) = send(&state, from(get("/api/health"), [192, 0, 2, 1])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_u64(&h, "x-ratelimit-limit"), Some(3));
        assert_eq!(header_u64(&h, "x-ratelimit-remaining"), Some(remaining));
        let reset = header_u64(&h, "x-ratelimit-reset").unwrap_or_default();
        assert!((1..=60).contains(&reset), "reset {reset}");
    }
    let (status, h, body) = send(&state, from(post("/api/auth/login"), [192, 0, 2, 1])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&body), "RATE_LIMITED");
    assert_eq!(body["success"], false);
    let retry = header_u64(&h, "retry-after").unwrap_or_default();
    assert!((1..=20).contains(&retry), "one request is earned back in 20 s: {retry}");
    assert_eq!(header_u64(&h, "x-ratelimit-remaining"), Some(0));
    assert!(h.contains_key("x-request-id"));

    // Other addresses, and the probes, are not affected.
    let (status, _, _) = send(&state, from(get("/api/health"), [192, 0, 2, 2])).await;
    assert_eq!(status, StatusCode::OK);
    for probe in ["/health/live", "/health/ready"] {
        let (status, h, _) = send(&state, from(get(probe), [192, 0, 2, 1])).await;
        assert_eq!(status, StatusCode::OK, "{probe}");
        assert!(!h.contains_key("x-ratelimit-limit"), "{probe} is not limited");
    }
}

#[actix_web::test]
async fn switched_off_there_are_no_limits_and_no_headers() {
    let f = fixture();
    for _ in 0..5 {
        let (status, h, _) = send(&f.state, from(get("/api/health"), [192, 0, 2, 1])).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!h.contains_key("x-ratelimit-limit"));
    }
}

#[actix_web::test]
async fn a_user_gets_its_quota_whatever_the_address() {
    let f = fixture();
    let state = limited(&f, 100, 2, 60);
    let info = |peer| bearer(from(post("/api/auth/token-info"), peer), &f.user_token);
    for (peer, remaining) in [([192, 0, 2, 1], 1), ([192, 0, 2, 2], 0)] {
        let (status, h, body) = send(&state, info(peer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The tighter of the two limits is the one shown.
        assert_eq!(header_u64(&h, "x-ratelimit-limit"), Some(2));
        assert_eq!(header_u64(&h, "x-ratelimit-remaining"), Some(remaining));
    }
    let (status, h, body) = send(&state, info([192, 0, 2, 3])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "RATE_LIMITED");
    assert!(header_u64(&h, "retry-after").is_some_and(|s| s >= 1));

    // Another user has its own quota.
    let other = bearer(from(post("/api/auth/token-info"), [192, 0, 2, 3]), &f.admin_token);
    assert_eq!(send(&state, other).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn logout_all_has_its_own_tighter_limit() {
    let f = fixture();
    let state = limited(&f, 100, 1000, 1);
    let call = |path: &str| bearer(from(post(path), [192, 0, 2, 1]), &f.user_token);
    let (status, h, body) = send(&state, call("/api/auth/logout-all")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header_u64(&h, "x-ratelimit-limit"), Some(1));
    // Both paths share the limit.
    let (status, h, body) = send(&state, call("/api/v1/auth/logout-all")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(header_u64(&h, "retry-after").is_some_and(|s| (1..=60).contains(&s)));
    // Other requests of the user go on.
    assert_eq!(send(&state, call("/api/auth/token-info")).await.0, StatusCode::OK);
}
