//! The one error type of the HTTP edge: every refusal, whoever produces it
//! (a handler, an extractor, the router), becomes an [`ApiError`] and is
//! answered in the error envelope.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use analytics::AnalyticsError;
use auth::AuthError;
use kernel::Violations;
use serde::Serialize;
use utoipa::ToSchema;

use crate::envelope;

/// The machine-readable error codes of the API (the table of SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: the body is not JSON or has the wrong content type.
    BadRequest,
    /// 422: well-formed but invalid input; `details` maps fields to problems.
    ValidationError,
    /// 401: no usable access token.
    Unauthorized,
    /// 401: login failed.
    InvalidCredentials,
    /// 401: a rotated refresh token came back after the grace window.
    RefreshTokenReused,
    /// 403: not allowed for this caller.
    Forbidden,
    /// 404: unknown route.
    NotFound,
    /// 404: unknown session (or another user's).
    SessionNotFound,
    /// 404: unknown user.
    UserNotFound,
    /// 405: known path, other method.
    MethodNotAllowed,
    /// 409: the username is taken.
    UsernameTaken,
    /// 409: the email is taken.
    EmailTaken,
    /// 409: a tracked session cannot make this step.
    InvalidStateTransition,
    /// 409: the change would demote or suspend the last active admin.
    LastAdmin,
    /// 413: the body is larger than 64 KiB.
    PayloadTooLarge,
    /// 429: too many requests.
    RateLimited,
    /// 500: something went wrong on our side.
    InternalError,
    /// 503: the database cannot be reached.
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, in the order of the table.
    pub const ALL: [Self; 18] = [
        Self::BadRequest,
        Self::ValidationError,
        Self::Unauthorized,
        Self::InvalidCredentials,
        Self::RefreshTokenReused,
        Self::Forbidden,
        Self::NotFound,
        Self::SessionNotFound,
        Self::UserNotFound,
        Self::MethodNotAllowed,
        Self::UsernameTaken,
        Self::EmailTaken,
        Self::InvalidStateTransition,
        Self::LastAdmin,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::InternalError,
        Self::ServiceUnavailable,
    ];

    /// The wire name (`VALIDATION_ERROR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::ValidationError => "VALIDATION_ERROR",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::SessionNotFound => "SESSION_NOT_FOUND",
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::InvalidStateTransition => "INVALID_STATE_TRANSITION",
            Self::LastAdmin => "LAST_ADMIN",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::ValidationError => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::InvalidCredentials | Self::RefreshTokenReused => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::SessionNotFound | Self::UserNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UsernameTaken
            | Self::EmailTaken
            | Self::InvalidStateTransition
            | Self::LastAdmin => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `error.details` of the envelope: a sentence, or for validation errors a
/// map of each field to its problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorDetails {
    /// Why, in one sentence.
    Text(String),
    /// Field → problem (422 only).
    Fields(BTreeMap<String, String>),
}

impl From<&Violations> for ErrorDetails {
    fn from(v: &Violations) -> Self {
        Self::Fields(v.iter().map(|(k, p)| (k.to_owned(), p.to_owned())).collect())
    }
}

