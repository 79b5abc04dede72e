//! Who is calling: the bearer token, the [`Authenticated`] extractor, and
//! the facts about a request the use cases record ([`RequestMeta`]).

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, web};
use auth::{Principal, RequestMeta};
use futures_util::future::LocalBoxFuture;

use crate::ApiState;
use crate::error::ApiError;
use crate::request_id;

/// What a 401 says when no bearer token came.
pub(crate) const MISSING_TOKEN: &str = "Invalid or missing authentication token";

/// Runs a use case on the blocking pool: use cases block on the store and
/// on Argon2, which must never stall an async worker. Its error (of
/// [`auth`] or [`analytics`]) becomes an [`ApiError`].
pub(crate) async fn blocking<T, E, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    Ok(web::block(f).await??)
}

/// What a 401 says when a request carries several `Authorization` headers.
pub(crate) const SEVERAL_AUTHORIZATIONS: &str = "Only one Authorization header is allowed";

/// The token of an `Authorization: Bearer <token>` header (scheme
/// case-insensitive); `Ok(None)` when there is no such header or it is of
/// another scheme. Several `Authorization` headers are refused: proxies and
/// frameworks disagree about which one counts (the first, the last, both
/// joined), so a request built to be read one way by a gateway and another
/// way here is answered 401 rather than guessed at.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ApiError::unauthorized(SEVERAL_AUTHORIZATIONS));
    }
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.trim().split_once([' ', '\t']))
    else {
        return Ok(None);
    };
    let token = token.trim();
    Ok((scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token))
}

/// The shared state; missing only when the app is wired wrongly.
pub(crate) fn state(req: &HttpRequest) -> Result<web::Data<ApiState>, ApiError> {
    req.app_data::<web::Data<ApiState>>().cloned().ok_or_else(|| {
        tracing::error!("ApiState is not registered as app data");
        ApiError::internal()
    })
}

/// Authenticates the request's bearer token.
pub(crate) async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let token = bearer_token(req.headers())?
        .ok_or_else(|| ApiError::unauthorized(MISSING_TOKEN))?
        .to_owned();
    let principal = authenticate_token(req, token).await?;
    state(req)?.rate_limits.check_user(req, principal.user.id)?;
    Ok(principal)
}

/// Authenticates `token` on the hot path every authenticated request
/// takes (the session cache, the blocking pool only on a miss), without
/// counting it against the per-user rate limit: forward auth calls this
/// for requests a gateway passes on, which that gateway limits.
pub(crate) async fn authenticate_token(
    req: &HttpRequest,
    token: String,
) -> Result<Principal, ApiError> {
    let state = state(req)?;
    // The hot path: signature and the session cache, no thread hop. Only a
    // cache miss or a due `last_activity` write goes to the blocking pool.
    let principal = match state.auth.authenticate_cached(&token) {
        Some(answer) => answer?,
        None => {
            let auth = state.auth.clone();
            blocking(move || auth.authenticate(&token)).await?
        }
    };
    Ok(principal)
}

/// The caller of a request that needs a valid bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(Self) })
    }
}

/// The client address: the peer, or what trusted proxies forwarded (see
/// [`crate::client_ip`]).
pub(crate) fn client_ip(req: &HttpRequest) -> Option<String> {
    client_addr(req).map(|ip| ip.to_string())
}

/// The client address (see [`client_ip`]), unformatted.
pub(crate) fn client_addr(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    let state = req.app_data::<web::Data<ApiState>>();
    match state {
        Some(s) if !s.trusted_proxies.is_empty() => {
            crate::client_ip::resolve(peer, req.headers(), &s.trusted_proxies)
        }
        // Nothing trusted: the headers are never even read.
        _ => peer.map(|p| p.to_canonical()),
    }
}

/// Facts about the request for the session record and the audit log.
pub(crate) fn meta(req: &HttpRequest) -> RequestMeta {
    RequestMeta {
        ip: client_ip(req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        request_id: Some(request_id::current()),
    }
}

/// Facts about the request, as an extractor.
#[derive(Debug, Clone)]
pub(crate) struct Meta(pub(crate) RequestMeta);

impl FromRequest for Meta {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self(meta(req))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn with(auth: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(auth));
        h
    }

    fn token(h: &HeaderMap) -> Option<&str> {
        bearer_token(h).expect("one header at most")
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(token(&with("Bearer abc.def")), Some("abc.def"));
        assert_eq!(token(&with("bearer   abc ")), Some("abc"));
        assert_eq!(token(&with("BEARER abc")), Some("abc"));
        assert_eq!(token(&with("Basic dXNlcjpwYXNz")), None);
        assert_eq!(token(&with("Bearer")), None);
        assert_eq!(token(&with("Bearer ")), None);
        assert_eq!(token(&with("abc")), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }

    #[test]
    fn several_authorization_headers_are_refused() {
        for second in ["Bearer abc.def", "Bearer other", "Basic dXNlcjpwYXNz"] {
            let mut h = with("Bearer abc.def");
            h.append(header::AUTHORIZATION, HeaderValue::from_static(second));
            let e = bearer_token(&h).expect_err("two headers");
            assert_eq!(e.code, crate::error::ErrorCode::Unauthorized);
        }
    }
}
