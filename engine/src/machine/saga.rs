//! Handlers of saga compensation: a failed step's saga is planned when the
//! failure is reported; the runtime then dispatches and completes each
//! compensation in turn, and the last one closes the mission.

use crate::ids::{MissionId, TenantId};
use crate::machine::apply::{Ctx, commit, encoding, mission_for, seal_outcome};
use crate::machine::event::Event;
use crate::machine::rejection::Rejection;
use crate::machine::state::TenantState;
use crate::machine::tool_calls::{check_result, retry_policy};
use crate::mission::saga::{Compensation, Saga, compensation_key};
use crate::mission::tool_call::Resend;
use crate::mission::{
    AbortReason, CallResult, Mission, OutcomeKind, SealedOutcome, Step, StepOutcome, ToolCallRecord,
};
use crate::time::Timestamp;

/// What undoing the steps completed before `failed_step` takes: every
/// step whose succeeded call went to a deployment with a compensation
/// endpoint, latest first.
pub(super) fn plan(
    tenant: &TenantId,
    m: &Mission,
    failed_step: u32,
    reason: &str,
    at: Timestamp,
) -> Result<Saga, Rejection> {
    let mut compensations = Vec::new();
    let mut not_compensable = Vec::new();
    // The failed step's own report may already be in (a fold plans the
    // saga after folding that report): only the steps before it count.
    let before = m.execution().reports().iter().rev();
    for r in before.filter(|r| r.step < failed_step) {
        let StepOutcome::Succeeded { call } = r.outcome else {
            not_compensable.push(r.step);
            continue;
        };
        let record = m
            .tool_call(r.step, call)
            .expect("a succeeded step names a recorded call");
        let Some(endpoint) = &record.compensation_endpoint else {
            not_compensable.push(r.step);
            continue;
        };
        compensations.push(Compensation {
            step: r.step,
            compensates: record.idempotency_key.clone(),
            original_output: r.output.clone(),
            call: ToolCallRecord::unsent(
                record.step,
                record.call,
                record.tool.clone(),
                compensation_key(tenant, m.id(), r.step).map_err(encoding)?,
                record.arguments_digest,
                at,
            )
            .with_route(record.target.clone(), endpoint.clone(), None),
        });
    }
    Ok(Saga {
        failed_step,
        reason: reason.to_owned(),
        started_at: at,
        compensations,
        not_compensable,
    })
}

/// The events of a step failing for good: a saga undoes the steps
/// completed before it, or, with nothing to undo, the mission closes
/// failed.
pub(super) fn fail_step(
    t: &TenantState,
    m: &Mission,
    step: u32,
    reason: &str,
    at: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let saga = plan(&t.id, m, step, reason, at)?;
    if saga.compensations.is_empty() {
        let sealed = seal_failed(t, m, &saga, at)?;
        return Ok(vec![Event::MissionClosed {
            mission: m.id().clone(),
            from: m.state(),
            step: Step::Abort(AbortReason::Failed),
            outcome: sealed,
        }]);
    }
    Ok(vec![Event::SagaStarted {
        mission: m.id().clone(),
        failed_step: step,
        reason: reason.to_owned(),
        compensations: saga.compensations.iter().map(|c| c.step).collect(),
        not_compensable: saga.not_compensable.clone(),
    }])
}

/// The failed mission's sealed outcome, once its saga has nothing left.
pub(super) fn seal_failed(
    t: &TenantState,
    m: &Mission,
    saga: &Saga,
    at: Timestamp,
) -> Result<SealedOutcome, Rejection> {
    seal_outcome(
        t,
        m,
        OutcomeKind::Failed,
        format!("step {} failed: {}", saga.failed_step, saga.reason),
        saga.summary(),
        at,
    )
}

fn current(m: &Mission, step: u32) -> Result<&Compensation, Rejection> {
    let current = m
        .execution()
        .saga()
        .and_then(Saga::current)
        .ok_or(Rejection::NotCompensating)?;
    if current.step != step {
        return Err(Rejection::CompensationOutOfOrder {
            step,
            current: current.step,
        });
    }
    Ok(current)
}

pub(super) fn dispatch(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: u32,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    let comp = current(m, step)?;
    comp.call.check_resend(c.at).map_err(|r| match r {
        Resend::NotDue { not_before } => Rejection::RetryNotDue {
            step,
            call: comp.call.call,
            not_before,
        },
        Resend::Completed | Resend::Exhausted { .. } => Rejection::NotCompensating,
    })?;
    let events = vec![Event::CompensationDispatched {
        mission: id.clone(),
        step,
        idempotency_key: comp.call.idempotency_key.clone(),
        endpoint: comp.call.endpoint.clone(),
        dispatch: comp.call.dispatches + 1,
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

pub(super) fn complete(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: u32,
    result: &CallResult,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    let comp = current(m, step)?;
    if comp.call.dispatches == 0 || comp.call.result.is_some() {
        return Err(Rejection::NoDispatchedCall {
            step,
            call: comp.call.call,
        });
    }
    check_result(result)?;
    let policy = retry_policy(t, m, step, &comp.call.tool);
    let record = comp.call.completed(result.clone(), c.at, policy);
    let mut saga = m.execution().saga().expect("checked").clone();
    saga.current_mut().expect("checked").call = record.clone();
    let mut events = vec![Event::CompensationCompleted {
        mission: id.clone(),
        step,
        result: result.clone(),
        retry: record.retry.clone(),
    }];
    if saga.is_finished() {
        events.push(Event::MissionClosed {
            mission: id.clone(),
            from: m.state(),
            step: Step::Abort(AbortReason::Failed),
            outcome: seal_failed(t, m, &saga, c.at)?,
        });
    }
    commit(t, c, c.kind, events, |_, _| {})
}
