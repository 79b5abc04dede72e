//! Accounts and tokens (SPEC §2): register, login, me, refresh, logout,
//! logout-all, validate-token, token-info.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use auth::{LoginInput, PasswordInput, RegisterInput};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, Meta, bearer_token, blocking};
use crate::body::Body;
use crate::envelope::{self, Null};
use crate::error::ApiError;
use crate::openapi::{
    ClaimsEnvelope, EmptyEnvelope, ErrorEnvelope, LoginEnvelope, LogoutAllEnvelope,
    RefreshEnvelope, UserEnvelope, ValidateTokenEnvelope,
};
use crate::routes::health::AppRequest;
use crate::views::{
    ClaimsView, LoginData, LogoutAllData, RefreshData, SessionView, UserView, ValidateTokenData,
};

const BEARER: &str = "Bearer";

/// A registration.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RegisterRequest {
    /// 3–64 characters of `[A-Za-z0-9_.-]`, unique case-insensitively; not
    /// `all`.
    #[schema(example = "john_doe", min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    username: String,
    /// 8–1024 characters, none a control or format character (NUL, line
    /// breaks, U+202E, U+FEFF, …); spaces are fine.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 1024)]
    password: String,
    /// A bare email address (no display name or angle brackets), unique
    /// case-insensitively; international domains are fine.
    #[schema(example = "john.doe@example.com", format = "email", max_length = 254)]
    email: Option<String>,
    /// Display name, at most 200 characters, none a control or format
    /// character (line breaks, U+202E, U+FEFF, …).
    #[schema(example = "John Doe", max_length = 200)]
    name: Option<String>,
}

/// A login: `username` or `email`, and `password`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    /// Username (or give `email`).
    #[schema(example = "john_doe")]
    username: Option<String>,
    /// Email (or give `username`).
    email: Option<String>,
    /// Password.
    #[schema(example = "correct horse battery")]
    password: String,
    /// Application to open the session for; `default` when absent.
    #[schema(example = "default")]
    app: Option<String>,
}

/// A refresh: with `refresh_token`, rotates it; without, the bearer token's
/// session gets a fresh access token.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RefreshRequest {
    /// The current refresh token.
    refresh_token: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PasswordChangeRequest {
    /// The password in force. A wrong one is 401 `INVALID_CREDENTIALS` and
    /// counts toward the login lockout.
    #[schema(example = "correct horse battery", max_length = 1024)]
    current_password: String,
    /// The new password: 8–1024 characters, none a control or format
    /// character; spaces are fine.
    #[schema(example = "staple battery horse correct", min_length = 8, max_length = 1024)]
    new_password: String,
    /// Whether every other session of the user ends (default `true`); the
    /// calling session stays either way.
    #[schema(example = true)]
    sign_out_other_sessions: Option<bool>,
}

/// A body that carries nothing; whatever fields come are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct EmptyRequest {}

/// Registers an account.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth", operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account was created", body = UserEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 403, description = "Registration is closed", body = ErrorEnvelope),
        (status = 409, description = "USERNAME_TAKEN or EMAIL_TAKEN", body = ErrorEnvelope),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "A field is missing or invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn register(
    state: ApiState,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: RegisterRequest = body.json()?;
    let input =
        RegisterInput { username: b.username, password: b.password, email: b.email, name: b.name };
    let auth = state.auth;
    let profile = blocking(move || auth.register(input, &meta)).await?;
    Ok(envelope::success(
        StatusCode::CREATED,
        "User registered successfully",
        &UserView::from(&profile),
    ))
}

/// Logs in and opens a device session.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens, the new session and the account", body = LoginEnvelope, headers(
            ("Cache-Control" = String, description = "`no-store`: the answer carries tokens"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "INVALID_CREDENTIALS: unknown user or wrong password", body = ErrorEnvelope),
        (status = 403, description = "The account is suspended", body = ErrorEnvelope),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "A field is missing or invalid", body = ErrorEnvelope),
    )
)]
pub(crate) async fn login(
    state: ApiState,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: LoginRequest = body.json()?;
    let input =
        LoginInput { username: b.username, email: b.email, password: b.password, app: b.app };
    let auth = state.auth;
    let ok = blocking(move || auth.login(input, &meta)).await?;
    // What the session view says comes from the use case, not from this
    // handler's clock and settings.
    let data = LoginData {
        access_token: ok.access_token,
        refresh_token: ok.refresh_token,
        token_type: BEARER,
        expires_in: ok.expires_in,
        session: SessionView::from_info(&ok.session),
        user: UserView::from(&ok.user),
    };
    Ok(envelope::ok_secret("Login successful", &data))
}

