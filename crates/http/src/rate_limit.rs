//! Request rate limits (SPEC §5): per client address, per user, and for
//! logout-all, with `X-RateLimit-*` headers on every limited response and
//! 429 RATE_LIMITED with `Retry-After` past the limit.
//!
//! The limits are GCRA buckets from `governor` (a well-kept crate; writing
//! a correct, lock-free keyed limiter by hand is not worth it): a limit of
//! 100 per minute lets a burst of 100 through and then one every 0.6 s,
//! rather than a fixed window that allows 200 across a window's edge.
//! `X-RateLimit-Reset` is the seconds until the whole quota is back.
//!
//! What is limited: `/` and everything under `/api/` by client address
//! (SPEC §3's trusted-proxy rule), before routing or authentication;
//! authenticated requests also by user, once the token is verified, and
//! logout-all by user on its own tighter limit. Probes and tooling
//! (`/health/*`, `/metrics`, `/docs`, `/api-docs/*`) are never limited:
//! a load balancer's health check must not be refused. The counters live
//! in each process (several instances each apply the limits).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use kernel::Uuid;

use crate::error::ApiError;

/// The limits (SPEC §5 defaults: 100 per minute per address, 1000 per hour
/// per user, 60 logout-all per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Off switch (for benchmarks).
    pub enabled: bool,
    /// Requests per minute per client address.
    pub ip_per_minute: u32,
    /// Authenticated requests per hour per user.
    pub user_per_hour: u32,
    /// Logout-all calls per minute per user.
    pub logout_all_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { enabled: true, ip_per_minute: 100, user_per_hour: 1000, logout_all_per_minute: 60 }
    }
}

impl RateLimitConfig {
    /// No limits at all.
    pub fn off() -> Self {
        Self { enabled: false, ..Self::default() }
    }
}

/// The live limiters of one process.
pub struct RateLimits {
    ip: Option<Limiter<IpAddr>>,
    user: Option<Limiter<Uuid>>,
    logout_all: Option<Limiter<Uuid>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("enabled", &self.ip.is_some()).finish()
    }
}

impl RateLimits {
    /// Limiters for `config` (none when it is off; a limit of 0 is taken
    /// as 1).
    pub fn new(config: RateLimitConfig) -> Self {
        let on = config.enabled;
        Self {
            ip: on.then(|| Limiter::new(config.ip_per_minute, MINUTE)),
            user: on.then(|| Limiter::new(config.user_per_hour, HOUR)),
            logout_all: on.then(|| Limiter::new(config.logout_all_per_minute, MINUTE)),
        }
    }

    /// Forgets keys whose bucket is full again, so memory follows the
    /// clients of the last hour, not of all time. Call it now and then.
    pub fn housekeep(&self) {
        if let Some(l) = &self.ip {
            l.housekeep();
        }
        if let Some(l) = &self.user {
            l.housekeep();
        }
        if let Some(l) = &self.logout_all {
            l.housekeep();
        }
    }

    /// Counts a request on a limited path against its client address;
    /// the standing is kept for the response headers. The 429 answer,
    /// headers included, when the address is over its limit.
    fn check_address(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let (limiter, ip) = self.ip.as_ref().zip(crate::authn::client_addr(req))?;
        let standing = limiter.check(&ip);
        record(&mut req.extensions_mut(), standing);
        let mut res = standing.refusal().err()?.error_response();
        standing.write(res.headers_mut());
        Some(res)
    }

    /// Counts an authenticated request of `user` on `req` (and a
    /// logout-all against its own limit); the standing is kept for the
    /// response headers.
    pub(crate) fn check_user(&self, req: &HttpRequest, user: Uuid) -> Result<(), ApiError> {
        let Some(per_user) = &self.user else { return Ok(()) };
        let logout_all = req.path().ends_with("/auth/logout-all");
        let limiters = [Some(per_user), self.logout_all.as_ref().filter(|_| logout_all)];
        for limiter in limiters.into_iter().flatten() {
            let standing = limiter.check(&user);
            record(&mut req.extensions_mut(), standing);
            standing.refusal()?;
        }
        Ok(())
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// One keyed limit.
struct Limiter<K: Hash + Eq + Clone> {
    inner: RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>,
    limit: u32,
    /// Time to earn back one request.
    interval: Duration,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(limit: u32, per: Duration) -> Self {
        let limit = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
        let interval = per / limit.get();
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(limit);
        Self {
            inner: RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
            limit: limit.get(),
            interval,
        }
    }

    fn check(&self, key: &K) -> Standing {
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(self.limit);
                let refill = self.interval * (self.limit - remaining);
                Standing { limit: self.limit, remaining, reset: secs(refill), retry_after: None }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.inner.clock().now());
                let refill = wait + self.interval * (self.limit - 1);
                Standing {
                    limit: self.limit,
                    remaining: 0,
                    reset: secs(refill),
                    retry_after: Some(secs(wait)),
                }
            }
        }
    }

    fn housekeep(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Whole seconds, rounded up, at least 1.
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1).try_into().unwrap_or(u64::MAX)
}

