//! Administration of accounts.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, Meta, blocking};
use crate::body::Body;
use crate::envelope;
use crate::error::ApiError;
use crate::openapi::{ErrorEnvelope, UserEnvelope};
use crate::views::UserView;

/// A change of an account; absent (or null) fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UpdateUserRequest {
    /// `active` or `suspended`. Suspending ends every session of the user.
    #[schema(example = "suspended")]
    status: Option<String>,
    /// A role name: 1–32 characters of `[a-z0-9_-]`; `admin` has the admin powers.
    #[schema(example = "admin")]
    role: Option<String>,
}

/// Suspends or reinstates an account, or changes its role (admin only).
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
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "`status` or `role` is invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn update_user(
    state: ApiState,
    Authenticated(admin): Authenticated,
    user_id: web::Path<String>,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    if !admin.is_admin() {
        return Err(ApiError::forbidden("Admin role required"));
    }
    let user_id = kernel::Uuid::parse_str(&user_id).map_err(|_| ApiError::user_not_found())?;
    let b: UpdateUserRequest = body.json()?;
    let auth = state.auth;
    let profile = blocking(move || {
        auth.update_user(&admin, user_id, b.status.as_deref(), b.role.as_deref(), &meta)
    })
    .await?;
    Ok(envelope::ok("User updated successfully", &UserView::from(&profile)))
}
