//! Approvals: each approver's inbox (what they may decide now) and their
//! decisions. The approver's groups are read from the directory at the
//! moment of the decision and carried in the command; the engine checks
//! level, quorum and separation of duties against the mission's frozen
//! boundary.

use std::collections::BTreeSet;

use aura_engine::ids::UserId;
use aura_engine::machine::CommandBody;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::missions::MissionSummary;
use crate::auth::{Approver, TenantScope};
use crate::error;
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingApproval {
    pub mission: MissionSummary,
    /// The held step, or none for the mission's plan.
    pub hold: Option<u32>,
    pub required_level: String,
    pub quorum: u8,
    pub approvals_so_far: usize,
    /// RFC 3339.
    pub deadline: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    pub approve: bool,
    pub reason: String,
    /// A held step's index; omitted for the mission's plan.
    #[serde(default)]
    pub hold: Option<u32>,
}

fn approver(scope: &TenantScope<Approver>) -> Result<UserId, Problem> {
    scope.caller.user.clone().ok_or_else(|| {
        Problem::new(
            ProblemKind::Forbidden,
            "only a key bound to a directory user can approve",
        )
    })
}

/// What the caller may approve now: pending approvals at or below their
/// level, where separation of duties does not exclude them and they have
/// not voted yet.
#[utoipa::path(get, operation_id = "approvals_inbox", path = "/v1/tenants/{tenant}/approvals", tag = "approvals",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The caller's inbox", body = Vec<PendingApproval>)))]
pub async fn inbox(
    scope: TenantScope<Approver>,
    State(state): State<AppState>,
) -> Result<Json<Vec<PendingApproval>>, Problem> {
    let user = approver(&scope)?;
    let groups = state
        .app
        .store()
        .groups_of(scope.tenant.as_str(), user.as_str())
        .await
        .map_err(error::store)?;
    let found = scope.read(&state.app, |t| {
        let mut out = Vec::new();
        for m in t.open_missions() {
            let Some(ns) = t.namespaces().get(m.namespace()) else {
                continue;
            };
            let Some(level) = ns.authority.graph.level_of(&user, &groups) else {
                continue;
            };
            let excluded = ns.authority.rules.separation_of_duties
                && (m.requester() == &aura_engine::Actor::User(user.clone())
                    || t.agents()
                        .get(m.agent())
                        .is_some_and(|a| a.owner.as_ref() == Some(&user)));
            if excluded {
                continue;
            }
            for (hold, a) in m.open_approvals() {
                let voted = a.votes.iter().any(|v| v.approver == user);
                if level >= a.required_level && !voted {
                    out.push(PendingApproval {
                        mission: MissionSummary::from(m),
                        hold,
                        required_level: a.required_level.to_string(),
                        quorum: a.quorum,
                        approvals_so_far: a.approvals(),
                        deadline: a.deadline.to_rfc3339(),
                    });
                }
            }
        }
        out
    })?;
    Ok(Json(found))
}

/// Approves or rejects a mission's plan or a held step.
#[utoipa::path(post, operation_id = "approvals_decide", path = "/v1/tenants/{tenant}/missions/{mission}/decisions", tag = "approvals",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = Decide,
    responses(
        (status = 200, description = "Recorded; the mission's state says whether it was the deciding vote", body = MissionSummary),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The vote was refused (level, quorum, separation of duties, nothing pending)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decide(
    scope: TenantScope<Approver>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<Decide>,
) -> Result<Json<MissionSummary>, Problem> {
    let user = approver(&scope)?;
    let mission = super::missions::mission_id(&path.1)?;
    let groups: BTreeSet<String> = state
        .app
        .store()
        .groups_of(scope.tenant.as_str(), user.as_str())
        .await
        .map_err(error::store)?;
    state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::DecideApproval {
                mission: mission.clone(),
                hold: req.hold,
                approve: req.approve,
                groups,
                reason: req.reason,
            },
        )
        .await?;
    scope
        .read(&state.app, |t| {
            t.missions().get(&mission).map(MissionSummary::from)
        })?
        .map(Json)
        .ok_or_else(|| Problem::new(ProblemKind::NotFound, "the mission vanished"))
}
