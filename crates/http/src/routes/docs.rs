//! The OpenAPI document, served as it is committed, and the interactive
//! docs page: Swagger UI, vendored in `assets/swagger-ui` and compiled into
//! the binary, so `/docs` works on a machine that reaches no CDN.

use std::sync::OnceLock;

use actix_web::http::header::{self, ContentType};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

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

/// One file of the docs page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/swagger-ui/", $name)),
        }
    };
}

/// Everything the page loads: it names these by absolute path, and the
/// Content-Security-Policy below forbids anything from elsewhere.
const ASSETS: [Asset; 5] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("init.js", "text/javascript; charset=utf-8"),
    asset!("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    asset!("swagger-ui.css", "text/css; charset=utf-8"),
    asset!("favicon-32x32.png", "image/png"),
];

/// Only our own origin: proof, in the browser, that the page needs no CDN.
/// Swagger UI sets inline styles, and shows inline SVG and data: images.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The assets change only with the binary; an hour spares reloads
        // without keeping a stale page long after an upgrade.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(asset.bytes)
}

/// The interactive API documentation (Swagger UI), served by sessiond.
#[utoipa::path(
    get, path = "/docs", tag = "health", operation_id = "getDocsPage",
    responses((status = 200, description = "The docs page (HTML); its scripts and styles are under `/docs/`", content_type = "text/html"))
)]
pub(crate) async fn page() -> HttpResponse {
    serve(&ASSETS[0])
}

/// A script, style sheet or icon of the docs page; 404 for any other name.
pub(crate) async fn asset(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("file").unwrap_or_default();
    ASSETS.iter().skip(1).find(|a| a.name == name).map(serve).ok_or_else(ApiError::route_not_found)
}
