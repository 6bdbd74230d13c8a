//! A tenant's signing keys over REST ([`crate::app::signing_keys`] holds
//! the use cases).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::app::signing_keys;
pub use crate::app::signing_keys::{RotateSigningKey, SigningKey};
use crate::http::auth::{Admin, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// Lists every key the tenant signed with, oldest first; the last is
/// current. What a verifier pins, and what key ids name.
#[utoipa::path(get, operation_id = "signing_keys_list", path = "/v1/tenants/{tenant}/signing-keys", tag = "tenants",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "The tenant's signing keys", body = Vec<SigningKey>),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<SigningKey>>, Problem> {
    Ok(Json(signing_keys::list(&state.app, &scope)?))
}

/// Rotates the tenant's signing key. The old key signs a last checkpoint
/// over the rotation entry and stays published for verifying what it
/// signed.
#[utoipa::path(post, operation_id = "signing_keys_rotate", path = "/v1/tenants/{tenant}/signing-keys", tag = "tenants",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = RotateSigningKey,
    responses(
        (status = 201, description = "The new current key", body = SigningKey),
        (status = 409, description = "The tenant has as many keys as it may keep", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<RotateSigningKey>,
) -> Result<(StatusCode, Json<SigningKey>), Problem> {
    let key = signing_keys::rotate(&state.app, &scope, req).await?;
    Ok((StatusCode::CREATED, Json(key)))
}
