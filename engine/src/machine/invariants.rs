//! Whole-state invariant checks, in the spirit of assertion-heavy state
//! machines: cheap enough to run after every command in tests and
//! simulations, and after restoring a snapshot.

use crate::audit::merkle::verify_inclusion;
use crate::digest::Digest;
use crate::machine::state::{EngineState, OpenMissions, TenantState};
use crate::mission::{Mission, MissionState, StepOutcome};

/// The first broken invariant, described for a human.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invariant broken in tenant `{tenant}`: {what}")]
pub struct InvariantViolation {
    pub tenant: String,
    pub what: String,
}

impl EngineState {
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for t in self.tenants.values() {
            check_tenant(t).map_err(|what| InvariantViolation {
                tenant: t.id.to_string(),
                what,
            })?;
        }
        Ok(())
    }
}

fn check_tenant(t: &TenantState) -> Result<(), String> {
    let mut prev = Digest::ZERO;
    let mut buf = Vec::with_capacity(512);
    for (i, e) in t.audit.entries().enumerate() {
        e.check_in_chain(&t.id, i as u64, &prev, &mut buf)
            .map_err(|err| err.to_string())?;
        prev = e.entry_hash;
    }
    let tree = t.audit.tree();
    if tree.len() != t.audit.len() {
        return Err("Merkle tree and chain differ in length".into());
    }
    if let Some(last) = t.audit.entries().next_back() {
        let size = tree.len();
        let proof = tree
            .inclusion_proof(size - 1, size)
            .map_err(|e| e.to_string())?;
        verify_inclusion(size - 1, size, &last.leaf_hash(), &proof, &tree.root())
            .map_err(|e| format!("newest entry not provably in the tree: {e}"))?;
    }
    let mut last_size = 0;
    for cp in t.audit.checkpoints() {
        cp.verify(&t.checkpoint_key(cp.size))
            .map_err(|e| format!("checkpoint at size {}: {e}", cp.size))?;
        if cp.size < last_size || tree.root_at(cp.size).ok() != Some(cp.root) {
            return Err(format!(
                "checkpoint at size {} does not match the tree",
                cp.size
            ));
        }
        last_size = cp.size;
    }
    for (serial, c) in &t.credentials {
        let signed = t
            .key_named(c.credential.key_id.as_ref())
            .is_some_and(|key| c.credential.verify_signature(&key).is_ok());
        if c.credential.claims.serial != *serial || !signed {
            return Err(format!("credential {serial} is not what the tenant signed"));
        }
    }
    for token in t.tokens.values() {
        let signed = t
            .key_named(token.key_id.as_ref())
            .is_some_and(|key| token.verify_signature(&key).is_ok());
        if !signed {
            return Err(format!(
                "token {} is not what the tenant signed",
                token.claims.token
            ));
        }
    }
    for m in t.missions.values() {
        check_mission(t, m)?;
    }
    if t.open != OpenMissions::of(&t.missions) {
        return Err("the index of open missions differs from the missions".into());
    }
    Ok(())
}