/// A refusal, ready to be answered in the error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The machine-readable code; it decides the HTTP status.
    pub code: ErrorCode,
    /// Short human-readable summary (`"Validation failed"`).
    pub message: String,
    /// The specifics.
    pub details: ErrorDetails,
    /// Methods the path does answer (405 only): the `Allow` header.
    pub allow: Option<&'static str>,
    /// Seconds to wait (429 only): the `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a one-sentence `details`.
    pub fn new(code: ErrorCode, message: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: ErrorDetails::Text(details.into()),
            allow: None,
            retry_after: None,
        }
    }

    /// 400 BAD_REQUEST.
    pub fn bad_request(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, "Bad request", details)
    }

    /// 422 VALIDATION_ERROR with field → problem.
    pub fn validation(violations: &Violations) -> Self {
        Self {
            code: ErrorCode::ValidationError,
            message: "Validation failed".into(),
            details: violations.into(),
            allow: None,
            retry_after: None,
        }
    }

    /// 422 VALIDATION_ERROR for a single field.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        Self::validation(&Violations::one(field, problem))
    }

    /// 401 UNAUTHORIZED.
    pub fn unauthorized(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, "Unauthorized", details)
    }

    /// 403 FORBIDDEN.
    pub fn forbidden(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, "Forbidden", details)
    }

    /// 404 NOT_FOUND for an unknown route.
    pub fn route_not_found() -> Self {
        Self::new(ErrorCode::NotFound, "Not found", "The requested resource does not exist")
    }

    /// 404 USER_NOT_FOUND.
    pub fn user_not_found() -> Self {
        Self::new(ErrorCode::UserNotFound, "User not found", "User not found")
    }

    /// 404 SESSION_NOT_FOUND, the `/api/sessions` form's wording; `verb` is what the caller
    /// meant to do (`delete`, `deactivate`, …). A missing session, another
    /// user's and an id that is not a UUID all get exactly this answer.
    pub fn session_not_found(verb: &str) -> Self {
        Self::new(
            ErrorCode::SessionNotFound,
            "Session not found or unauthorized",
            format!(
                "The requested session does not exist or you don't have permission to {verb} it"
            ),
        )
    }

    /// This error, but a SESSION_NOT_FOUND worded for `verb`.
    pub fn for_session(self, verb: &str) -> Self {
        if self.code == ErrorCode::SessionNotFound { Self::session_not_found(verb) } else { self }
    }

    /// 405 METHOD_NOT_ALLOWED; `allow` lists the methods the path answers.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                ErrorCode::MethodNotAllowed,
                "Method not allowed",
                Self::not_allowed_details(allow),
            )
        }
    }

    /// The `details` of a 405 on a path that answers `allow`.
    pub(crate) fn not_allowed_details(allow: &str) -> String {
        format!("This path answers only {allow}")
    }

    /// 413 PAYLOAD_TOO_LARGE.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            "Payload too large",
            format!("The request body exceeds {limit} bytes"),
        )
    }

    /// 429 RATE_LIMITED, retry after `secs` seconds.
    pub fn rate_limited(details: impl Into<String>, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(ErrorCode::RateLimited, "Too many requests", details)
        }
    }

    /// 500 INTERNAL_ERROR; says nothing about the cause, which is logged
    /// where it happened.
    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "Internal server error", "An unexpected error occurred")
    }

    /// 503 SERVICE_UNAVAILABLE.
    pub fn unavailable(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, "Service unavailable", details)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = envelope::error_response(self);
        if let Some(allow) = self.allow {
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthorized {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sessiond\""),
            );
        }
        res
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(v) => Self::validation(&v),
            AuthError::UsernameTaken => Self::new(
                ErrorCode::UsernameTaken,
                "Username is already taken",
                "Another account has this username",
            ),
            AuthError::EmailTaken => Self::new(
                ErrorCode::EmailTaken,
                "Email is already registered",
                "Another account has this email address",
            ),
            AuthError::LastAdmin => Self::new(
                ErrorCode::LastAdmin,
                "Last active admin",
                "This is the last active admin: make another user an admin first",
            ),
            AuthError::RegistrationClosed => {
                Self::forbidden("Registration is closed on this server")
            }
            AuthError::InvalidCredentials => Self::new(
                ErrorCode::InvalidCredentials,
                "Invalid credentials",
                "The username, email or password is wrong",
            ),
            AuthError::Locked { retry_after } => Self::rate_limited(
                format!("Too many failed logins; try again in {retry_after} seconds"),
                retry_after,
            ),
            AuthError::Suspended => Self::new(
                ErrorCode::Forbidden,
                "Account is suspended",
                "This account is suspended and cannot log in",
            ),
            AuthError::Unauthenticated(why) => Self::unauthorized(why),
            AuthError::RefreshReused => Self::new(
                ErrorCode::RefreshTokenReused,
                "Refresh token reused",
                "This refresh token was already used; the session has been revoked",
            ),
            AuthError::Forbidden(why) => Self::forbidden(why),
            AuthError::UserNotFound => Self::user_not_found(),
            AuthError::SessionNotFound => Self::session_not_found("access"),
            AuthError::Unknown(e) => Self::unknown(&e),
        }
    }
}

