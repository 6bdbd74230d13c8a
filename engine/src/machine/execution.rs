//! Handlers of the worker protocol: claim with a lease, heartbeat, report a
//! step, and the runtime's lease expiry. The epoch of every claim is what
//! keeps a superseded worker from changing anything.

use serde_json::Value;

use crate::canonical;
use crate::identity::token::{ExecutionToken, ExecutionTokenClaims};
use crate::ids::{MissionId, TokenId, WorkerId};
use crate::machine::apply::{
    Ctx, MAX_NOTE_CHARS, MAX_RESULT_BYTES, check_actor_may_act, check_text, commit, encoding,
    mission_for,
};
use crate::machine::event::Event;
use crate::machine::event::HeldStep;
use crate::machine::governance::check_deadline;
use crate::machine::rejection::Rejection;
use crate::machine::saga;
use crate::machine::state::TenantState;
use crate::machine::tool_calls;
use crate::mission::execution::{MAX_LEASE, MAX_PROGRESS_BYTES, MIN_LEASE};
use crate::mission::{
    CallResult, HoldKind, Lease, Mission, MissionState, Step, StepOutcome, StepReport, StepTimeout,
};
use crate::policy::Decision;
use crate::time::{Millis, Timestamp};

fn check_lease_length(lease: Millis) -> Result<(), Rejection> {
    if lease < MIN_LEASE || lease > MAX_LEASE {
        return Err(Rejection::LeaseOutOfRange { ms: lease.0 });
    }
    Ok(())
}

/// The lease a claim or heartbeat asking for `asked` gets: no longer than
/// the next step's heartbeat timeout.
fn lease_for(t: &TenantState, m: &Mission, asked: Millis) -> Millis {
    t.step_timeouts(m, m.execution().next_step())
        .map_or(asked, |timeouts| timeouts.cap_lease(asked))
}

/// The lease of `epoch` is the mission's current one and still held.
fn check_holder(m: &Mission, epoch: u64, at: Timestamp) -> Result<&Lease, Rejection> {
    let current = m.execution().epoch();
    if epoch != current {
        return Err(Rejection::StaleEpoch { epoch, current });
    }
    m.execution()
        .lease()
        .filter(|l| l.is_held_at(at))
        .ok_or(Rejection::LeaseLost { epoch })
}

pub(super) fn claim(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    worker: &WorkerId,
    lease: Millis,
    token: &TokenId,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    let from = m.state();
    let starts = match from {
        MissionState::PendingExecution => true,
        MissionState::InProgress | MissionState::Executed => false,
        other => return Err(Rejection::NotClaimable(other)),
    };
    if m.execution().is_compensating() {
        return Err(Rejection::Compensating);
    }
    check_deadline(m, c)?;
    check_lease_length(lease)?;
    let next_step = m.execution().next_step();
    if m.is_stalled(next_step) {
        return Err(Rejection::StepHeld { step: next_step });
    }
    if let Some(held) = m.execution().lease().filter(|l| l.is_held_at(c.at)) {
        return Err(Rejection::LeaseHeld {
            worker: held.worker.clone(),
            expires_at: held.expires_at,
        });
    }
    if t.tokens.contains_key(token) {
        return Err(Rejection::TokenExists(token.clone()));
    }
    if !t.agent_is_active(m.agent(), c.at) {
        return Err(Rejection::NoActiveCredential(m.agent().clone()));
    }
    let boundary = m.boundary();
    let claims = ExecutionTokenClaims {
        token: token.clone(),
        tenant: t.id.clone(),
        mission: id.clone(),
        agent: m.agent().clone(),
        allowed_tools: boundary.get().runtime.allowed_tools.clone(),
        parameters: Default::default(),
        issued_at: c.at,
        // The token lives as long as the mission may; a later claim retires
        // it sooner.
        expires_at: boundary.get().runtime.deadline,
        boundary_digest: boundary.digest(),
    };
    let signed = ExecutionToken::issue(claims, t.key.signer()).map_err(encoding)?;
    let epoch = m.execution().epoch() + 1;
    let expires_at = c.at.plus(lease_for(t, m, lease));
    let superseded = m.execution().lease().map(|l| l.epoch);
    let mut events = Vec::with_capacity(2);
    if starts {
        events.push(Event::MissionAdvanced {
            mission: id.clone(),
            from,
            to: MissionState::InProgress,
            step: Step::Start,
        });
    }
    events.push(Event::MissionClaimed {
        mission: id.clone(),
        worker: worker.clone(),
        epoch,
        expires_at,
        token: signed.clone(),
        superseded,
        next_step: m.execution().next_step(),
    });
    commit(t, c, c.kind, events, |t, _| {
        t.tokens.insert(token.clone(), signed);
    })
}

