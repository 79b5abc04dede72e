//! HTTP adapter of sessiond (package `sessiond-http`, library `http_api`, so
//! that it does not shadow the `http` crate): the REST API on actix-web.
//!
//! Handlers are thin: parse the request, run a use case of [`auth`] or
//! [`analytics`] on the blocking pool, wrap the result in the envelope of SPEC §1. Every answer,
//! errors from actix itself included, is an envelope carrying the request id
//! that `X-Request-Id` repeats. The crate knows the use cases and ports,
//! never the database adapter.
//!
//! ```no_run
//! # fn wire(state: http_api::ApiState) -> std::io::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:8000")?;
//! let server = http_api::server(state, listener, 2, std::time::Duration::from_secs(10))?;
//! # drop(server); Ok(()) }
//! ```

mod authn;
mod body;
mod client_ip;
mod envelope;
pub mod error;
mod metrics;
mod openapi;
mod query;
mod rate_limit;
mod request_id;
mod routes;
mod token_endpoints;
mod views;

pub use client_ip::TrustedProxies;
pub use metrics::Metrics;
pub use rate_limit::{RateLimitConfig, RateLimits};
pub use token_endpoints::{IntrospectionClients, TokenEndpoints};

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{NormalizePath, from_fn};
use actix_web::{App, FromRequest, HttpRequest, HttpServer, web};

use crate::error::ApiError;

/// Probes the database: `/health/ready` asks it whether the database
/// answers and takes writes (on the blocking pool) and answers 503 when it
/// does not; `/metrics` shows its pool.
pub trait DatabaseProbe: Send + Sync {
    /// `Ok` when the database answers and takes writes.
    fn check(&self) -> anyhow::Result<()>;

    /// The database pool, for `/metrics` (`None`: not shown).
    fn pool(&self) -> Option<kernel::PoolStats> {
        None
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The authentication use cases.
    pub auth: Arc<auth::AuthService>,
    /// The usage-analytics use cases (usage tracking).
    pub analytics: Arc<analytics::AnalyticsService>,
    /// The database probe behind `/health/ready`.
    pub database: Arc<dyn DatabaseProbe>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` are believed; with
    /// none, the client address is always the TCP peer.
    pub trusted_proxies: TrustedProxies,
    /// Request rate limits (SPEC §5).
    pub rate_limits: Arc<RateLimits>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Forward auth's cookie and the introspection clients (SPEC §6).
    pub token_endpoints: Arc<TokenEndpoints>,
}

impl FromRequest for ApiState {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authn::state(req).map(|data| data.get_ref().clone()))
    }
}

/// The application: routes, envelopes for every error, request ids and
/// trailing-slash normalisation.
pub(crate) fn app(
    state: web::Data<ApiState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(
            web::PathConfig::default().error_handler(|_, _| ApiError::route_not_found().into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|e, _| query::query_error(&e).into()))
        .configure(routes::configure)
        .default_service(web::to(routes::not_found))
        // Outermost last: the request id scope covers everything (the
        // access line included), every answer is measured, paths are
        // normalised before routing, and a refused request costs no
        // routing at all.
        .wrap(from_fn(rate_limit::middleware))
        .wrap(NormalizePath::trim())
        .wrap(from_fn(metrics::middleware))
        .wrap(from_fn(request_id::middleware))
}

/// The HTTP server, serving on `listener` with `workers` workers; it binds
/// nothing itself. Await the returned [`actix_web::dev::Server`] to run it.
/// On SIGTERM or SIGINT it stops accepting at once and gives requests in
/// flight up to `shutdown_timeout` to finish before the future resolves.
pub fn server(
    state: ApiState,
    listener: std::net::TcpListener,
    workers: usize,
    shutdown_timeout: std::time::Duration,
) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || app(state.clone()))
        .workers(workers.max(1))
        .shutdown_timeout(shutdown_timeout.as_secs())
        // Answers are small and written at once: Nagle's algorithm would
        // only hold them back waiting for the client's delayed ACK.
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
    Ok(server)
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document()
}

/// The OpenAPI document as pretty-printed JSON, the same bytes on every
/// call (the committed `openapi/openapi.json` is this).
pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    json.push('\n');
    json
}

#[cfg(test)]
mod test_support;
