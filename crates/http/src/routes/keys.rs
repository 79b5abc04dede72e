//! The public signing keys (`/.well-known/jwks.json`, RFC 7517) and their
//! rotation by an administrator.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::authn::{Authenticated, Meta, blocking};
use crate::envelope;
use crate::error::ApiError;
use crate::openapi::{ErrorEnvelope, KeyListEnvelope};

/// How long verifiers may cache the JWKS: a new key is published one whole
/// rotation before it signs, so five minutes of caching never meets an
/// unknown `kid` unless two rotations happen within them.
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// A JSON Web Key Set (RFC 7517 §5). Describes the wire format; the answer
/// is written from the key set itself.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format for OpenAPI only")]
pub(crate) struct JwksDocument {
    /// The public keys of the current key, the next key (published before
    /// it signs) and retired keys still verifying. Empty under HS256:
    /// symmetric keys are never published.
    keys: Vec<JwkDocument>,
}

/// A public JSON Web Key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the wire format for OpenAPI only")]
pub(crate) struct JwkDocument {
    /// Key id: the `kid` header of the tokens it signs.
    #[schema(example = "0fVjJ7vK3fQbR2n9ZyA1cw")]
    kid: String,
    /// Key type: `OKP` (EdDSA), `EC` (ES256) or `RSA` (RS256).
    #[schema(example = "OKP")]
    kty: String,
    /// The algorithm the key signs with: `EdDSA`, `ES256` or `RS256`.
    #[schema(example = "EdDSA")]
    alg: String,
    /// Always `sig`.
    #[schema(rename = "use", example = "sig")]
    use_: String,
    /// Curve: `Ed25519` (OKP) or `P-256` (EC).
    #[schema(example = "Ed25519")]
    crv: Option<String>,
    /// Public key (OKP), or its x coordinate (EC); base64url.
    x: Option<String>,
    /// The y coordinate (EC); base64url.
    y: Option<String>,
    /// Modulus (RSA); base64url.
    n: Option<String>,
    /// Public exponent (RSA); base64url.
    e: Option<String>,
}

/// The public signing keys (JWKS). Other services verify sessiond's
/// tokens offline with them: pick the key by the token's `kid`, and use
/// the key's `alg`, never the token's.
///
/// Not enveloped. Such a verifier sees a revocation only when the token
/// expires; forward auth and introspection see it at once.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "keys", operation_id = "getJwks",
    responses(
        (status = 200, description = "The JWKS (RFC 7517), not enveloped", body = JwksDocument,
            content_type = "application/json",
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    )
)]
pub(crate) async fn jwks(state: ApiState) -> HttpResponse {
    let now = kernel::OffsetDateTime::now_utc();
    let body = serde_json::to_vec(&state.auth.codec().jwks(now)).unwrap_or_default();
    let mut response = HttpResponse::Ok().body(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE));
    response
}

/// A signing key, without its private material.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyView {
    /// Key id.
    #[schema(example = "0fVjJ7vK3fQbR2n9ZyA1cw")]
    kid: String,
    /// `HS256`, `EdDSA`, `ES256` or `RS256`.
    #[schema(example = "EdDSA")]
    alg: String,
    /// `next` (published, not signing yet), `current` (signs) or `retired`
    /// (verifies until `verifiesUntil`).
    #[schema(example = "current")]
    state: String,
    /// When the key was generated.
    #[schema(example = "2024-04-05T12:00:00.000Z")]
    created_at: String,
    /// When it became current.
    activated_at: Option<String>,
    /// When it retired.
    retired_at: Option<String>,
    /// For a retired key: when its last token expires and it leaves the JWKS.
    verifies_until: Option<String>,
}

impl From<&tokens::KeyInfo> for KeyView {
    fn from(k: &tokens::KeyInfo) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.to_string(),
            state: k.state.to_string(),
            created_at: kernel::format_instant(k.created_at),
            activated_at: k.activated_at.map(kernel::format_instant),
            retired_at: k.retired_at.map(kernel::format_instant),
            verifies_until: k.verifies_until.map(kernel::format_instant),
        }
    }
}

/// The signing keys after a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyListData {
    /// Every stored key, oldest first.
    keys: Vec<KeyView>,
}

/// Rotates the signing keys (admin only): the next key signs from now on,
/// a new next key is published, the current key retires and keeps
/// verifying until its last token expires. Nobody is logged out; every
/// instance signs with the new key within one second. Audited as
/// `key_rotate`. 403 when tokens are signed with `SESSIOND_JWT_SECRET`.
#[utoipa::path(
    post, path = "/api/admin/keys/rotate", tag = "admin", operation_id = "rotateSigningKeys",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The keys after the rotation", body = KeyListEnvelope),
        (status = 401, description = "UNAUTHORIZED: no valid token", body = ErrorEnvelope),
        (status = 403, description = "FORBIDDEN: the caller is not an admin, or tokens are signed with a configured secret", body = ErrorEnvelope),
    )
)]
pub(crate) async fn rotate(
    state: ApiState,
    Authenticated(admin): Authenticated,
    Meta(meta): Meta,
) -> Result<HttpResponse, ApiError> {
    if !admin.is_admin() {
        return Err(ApiError::forbidden("Admin role required"));
    }
    let auth = state.auth;
    let keys = blocking(move || auth.rotate_keys(&admin, &meta)).await?;
    let keys = keys.iter().map(KeyView::from).collect();
    Ok(envelope::ok("Signing keys rotated", &KeyListData { keys }))
}
