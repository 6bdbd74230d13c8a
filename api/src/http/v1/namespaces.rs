//! Namespaces over REST ([`crate::app::namespaces`] holds the use cases).

use aura_engine::ids::NamespaceId;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use crate::app::namespaces;
pub use crate::app::namespaces::Namespace;
use crate::http::auth::{Admin, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    #[schema(value_type = aura_engine::ids::NamespaceId)]
    pub id: String,
    #[schema(schema_with = crate::app::text::name)]
    pub display_name: String,
}

pub(crate) fn namespace_id(raw: &str) -> Result<NamespaceId, Problem> {
    NamespaceId::new(raw).map_err(|_| no_such_namespace(raw))
}

pub(crate) fn no_such_namespace(raw: &str) -> Problem {
    Problem::not_found("namespace", raw)
}

/// Creates a namespace.
#[utoipa::path(post, operation_id = "namespaces_create", path = "/v1/tenants/{tenant}/namespaces", tag = "namespaces",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateNamespace,
    responses(
        (status = 201, description = "Created", body = Namespace),
        (status = 409, description = "It exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<CreateNamespace>,
) -> Result<Response, Problem> {
    let id = NamespaceId::new(req.id).map_err(|e| Problem::invalid("/id", e.to_string()))?;
    let view = namespaces::create(&state.app, &scope, id.clone(), req.display_name).await?;
    Ok(created(
        format!("/v1/tenants/{}/namespaces/{id}", scope.tenant),
        &view,
    ))
}

/// Lists the tenant's namespaces.
#[utoipa::path(get, operation_id = "namespaces_list", path = "/v1/tenants/{tenant}/namespaces", tag = "namespaces",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Namespaces", body = Vec<Namespace>)))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<Namespace>>, Problem> {
    Ok(Json(namespaces::list(&state.app, &scope)?))
}

/// Shows a namespace.
#[utoipa::path(get, operation_id = "namespaces_get", path = "/v1/tenants/{tenant}/namespaces/{namespace}", tag = "namespaces",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    responses(
        (status = 200, description = "The namespace", body = Namespace),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Namespace>, Problem> {
    let (_, namespace) = path;
    let id = namespace_id(&namespace)?;
    Ok(Json(namespaces::get(&state.app, &scope, &id)?))
}
