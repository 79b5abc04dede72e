//! Token introspection (RFC 7662) and revocation (RFC 7009), SPEC §6:
//! form-encoded requests answered in the RFCs' own JSON shapes, not in
//! the envelope (only `X-Request-Id` is added), so that OAuth libraries
//! nobody here wrote work unchanged.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use auth::{Introspection, Principal};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{authenticate, blocking, meta};
use crate::body::Body;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Verification;

/// The form body of both endpoints.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TokenForm {
    /// The token: an access token (a JWT) or a refresh token. Required.
    #[schema(example = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl")]
    token: Option<String>,
    /// `access_token` or `refresh_token`; a hint only (sessiond tells the
    /// two kinds apart by their shape), any value is accepted.
    #[schema(example = "access_token")]
    #[expect(dead_code, reason = "a hint only: the two kinds are told apart by their shape")]
    token_type_hint: Option<String>,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OAuthError {
    /// `invalid_request` (no `token`, not a form), `invalid_client` (no or
    /// wrong client authentication), `server_error` or
    /// `temporarily_unavailable` (the database cannot be reached).
    #[schema(example = "invalid_request")]
    error: &'static str,
}

/// An introspection answer (RFC 7662 §2.2). Inactive: `{"active": false}`
/// and nothing else, whatever the reason.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct IntrospectionAnswer {
    /// Whether the token is live: valid, unexpired, and its session live.
    active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "access_token")]
    token_type: Option<&'static str>,
    /// The user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The user's username (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// The session's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The app the session was opened for.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// The user's role now (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// Issued at, seconds since the epoch (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// Expires at, seconds since the epoch: the token's own expiry, or for
    /// a refresh token its session's.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// The issuer (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// The token's unique id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

impl IntrospectionAnswer {
    fn of(i: Introspection) -> Self {
        match i {
            Introspection::Access(Principal { user, session, claims }) => Self {
                active: true,
                token_type: Some("access_token"),
                sub: Some(user.id.to_string()),
                username: Some(user.username.clone()),
                sid: Some(session.id.to_string()),
                client_id: Some(session.app.to_string()),
                role: Some(user.role.as_str().to_owned()),
                iat: Some(claims.iat),
                exp: Some(claims.exp),
                iss: Some(claims.iss),
                jti: Some(claims.jti),
            },
            Introspection::Refresh { user, session } => Self {
                active: true,
                token_type: Some("refresh_token"),
                sub: Some(user.id.to_string()),
                sid: Some(session.id.to_string()),
                client_id: Some(session.app.to_string()),
                exp: Some(session.expires_at.unix_timestamp()),
                ..Self::default()
            },
            Introspection::Inactive => Self::default(),
        }
    }
}

/// A JSON answer that no cache may keep (RFC 6749 §5.1).
fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    let mut res = HttpResponse::build(status).json(body);
    crate::envelope::no_store(&mut res);
    res
}

fn error(status: StatusCode, error: &'static str) -> HttpResponse {
    json(status, &OAuthError { error })
}

/// `{"error": "invalid_request"}` with status 400 (or the status of `e`
/// when it is about the body's size).
fn invalid_request() -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "invalid_request")
}

/// The RFC-shaped answer for a refusal made before the form was read (the
/// body's size) or by a use case (the database).
fn from_api_error(e: &ApiError) -> HttpResponse {
    match e.code {
        ErrorCode::PayloadTooLarge => error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        ErrorCode::ServiceUnavailable => {
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        code if code.status().is_server_error() => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        }
        _ => invalid_request(),
    }
}

/// 401 `invalid_client` with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
fn invalid_client() -> HttpResponse {
    let mut res = error(StatusCode::UNAUTHORIZED, "invalid_client");
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sessiond\""));
    res
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space):
/// RFC 6749 §2.3.1 has client ids and secrets encoded so before they are
/// put into HTTP Basic credentials.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// `(id, secret)` of `Authorization: Basic …`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Whether the caller may introspect: a client of
/// `SESSIOND_INTROSPECTION_CLIENTS` over HTTP Basic, or an administrator's
/// bearer token. `Err` only when the database could not say.
async fn client_allowed(req: &HttpRequest, state: &ApiState) -> Result<bool, ApiError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let (Some(value), None) = (values.next(), values.next()) else { return Ok(false) };
    let Ok(value) = value.to_str() else { return Ok(false) };
    if let Some((id, secret)) = basic_credentials(value) {
        return Ok(state.token_endpoints.introspection_clients.check(&id, &secret));
    }
    match authenticate(req).await {
        Ok(p) => Ok(p.is_admin()),
        Err(e) if e.code.status().is_server_error() => Err(e),
        Err(_) => Ok(false),
    }
}