fn check_mission(t: &TenantState, m: &Mission) -> Result<(), String> {
    let id = m.id();
    if !m.context().is_intact() || !m.boundary().is_intact() {
        return Err(format!("mission {id}: frozen context or boundary changed"));
    }
    let mut state = MissionState::Created;
    for change in m.timeline() {
        let to = state
            .next(change.step)
            .map_err(|e| format!("mission {id}: timeline has an illegal move: {e}"))?;
        if change.from != state || change.to != to {
            return Err(format!("mission {id}: timeline does not chain"));
        }
        state = to;
    }
    if state != m.state() {
        return Err(format!("mission {id}: state differs from its timeline"));
    }
    // A run starts at one of the mission's own entries.
    let run = m.run();
    let started = t
        .audit
        .entry(run.first_seq)
        .is_some_and(|e| e.mission.as_ref() == Some(id));
    if run.number == 0 || !started {
        return Err(format!("mission {id}: its run does not start at its entry"));
    }
    match (m.state(), m.outcome()) {
        (MissionState::Closed, Some(sealed)) => {
            let signed = t
                .key_named(sealed.key_id())
                .is_some_and(|key| sealed.verify(&key).is_ok());
            if !signed {
                return Err(format!("mission {id}: outcome signature fails"));
            }
            let o = sealed.outcome();
            if o.context_digest != m.context().digest()
                || o.boundary_digest != m.boundary().digest()
            {
                return Err(format!("mission {id}: outcome names other frozen digests"));
            }
        }
        (MissionState::Closed, None) => {
            return Err(format!("mission {id}: closed without outcome"));
        }
        (_, Some(_)) => return Err(format!("mission {id}: outcome before CLOSED")),
        (_, None) => {}
    }
    let boundary = m.boundary().get();
    if m.dispatch_count() != m.dispatch_recount() {
        return Err(format!(
            "mission {id}: dispatch total {} is not the sum of its calls' {}",
            m.dispatch_count(),
            m.dispatch_recount()
        ));
    }
    if m.dispatch_count() > u64::from(boundary.runtime.limits.max_tool_calls) {
        return Err(format!(
            "mission {id}: more dispatches than its tool-call limit"
        ));
    }
    check_execution(m)?;
    // Claims are refused while a stalled step waits for its approver, and
    // a stall only escalates once its worker has lost the lease.
    let next = m.execution().next_step();
    if m.state() != MissionState::Closed && m.is_stalled(next) && m.execution().lease().is_some() {
        return Err(format!(
            "mission {id}: step {next} waits for an approver with a worker's lease on it"
        ));
    }
    for call in m.tool_calls() {
        if !boundary.runtime.allowed_tools.contains(&call.tool) {
            return Err(format!(
                "mission {id}: a call to {} outside its boundary",
                call.tool
            ));
        }
        if call.result.is_some() != call.completed_at.is_some() || call.dispatches == 0 {
            return Err(format!(
                "mission {id}: step {} call {} has an inconsistent record",
                call.step, call.call
            ));
        }
    }
    Ok(())
}

fn check_execution(m: &Mission) -> Result<(), String> {
    let id = m.id();
    let e = m.execution();
    if let Some(lease) = e.lease()
        && lease.epoch != e.epoch()
    {
        return Err(format!(
            "mission {id}: the lease is not of the current epoch"
        ));
    }
    let planned = m.plan().map_or(0, |p| p.steps.len());
    if e.reports().len() > planned {
        return Err(format!(
            "mission {id}: more step reports than planned steps"
        ));
    }
    for (i, r) in e.reports().iter().enumerate() {
        // Epoch 0 only for the runtime failing a step no worker claimed.
        let unclaimed = r.epoch == 0 && r.worker != crate::ids::WorkerId::runtime();
        if r.step as usize != i || unclaimed || r.epoch > e.epoch() {
            return Err(format!("mission {id}: step report {i} is out of order"));
        }
    }
    let succeeded = e
        .reports()
        .iter()
        .filter(|r| !matches!(r.outcome, StepOutcome::Failed { .. }))
        .count();
    let all_done = planned > 0 && succeeded == planned;
    let executed = m.timeline().iter().any(|c| c.to == MissionState::Executed);
    if executed != all_done {
        return Err(format!(
            "mission {id}: EXECUTED does not match its reported steps"
        ));
    }
    check_saga(m)
}

/// A saga undoes only steps that succeeded through a call, runs while
/// nobody holds the mission, and is over when the mission closes.
fn check_saga(m: &Mission) -> Result<(), String> {
    let id = m.id();
    let e = m.execution();
    let Some(saga) = e.saga() else {
        return Ok(());
    };
    let failed = e.reports().last().filter(|r| r.step == saga.failed_step);
    if !failed.is_some_and(|r| matches!(r.outcome, StepOutcome::Failed { .. })) {
        return Err(format!(
            "mission {id}: a saga without its failed step's report"
        ));
    }
    let mut previous = u32::MAX;
    for c in &saga.compensations {
        let undone = e
            .reports()
            .get(c.step as usize)
            .and_then(|r| match r.outcome {
                StepOutcome::Succeeded { call } => m.tool_call(r.step, call),
                _ => None,
            });
        if undone.is_none_or(|r| r.idempotency_key != c.compensates) || c.step >= previous {
            return Err(format!(
                "mission {id}: compensation of step {} does not undo a succeeded call, latest first",
                c.step
            ));
        }
        previous = c.step;
    }
    if e.is_compensating() && (e.lease().is_some() || m.state() != MissionState::InProgress) {
        return Err(format!(
            "mission {id}: compensating while leased or not IN_PROGRESS"
        ));
    }
    if m.state().is_closed() != saga.is_finished() {
        return Err(format!(
            "mission {id}: the saga's end does not match the mission's closing"
        ));
    }
    Ok(())
}
