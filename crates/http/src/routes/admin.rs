//! Administration of accounts and of any user's device sessions.
//!
//! Every operation refuses non-admins (403) before it looks at anything
//! else, so a non-admin learns nothing about users, sessions or
//! parameters.

use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, Meta, blocking};
use crate::body::Body;
use crate::envelope::{self, Null};
use crate::error::ApiError;
use crate::openapi::{
    EmptyEnvelope, ErrorEnvelope, SessionEnvelope, SessionListEnvelope, TerminatedCountEnvelope,
    UserEnvelope,
};
use crate::query::QueryParams;
use crate::routes::segment;
use crate::routes::sessions::IncludeInactiveQuery;
use crate::views::{SessionView, TerminatedCountData, UserView};

fn require_admin(p: &auth::Principal) -> Result<(), ApiError> {
    if p.is_admin() { Ok(()) } else { Err(ApiError::forbidden("Admin role required")) }
}

/// A change of an account; absent (or null) fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UpdateUserRequest {
    /// `active` or `suspended`. Suspending ends every session of the user.
    #[schema(example = "suspended")]
    status: Option<String>,
    /// A role name: 1–32 characters of `[a-z0-9_-]`; `admin` has the admin powers.
    #[schema(example = "admin")]
    role: Option<String>,
    /// A new password, under the registration rules (8–1024 characters,
    /// no control or format character). Ends every session of the user in
    /// the same commit; audited as `password_change`.
    #[schema(example = "staple battery horse correct", min_length = 8, max_length = 1024)]
    password: Option<String>,
}

/// Suspends or reinstates an account, changes its role, or resets its
/// password (admin only).
///
/// The last active admin cannot be demoted or suspended (409 LAST_ADMIN):
/// make another user an admin first.
#[utoipa::path(
    patch, path = "/api/admin/users/{user_id}", tag = "admin", operation_id = "updateUser",
    security(("bearerAuth" = [])),
    params(("user_id" = String, Path, description = "The user's `_id` (UUID)")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The updated account", body = UserEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "The caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "LAST_ADMIN: the user is the last active admin; demoting or suspending it would leave no one to administer the server", body = ErrorEnvelope),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "`status`, `role` or `password` is invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn update_user(
    state: ApiState,
    Authenticated(admin): Authenticated,
    req: HttpRequest,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    require_admin(&admin)?;
    let user_id = kernel::Uuid::parse_str(&segment(&req, "user_id"))
        .map_err(|_| ApiError::user_not_found())?;
    let b: UpdateUserRequest = body.json()?;
    let auth = state.auth;
    let profile = blocking(move || {
        let (status, role, password) = (b.status, b.role, b.password);
        auth.update_user(
            &admin,
            user_id,
            status.as_deref(),
            role.as_deref(),
            password.as_deref(),
            &meta,
        )
    })
    .await?;
    Ok(envelope::ok("User updated successfully", &UserView::from(&profile)))
}

/// Any user's sessions, newest first (admin only).
#[utoipa::path(
    get, path = "/api/admin/users/{user_id}/sessions", tag = "admin", operation_id = "adminListUserSessions",
    security(("bearerAuth" = [])),
    params(
        ("user_id" = String, Path, description = "The user's `_id` (UUID)"),
        IncludeInactiveQuery,
    ),
    responses(
        (status = 200, description = "The user's sessions, newest first", body = SessionListEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "USER_NOT_FOUND: no user has this `_id`", body = ErrorEnvelope),
        (status = 422, description = "VALIDATION_ERROR: `include_inactive` is not a boolean", body = ErrorEnvelope),
    )
)]
pub(crate) async fn list_user_sessions(
    state: ApiState,
    Authenticated(admin): Authenticated,
    q: QueryParams,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_admin(&admin)?;
    let include_inactive = IncludeInactiveQuery::parse(&q)?;
    let user_id = segment(&req, "user_id");
    let auth = state.auth;
    let infos =
        blocking(move || auth.admin_list_sessions(&admin, &user_id, include_inactive)).await?;
    let views: Vec<SessionView> = infos.iter().map(SessionView::from_info).collect();
    Ok(envelope::ok("Sessions retrieved successfully", &views))
}

/// Deletes every session of any user (admin only).
#[utoipa::path(
    delete, path = "/api/admin/users/{user_id}/sessions", tag = "admin", operation_id = "adminDeleteAllUserSessions",
    security(("bearerAuth" = [])),
    params(("user_id" = String, Path, description = "The user's `_id` (UUID)")),
    responses(
        (status = 200, description = "The sessions are deleted; how many live ones this ended", body = TerminatedCountEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "USER_NOT_FOUND: no user has this `_id`", body = ErrorEnvelope),
    )
)]
pub(crate) async fn delete_all_user_sessions(
    state: ApiState,
    Authenticated(admin): Authenticated,
    Meta(meta): Meta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_admin(&admin)?;
    let user_id = segment(&req, "user_id");
    let auth = state.auth;
    let n = blocking(move || auth.admin_delete_all_sessions(&admin, &user_id, &meta)).await?;
    Ok(envelope::ok(
        "All sessions deleted successfully",
        &TerminatedCountData { terminated_count: n },
    ))
}

/// One session of any user (admin only).
#[utoipa::path(
    get, path = "/api/admin/users/{user_id}/sessions/{id}", tag = "admin", operation_id = "adminGetUserSession",
    security(("bearerAuth" = [])),
    params(
        ("user_id" = String, Path, description = "The user's `_id` (UUID)"),
        ("id" = String, Path, description = "The session's id (UUID)"),
    ),
    responses(
        (status = 200, description = "The session", body = SessionEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "USER_NOT_FOUND: no user has this `_id`; SESSION_NOT_FOUND: the user has no such session", body = ErrorEnvelope),
    )
)]
pub(crate) async fn get_user_session(
    state: ApiState,
    Authenticated(admin): Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_admin(&admin)?;
    let (user_id, id) = (segment(&req, "user_id"), segment(&req, "id"));
    let auth = state.auth;
    let info = blocking(move || auth.admin_get_session(&admin, &user_id, &id))
        .await
        .map_err(|e| e.for_session("view"))?;
    Ok(envelope::ok("Session retrieved successfully", &SessionView::from_info(&info)))
}

/// Deletes one session of any user; it is revoked at once (admin only).
#[utoipa::path(
    delete, path = "/api/admin/users/{user_id}/sessions/{id}", tag = "admin", operation_id = "adminDeleteUserSession",
    security(("bearerAuth" = [])),
    params(
        ("user_id" = String, Path, description = "The user's `_id` (UUID)"),
        ("id" = String, Path, description = "The session's id (UUID)"),
    ),
    responses(
        (status = 200, description = "The session is deleted (`data` is null)", body = EmptyEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin", body = ErrorEnvelope),
        (status = 404, description = "USER_NOT_FOUND: no user has this `_id`; SESSION_NOT_FOUND: the user has no such session", body = ErrorEnvelope),
    )
)]
pub(crate) async fn delete_user_session(
    state: ApiState,
    Authenticated(admin): Authenticated,
    Meta(meta): Meta,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_admin(&admin)?;
    let (user_id, id) = (segment(&req, "user_id"), segment(&req, "id"));
    let auth = state.auth;
    blocking(move || auth.admin_delete_session(&admin, &user_id, &id, &meta))
        .await
        .map_err(|e| e.for_session("delete"))?;
    Ok(envelope::ok("Session deleted successfully", &Null))
}

#[cfg(test)]
mod tests;
