//! Approvals: each approver's inbox (what they may decide now) and their
//! decisions. The approver's groups are read from the directory at the
//! moment of the decision and carried in the command; the engine checks
//! level, quorum and separation of duties against the mission's frozen
//! boundary.

use std::collections::BTreeSet;

use aura_engine::Actor;
use aura_engine::ids::{MissionId, UserId};
use aura_engine::machine::{CommandBody, TenantState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::missions::{MissionSummary, summary};
use super::scope::{Approver, TenantScope};
use super::{App, AppError};

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

/// The directory user an approver's key acts for.
fn approver(scope: &TenantScope<Approver>) -> Result<UserId, AppError> {
    scope.caller.user.clone().ok_or_else(|| {
        AppError::Forbidden("only a key bound to a directory user can approve".into())
    })
}

async fn groups_of(
    app: &App,
    scope: &TenantScope<Approver>,
    user: &UserId,
) -> Result<BTreeSet<String>, AppError> {
    Ok(app
        .store()
        .groups_of(scope.tenant.as_str(), user.as_str())
        .await?)
}

/// What the caller may approve now: pending approvals at or below their
/// level, where separation of duties does not exclude them and they have
/// not voted yet.
pub async fn inbox(
    app: &App,
    scope: &TenantScope<Approver>,
) -> Result<Vec<PendingApproval>, AppError> {
    let user = approver(scope)?;
    let groups = groups_of(app, scope, &user).await?;
    scope.read(app, |t| pending_for(t, &user, &groups))
}

fn pending_for(t: &TenantState, user: &UserId, groups: &BTreeSet<String>) -> Vec<PendingApproval> {
    let mut out = Vec::new();
    for m in t.open_missions() {
        let Some(ns) = t.namespaces().get(m.namespace()) else {
            continue;
        };
        let Some(level) = ns.authority.graph.level_of(user, groups) else {
            continue;
        };
        let excluded = ns.authority.rules.separation_of_duties
            && (m.requester() == &Actor::User(user.clone())
                || t.agents()
                    .get(m.agent())
                    .is_some_and(|a| a.owner.as_ref() == Some(user)));
        if excluded {
            continue;
        }
        for (hold, a) in m.open_approvals() {
            let voted = a.votes.iter().any(|v| &v.approver == user);
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
}

/// An approver's vote on a mission's plan (`hold` none) or a held step.
#[derive(Debug)]
pub struct Vote {
    pub hold: Option<u32>,
    pub approve: bool,
    pub reason: String,
}

/// Records the caller's vote; the mission's state says whether it was
/// the deciding one.
pub async fn decide(
    app: &App,
    scope: &TenantScope<Approver>,
    mission: &MissionId,
    vote: Vote,
) -> Result<MissionSummary, AppError> {
    let user = approver(scope)?;
    let groups = groups_of(app, scope, &user).await?;
    let body = CommandBody::DecideApproval {
        mission: mission.clone(),
        hold: vote.hold,
        approve: vote.approve,
        groups,
        reason: vote.reason,
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    summary(app, scope, mission)
}