pub(super) fn heartbeat(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    epoch: u64,
    lease: Millis,
    progress: &Option<Value>,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    if !matches!(m.state(), MissionState::InProgress | MissionState::Executed) {
        return Err(Rejection::NotExecuting(m.state()));
    }
    check_holder(m, epoch, c.at)?;
    check_deadline(m, c)?;
    check_lease_length(lease)?;
    if let Some(p) = progress {
        let bytes = canonical::to_bytes(p).map_err(encoding)?.len();
        if bytes > MAX_PROGRESS_BYTES {
            return Err(Rejection::ProgressTooLarge {
                bytes,
                max: MAX_PROGRESS_BYTES,
            });
        }
    }
    let expires_at = c.at.plus(lease_for(t, m, lease));
    let events = vec![Event::HeartbeatRecorded {
        mission: id.clone(),
        epoch,
        expires_at,
        progress: progress.clone(),
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn report_step(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    epoch: u64,
    step: u32,
    outcome: &StepOutcome,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    if m.state() != MissionState::InProgress {
        return Err(Rejection::NotExecuting(m.state()));
    }
    let worker = check_holder(m, epoch, c.at)?.worker.clone();
    check_deadline(m, c)?;
    let expected = m.execution().next_step();
    if step != expected {
        return Err(Rejection::StepOutOfOrder { step, expected });
    }
    let steps = &m.plan().expect("an executing mission has a plan").steps;
    let planned = &steps[step as usize];
    let output = match outcome {
        StepOutcome::Succeeded { call } => m
            .tool_call(step, *call)
            .filter(|r| r.tool == planned.tool)
            .and_then(|r| match &r.result {
                Some(CallResult::Succeeded { output, .. }) => Some(output.clone()),
                _ => None,
            })
            .ok_or_else(|| Rejection::StepCallNotSucceeded {
                step,
                call: *call,
                tool: planned.tool.clone(),
            })?,
        StepOutcome::Performed { output } => {
            let permitted = m
                .calls()
                .iter()
                .rev()
                .find(|d| d.step == step && d.tool == planned.tool)
                .is_some_and(|d| d.decision.decision == Decision::Permit);
            if !permitted {
                return Err(Rejection::StepNotPermitted {
                    step,
                    tool: planned.tool.clone(),
                });
            }
            let bytes = canonical::to_bytes(output).map_err(encoding)?.len();
            if bytes > MAX_RESULT_BYTES {
                return Err(Rejection::ResultTooLarge {
                    max: MAX_RESULT_BYTES,
                });
            }
            output.clone()
        }
        StepOutcome::Failed { reason } => {
            check_text("reason", reason, MAX_NOTE_CHARS)?;
            Value::Null
        }
    };
    let report = StepReport {
        step,
        epoch,
        worker,
        at: c.at,
        outcome: outcome.clone(),
        output,
    };
    let mut events = vec![Event::StepReported {
        mission: id.clone(),
        report,
    }];
    match outcome {
        StepOutcome::Failed { reason } => {
            events.extend(saga::fail_step(t, m, step, reason, c.at)?);
        }
        StepOutcome::Succeeded { .. } | StepOutcome::Performed { .. }
            if step as usize + 1 == steps.len() =>
        {
            events.push(Event::MissionAdvanced {
                mission: id.clone(),
                from: m.state(),
                to: MissionState::Executed,
                step: Step::Complete,
            });
        }
        StepOutcome::Succeeded { .. } | StepOutcome::Performed { .. } => {}
    }
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn expire_lease(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    epoch: u64,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    if m.state().is_closed() {
        return Err(Rejection::NotClaimable(m.state()));
    }
    let current = m.execution().epoch();
    if epoch != current {
        return Err(Rejection::StaleEpoch { epoch, current });
    }
    let lease = m
        .execution()
        .lease()
        .ok_or(Rejection::LeaseLost { epoch })?;
    if lease.is_held_at(c.at) {
        return Err(Rejection::LeaseNotExpired {
            expires_at: lease.expires_at,
        });
    }
    let events = vec![Event::LeaseExpired {
        mission: id.clone(),
        epoch,
        worker: lease.worker.clone(),
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn time_out_step(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: u32,
    timeout: StepTimeout,
    epoch: u64,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    if !matches!(
        m.state(),
        MissionState::PendingExecution | MissionState::InProgress
    ) {
        return Err(Rejection::NotExecuting(m.state()));
    }
    if m.execution().is_compensating() {
        return Err(Rejection::Compensating);
    }
    let current = m.execution().epoch();
    if epoch != current {
        return Err(Rejection::StaleEpoch { epoch, current });
    }
    let expected = m.execution().next_step();
    if step != expected {
        return Err(Rejection::StepOutOfOrder { step, expected });
    }
    if m.is_held(step) {
        return Err(Rejection::StepHeld { step });
    }
    let max_stalls = t
        .step_timeouts(m, step)
        .ok_or(Rejection::NoStepTimeout { step, timeout })?
        .max_stalls;
    let worker = match timeout {
        StepTimeout::StartToClose => Some(check_holder(m, epoch, c.at)?.worker.clone()),
        StepTimeout::ScheduleToStart => {
            if let Some(l) = m.execution().lease() {
                return Err(Rejection::LeaseHeld {
                    worker: l.worker.clone(),
                    expires_at: l.expires_at,
                });
            }
            None
        }
    };
    let due_at = t
        .step_timeout_due(m, timeout)
        .ok_or(Rejection::NoStepTimeout { step, timeout })?;
    if c.at < due_at {
        return Err(Rejection::StepNotDue {
            step,
            timeout,
            due_at,
        });
    }
    let stalls = m.execution().stalls(step) + u32::from(timeout == StepTimeout::StartToClose);
    let escalated = timeout == StepTimeout::ScheduleToStart || stalls >= max_stalls;
    let mut events = vec![Event::StepTimedOut {
        mission: id.clone(),
        step,
        timeout,
        epoch,
        worker,
        stalls,
        escalated,
    }];
    if escalated {
        events.push(stall_hold(m, step, timeout, c.at));
    }
    commit(t, c, c.kind, events, |_, _| {})
}

/// The approval a stalled step waits for: at the mission's authority
/// level (at least the namespace's minimum), following the step's plan
/// decision.
fn stall_hold(m: &Mission, step: u32, timeout: StepTimeout, at: Timestamp) -> Event {
    let plan = m.plan().expect("an executing mission has a plan");
    Event::ApprovalOpened {
        mission: m.id().clone(),
        hold: Some(step),
        approval: tool_calls::runtime_hold_approval(m, at),
        held: Some(HeldStep {
            tool: plan.steps[step as usize].tool.clone(),
            decision: plan.decisions[step as usize].clone(),
            kind: HoldKind::Stalled { timeout },
        }),
    }
}
