//! The route table. Every path is a resource whose default service answers
//! 405 (with `Allow`) before any extractor runs, so a wrong method is never
//! mistaken for a missing token.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod docs;
pub(crate) mod health;

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

/// A resource at `path` that answers other methods than `allow` with 405.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
    }))
}

/// The answer for paths that name nothing.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    const GET: &str = "GET, HEAD";
    const GET_POST: &str = "GET, HEAD, POST";
    const POST: &str = "POST";
    cfg.service(
        resource("/", GET_POST)
            .route(web::get().to(health::root))
            .route(web::head().to(health::root))
            .route(web::post().to(health::root_post)),
    )
    .service(
        resource("/api/health", GET_POST)
            .route(web::get().to(health::api_health))
            .route(web::head().to(health::api_health))
            .route(web::post().to(health::api_health_post)),
    )
    .service(
        resource("/health/live", GET)
            .route(web::get().to(health::live))
            .route(web::head().to(health::live)),
    )
    .service(
        resource("/health/ready", GET)
            .route(web::get().to(health::ready))
            .route(web::head().to(health::ready)),
    )
    .service(resource("/api/auth/health", POST).route(web::post().to(health::auth_health)))
    .service(resource("/api/auth/register", POST).route(web::post().to(auth::register)))
    .service(resource("/api/auth/login", POST).route(web::post().to(auth::login)))
    .service(
        resource("/api/auth/me", GET)
            .route(web::get().to(auth::me))
            .route(web::head().to(auth::me)),
    )
    .service(resource("/api/auth/refresh", POST).route(web::post().to(auth::refresh)))
    .service(resource("/api/auth/logout", POST).route(web::post().to(auth::logout)))
    .service(resource("/api/auth/logout-all", POST).route(web::post().to(auth::logout_all)))
    .service(resource("/api/v1/auth/logout-all", POST).route(web::post().to(auth::logout_all_v1)))
    .service(resource("/api/auth/validate-token", POST).route(web::post().to(auth::validate_token)))
    .service(resource("/api/auth/token-info", POST).route(web::post().to(auth::token_info)))
    .service(
        resource("/api/admin/users/{user_id}", "PATCH").route(web::patch().to(admin::update_user)),
    )
    .service(
        resource("/api-docs/openapi.json", GET)
            .route(web::get().to(docs::openapi_json))
            .route(web::head().to(docs::openapi_json)),
    );
}
