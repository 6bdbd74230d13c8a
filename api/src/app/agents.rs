//! Agents: registered with their public key and org unit, which issues
//! their AgentIdentity credential; credentials are revocable.

use aura_engine::Timestamp;
use aura_engine::identity::{AgentCredential, PublicKey};
use aura_engine::ids::{AgentId, OrgUnitId, UserId};
use aura_engine::machine::{AgentRecord, CommandBody, Event, TenantState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{AgentManager, Member, TenantScope};
use super::{App, AppError};
use crate::time::now;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long a credential lasts when the registration names no term.
pub const DEFAULT_VALID_DAYS: u32 = 90;
/// The longest term a credential may have (as for public TLS
/// certificates).
pub const MAX_VALID_DAYS: u32 = 397;

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

fn view(t: &TenantState, id: &AgentId, a: &AgentRecord, at: Timestamp) -> Agent {
    Agent {
        id: id.to_string(),
        org_unit: a.org_unit.to_string(),
        owner: a.owner.as_ref().map(ToString::to_string),
        credentials: a.credentials.clone(),
        active: t.agent_is_active(id, at),
    }
}

/// What registering an agent needs.
#[derive(Debug)]
pub struct NewAgent {
    pub id: AgentId,
    pub org_unit: OrgUnitId,
    /// The accountable human; never the approver of the agent's missions.
    pub owner: Option<UserId>,
    pub public_key: PublicKey,
    pub valid_days: u32,
}

/// Registers an agent (or issues a new credential to a registered one):
/// the agent, and the credential it presents at the gateway.
pub async fn register(
    app: &App,
    scope: &TenantScope<AgentManager>,
    new: NewAgent,
) -> Result<(Agent, AgentCredential), AppError> {
    if !(1..=MAX_VALID_DAYS).contains(&new.valid_days) {
        return Err(AppError::invalid("/valid_days", "must be 1 to 397 days"));
    }
    if let Some(o) = &new.owner {
        let known = scope.read(app, |t| t.directory().users().contains_key(o))?;
        if !known {
            return Err(AppError::invalid(
                "/owner",
                format!("no user `{o}` in the directory"),
            ));
        }
    }
    let at = now();
    let body = CommandBody::IssueCredential {
        agent: new.id.clone(),
        org_unit: new.org_unit,
        owner: new.owner,
        public_key: new.public_key,
        not_before: at,
        not_after: Timestamp(at.as_millis() + i64::from(new.valid_days) * DAY_MS),
    };
    let events = app.propose(&scope.tenant, scope.actor(), body).await?;
    let credential = events
        .into_iter()
        .find_map(|e| match e {
            Event::CredentialIssued { credential } => Some(credential),
            _ => None,
        })
        .ok_or_else(|| AppError::Internal("no credential was issued".into()))?;
    let agent = scope
        .read(app, |t| {
            t.agents().get(&new.id).map(|a| view(t, &new.id, a, now()))
        })?
        .ok_or_else(|| AppError::Internal("the agent vanished".into()))?;
    Ok((agent, credential))
}

/// The tenant's agents.
pub fn list(app: &App, scope: &TenantScope<Member>) -> Result<Vec<Agent>, AppError> {
    let at = now();
    scope.read(app, |t| {
        t.agents()
            .iter()
            .map(|(id, a)| view(t, id, a, at))
            .collect()
    })
}

/// One agent.
pub fn get(app: &App, scope: &TenantScope<Member>, id: &AgentId) -> Result<Agent, AppError> {
    let at = now();
    scope
        .read(app, |t| t.agents().get(id).map(|a| view(t, id, a, at)))?
        .ok_or_else(|| AppError::not_found("agent", id.as_str()))
}

/// Revokes a credential: the gateway refuses it from the next call on.
pub async fn revoke(
    app: &App,
    scope: &TenantScope<AgentManager>,
    serial: u64,
    reason: String,
) -> Result<(), AppError> {
    let body = CommandBody::RevokeCredential { serial, reason };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    Ok(())
}
