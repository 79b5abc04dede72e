//! The response envelope (SPEC §1): one shape for every answer, the union of
//! the envelopes existing clients expect, so that each finds its fields.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode, ErrorDetails};
use crate::request_id;

/// A success envelope as written on the wire; the fields of `extra` (a
/// struct) sit beside `data`.
#[derive(Serialize)]
struct Success<'a, T: Serialize, X: Serialize> {
    success: bool,
    status: &'static str,
    message: &'a str,
    data: &'a T,
    #[serde(flatten)]
    extra: &'a X,
    timestamp: String,
    #[serde(rename = "requestId")]
    request_id: String,
}

/// The error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// Always `"error"`.
    #[schema(example = "error")]
    pub status: &'static str,
    /// Short human-readable summary.
    #[schema(example = "Validation failed")]
    pub message: String,
    /// What went wrong, for programs.
    pub error: ErrorBody,
    /// When the answer was made (RFC 3339, UTC, milliseconds).
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    pub timestamp: String,
    /// The request id, as in the `X-Request-Id` header.
    #[serde(rename = "requestId")]
    pub request_id: String,
}

/// `error` of the error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// A sentence, or for `VALIDATION_ERROR` an object mapping each field to
    /// its problem.
    pub details: ErrorDetails,
}

fn now() -> String {
    kernel::format_instant(kernel::OffsetDateTime::now_utc())
}

/// Nothing beside `data`.
#[derive(Serialize)]
struct NoExtra {}

/// A success answer with `status`.
pub(crate) fn success<T: Serialize>(status: StatusCode, message: &str, data: &T) -> HttpResponse {
    success_with(status, message, data, &NoExtra {})
}

/// A success answer with `status` and, beside `data`, the fields of
/// `extra` (a struct), for answers that show a payload at the top level.
pub(crate) fn success_with<T: Serialize, X: Serialize>(
    status: StatusCode,
    message: &str,
    data: &T,
    extra: &X,
) -> HttpResponse {
    let body = Success {
        success: true,
        status: "success",
        message,
        data,
        extra,
        timestamp: now(),
        request_id: request_id::current(),
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => HttpResponse::build(status).content_type(ContentType::json()).body(bytes),
        Err(e) => {
            tracing::error!(error = %e, "response could not be serialised");
            error_response(&ApiError::internal())
        }
    }
}

/// A 200 success answer.
pub(crate) fn ok<T: Serialize>(message: &str, data: &T) -> HttpResponse {
    success(StatusCode::OK, message, data)
}

/// A 200 success answer that carries a token or a secret: no cache, shared
/// or private, may keep it (`Cache-Control: no-store`, RFC 6749 §5.1, and
/// `Pragma: no-cache` for HTTP/1.0 caches).
pub(crate) fn ok_secret<T: Serialize>(message: &str, data: &T) -> HttpResponse {
    let mut response = ok(message, data);
    no_store(&mut response);
    response
}

/// Marks `response` as not to be stored by any cache (see [`ok_secret`]).
pub(crate) fn no_store(response: &mut HttpResponse) {
    use actix_web::http::header::{CACHE_CONTROL, HeaderValue, PRAGMA};
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A 200 success answer with the fields of `extra` beside `data`.
pub(crate) fn ok_with<T: Serialize, X: Serialize>(
    message: &str,
    data: &T,
    extra: &X,
) -> HttpResponse {
    success_with(StatusCode::OK, message, data, extra)
}

/// The error envelope of `e`.
fn error_envelope(e: &ApiError, timestamp: String, request_id: String) -> ErrorEnvelope {
    ErrorEnvelope {
        success: false,
        status: "error",
        message: e.message.clone(),
        error: ErrorBody { code: e.code, details: e.details.clone() },
        timestamp,
        request_id,
    }
}

/// The error envelope of `e` as JSON, dated and numbered as given: the
/// examples of the OpenAPI document.
pub(crate) fn error_json(e: &ApiError, timestamp: &str, request_id: &str) -> serde_json::Value {
    serde_json::to_value(error_envelope(e, timestamp.into(), request_id.into()))
        .unwrap_or(serde_json::Value::Null)
}

/// The error envelope for `e`, with its status (headers beyond the content
/// type are added by [`ApiError`]'s `ResponseError` impl).
pub(crate) fn error_response(e: &ApiError) -> HttpResponse {
    let body = error_envelope(e, now(), request_id::current());
    // Only strings and string maps: serialisation cannot fail, but should it,
    // a fixed body keeps the promise of an envelope.
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
        br#"{"success":false,"status":"error","message":"Internal server error","error":{"code":"INTERNAL_ERROR","details":"An unexpected error occurred"}}"#.to_vec()
    });
    HttpResponse::build(e.code.status()).content_type(ContentType::json()).body(bytes)
}

