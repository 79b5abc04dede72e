//! Device sessions of the caller (SPEC §3): `/api/sessions` and
//! `/api/v1/auth/users/me/sessions`.
//!
//! Session ids are taken from the path as raw text and judged by the use
//! case: an id that is not a UUID, one that does not exist and one of
//! another user all answer the same 404 SESSION_NOT_FOUND, with the same
//! headers and body, so that nothing tells them apart.

use actix_web::{HttpRequest, HttpResponse};

use crate::ApiState;
use crate::authn::{Authenticated, Meta, blocking};
use crate::envelope::{self, Null};
use crate::error::ApiError;
use crate::openapi::{
    EmptyEnvelope, ErrorEnvelope, SessionListEnvelope, SessionListV1Envelope,
    TerminatedCountEnvelope, TerminatedSessionEnvelope,
};
use crate::query::{QueryParams, parse_with};
use crate::routes::segment;
use crate::views::{SessionListV1Data, SessionView, TerminatedCountData, TerminatedSessionData};

// The parameter structs derive `utoipa::IntoParams` by path: the macro
// writes `<T as utoipa::IntoParams>`, which `unused_qualifications` flags
// when the trait is imported.

/// Query of the session listings.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncludeInactiveQuery {
    /// Also list sessions that were logged out, revoked, deactivated or
    /// have expired (`true`/`false` or `1`/`0`; default `false`). Deleted
    /// sessions are gone.
    include_inactive: Option<bool>,
}

impl IncludeInactiveQuery {
    /// `include_inactive`, false when absent.
    pub(crate) fn parse(q: &QueryParams) -> Result<bool, ApiError> {
        let this = parse_with(q, |q, v| Self { include_inactive: q.flag("include_inactive", v) })?;
        Ok(this.include_inactive.unwrap_or(false))
    }
}

/// Query of the delete-all operations.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExcludeCurrentQuery {
    /// Keep the session of the calling token (`true`/`false` or `1`/`0`;
    /// default `false`: the caller is logged out too).
    exclude_current: Option<bool>,
}

impl ExcludeCurrentQuery {
    /// `exclude_current`, false when absent.
    pub(crate) fn parse(q: &QueryParams) -> Result<bool, ApiError> {
        let this = parse_with(q, |q, v| Self { exclude_current: q.flag("exclude_current", v) })?;
        Ok(this.exclude_current.unwrap_or(false))
    }
}

/// The caller's sessions, judged by the use case.
async fn my_sessions(
    state: ApiState,
    p: auth::Principal,
    q: &QueryParams,
) -> Result<Vec<auth::SessionInfo>, ApiError> {
    let include_inactive = IncludeInactiveQuery::parse(q)?;
    let auth = state.auth;
    blocking(move || auth.list_sessions(&p, include_inactive)).await
}

/// Deletes all the caller's sessions (or all but the current one).
async fn delete_mine(
    state: ApiState,
    p: auth::Principal,
    meta: auth::RequestMeta,
    q: &QueryParams,
) -> Result<TerminatedCountData, ApiError> {
    let exclude_current = ExcludeCurrentQuery::parse(q)?;
    let auth = state.auth;
    let n = blocking(move || auth.delete_all_sessions(&p, exclude_current, &meta)).await?;
    Ok(TerminatedCountData { terminated_count: n })
}

