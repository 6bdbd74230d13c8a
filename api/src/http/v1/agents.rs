//! Agents over REST ([`crate::app::agents`] holds the use cases).

use aura_engine::identity::{AgentCredential, PublicKey};
use aura_engine::ids::{AgentId, OrgUnitId, UserId};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
pub use crate::app::agents::Agent;
use crate::app::agents::{self, DEFAULT_VALID_DAYS, NewAgent};
use crate::http::auth::{AgentManager, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    #[schema(value_type = aura_engine::ids::AgentId)]
    pub id: String,
    #[schema(value_type = aura_engine::ids::OrgUnitId)]
    pub org_unit: String,
    /// The accountable human (a directory user id); never the approver of
    /// the agent's missions.
    #[serde(default)]
    #[schema(value_type = Option<aura_engine::ids::UserId>)]
    pub owner: Option<String>,
    /// The agent's Ed25519 public key, base64 (standard alphabet).
    #[schema(value_type = aura_engine::identity::PublicKey)]
    pub public_key: String,
    /// How long the credential is valid, in days (default 90, at most 397).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 397)]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRegistered {
    pub agent: Agent,
    /// The signed AgentIdentity credential the agent presents with every
    /// call (see docs/identity.md).
    pub credential: AgentCredential,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCredential {
    #[schema(schema_with = crate::app::text::note)]
    pub reason: String,
}

/// Registers an agent (or issues a new credential to a registered one).
#[utoipa::path(post, operation_id = "agents_register", path = "/v1/tenants/{tenant}/agents", tag = "agents",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = RegisterAgent,
    responses(
        (status = 201, description = "The credential was issued", body = AgentRegistered),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    scope: TenantScope<AgentManager>,
    State(state): State<AppState>,
    Body(req): Body<RegisterAgent>,
) -> Result<Response, Problem> {
    let agent = AgentId::new(req.id).map_err(|e| Problem::invalid("/id", e.to_string()))?;
    let org_unit =
        OrgUnitId::new(req.org_unit).map_err(|e| Problem::invalid("/org_unit", e.to_string()))?;
    let owner = req
        .owner
        .map(UserId::new)
        .transpose()
        .map_err(|e| Problem::invalid("/owner", e.to_string()))?;
    let public_key = PublicKey::from_base64(&req.public_key)
        .map_err(|_| Problem::invalid("/public_key", "not a base64 Ed25519 public key"))?;
    let new = NewAgent {
        id: agent.clone(),
        org_unit,
        owner,
        public_key,
        valid_days: req.valid_days.unwrap_or(DEFAULT_VALID_DAYS),
    };
    let (view, credential) = agents::register(&state.app, &scope, new).await?;
    Ok(created(
        format!("/v1/tenants/{}/agents/{agent}", scope.tenant),
        &AgentRegistered {
            agent: view,
            credential,
        },
    ))
}

/// Lists the tenant's agents.
#[utoipa::path(get, operation_id = "agents_list", path = "/v1/tenants/{tenant}/agents", tag = "agents",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Agents", body = Vec<Agent>)))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<Agent>>, Problem> {
    Ok(Json(agents::list(&state.app, &scope)?))
}

/// Shows an agent.
#[utoipa::path(get, operation_id = "agents_get", path = "/v1/tenants/{tenant}/agents/{agent}", tag = "agents",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("agent" = String, Path)),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Agent>, Problem> {
    let (_, raw) = path;
    let id = AgentId::new(raw.clone()).map_err(|_| Problem::not_found("agent", &raw))?;
    Ok(Json(agents::get(&state.app, &scope, &id)?))
}

/// Revokes one of the tenant's credentials; the agent can no longer act
/// with it.
#[utoipa::path(post, operation_id = "agents_revoke", path = "/v1/tenants/{tenant}/credentials/{serial}/revoke", tag = "agents",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("serial" = u64, Path)),
    request_body = RevokeCredential,
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    scope: TenantScope<AgentManager>,
    State(state): State<AppState>,
    Path(path): Path<(String, u64)>,
    Body(req): Body<RevokeCredential>,
) -> Result<axum::http::StatusCode, Problem> {
    let (_, serial) = path;
    agents::revoke(&state.app, &scope, serial, req.reason).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