/// Where a request stands against one limit: the `X-RateLimit-*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    limit: u32,
    remaining: u32,
    reset: u64,
    /// Set when the request is refused.
    retry_after: Option<u64>,
}

impl Standing {
    fn refusal(self) -> Result<(), ApiError> {
        match self.retry_after {
            None => Ok(()),
            Some(secs) => Err(ApiError::rate_limited(
                format!("Rate limit of {} requests exceeded; retry in {secs} seconds", self.limit),
                secs,
            )),
        }
    }

    fn write(self, headers: &mut HeaderMap) {
        const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(self.reset));
    }
}

/// Keeps the tightest standing of a request (fewest remaining; a refusal
/// beats everything) in its extensions.
fn record(ext: &mut actix_web::dev::Extensions, standing: Standing) {
    let tighter = match ext.get::<Standing>() {
        None => true,
        Some(old) => {
            (standing.retry_after.is_some(), std::cmp::Reverse(standing.remaining))
                > (old.retry_after.is_some(), std::cmp::Reverse(old.remaining))
        }
    };
    if tighter {
        ext.insert(standing);
    }
}

/// Whether `path` counts against the limits. Forward auth does not: every
/// request a gateway passes on is asked about from the gateway's own
/// address, so a per-address limit would throttle all its users as one,
/// and a per-user limit would cap how much a user may browse; the
/// gateway is the place to limit those requests. Guessing tokens there
/// gains nothing (each is a signature check, no database round trip).
pub(crate) fn limited(path: &str) -> bool {
    let forward_auth = path.trim_end_matches('/') == "/api/auth/verify";
    (path == "/" || path == "/api" || path.starts_with("/api/")) && !forward_auth
}

/// The middleware: the per-address limit before anything else, and the
/// headers of the tightest limit on the way out.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = match req.app_data::<actix_web::web::Data<crate::ApiState>>() {
        Some(state) if limited(req.path()) => state.rate_limits.check_address(req.request()),
        _ => None,
    };
    if let Some(res) = refused {
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    let standing = res.request().extensions().get::<Standing>().copied();
    if let Some(s) = standing {
        s.write(res.headers_mut());
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_then_refusals() {
        let l = Limiter::new(3, MINUTE);
        let seen: Vec<_> = (0..4).map(|_| l.check(&1_u8)).collect();
        assert_eq!(seen.iter().map(|s| s.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert_eq!(seen[0].reset, 20, "one request takes 20 s to earn back");
        assert_eq!(seen[2].reset, 60);
        assert!(seen[..3].iter().all(|s| s.retry_after.is_none()));
        let refused = seen[3];
        assert!(matches!(refused.retry_after, Some(19..=20)), "{refused:?}");
        assert_eq!(refused.refusal().map_err(|e| e.retry_after), Err(refused.retry_after));
        // Keys are independent.
        assert_eq!(l.check(&2_u8).remaining, 2);
    }

    #[test]
    fn a_limit_of_zero_is_one() {
        let l = Limiter::new(0, MINUTE);
        assert!(l.check(&()).retry_after.is_none());
        assert!(l.check(&()).retry_after.is_some());
    }

    #[test]
    fn the_tightest_standing_wins() {
        let mut ext = actix_web::dev::Extensions::new();
        let s = |remaining, retry_after| Standing { limit: 9, remaining, reset: 1, retry_after };
        record(&mut ext, s(5, None));
        record(&mut ext, s(7, None));
        assert_eq!(ext.get::<Standing>().map(|s| s.remaining), Some(5));
        record(&mut ext, s(0, Some(3)));
        record(&mut ext, s(1, None));
        assert_eq!(ext.get::<Standing>().and_then(|s| s.retry_after), Some(3));
    }

    #[test]
    fn probes_and_docs_are_not_limited() {
        for path in ["/", "/api", "/api/auth/login", "/api/health", "/api/pages/track"] {
            assert!(limited(path), "{path}");
        }
        for path in [
            "/health/live",
            "/health/ready",
            "/metrics",
            "/docs",
            "/api-docs/openapi.json",
            "/api/auth/verify",
            "/api/auth/verify/",
            "/oauth/introspect",
        ] {
            assert!(!limited(path), "{path}");
        }
    }
}

#[cfg(test)]
mod app_tests;