/// Lists the caller's sessions, newest first.
#[utoipa::path(
    get, path = "/api/sessions", tag = "sessions", operation_id = "listSessions",
    security(("bearerAuth" = [])),
    params(IncludeInactiveQuery),
    responses(
        (status = 200, description = "The caller's sessions, newest first", body = SessionListEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `include_inactive` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn list(
    state: ApiState,
    Authenticated(p): Authenticated,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let infos = my_sessions(state, p, &q).await?;
    let views: Vec<SessionView> = infos.iter().map(SessionView::from_info).collect();
    Ok(envelope::ok("Sessions retrieved successfully", &views))
}

/// Deletes one of the caller's sessions; it is revoked at once.
#[utoipa::path(
    delete, path = "/api/sessions/{id}", tag = "sessions", operation_id = "deleteSession",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The session's id (UUID)")),
    responses(
        (status = 200, description = "The session is deleted (`data` is null)", body = EmptyEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of the caller (another user's, or an id that is not a UUID, answer the same)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn delete(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = segment(&req, "id");
    let auth = state.auth;
    blocking(move || auth.delete_session(&p, &id, &meta))
        .await
        .map_err(|e| e.for_session("delete"))?;
    Ok(envelope::ok("Session deleted successfully", &Null))
}

/// Deletes all the caller's sessions (`?exclude_current=true` keeps the
/// calling one).
#[utoipa::path(
    delete, path = "/api/sessions", tag = "sessions", operation_id = "deleteAllSessions",
    security(("bearerAuth" = [])),
    params(ExcludeCurrentQuery),
    responses(
        (status = 200, description = "The sessions are deleted; how many live ones this ended", body = TerminatedCountEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `exclude_current` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn delete_all(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let data = delete_mine(state, p, meta, &q).await?;
    Ok(envelope::ok("All sessions deleted successfully", &data))
}

/// Deactivates one of the caller's sessions without deleting it. It can
/// never be reactivated; repeating the call is a success.
#[utoipa::path(
    patch, path = "/api/sessions/{id}/deactivate", tag = "sessions", operation_id = "deactivateSession",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The session's id (UUID)")),
    responses(
        (status = 200, description = "The session is deactivated (`data` is null)", body = EmptyEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of the caller (another user's, or an id that is not a UUID, answer the same)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn deactivate(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = segment(&req, "id");
    let auth = state.auth;
    blocking(move || auth.deactivate_session(&p, &id, &meta))
        .await
        .map_err(|e| e.for_session("deactivate"))?;
    Ok(envelope::ok("Session deactivated successfully", &Null))
}

/// Lists the caller's sessions, newest first (the `/api/v1` form).
#[utoipa::path(
    get, path = "/api/v1/auth/users/me/sessions", tag = "sessions", operation_id = "listMySessionsV1",
    security(("bearerAuth" = [])),
    params(IncludeInactiveQuery),
    responses(
        (status = 200, description = "The caller's sessions and their number", body = SessionListV1Envelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `include_inactive` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn list_v1(
    state: ApiState,
    Authenticated(p): Authenticated,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let infos = my_sessions(state, p, &q).await?;
    Ok(envelope::ok("Sessions retrieved successfully", &SessionListV1Data::new(&infos)))
}

/// Terminates (deletes) one of the caller's sessions (the `/api/v1` form).
#[utoipa::path(
    delete, path = "/api/v1/auth/users/me/sessions/{id}", tag = "sessions", operation_id = "terminateMySessionV1",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "The session's id (UUID)")),
    responses(
        (status = 200, description = "The session is terminated", body = TerminatedSessionEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 404, description = "SESSION_NOT_FOUND: no such session of the caller (another user's, or an id that is not a UUID, answer the same)", body = ErrorEnvelope),
    )
)]
pub(crate) async fn terminate_v1(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = segment(&req, "id");
    let auth = state.auth;
    let info = blocking(move || auth.delete_session(&p, &id, &meta))
        .await
        .map_err(|e| e.for_session("terminate"))?;
    Ok(envelope::ok("Session terminated successfully", &TerminatedSessionData::from(&info)))
}

const ALL_TERMINATED: &str = "All sessions terminated successfully";

/// Terminates all the caller's sessions (the `/api/v1` form;
/// `?exclude_current=true` keeps the calling one).
#[utoipa::path(
    delete, path = "/api/v1/auth/users/me/sessions", tag = "sessions", operation_id = "terminateAllMySessionsV1",
    security(("bearerAuth" = [])),
    params(ExcludeCurrentQuery),
    responses(
        (status = 200, description = "The sessions are terminated; how many live ones this ended", body = TerminatedCountEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `exclude_current` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn terminate_all_v1(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let data = delete_mine(state, p, meta, &q).await?;
    Ok(envelope::ok(ALL_TERMINATED, &data))
}

/// Terminates all the caller's sessions (the `/api/v1` form's `…/sessions/all/`).
#[utoipa::path(
    delete, path = "/api/v1/auth/users/me/sessions/all", tag = "sessions", operation_id = "terminateAllMySessionsV1All",
    security(("bearerAuth" = [])),
    params(ExcludeCurrentQuery),
    responses(
        (status = 200, description = "The sessions are terminated; how many live ones this ended", body = TerminatedCountEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `exclude_current` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn terminate_all_v1_all(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    q: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let data = delete_mine(state, p, meta, &q).await?;
    Ok(envelope::ok(ALL_TERMINATED, &data))
}

#[cfg(test)]
mod tests;
