//! API keys over REST ([`crate::app::keys`] holds the use cases).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::created_once;
use crate::app::keys;
pub use crate::app::keys::{ApiKey, KeyCreated, NewKey as CreateKey};
use crate::http::auth::{Admin, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// Mints an API key for a user of the tenant.
#[utoipa::path(post, operation_id = "keys_create", path = "/v1/tenants/{tenant}/api-keys", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; the key is in the body, this once", body = KeyCreated),
        (status = 409, description = "An `Idempotency-Key` retry: its first request is still running, or it minted the key, whose secret, shown once, is not kept", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<CreateKey>,
) -> Result<Response, Problem> {
    let k = keys::create(&state.app, &scope, req).await?;
    Ok(created_once(
        format!("/v1/tenants/{}/api-keys/{}", scope.tenant, k.id),
        &k,
        format!("API key {} (for user {})", k.id, k.user_id),
    ))
}

/// Lists the tenant's keys (never their secrets).
#[utoipa::path(get, operation_id = "keys_list", path = "/v1/tenants/{tenant}/api-keys", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Keys", body = Vec<ApiKey>)))]
pub async fn list(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKey>>, Problem> {
    Ok(Json(keys::list(&state.app, &scope)?))
}

/// Revokes a key at once; it can never be used again.
#[utoipa::path(delete, operation_id = "keys_revoke", path = "/v1/tenants/{tenant}/api-keys/{key}", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("key" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key, or already revoked", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    keys::revoke(&state.app, &scope, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}
