//! The platform's own keys and their audit chain over REST
//! ([`crate::app::platform`] holds the use cases).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::audit::{EntryRange, export_response};
use super::created_once;
use crate::app::audit::{self, Entries};
use crate::app::keys::{ApiKey, KeyCreated};
use crate::app::platform;
pub use crate::app::platform::Rotation;
use crate::http::auth::PlatformScope;
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// Lists the platform's keys (never their secrets).
#[utoipa::path(get, operation_id = "platform_keys_list", path = "/v1/platform/keys", tag = "platform",
    security(("api_key" = [])),
    responses((status = 200, description = "Keys", body = Vec<ApiKey>)))]
pub async fn list_keys(
    scope: PlatformScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKey>>, Problem> {
    Ok(Json(platform::keys(&state.app, &scope)?))
}

/// Rotates the calling platform key: mints its successor and revokes it,
/// together.
#[utoipa::path(post, operation_id = "platform_keys_rotate", path = "/v1/platform/keys/rotate", tag = "platform",
    security(("api_key" = [])),
    request_body = Rotation,
    responses(
        (status = 201, description = "The new key, in the body this once; the calling key no longer works", body = KeyCreated),
        (status = 409, description = "An `Idempotency-Key` retry of a rotation that happened: the new key's secret, shown once, is not kept", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate(
    scope: PlatformScope,
    State(state): State<AppState>,
    Body(req): Body<Rotation>,
) -> Result<Response, Problem> {
    let k = platform::rotate(&state.app, &scope, req).await?;
    Ok(created_once(
        format!("/v1/platform/keys/{}", k.id),
        &k,
        format!("platform key {}", k.id),
    ))
}

/// Revokes a platform key at once; the last working one is refused.
#[utoipa::path(delete, operation_id = "platform_keys_revoke", path = "/v1/platform/keys/{key}", tag = "platform",
    security(("api_key" = [])),
    params(("key" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key, or already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The platform's last working key: rotate it instead", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_key(
    scope: PlatformScope,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode, Problem> {
    platform::revoke(&state.app, &scope, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The platform's audit entries: every platform key minted, rotated or
/// revoked, and by whom.
#[utoipa::path(get, operation_id = "platform_audit_entries", path = "/v1/platform/audit/entries", tag = "platform",
    security(("api_key" = [])),
    params(EntryRange),
    responses((status = 200, description = "Entries", body = Entries)))]
pub async fn audit_entries(
    scope: PlatformScope,
    State(state): State<AppState>,
    Query(q): Query<EntryRange>,
) -> Result<Json<Entries>, Problem> {
    let (from, limit) = q.bounds();
    let chain = scope.platform_tenant();
    Ok(Json(audit::entries(&state.app, &chain, from, limit)?))
}

/// The platform's audit chain as an export, for `aura audit verify` with
/// the platform's public key (`GET /v1/platform`).
#[utoipa::path(get, operation_id = "platform_audit_export", path = "/v1/platform/audit/export", tag = "platform",
    security(("api_key" = [])),
    responses((status = 200, description = "The export", body = String, content_type = "application/x-ndjson")))]
pub async fn audit_export(
    scope: PlatformScope,
    State(state): State<AppState>,
) -> Result<Response, Problem> {
    let chain = scope.platform_tenant();
    Ok(export_response(audit::export(&state.app, &chain).await?))
}
