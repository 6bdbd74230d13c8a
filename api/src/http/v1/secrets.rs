//! A tenant's secrets over REST ([`crate::app::secrets`] holds the use
//! cases): write-only, listed by name and version.

use aura_engine::secret::SecretName;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::app::secrets;
pub use crate::app::secrets::{SecretInfo, SecretValue};
use crate::http::auth::{Admin, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// Puts a secret's value (a new secret, or the next version of one). The
/// value is never returned, listed, logged or audited.
#[utoipa::path(put, operation_id = "secrets_put", path = "/v1/tenants/{tenant}/secrets/{name}", tag = "secrets",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("name" = SecretName, Path)),
    request_body = SecretValue,
    responses(
        (status = 200, description = "Stored; its name and version", body = SecretInfo),
        (status = 409, description = "The tenant holds as many secrets as it may", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or value", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(value): Body<SecretValue>,
) -> Result<Json<SecretInfo>, Problem> {
    Ok(Json(
        secrets::put(&state.app, &scope, &path.1, value).await?,
    ))
}

/// Lists the tenant's secrets by name and version, never their values.
#[utoipa::path(get, operation_id = "secrets_list", path = "/v1/tenants/{tenant}/secrets", tag = "secrets",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Secrets", body = Vec<SecretInfo>)))]
pub async fn list(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
) -> Result<Json<Vec<SecretInfo>>, Problem> {
    Ok(Json(secrets::list(&state.app, &scope)?))
}

/// Deletes a secret.
#[utoipa::path(delete, operation_id = "secrets_delete", path = "/v1/tenants/{tenant}/secrets/{name}", tag = "secrets",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("name" = SecretName, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such secret", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    secrets::delete(&state.app, &scope, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}
