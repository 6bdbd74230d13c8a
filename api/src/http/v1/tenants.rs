//! Tenants over REST ([`crate::app::tenants`] holds the use cases).

use axum::Json;
use axum::extract::State;
use axum::response::Response;

use super::created_once;
use crate::app::tenants;
pub use crate::app::tenants::{FirstAdmin, NewTenant as CreateTenant, Tenant, TenantCreated};
use crate::http::auth::{Member, PlatformScope, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// Creates a tenant with its first admin user and API key.
#[utoipa::path(post, operation_id = "tenants_create", path = "/v1/tenants", tag = "tenants",
    security(("api_key" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantCreated),
        (status = 409, description = "The tenant exists (also the answer to an `Idempotency-Key` retry of a create that succeeded: the admin key's secret, shown once, is not kept)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: PlatformScope,
    State(state): State<AppState>,
    Body(req): Body<CreateTenant>,
) -> Result<Response, Problem> {
    let done = tenants::create(&state.app, &scope, req).await?;
    Ok(created_once(
        format!("/v1/tenants/{}", done.tenant.id),
        &done,
        format!(
            "Tenant {} and its admin key {}",
            done.tenant.id, done.admin_key.id
        ),
    ))
}

/// Lists all tenants.
#[utoipa::path(get, operation_id = "tenants_list", path = "/v1/tenants", tag = "tenants",
    security(("api_key" = [])),
    responses((status = 200, description = "Tenants", body = Vec<Tenant>)))]
pub async fn list(scope: PlatformScope, State(state): State<AppState>) -> Json<Vec<Tenant>> {
    Json(tenants::list(&state.app, &scope))
}

/// The platform itself, as a tenant is shown: its public key verifies
/// the platform's audit export (`GET /v1/platform/audit/export`).
#[utoipa::path(get, operation_id = "platform_get", path = "/v1/platform", tag = "platform",
    security(("api_key" = [])),
    responses((status = 200, description = "The platform", body = Tenant)))]
pub async fn platform(
    scope: PlatformScope,
    State(state): State<AppState>,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(tenants::platform(&state.app, &scope)?))
}

/// Shows the caller's tenant.
#[utoipa::path(get, operation_id = "tenants_get", path = "/v1/tenants/{tenant}", tag = "tenants",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(tenants::get(&state.app, &scope)?))
}
