//! `X-Request-Id`: taken from the client when it is a sane token, made up
//! otherwise, answered on every response and repeated in the body.
//!
//! `ResponseError::error_response` gets no request, yet error envelopes must
//! carry the id. So the middleware runs the rest of the request inside a
//! task-local scope holding the id; whatever builds an envelope on that task
//! (handlers, extractors, default services) reads it with [`current`].

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument as _;

/// The header, lower-case as HTTP/2 wants it.
pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id that is kept.
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the request being answered, also kept in the request's
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(pub(crate) String);

/// The client's id when it is 1–128 characters of `[A-Za-z0-9._-]`.
pub(crate) fn accept(value: &[u8]) -> Option<&str> {
    let ok = (1..=MAX_LEN).contains(&value.len())
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { std::str::from_utf8(value).ok() } else { None }
}

/// The id for a request carrying `header` (or none).
pub(crate) fn for_header(header: Option<&HeaderValue>) -> String {
    header
        .and_then(|v| accept(v.as_bytes()))
        .map_or_else(|| kernel::new_id().to_string(), str::to_owned)
}

/// The id of the request this task is answering. Outside of a request
/// (which only tests do) a fresh id, so that envelopes are always complete.
pub(crate) fn current() -> String {
    REQUEST_ID.try_with(|id| id.0.clone()).unwrap_or_else(|_| kernel::new_id().to_string())
}

/// Runs `fut` as the request `id`.
pub(crate) async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(RequestId(id), fut).await
}

/// The middleware: decides the id, records it, runs the request in its
/// scope, and stamps the response header.
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = for_header(req.headers().get(&HEADER));
    req.extensions_mut().insert(RequestId(id.clone()));
    let header = HeaderValue::from_str(&id).ok();
    // Every log line written while answering carries the request id.
    let span = tracing::info_span!("request", request_id = %id);
    let mut res = scope(id, next.call(req)).instrument(span).await?;
    if let Some(value) = header {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_when_sane() {
        assert_eq!(accept(b"abc-123_X.y"), Some("abc-123_X.y"));
        assert_eq!(accept(b"a"), Some("a"));
        let long = "a".repeat(128);
        assert_eq!(accept(long.as_bytes()), Some(long.as_str()));
    }

    #[test]
    fn other_ids_are_replaced() {
        assert_eq!(accept(b""), None);
        assert_eq!(accept("a".repeat(129).as_bytes()), None);
        for bad in ["a b", "a/b", "a\"b", "<script>", "é", "a\tb", "a,b", "a:b"] {
            assert_eq!(accept(bad.as_bytes()), None, "{bad:?}");
        }
        let made = for_header(Some(&HeaderValue::from_static("no spaces allowed")));
        assert!(kernel::Uuid::parse_str(&made).is_ok());
        assert!(kernel::Uuid::parse_str(&for_header(None)).is_ok());
        assert_eq!(for_header(Some(&HeaderValue::from_static("req-42"))), "req-42");
    }

    #[actix_web::test]
    async fn current_reads_the_scope() {
        let inside = scope("abc".into(), async { current() }).await;
        assert_eq!(inside, "abc");
        assert_ne!(current(), "abc");
    }
}
