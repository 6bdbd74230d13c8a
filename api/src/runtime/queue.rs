//! A namespace's queue of missions waiting for a worker, read from the
//! engine state (the engine keeps no separate queue: a mission is queued
//! exactly when it is PENDING_EXECUTION, or executing with no live lease).

use aura_engine::ids::{AgentId, NamespaceId};
use aura_engine::machine::TenantState;
use aura_engine::mission::{Mission, MissionState};
use aura_engine::time::Timestamp;

/// The missions a claim at `now` may take, in the order claims take them:
/// missions whose worker lost its lease first (they have waited longest),
/// then the queue in the order missions entered it. Missions the engine
/// would refuse anyway (past their deadline, agent without a valid
/// credential, a stalled step waiting for an approver) are left out, so a waiting worker does not fill the audit
/// chain with refused claims.
/// `wanted` narrows the missions further (the built-in executor takes only
/// the missions labelled for it).
pub fn candidates<'t>(
    t: &'t TenantState,
    namespace: &NamespaceId,
    agent: Option<&AgentId>,
    now: Timestamp,
    wanted: impl Fn(&Mission) -> bool,
) -> Vec<&'t Mission> {
    let mut found: Vec<((u8, i64), &Mission)> = t
        .open_missions()
        .filter(|m| m.namespace() == namespace && agent.is_none_or(|a| m.agent() == a))
        .filter(|m| wanted(m))
        .filter(|m| now < m.boundary().get().runtime.deadline && t.agent_is_active(m.agent(), now))
        .filter(|m| !m.is_stalled(m.execution().next_step()))
        .filter_map(|m| {
            let e = m.execution();
            let key = match m.state() {
                MissionState::PendingExecution => {
                    let entered = m.timeline().last().map_or(0, |c| c.audit_seq);
                    (1, i64::try_from(entered).unwrap_or(i64::MAX))
                }
                MissionState::InProgress | MissionState::Executed
                    if e.is_free_at(now) && !e.is_compensating() =>
                {
                    (0, e.lease().map_or(0, |l| l.expires_at.as_millis()))
                }
                _ => return None,
            };
            Some((key, m))
        })
        .collect();
    found.sort_by_key(|(key, m)| (*key, m.id()));
    found.into_iter().map(|(_, m)| m).collect()
}
