//! Namespaces: where missions, policies, authority and routing live.

use aura_engine::ids::NamespaceId;
use aura_engine::machine::{CommandBody, Namespace as EngineNamespace};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use crate::auth::{Admin, Member, TenantScope};
use crate::json::Body;
use crate::problem::Problem;
use crate::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Namespace {
    pub id: String,
    pub display_name: String,
    pub created_at: String,
    /// The stable policy bundle's version, if one is set.
    pub stable_bundle: Option<String>,
    /// The canary bundle's version and share in basis points, if running.
    pub canary_bundle: Option<String>,
    pub canary_basis_points: Option<u32>,
}

impl Namespace {
    fn of(id: &NamespaceId, n: &EngineNamespace) -> Namespace {
        Namespace {
            id: id.to_string(),
            display_name: n.display_name.clone(),
            created_at: n.created_at.to_rfc3339(),
            stable_bundle: n.policy.stable.map(|d| d.to_hex()),
            canary_bundle: n.policy.canary.as_ref().map(|c| c.bundle.to_hex()),
            canary_basis_points: n.policy.canary.as_ref().map(|c| c.basis_points),
        }
    }
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
    let body = CommandBody::CreateNamespace {
        namespace: id.clone(),
        display_name: req.display_name,
    };
    state
        .app
        .propose(&scope.tenant, scope.actor(), body)
        .await?;
    let view = read_namespace(&state, &scope, &id)?;
    Ok(created(
        format!("/v1/tenants/{}/namespaces/{id}", scope.tenant),
        &view,
    ))
}

fn read_namespace<R>(
    state: &AppState,
    scope: &TenantScope<R>,
    id: &NamespaceId,
) -> Result<Namespace, Problem> {
    scope
        .read(&state.app, |t| {
            t.namespaces().get(id).map(|n| Namespace::of(id, n))
        })?
        .ok_or_else(|| no_such_namespace(id.as_str()))
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
    let namespaces = scope.read(&state.app, |t| {
        t.namespaces()
            .iter()
            .map(|(id, n)| Namespace::of(id, n))
            .collect()
    })?;
    Ok(Json(namespaces))
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
    read_namespace(&state, &scope, &id).map(Json)
}
