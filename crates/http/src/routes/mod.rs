//! The route table. Every path is a resource whose default service answers
//! 405 (with `Allow`) before any extractor runs, so a wrong method is never
//! mistaken for a missing token.

pub(crate) mod admin;
pub(crate) mod analytics;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod oauth;
pub(crate) mod pages;
pub(crate) mod sessions;
pub(crate) mod verify;

use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;

/// A resource at `path` that answers other methods than `allow` with 405.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
    }))
}

/// The path segment `name` as it came (percent-decoding aside), never a
/// failure: ids are judged by the use cases, so that an id that is not a
/// UUID answers exactly like one that does not exist.
pub(crate) fn segment(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// The answer for paths that name nothing.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}

/// Registers every route.
///
/// Resources are matched in the order they are registered, and a resource
/// whose pattern matches answers (405 for another method) even when a later
/// one would have the method. So under a prefix that has `{id}` resources,
/// static paths must be registered before them: `…/sessions/all` before
/// `…/sessions/{id}`, and usage tracking's `/api/sessions/start`, `/pause`,
/// `/heatmap`, … before `/api/sessions/{id}`, or `POST /api/sessions/start`
/// would hit the `{id}` resource and answer 405.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    const GET: &str = "GET, HEAD";
    const GET_DELETE: &str = "GET, HEAD, DELETE";
    const GET_POST: &str = "GET, HEAD, POST";
    const POST: &str = "POST";
    const DELETE: &str = "DELETE";
    const PATCH: &str = "PATCH";
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
        resource("/metrics", GET)
            .route(web::get().to(health::metrics))
            .route(web::head().to(health::metrics)),
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
    .service(resource("/api/auth/password", POST).route(web::post().to(auth::change_password)))
    .service(resource("/api/v1/auth/logout-all", POST).route(web::post().to(auth::logout_all_v1)))
    .service(resource("/api/auth/validate-token", POST).route(web::post().to(auth::validate_token)))
    .service(resource("/api/auth/token-info", POST).route(web::post().to(auth::token_info)))
    // Forward auth answers every method (proxies ask with the method of
    // the request they protect), so no 405 here.
    .service(
        web::resource("/api/auth/verify")
            .route(web::post().to(verify::verify_post))
            .default_service(web::to(verify::verify)),
    )
    .service(
        web::resource("/oauth/introspect")
            .route(web::post().to(oauth::introspect))
            .default_service(web::to(oauth::not_allowed)),
    )
    .service(
        web::resource("/oauth/revoke")
            .route(web::post().to(oauth::revoke))
            .default_service(web::to(oauth::not_allowed)),
    )
    .service(
        resource("/.well-known/jwks.json", GET)
            .route(web::get().to(keys::jwks))
            .route(web::head().to(keys::jwks)),
    )
    .service(resource("/api/admin/keys/rotate", POST).route(web::post().to(keys::rotate)))
    .service(
        resource("/api/admin/users/{user_id}", PATCH).route(web::patch().to(admin::update_user)),
    )
    .service(
        resource("/api/admin/users/{user_id}/sessions", GET_DELETE)
            .route(web::get().to(admin::list_user_sessions))
            .route(web::head().to(admin::list_user_sessions))
            .route(web::delete().to(admin::delete_all_user_sessions)),
    )
    .service(
        resource("/api/admin/users/{user_id}/sessions/{id}", GET_DELETE)
            .route(web::get().to(admin::get_user_session))
            .route(web::head().to(admin::get_user_session))
            .route(web::delete().to(admin::delete_user_session)),
    )
    // The `/api/sessions` form. Static paths under /api/sessions/ first (see above).
    .service(
        resource("/api/sessions", GET_DELETE)
            .route(web::get().to(sessions::list))
            .route(web::head().to(sessions::list))
            .route(web::delete().to(sessions::delete_all)),
    )
    .configure(analytics_routes)
    .service(resource("/api/sessions/{id}", DELETE).route(web::delete().to(sessions::delete)))
    .service(
        resource("/api/sessions/{id}/deactivate", PATCH)
            .route(web::patch().to(sessions::deactivate)),
    )
    // The `/api/v1` form: `…/sessions/all` before `…/sessions/{id}`, so that "all"
    // is never taken for a session id.
    .service(
        resource("/api/v1/auth/users/me/sessions", GET_DELETE)
            .route(web::get().to(sessions::list_v1))
            .route(web::head().to(sessions::list_v1))
            .route(web::delete().to(sessions::terminate_all_v1)),
    )
    .service(
        resource("/api/v1/auth/users/me/sessions/all", DELETE)
            .route(web::delete().to(sessions::terminate_all_v1_all)),
    )
    .service(
        resource("/api/v1/auth/users/me/sessions/{id}", DELETE)
            .route(web::delete().to(sessions::terminate_v1)),
    )
    .service(
        resource("/api/audit", GET)
            .route(web::get().to(audit::everyone))
            .route(web::head().to(audit::everyone)),
    )
    .service(
        resource("/api/audit/me", GET)
            .route(web::get().to(audit::mine))
            .route(web::head().to(audit::mine)),
    )
    .service(
        resource("/api-docs/openapi.json", GET)
            .route(web::get().to(docs::openapi_json))
            .route(web::head().to(docs::openapi_json)),
    )
    // The docs page's script is 1.7 MB; gzip (when the browser asks for
    // it) sends about a third. Only here: API answers are small.
    .service(
        resource("/docs", GET)
            .wrap(Compress::default())
            .route(web::get().to(docs::page))
            .route(web::head().to(docs::page)),
    )
    .service(
        resource("/docs/{file}", GET)
            .wrap(Compress::default())
            .route(web::get().to(docs::asset))
            .route(web::head().to(docs::asset)),
    );
}