/// The caller's account.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth", operation_id = "getMe",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
    )
)]
pub(crate) async fn me(
    state: ApiState,
    Authenticated(p): Authenticated,
) -> Result<HttpResponse, ApiError> {
    // `me` only reshapes what authentication read: no I/O, no need to block.
    let profile = state.auth.me(&p);
    Ok(envelope::ok("User authenticated", &UserView::from(&profile)))
}

/// Rotates a refresh token, or (the bearer-only refresh: no body) issues a
/// fresh access token for the bearer token's session, unless
/// `SESSIOND_BEARER_REFRESH=false` switched that off.
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth", operation_id = "refresh",
    security((), ("bearerAuth" = [])),
    request_body(content = Option<RefreshRequest>, description = "With `refresh_token`, no bearer token is needed; without it, the bearer token's session gets a fresh access token (unless `SESSIOND_BEARER_REFRESH=false`)"),
    responses(
        (status = 200, description = "The account with new tokens", body = RefreshEnvelope, headers(
            ("Cache-Control" = String, description = "`no-store`: the answer carries tokens"),
            ("Pragma" = String, description = "`no-cache`"),
        )),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "UNAUTHORIZED (no valid token, several Authorization headers, or no refresh token while the bearer-only refresh is off) or REFRESH_TOKEN_REUSED (the session was revoked)", body = ErrorEnvelope),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "A field has the wrong type", body = ErrorEnvelope),
    )
)]
pub(crate) async fn refresh(
    req: HttpRequest,
    state: ApiState,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: RefreshRequest = body.json_or_empty()?;
    let auth = state.auth;
    let refreshed = match b.refresh_token.filter(|t| !t.is_empty()) {
        Some(token) => blocking(move || auth.refresh(&token, &meta)).await?,
        None => {
            let token = bearer_token(req.headers())?
                .ok_or_else(|| {
                    ApiError::unauthorized("A refresh token or a bearer token is required")
                })?
                .to_owned();
            blocking(move || {
                let principal = auth.authenticate(&token)?;
                auth.refresh_bearer(&principal, &meta)
            })
            .await?
        }
    };
    let data = RefreshData {
        user: UserView::from(&refreshed.user),
        access_token: refreshed.access_token,
        refresh_token: refreshed.refresh_token,
        token_type: BEARER,
        expires_in: refreshed.expires_in,
    };
    Ok(envelope::ok_secret("Session refreshed", &data))
}

/// Ends the caller's session.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth", operation_id = "logout",
    security(("bearerAuth" = [])),
    request_body(content = Option<EmptyRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "The session has ended", body = EmptyEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
    )
)]
pub(crate) async fn logout(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    body.json_or_empty::<EmptyRequest>()?;
    let auth = state.auth;
    blocking(move || auth.logout(&p, &meta)).await?;
    Ok(envelope::ok("Logged out successfully", &Null))
}

async fn logout_everywhere(
    state: ApiState,
    p: auth::Principal,
    meta: auth::RequestMeta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    body.json_or_empty::<EmptyRequest>()?;
    let auth = state.auth;
    let n = blocking(move || auth.logout_all(&p, &meta)).await?;
    const DONE: &str = "Logged out from all devices";
    Ok(envelope::ok(DONE, &LogoutAllData { message: DONE, terminated_count: n }))
}

/// Ends every session of the caller, the current one included.
#[utoipa::path(
    post, path = "/api/auth/logout-all", tag = "auth", operation_id = "logoutAll",
    security(("bearerAuth" = [])),
    request_body(content = Option<EmptyRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "Every session has ended", body = LogoutAllEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
    )
)]
pub(crate) async fn logout_all(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    logout_everywhere(state, p, meta, body).await
}

/// Ends every session of the caller (the `/api/v1` path).
#[utoipa::path(
    post, path = "/api/v1/auth/logout-all", tag = "auth", operation_id = "logoutAllV1",
    security(("bearerAuth" = [])),
    request_body(content = Option<EmptyRequest>, description = "Optional; ignored"),
    responses(
        (status = 200, description = "Every session has ended", body = LogoutAllEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
    )
)]
pub(crate) async fn logout_all_v1(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    logout_everywhere(state, p, meta, body).await
}