/// `data: null` on the wire, `{"type": "null"}` in the schema.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Null;

impl utoipa::PartialSchema for Null {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::Null).description(Some("Always null.")).into()
    }
}

impl ToSchema for Null {}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;
    use serde_json::{Value, json};

    fn body(res: HttpResponse) -> Value {
        let bytes = res.into_body().try_into_bytes().unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[actix_web::test]
    async fn success_envelope_has_every_field() {
        let res =
            request_id::scope("rid-1".into(), async { ok("User authenticated", &json!({"a": 1})) })
                .await;
        assert_eq!(res.status(), StatusCode::OK);
        let v = body(res);
        assert_eq!(v["success"], true);
        assert_eq!(v["status"], "success");
        assert_eq!(v["message"], "User authenticated");
        assert_eq!(v["data"], json!({"a": 1}));
        assert_eq!(v["requestId"], "rid-1");
        let ts = v["timestamp"].as_str().unwrap_or_default();
        assert!(kernel::parse_instant(ts).is_ok() && ts.ends_with('Z') && ts.len() == 24);
        assert_eq!(v.as_object().map(|o| o.len()), Some(6));
    }

    #[actix_web::test]
    async fn extra_fields_sit_beside_data() {
        #[derive(Serialize)]
        struct Top<'a> {
            heatmap_data: &'a Value,
        }
        let data = json!({"total_sessions": 2});
        let res = request_id::scope("rid-3".into(), async {
            ok_with("Heatmap", &data, &Top { heatmap_data: &data })
        })
        .await;
        let v = body(res);
        assert_eq!(v["data"], data);
        assert_eq!(v["heatmap_data"], data);
        assert_eq!(v["requestId"], "rid-3");
        assert_eq!(v.as_object().map(|o| o.len()), Some(7));
    }

    #[actix_web::test]
    async fn null_data_is_present() {
        let v = body(request_id::scope("r".into(), async { ok("x", &Null) }).await);
        assert!(v.as_object().is_some_and(|o| o.contains_key("data")));
        assert_eq!(v["data"], Value::Null);
    }

    #[actix_web::test]
    async fn error_envelope_has_every_field() {
        let res = request_id::scope("rid-2".into(), async {
            actix_web::ResponseError::error_response(&ApiError::invalid_field(
                "password",
                "is required",
            ))
        })
        .await;
        assert_eq!(res.status().as_u16(), 422);
        let v = body(res);
        assert_eq!(v["success"], false);
        assert_eq!(v["status"], "error");
        assert_eq!(v["message"], "Validation failed");
        assert_eq!(
            v["error"],
            json!({"code": "VALIDATION_ERROR", "details": {"password": "is required"}})
        );
        assert_eq!(v["requestId"], "rid-2");
        assert!(v["timestamp"].is_string());
        assert!(v.as_object().is_some_and(|o| !o.contains_key("data")));
    }

    #[test]
    fn text_details_are_a_string() {
        let v = body(error_response(&ApiError::unauthorized("Token has expired")));
        assert_eq!(v["error"]["details"], "Token has expired");
        assert_eq!(v["error"]["code"], "UNAUTHORIZED");
    }
}
