//! The audit trail of security events (SPEC §3).

use actix_web::HttpResponse;
use auth::AuditRequest;

use crate::ApiState;
use crate::authn::{Authenticated, blocking};
use crate::envelope;
use crate::error::ApiError;
use crate::openapi::{AuditPageEnvelope, ErrorEnvelope};
use crate::query::{QueryParams, parse_with};
use crate::views::AuditPageData;

/// Filters and paging of an audit listing.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQueryParams {
    /// Only this action.
    #[param(schema_with = crate::views::audit_action_schema)]
    action: Option<String>,
    /// Only events at or after this instant (RFC 3339 with an offset).
    #[param(example = "2024-04-05T00:00:00Z", format = DateTime)]
    from: Option<String>,
    /// Only events before this instant (RFC 3339 with an offset).
    #[param(example = "2024-04-06T00:00:00Z", format = DateTime)]
    to: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this user's events (the user's `_id`). Under `/api/audit/me`
    /// only the caller's own id is allowed.
    user_id: Option<String>,
}

impl AuditQueryParams {
    fn parse(q: &QueryParams) -> Result<AuditRequest, ApiError> {
        let p = parse_with(q, |q, v| Self {
            action: q.text("action", v),
            from: q.text("from", v),
            to: q.text("to", v),
            limit: q.number("limit", v),
            cursor: q.text("cursor", v),
            user_id: q.text("user_id", v),
        })?;
        Ok(AuditRequest {
            action: p.action,
            from: p.from,
            to: p.to,
            limit: p.limit,
            cursor: p.cursor,
            user_id: p.user_id,
        })
    }
}

async fn page(
    state: ApiState,
    p: auth::Principal,
    q: &QueryParams,
    everyone: bool,
) -> Result<HttpResponse, ApiError> {
    // A non-admin learns nothing about the parameters of an admin listing.
    if everyone && !p.is_admin() {
        return Err(ApiError::forbidden("Admin role required"));
    }
    let req = AuditQueryParams::parse(q)?;
    let auth = state.auth;
    let page = blocking(move || auth.audit_events(&p, everyone, &req)).await?;
    Ok(envelope::ok("Audit events retrieved successfully", &AuditPageData::from(&page)))
}

/// The caller's own security events, newest first.
#[utoipa::path(
    get, path = "/api/audit/me", tag = "audit", operation_id = "listMyAuditEvents",
    security(("bearerAuth" = [])),
    params(AuditQueryParams),
    responses(
        (status = 200, description = "A page of the caller's events", body = AuditPageEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: `user_id` names another user", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a filter, `limit` or `cursor` is invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn mine(
    state: ApiState,
    Authenticated(p): Authenticated,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    page(state, p, &q, false).await
}

/// Everyone's security events, newest first (admin only).
#[utoipa::path(
    get, path = "/api/audit", tag = "audit", operation_id = "listAuditEvents",
    security(("bearerAuth" = [])),
    params(AuditQueryParams),
    responses(
        (status = 200, description = "A page of events", body = AuditPageEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: a filter, `limit`, `cursor` or `user_id` is invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn everyone(
    state: ApiState,
    Authenticated(p): Authenticated,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    page(state, p, &q, true).await
}

#[cfg(test)]
mod tests;