/// Usage tracking and its reports (all POST). Registered before
/// `/api/sessions/{id}`, so that `start`, `heatmap`, … are never taken for
/// session ids.
fn analytics_routes(cfg: &mut web::ServiceConfig) {
    const POST: &str = "POST";
    let post = |path: &str, route: actix_web::Route| resource(path, POST).route(route);
    cfg.service(post("/api/sessions/start", web::post().to(analytics::start)))
        .service(post("/api/sessions/pause", web::post().to(analytics::pause)))
        .service(post("/api/sessions/resume", web::post().to(analytics::resume)))
        .service(post("/api/sessions/end", web::post().to(analytics::end)))
        .service(post("/api/sessions/heatmap", web::post().to(analytics::heatmap)))
        .service(post("/api/sessions/most-active", web::post().to(analytics::most_active)))
        .service(post("/api/sessions/stats", web::post().to(analytics::stats)))
        .service(post("/api/sessions/summary", web::post().to(analytics::summary)))
        .service(post("/api/sessions/public-summary", web::post().to(analytics::public_summary)))
        .service(post("/api/sessions/timeline", web::post().to(analytics::timeline)))
        .service(post("/api/sessions/public-timeline", web::post().to(analytics::public_timeline)))
        .service(post(
            "/api/sessions/daily-time-spent",
            web::post().to(analytics::daily_time_spent),
        ))
        .service(post("/api/sessions/time-by-page", web::post().to(analytics::time_by_page)))
        .service(post(
            "/api/sessions/session-timeline-detail",
            web::post().to(analytics::session_timeline_detail),
        ))
        .service(post("/api/pages/track", web::post().to(pages::track)))
        .service(post("/api/pages/stats", web::post().to(pages::stats)));
}

#[cfg(test)]
mod tests;
// The tracking routes' tests live in a file of their own beside
// `analytics.rs` and `pages.rs`, declared here so that neither file changes.
#[cfg(test)]
mod tracking_tests;
