//! Forward authentication (SPEC §6): `/api/auth/verify` answers a reverse
//! proxy (nginx `auth_request`, Traefik ForwardAuth, Caddy
//! `forward_auth`, Envoy `ext_authz`) whether the request it is about to
//! pass on carries a live token, and who it belongs to, in headers the
//! proxy copies to the upstream.
//!
//! Every method answers alike: proxies ask with the method of the request
//! they protect (Traefik and Caddy) or with the subrequest's own (nginx).
//! The answer comes from the same hot path as every authenticated request
//! (signature and session cache, the database only on a cache miss), so a
//! revoked session is refused on the very next request.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::ApiState;
use crate::authn::{MISSING_TOKEN, authenticate_token, bearer_token};
use crate::envelope::{self, Null};
use crate::error::ApiError;
use crate::metrics::Verification;
use crate::openapi::{EmptyEnvelope, ErrorEnvelope};
use crate::query::{QueryParams, parse_with};
use crate::routes::auth::check_app;

/// The query of `/api/auth/verify`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyQuery {
    /// The app the token must be for: a token of another app is a 403 (an
    /// invalid app name is a 422, which a proxy reports as its own error:
    /// it is a mistake in the proxy's configuration, not the client's).
    #[param(example = "web", max_length = 64)]
    #[expect(dead_code, reason = "describes the query for OpenAPI; read by QueryParams")]
    app: Option<String>,
}

/// The identity headers of a 200, in the order they are documented.
const USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
const USERNAME: HeaderName = HeaderName::from_static("x-auth-username");
const SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
const APP: HeaderName = HeaderName::from_static("x-auth-app");
const ROLE: HeaderName = HeaderName::from_static("x-auth-role");

/// The value of cookie `name` among the request's `Cookie` headers (the
/// first one, surrounding quotes removed; RFC 6265 §5.4).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
        })
        .filter(|v| !v.is_empty())
}

/// The token to check: the bearer token, else the configured cookie. A
/// malformed bearer header never falls back to the cookie (several
/// `Authorization` headers are a 401, as everywhere).
fn presented_token(req: &HttpRequest, state: &ApiState) -> Result<String, ApiError> {
    if let Some(token) = bearer_token(req.headers())? {
        return Ok(token.to_owned());
    }
    state
        .token_endpoints
        .verify_cookie
        .as_deref()
        .and_then(|name| cookie(req.headers(), name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::unauthorized(MISSING_TOKEN))
}

/// Checks the request's token for a reverse proxy.
#[utoipa::path(
    get, path = "/api/auth/verify", tag = "auth", operation_id = "verifyGet",
    params(VerifyQuery),
    security(("bearerAuth" = []), ("verifyCookie" = [])),
    responses(
        (status = 200, description = "The token is live; who it belongs to is in the headers (every method answers alike: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, …)", body = EmptyEnvelope, headers(
            ("X-Auth-User-Id" = String, description = "The user's id"),
            ("X-Auth-Username" = String, description = "The user's username"),
            ("X-Auth-Session-Id" = String, description = "The session's id"),
            ("X-Auth-App" = String, description = "The app the session was opened for"),
            ("X-Auth-Role" = String, description = "The user's role now (`user` or `admin`)"),
            ("Cache-Control" = String, description = "`no-store`: the answer is about this token now"),
        )),
        (status = 401, description = "No token, an invalid or expired one, several Authorization headers, or its session is no longer active; with `WWW-Authenticate: Bearer`", body = ErrorEnvelope),
        (status = 403, description = "The token is for another app than `app`", body = ErrorEnvelope),
        (status = 422, description = "`app` is not a valid application name", body = ErrorEnvelope),
    )
)]
pub(crate) async fn verify(req: HttpRequest, state: ApiState) -> Result<HttpResponse, ApiError> {
    let answer = check(&req, &state).await;
    state.metrics.verification(match &answer {
        Ok(_) => Verification::Verified,
        Err(_) => Verification::Refused,
    });
    answer
}

/// Checks the request's token for a reverse proxy (the same as `GET`; the
/// body, if any, is ignored).
#[utoipa::path(
    post, path = "/api/auth/verify", tag = "auth", operation_id = "verifyPost",
    params(VerifyQuery),
    security(("bearerAuth" = []), ("verifyCookie" = [])),
    responses(
        (status = 200, description = "The token is live; who it belongs to is in the headers", body = EmptyEnvelope, headers(
            ("X-Auth-User-Id" = String, description = "The user's id"),
            ("X-Auth-Username" = String, description = "The user's username"),
            ("X-Auth-Session-Id" = String, description = "The session's id"),
            ("X-Auth-App" = String, description = "The app the session was opened for"),
            ("X-Auth-Role" = String, description = "The user's role now (`user` or `admin`)"),
            ("Cache-Control" = String, description = "`no-store`: the answer is about this token now"),
        )),
        (status = 401, description = "No token, an invalid or expired one, several Authorization headers, or its session is no longer active; with `WWW-Authenticate: Bearer`", body = ErrorEnvelope),
        (status = 403, description = "The token is for another app than `app`", body = ErrorEnvelope),
        (status = 422, description = "`app` is not a valid application name", body = ErrorEnvelope),
    )
)]
pub(crate) async fn verify_post(
    req: HttpRequest,
    state: ApiState,
) -> Result<HttpResponse, ApiError> {
    verify(req, state).await
}

async fn check(req: &HttpRequest, state: &ApiState) -> Result<HttpResponse, ApiError> {
    let token = presented_token(req, state)?;
    // Authentication marks the session as used: a request through the
    // proxy is the user's activity.
    let p = authenticate_token(req, token).await?;
    let query = QueryParams::parse(req.query_string())?;
    let app = parse_with(&query, |q, v| q.text("app", v))?;
    check_app(&p.session.app, app.as_deref())?;
    let mut res = envelope::ok("Token is valid", &Null);
    envelope::no_store(&mut res);
    let headers = res.headers_mut();
    let values = [
        (USER_ID, p.user.id.to_string()),
        (USERNAME, p.user.username.as_str().to_owned()),
        (SESSION_ID, p.session.id.to_string()),
        (APP, p.session.app.to_string()),
        (ROLE, p.user.role.as_str().to_owned()),
    ];
    for (name, value) in values {
        // Usernames, app names, roles and ids are printable ASCII by
        // construction; anything else would be a bug, never a header.
        let value = HeaderValue::from_str(&value).map_err(|_| {
            tracing::error!(header = %name, "identity header is not a valid header value");
            ApiError::internal()
        })?;
        headers.insert(name, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = with_cookies(&["a=1; sessiond_at=tok.en.x ; b=2"]);
        assert_eq!(cookie(&h, "sessiond_at"), Some("tok.en.x"));
        assert_eq!(cookie(&h, "sessiond"), None);
        let h = with_cookies(&["x=1", "sessiond_at=\"quoted\""]);
        assert_eq!(cookie(&h, "sessiond_at"), Some("quoted"));
        assert_eq!(cookie(&with_cookies(&["sessiond_at="]), "sessiond_at"), None);
        assert_eq!(cookie(&HeaderMap::new(), "sessiond_at"), None);
    }
}

#[cfg(test)]
mod app_tests;