impl ApiError {
    /// 409 INVALID_STATE_TRANSITION: a tracked session cannot `action`
    /// from `state`.
    pub fn invalid_transition(action: &str, state: &str) -> Self {
        Self::new(
            ErrorCode::InvalidStateTransition,
            "Invalid state transition",
            format!("Cannot {action} a session that is {state}"),
        )
    }

    /// What a use case could not name: 503 when the database is
    /// unreachable, else 500; logged here (the request-id span names the
    /// request), never shown.
    fn unknown(e: &anyhow::Error) -> Self {
        if kernel::Unavailable::in_chain(e.chain()) {
            tracing::warn!(error = format!("{e:#}"), "database unavailable");
            Self::unavailable("The database cannot be reached; try again shortly")
        } else {
            tracing::error!(error = format!("{e:#}"), "use case failed");
            Self::internal()
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::Invalid(v) => Self::validation(&v),
            AnalyticsError::InvalidTransition { action, state } => {
                Self::invalid_transition(action, state)
            }
            AnalyticsError::SessionNotFound => Self::session_not_found("access"),
            AnalyticsError::Forbidden(why) => Self::forbidden(why),
            AnalyticsError::Unauthenticated => {
                Self::unauthorized("A bearer token is required for this endpoint")
            }
            // Switched off: answered exactly like a path that names nothing.
            AnalyticsError::Disabled => Self::route_not_found(),
            AnalyticsError::Unknown(e) => Self::unknown(&e),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        tracing::error!(
            error = %e,
            "blocking task failed"
        );
        Self::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(e: AuthError) -> (u16, &'static str, String) {
        let a = ApiError::from(e);
        (a.code.status().as_u16(), a.code.as_str(), a.message)
    }

    #[test]
    fn every_code_is_its_own_screaming_name() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::String(code.as_str().into()))
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn auth_errors_map_to_the_contract() {
        let v = Violations::one("username", "is reserved");
        assert_eq!(
            mapped(AuthError::Invalid(v.clone())),
            (422, "VALIDATION_ERROR", "Validation failed".into())
        );
        assert_eq!(
            ApiError::from(AuthError::Invalid(v)).details,
            ErrorDetails::Fields([("username".into(), "is reserved".into())].into())
        );
        assert_eq!(mapped(AuthError::UsernameTaken).0, 409);
        assert_eq!(mapped(AuthError::UsernameTaken).1, "USERNAME_TAKEN");
        assert_eq!(mapped(AuthError::EmailTaken).1, "EMAIL_TAKEN");
        assert_eq!(
            mapped(AuthError::LastAdmin),
            (409, "LAST_ADMIN", "Last active admin".to_owned())
        );
        assert_eq!(mapped(AuthError::RegistrationClosed).0, 403);
        assert_eq!(
            mapped(AuthError::InvalidCredentials),
            (401, "INVALID_CREDENTIALS", "Invalid credentials".into())
        );
        assert_eq!(mapped(AuthError::Suspended), (403, "FORBIDDEN", "Account is suspended".into()));
        let locked = ApiError::from(AuthError::Locked { retry_after: 42 });
        assert_eq!((locked.code.status().as_u16(), locked.code.as_str()), (429, "RATE_LIMITED"));
        let res = locked.error_response();
        assert_eq!(res.headers().get(header::RETRY_AFTER), Some(&HeaderValue::from_static("42")));
        let unauth = ApiError::from(AuthError::Unauthenticated("Token has expired"));
        assert_eq!(unauth.code, ErrorCode::Unauthorized);
        assert_eq!(unauth.message, "Unauthorized");
        assert_eq!(unauth.details, ErrorDetails::Text("Token has expired".into()));
        assert_eq!(
            mapped(AuthError::RefreshReused),
            (401, "REFRESH_TOKEN_REUSED", "Refresh token reused".to_owned())
        );
        assert_eq!(mapped(AuthError::Forbidden("no")).1, "FORBIDDEN");
        assert_eq!(
            mapped(AuthError::UserNotFound),
            (404, "USER_NOT_FOUND", "User not found".into())
        );
        assert_eq!(
            mapped(AuthError::SessionNotFound),
            (404, "SESSION_NOT_FOUND", "Session not found or unauthorized".into())
        );
        let e = ApiError::from(AuthError::SessionNotFound).for_session("delete");
        assert_eq!(
            e.details,
            ErrorDetails::Text(
                "The requested session does not exist or you don't have permission to delete it"
                    .into()
            )
        );
        assert_eq!(
            ApiError::from(AuthError::UserNotFound).for_session("delete").code,
            ErrorCode::UserNotFound
        );
    }

    #[test]
    fn an_unreachable_database_is_a_503_without_internals() {
        let cause: Box<dyn std::error::Error + Send + Sync> =
            "connection refused to 10.0.0.5:5432".into();
        let e = anyhow::Error::new(kernel::Unavailable(cause)).context("loading a session");
        let e = ApiError::from(AuthError::Unknown(e));
        assert_eq!(e.code, ErrorCode::ServiceUnavailable);
        assert_eq!(e.code.status().as_u16(), 503);
        assert!(!format!("{:?}", e.details).contains("10.0.0.5"));
    }

    #[test]
    fn unknown_errors_never_leak() {
        let e = ApiError::from(AuthError::Unknown(anyhow::anyhow!(
            "SELECT * FROM users: connection refused at /src/store.rs:12"
        )));
        assert_eq!(e.code, ErrorCode::InternalError);
        assert_eq!(e.code.status().as_u16(), 500);
        let text = format!("{} {:?}", e.message, e.details);
        assert!(!text.contains("SELECT") && !text.contains("store.rs"));
    }

    #[test]
    fn analytics_errors_map_to_the_contract() {
        let m = |e: AnalyticsError| {
            let a = ApiError::from(e);
            (a.code.status().as_u16(), a.code.as_str(), a.message, a.details)
        };
        let v = Violations::one("timespent", "must be a whole number");
        assert_eq!(
            m(AnalyticsError::Invalid(v)),
            (
                422,
                "VALIDATION_ERROR",
                "Validation failed".into(),
                ErrorDetails::Fields(
                    [("timespent".into(), "must be a whole number".into())].into()
                )
            )
        );
        assert_eq!(
            m(AnalyticsError::InvalidTransition { action: "pause", state: "paused" }),
            (
                409,
                "INVALID_STATE_TRANSITION",
                "Invalid state transition".into(),
                ErrorDetails::Text("Cannot pause a session that is paused".into())
            )
        );
        let nf = m(AnalyticsError::SessionNotFound);
        assert_eq!(
            (nf.0, nf.1, nf.2.as_str()),
            (404, "SESSION_NOT_FOUND", "Session not found or unauthorized")
        );
        let e = ApiError::from(AnalyticsError::SessionNotFound).for_session("pause");
        assert_eq!(
            e.details,
            ErrorDetails::Text(
                "The requested session does not exist or you don't have permission to pause it"
                    .into()
            )
        );
        let f = m(AnalyticsError::Forbidden("not your app"));
        assert_eq!((f.0, f.1, f.3), (403, "FORBIDDEN", ErrorDetails::Text("not your app".into())));
        let u = m(AnalyticsError::Unauthenticated);
        assert_eq!((u.0, u.1), (401, "UNAUTHORIZED"));
        assert_eq!(ApiError::from(AnalyticsError::Disabled), ApiError::route_not_found());
        let cause: Box<dyn std::error::Error + Send + Sync> = "connection refused".into();
        let down = anyhow::Error::new(kernel::Unavailable(cause)).context("recording visits");
        assert_eq!(m(AnalyticsError::Unknown(down)).0, 503);
        let bug = m(AnalyticsError::Unknown(anyhow::anyhow!("SELECT 1 failed at /src/x.rs")));
        assert_eq!((bug.0, bug.1), (500, "INTERNAL_ERROR"));
        assert!(!format!("{:?}", bug.3).contains("SELECT"));
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let res = ApiError::method_not_allowed("GET, HEAD").error_response();
        assert_eq!(res.status().as_u16(), 405);
        assert_eq!(
            res.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()),
            Some("GET, HEAD")
        );
    }
}
