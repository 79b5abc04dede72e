//! `GET /metrics`: Prometheus text exposition (SPEC §5), names prefixed
//! `sessiond_`.
//!
//! HTTP traffic is measured by a middleware around everything but the
//! request-id scope: requests by method, route template (never the raw
//! path: ids would explode the series) and status, a latency histogram,
//! and the access log line from the same figures. What the use cases did
//! (sessions created and revoked, refresh reuse, lockouts, tracking events)
//! and the database pool are read at scrape time from the services' own
//! counters, so the domain crates need no metrics library.

use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use prometheus::{
    Counter, Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::ApiState;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pool: IntGaugeVec,
    verifications: IntCounterVec,
    /// Signing keys in use by state (next, current, retired still verifying).
    keys: IntGaugeVec,
    /// Counters mirrored from the services at scrape time, and the lock
    /// that keeps two scrapes from adding the same difference twice.
    mirrored: Mutex<Mirrored>,
}

struct Mirrored {
    sessions_created: IntCounter,
    sessions_revoked: IntCounter,
    refresh_reuse: IntCounter,
    lockouts: IntCounter,
    tracking_events: IntCounter,
    pool_checkouts: IntCounter,
    pool_wait_seconds: Counter,
    pool_timeouts: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `outcome` of `sessiond_token_verifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Forward auth answered 200.
    Verified,
    /// Forward auth refused (401, 403 or 422).
    Refused,
    /// Introspection answered `active: true`.
    Active,
    /// Introspection answered `active: false`.
    Inactive,
}

impl Verification {
    const ALL: [Self; 4] = [Self::Verified, Self::Refused, Self::Active, Self::Inactive];

    fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Refused => "refused",
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// Request latency buckets, in seconds: 100 µs (a cached token check) to
/// 2.5 s (the database timeout's neighbourhood).
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("sessiond_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "sessiond_http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new("sessiond_db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        let verifications = IntCounterVec::new(
            Opts::new(
                "sessiond_token_verifications_total",
                "Tokens checked for other services: forward auth (verified, refused) and \
                 introspection (active, inactive)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in Verification::ALL {
            verifications.with_label_values(&[outcome.as_str()]);
        }
        let keys = IntGaugeVec::new(
            Opts::new(
                "sessiond_signing_keys",
                "Signing keys this process verifies with, by state (next, current, retired)",
            ),
            &["state"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let mirrored = Mirrored {
            sessions_created: counter(
                "sessiond_sessions_created_total",
                "Device sessions opened by a login",
            ),
            sessions_revoked: counter(
                "sessiond_sessions_revoked_total",
                "Live sessions ended by logout, logout-all, deletion, deactivation, refresh reuse or token \
                 revocation",
            ),
            refresh_reuse: counter(
                "sessiond_refresh_reuse_detected_total",
                "Rotated refresh tokens presented after the grace window (the session is revoked)",
            ),
            lockouts: counter(
                "sessiond_login_lockouts_total",
                "Accounts or addresses locked by failed logins",
            ),
            tracking_events: counter(
                "sessiond_tracking_events_ingested_total",
                "Tracking events acknowledged (session steps and page visits)",
            ),
            pool_checkouts: counter(
                "sessiond_db_pool_checkouts_total",
                "Database connections handed out by the pool",
            ),
            pool_wait_seconds: Counter::new(
                "sessiond_db_pool_wait_seconds_total",
                "Time spent waiting for a database connection",
            )
            .expect("valid metric"),
            pool_timeouts: counter(
                "sessiond_db_pool_timeouts_total",
                "Requests for a database connection that got none (timeout or database unreachable)",
            ),
        };
        let m = &mirrored;
        let collectors: [Box<dyn prometheus::core::Collector>; 13] = [
            Box::new(requests.clone()),
            Box::new(keys.clone()),
            Box::new(verifications.clone()),
            Box::new(duration.clone()),
            Box::new(pool.clone()),
            Box::new(m.sessions_created.clone()),
            Box::new(m.sessions_revoked.clone()),
            Box::new(m.refresh_reuse.clone()),
            Box::new(m.lockouts.clone()),
            Box::new(m.tracking_events.clone()),
            Box::new(m.pool_checkouts.clone()),
            Box::new(m.pool_wait_seconds.clone()),
            Box::new(m.pool_timeouts.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("each metric is registered once");
        }
        Self {
            registry,
            requests,
            duration,
            pool,
            verifications,
            keys,
            mirrored: Mutex::new(mirrored),
        }
    }

    /// Counts one token checked for another service.
    pub(crate) fn verification(&self, outcome: Verification) {
        self.verifications.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts one answered request.
    fn observe(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.requests.with_label_values(&[method, route, status]).inc();
        self.duration.with_label_values(&[method, route]).observe(seconds);
    }

    /// The exposition: the services' counters brought up to date first.
    pub(crate) fn render(&self, state: &ApiState) -> String {
        let auth = state.auth.stats();
        let pool = state.database.pool();
        if let Ok(m) = self.mirrored.lock() {
            catch_up(&m.sessions_created, auth.sessions_created);
            catch_up(&m.sessions_revoked, auth.sessions_revoked);
            catch_up(&m.refresh_reuse, auth.refresh_reuse_detected);
            catch_up(&m.lockouts, auth.lockouts);
            catch_up(&m.tracking_events, state.analytics.events_ingested());
            if let Some(p) = pool {
                catch_up(&m.pool_checkouts, p.checkouts);
                catch_up(&m.pool_timeouts, p.timeouts);
                let waited = p.wait_nanos as f64 / 1e9;
                let shown = m.pool_wait_seconds.get();
                if waited > shown {
                    m.pool_wait_seconds.inc_by(waited - shown);
                }
            }
        }
        if let Some(p) = pool {
            let in_use = p.open.saturating_sub(p.idle);
            self.pool.with_label_values(&["in_use"]).set(i64::from(in_use));
            self.pool.with_label_values(&["idle"]).set(i64::from(p.idle));
            self.pool.with_label_values(&["max"]).set(i64::from(p.max));
        }
        let now = kernel::OffsetDateTime::now_utc();
        let set = state.auth.codec().keys();
        for key_state in
            [tokens::KeyState::Next, tokens::KeyState::Current, tokens::KeyState::Retired]
        {
            let n = set
                .infos()
                .filter(|k| k.state == key_state && k.verifies_until.is_none_or(|t| t > now))
                .count();
            self.keys
                .with_label_values(&[key_state.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Raises a mirrored counter to the service's count (counters only grow).
fn catch_up(counter: &IntCounter, total: u64) {
    let shown = counter.get();
    if total > shown {
        counter.inc_by(total - shown);
    }
}

/// The method as a label: the standard ones by name, anything else as
/// `OTHER` (a client must not be able to mint label values).
fn known_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The middleware: times every request, counts it under its route
/// template (`unmatched` for paths no route knows) and writes the access
/// line. It runs inside the request-id span, so the line carries the id.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (method, started) = (known_method(req.method()), Instant::now());
    let res = next.call(req).await?;
    let elapsed = started.elapsed();
    // The template, never the path: ids and query strings stay out of both
    // the series and the log.
    let route = res.request().match_pattern();
    let route = route.as_deref().unwrap_or("unmatched");
    let status = res.status();
    if let Some(state) = res.request().app_data::<actix_web::web::Data<ApiState>>() {
        state.metrics.observe(method, route, status.as_str(), elapsed.as_secs_f64());
    }
    tracing::info!(
        target: "sessiond::access",
        method,
        route,
        status = status.as_u16(),
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "answered"
    );
    Ok(res)
}

#[cfg(test)]
mod tests;
