//! Liveness, readiness and the clients' health checks.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::body::Body;
use crate::envelope::{self, Null};
use crate::error::ApiError;
use crate::openapi::{EmptyEnvelope, ErrorEnvelope};

/// The body clients send to health checks; `app` is accepted and ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct AppRequest {
    /// An application name.
    #[schema(example = "my_app")]
    pub(crate) app: Option<String>,
}

async fn healthy(body: Body, message: &str) -> Result<HttpResponse, ApiError> {
    body.json_or_empty::<AppRequest>()?;
    Ok(envelope::ok(message, &Null))
}

const RUNNING: &str = "Session Server is running";
const API_HEALTHY: &str = "API is healthy";

/// Whether the server is running.
#[utoipa::path(
    get, path = "/", tag = "health", operation_id = "getRoot",
    responses((status = 200, description = "The server is running", body = EmptyEnvelope))
)]
pub(crate) async fn root(body: Body) -> Result<HttpResponse, ApiError> {
    healthy(body, RUNNING).await
}

/// Whether the server is running (the POST form usage-tracking clients send).
#[utoipa::path(
    post, path = "/", tag = "health", operation_id = "postRoot",
    request_body(content = Option<AppRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "The server is running", body = EmptyEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 422, description = "The body is not a JSON object", body = ErrorEnvelope),
    )
)]
pub(crate) async fn root_post(body: Body) -> Result<HttpResponse, ApiError> {
    healthy(body, RUNNING).await
}

/// Whether the API is up.
#[utoipa::path(
    get, path = "/api/health", tag = "health", operation_id = "getApiHealth",
    responses((status = 200, description = "The API is up", body = EmptyEnvelope))
)]
pub(crate) async fn api_health(body: Body) -> Result<HttpResponse, ApiError> {
    healthy(body, API_HEALTHY).await
}

/// Whether the API is up (the POST form usage-tracking clients send).
#[utoipa::path(
    post, path = "/api/health", tag = "health", operation_id = "postApiHealth",
    request_body(content = Option<AppRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "The API is up", body = EmptyEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 422, description = "The body is not a JSON object", body = ErrorEnvelope),
    )
)]
pub(crate) async fn api_health_post(body: Body) -> Result<HttpResponse, ApiError> {
    healthy(body, API_HEALTHY).await
}

/// Whether the authentication service is up (no token needed).
#[utoipa::path(
    post, path = "/api/auth/health", tag = "health", operation_id = "authHealth",
    request_body(content = Option<AppRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "The authentication service is up", body = EmptyEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 422, description = "The body is not a JSON object", body = ErrorEnvelope),
    )
)]
pub(crate) async fn auth_health(body: Body) -> Result<HttpResponse, ApiError> {
    healthy(body, "Authentication service is healthy").await
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/health/live", tag = "health", operation_id = "getLiveness",
    responses((status = 200, description = "The process is alive", body = EmptyEnvelope))
)]
pub(crate) async fn live() -> HttpResponse {
    envelope::ok("OK", &Null)
}

/// Readiness: the database can be reached and takes writes (a database
/// that only reads, such as SQLite on a full disk, is not ready).
#[utoipa::path(
    get, path = "/health/ready", tag = "health", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready to serve", body = EmptyEnvelope),
        (status = 503, description = "The database cannot be reached or refuses writes", body = ErrorEnvelope),
    )
)]
pub(crate) async fn ready(state: ApiState) -> Result<HttpResponse, ApiError> {
    let database = state.database.clone();
    match web::block(move || database.check()).await? {
        Ok(()) => Ok(envelope::ok("Ready", &Null)),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "readiness check failed");
            Err(ApiError::unavailable("The database cannot be reached or refuses writes"))
        }
    }
}

/// Prometheus metrics, text exposition format 0.0.4.
#[utoipa::path(
    get, path = "/metrics", tag = "health", operation_id = "getMetrics",
    responses(
        (status = 200, description = "Metrics in Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
    )
)]
pub(crate) async fn metrics(state: ApiState) -> HttpResponse {
    let body = state.metrics.render(&state);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

#[cfg(test)]
mod tests;
