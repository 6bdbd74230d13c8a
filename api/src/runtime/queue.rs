//! A namespace's queue of missions waiting for a worker, read from the
//! engine state. The queue is not a record of its own: a mission is queued
//! exactly when it is PENDING_EXECUTION, or executing with no live lease,
//! and the engine keeps an index of those derived from the missions.

use aura_engine::ids::{AgentId, NamespaceId};
use aura_engine::machine::TenantState;
use aura_engine::mission::Mission;
use aura_engine::time::Timestamp;

/// The missions a claim at `now` may take, lazily, in the order claims
/// take them:
/// missions whose worker lost its lease first (they have waited longest),
/// then the queue in the order missions entered it. Missions the engine
/// would refuse anyway (past their deadline, agent without a valid
/// credential, a stalled step waiting for an approver) are left out, so a
/// waiting worker does not fill the audit chain with refused claims.
/// `wanted` narrows the missions further (the built-in executor takes only
/// the missions labelled for it).
pub fn candidates<'t>(
    t: &'t TenantState,
    namespace: &'t NamespaceId,
    agent: Option<&'t AgentId>,
    now: Timestamp,
    wanted: impl Fn(&Mission) -> bool + 't,
) -> impl Iterator<Item = &'t Mission> {
    t.claimable_missions(now)
        .filter(move |m| m.namespace() == namespace && agent.is_none_or(|a| m.agent() == a))
        .filter(move |m| wanted(m))
        .filter(move |m| {
            now < m.boundary().get().runtime.deadline && t.agent_is_active(m.agent(), now)
        })
        .filter(|m| !m.is_stalled(m.execution().next_step()))
}