/// Changes the caller's password; every other session of the user ends
/// (in the same commit) unless `sign_out_other_sessions` is `false`.
#[utoipa::path(
    post, path = "/api/auth/password", tag = "auth", operation_id = "changePassword",
    security(("bearerAuth" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 200, description = "The password was changed; the account", body = UserEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "No valid token, or INVALID_CREDENTIALS: `current_password` is wrong (counted toward the lockout)", body = ErrorEnvelope),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorEnvelope),
        (status = 422, description = "A field is missing, or `new_password` breaks the registration rules", body = ErrorEnvelope),
        (status = 429, description = "Too many wrong passwords: locked, with `Retry-After`", body = ErrorEnvelope),
    )
)]
pub(crate) async fn change_password(
    state: ApiState,
    Authenticated(p): Authenticated,
    Meta(meta): Meta,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: PasswordChangeRequest = body.json()?;
    let input = PasswordInput {
        current_password: b.current_password,
        new_password: b.new_password,
        sign_out_other_sessions: b.sign_out_other_sessions,
    };
    let auth = state.auth;
    let profile = blocking(move || auth.change_password(&p, input, &meta)).await?;
    Ok(envelope::ok("Password changed", &UserView::from(&profile)))
}

/// Refuses a token whose session was not opened for the `app` a client
/// names (the session's app, which authentication checked the token's
/// `app` claim against).
pub(crate) fn check_app(session_app: &str, app: Option<&str>) -> Result<(), ApiError> {
    let Some(app) = app else {
        return Ok(());
    };
    auth::parse_app(app).map_err(|problem| ApiError::invalid_field("app", problem))?;
    if app == session_app {
        Ok(())
    } else {
        Err(ApiError::forbidden("The token was not issued for this app"))
    }
}

/// Checks the bearer token (and, when `app` is given, that it is for it).
#[utoipa::path(
    post, path = "/api/auth/validate-token", tag = "auth", operation_id = "validateToken",
    security(("bearerAuth" = [])),
    request_body(content = Option<AppRequest>, description = "Optional `app` the token must be for"),
    responses(
        (status = 200, description = "The token is valid", body = ValidateTokenEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "The token is for another app", body = ErrorEnvelope),
        (status = 422, description = "`app` is not a valid application name", body = ErrorEnvelope),
    )
)]
pub(crate) async fn validate_token(
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: AppRequest = body.json_or_empty()?;
    check_app(&p.session.app, b.app.as_deref())?;
    let data = ValidateTokenData {
        user: p.claims.username.clone(),
        app: p.session.app.to_string(),
        token_info: ClaimsView::from(&p.claims),
    };
    Ok(envelope::ok("Token is valid", &data))
}

/// The claims of the bearer token.
#[utoipa::path(
    post, path = "/api/auth/token-info", tag = "auth", operation_id = "getTokenInfo",
    security(("bearerAuth" = [])),
    request_body(content = Option<AppRequest>, description = "Optional `app` the token must be for"),
    responses(
        (status = 200, description = "The token's claims", body = ClaimsEnvelope),
        (status = 400, description = "The body is not JSON", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "The token is for another app", body = ErrorEnvelope),
        (status = 422, description = "`app` is not a valid application name", body = ErrorEnvelope),
    )
)]
pub(crate) async fn token_info(
    Authenticated(p): Authenticated,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let b: AppRequest = body.json_or_empty()?;
    check_app(&p.session.app, b.app.as_deref())?;
    Ok(envelope::ok("Token information retrieved", &ClaimsView::from(&p.claims)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn app_must_match_the_session_when_given() {
        assert!(check_app("web", None).is_ok());
        assert!(check_app("web", Some("web")).is_ok());
        assert_eq!(check_app("web", Some("mobile")).map_err(|e| e.code), Err(ErrorCode::Forbidden));
        assert_eq!(check_app("web", Some("")).map_err(|e| e.code), Err(ErrorCode::ValidationError));
        assert_eq!(
            check_app("web", Some("no spaces")).map_err(|e| e.code),
            Err(ErrorCode::ValidationError)
        );
    }
}

#[cfg(test)]
mod app_tests;
