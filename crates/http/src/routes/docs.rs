//! The OpenAPI document, served as it is committed.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get, path = "/api-docs/openapi.json", tag = "health", operation_id = "getOpenApi",
    responses((status = 200, description = "The OpenAPI document (not enveloped)", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> HttpResponse {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let doc = DOC.get_or_init(|| Bytes::from(crate::openapi_json()));
    HttpResponse::Ok().content_type(ContentType::json()).body(doc.clone())
}
