//! Approvals: each approver's inbox (what they may decide now) and their
//! decisions. A vote names the key the approver signed in with; the
//! engine checks that key, reads the approver's groups from the tenant's
//! replicated directory, and checks level, quorum and separation of
//! duties against the mission's frozen boundary.

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

/// What the caller may approve now: pending approvals at or below their
/// level, where separation of duties does not exclude them and they have
/// not voted yet.
pub fn inbox(app: &App, scope: &TenantScope<Approver>) -> Result<Vec<PendingApproval>, AppError> {
    let user = approver(scope)?;
    scope.read(app, |t| {
        let groups = t.directory().groups_of(&user);
        pending_for(t, &user, &groups)
    })
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
    approver(scope)?;
    let body = CommandBody::CastVote {
        mission: mission.clone(),
        hold: vote.hold,
        approve: vote.approve,
        reason: vote.reason,
        key: scope.caller.key_id.clone(),
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    summary(app, scope, mission)
}