/// Introspects a token (RFC 7662).
#[utoipa::path(
    post, path = "/oauth/introspect", tag = "oauth", operation_id = "introspectToken",
    security(("basicAuth" = []), ("bearerAuth" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "What the token is, when it is active; else exactly `{\"active\": false}`, never why", body = IntrospectionAnswer, headers(
            ("Cache-Control" = String, description = "`no-store`"),
        )),
        (status = 400, description = "`invalid_request`: not a form, a parameter given twice, or no `token`", body = OAuthError),
        (status = 401, description = "`invalid_client`: no client authentication, a wrong secret, or a bearer token that is not an administrator's; with `WWW-Authenticate: Basic`", body = OAuthError),
        (status = 405, description = "`invalid_request`: only POST is answered", body = OAuthError),
        (status = 413, description = "`invalid_request`: the body is larger than 64 KiB", body = OAuthError),
        (status = 500, description = "`server_error`", body = OAuthError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be reached", body = OAuthError),
    )
)]
pub(crate) async fn introspect(
    req: HttpRequest,
    state: ApiState,
    body: Result<Body, ApiError>,
) -> HttpResponse {
    let body = match body {
        Ok(body) => body,
        Err(e) => return from_api_error(&e),
    };
    match client_allowed(&req, &state).await {
        Ok(true) => {}
        Ok(false) => return invalid_client(),
        Err(e) => return from_api_error(&e),
    }
    let Some(TokenForm { token: Some(token), .. }) = body.form::<TokenForm>() else {
        return invalid_request();
    };
    let found = match state.auth.introspect_cached(&token) {
        Some(found) => found,
        None => {
            let auth = state.auth.clone();
            match blocking(move || auth.introspect(&token)).await {
                Ok(found) => found,
                Err(e) => return from_api_error(&e),
            }
        }
    };
    let answer = IntrospectionAnswer::of(found);
    state.metrics.verification(if answer.active {
        Verification::Active
    } else {
        Verification::Inactive
    });
    json(StatusCode::OK, &answer)
}

/// Revokes a token (RFC 7009): a live access or refresh token ends its
/// session.
#[utoipa::path(
    post, path = "/oauth/revoke", tag = "oauth", operation_id = "revokeToken",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done, or nothing to do: the same empty answer whether the token was live, unknown or already ended"),
        (status = 400, description = "`invalid_request`: not a form, a parameter given twice, or no `token`", body = OAuthError),
        (status = 405, description = "`invalid_request`: only POST is answered", body = OAuthError),
        (status = 413, description = "`invalid_request`: the body is larger than 64 KiB", body = OAuthError),
        (status = 500, description = "`server_error`", body = OAuthError),
        (status = 503, description = "`temporarily_unavailable`: the database cannot be reached", body = OAuthError),
    )
)]
pub(crate) async fn revoke(
    req: HttpRequest,
    state: ApiState,
    body: Result<Body, ApiError>,
) -> HttpResponse {
    let body = match body {
        Ok(body) => body,
        Err(e) => return from_api_error(&e),
    };
    let Some(TokenForm { token: Some(token), .. }) = body.form::<TokenForm>() else {
        return invalid_request();
    };
    let meta = meta(&req);
    let auth = state.auth.clone();
    match blocking(move || auth.revoke_token(&token, &meta)).await {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(e) => from_api_error(&e),
    }
}

/// Any other method on the OAuth paths: 405 in the RFCs' shape.
pub(crate) async fn not_allowed() -> HttpResponse {
    let mut res = error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64_then_form_decoded() {
        // `api:s3cret`
        assert_eq!(
            basic_credentials("Basic YXBpOnMzY3JldA=="),
            Some(("api".to_owned(), "s3cret".to_owned()))
        );
        // `my%20api:a%3Ab+c`: what RFC 6749 clients (Authlib) send.
        assert_eq!(
            basic_credentials("basic bXklMjBhcGk6YSUzQWIrYw=="),
            Some(("my api".to_owned(), "a:b c".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer YXBpOnMzY3JldA=="), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic YXBp"), None, "no colon");
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
    }

    #[test]
    fn inactive_says_nothing_more() {
        let json = serde_json::to_string(&IntrospectionAnswer::of(Introspection::Inactive));
        assert_eq!(json.ok().as_deref(), Some(r#"{"active":false}"#));
    }
}
