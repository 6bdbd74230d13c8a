//! Agents: registered with their public key and org unit, which issues
//! their AgentIdentity credential; credentials are revocable.

use aura_engine::Timestamp;
use aura_engine::identity::PublicKey;
use aura_engine::ids::{AgentId, OrgUnitId, UserId};
use aura_engine::machine::{AgentRecord, CommandBody, Event};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use crate::auth::{AgentManager, Member, TenantScope};
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;
use crate::time::now;

const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    pub id: String,
    pub org_unit: String,
    /// The accountable human (a directory user id); never the approver of
    /// the agent's missions.
    #[serde(default)]
    pub owner: Option<String>,
    /// The agent's Ed25519 public key, base64 (standard alphabet).
    pub public_key: String,
    /// How long the credential is valid, in days (default 90, at most 397).
    #[serde(default)]
    pub valid_days: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub org_unit: String,
    pub owner: Option<String>,
    /// Serials of its credentials, oldest first.
    pub credentials: Vec<u64>,
    /// Whether a credential is valid and unrevoked now.
    pub active: bool,
}

fn view(id: &AgentId, a: &AgentRecord, active: bool) -> Agent {
    Agent {
        id: id.to_string(),
        org_unit: a.org_unit.to_string(),
        owner: a.owner.as_ref().map(ToString::to_string),
        credentials: a.credentials.clone(),
        active,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRegistered {
    pub agent: Agent,
    /// The signed AgentIdentity credential the agent presents with every
    /// call (see docs/identity.md).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCredential {
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
    let days = req.valid_days.unwrap_or(90);
    if !(1..=397).contains(&days) {
        return Err(Problem::invalid("/valid_days", "must be 1 to 397 days"));
    }
    if let Some(o) = &owner {
        let known = state
            .app
            .store()
            .user(scope.tenant.as_str(), o.as_str())
            .await
            .map_err(crate::error::store)?
            .is_some();
        if !known {
            return Err(Problem::invalid(
                "/owner",
                format!("no user `{o}` in the directory"),
            ));
        }
    }
    let at = now();
    let events = state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::IssueCredential {
                agent: agent.clone(),
                org_unit,
                owner,
                public_key,
                not_before: at,
                not_after: Timestamp(at.as_millis() + i64::from(days) * DAY_MS),
            },
        )
        .await?;
    let credential = events
        .into_iter()
        .find_map(|e| match e {
            Event::CredentialIssued { credential } => Some(credential),
            _ => None,
        })
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "no credential was issued"))?;
    let agent_view = scope
        .read(&state.app, |t| {
            t.agents()
                .get(&agent)
                .map(|a| view(&agent, a, t.agent_is_active(&agent, now())))
        })?
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "the agent vanished"))?;
    Ok(created(
        format!("/v1/tenants/{}/agents/{agent}", scope.tenant),
        &AgentRegistered {
            agent: agent_view,
            credential: serde_json::to_value(&credential).expect("credentials serialize"),
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
    let t = now();
    let found = scope.read(&state.app, |ts| {
        ts.agents()
            .iter()
            .map(|(id, a)| view(id, a, ts.agent_is_active(id, t)))
            .collect()
    })?;
    Ok(Json(found))
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
    let missing = || Problem::not_found("agent", &raw);
    let id = AgentId::new(raw.clone()).map_err(|_| missing())?;
    let t = now();
    scope
        .read(&state.app, |ts| {
            ts.agents()
                .get(&id)
                .map(|a| view(&id, a, ts.agent_is_active(&id, t)))
        })?
        .map(Json)
        .ok_or_else(missing)
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
    state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::RevokeCredential {
                serial,
                reason: req.reason,
            },
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
