//! The saga's compensations. When a step fails for good, the engine lists
//! the completed steps to undo (latest first); the leader's node sends
//! each one to its compensation endpoint, one at a time per mission:
//! `DispatchCompensation` is committed before the request goes out and
//! `CompleteCompensation` records the answer, so a compensation is never
//! sent unrecorded, and one whose answer was lost (the node died) is sent
//! again by the next leader with the same idempotency key.

use std::time::Duration;

use aura_engine::Actor;
use aura_engine::ids::{MissionId, TenantId};
use aura_engine::machine::rejection::Rejection;
use aura_engine::machine::{CommandBody, EngineState};
use aura_engine::mission::{CallResult, Compensation};
use aura_engine::time::Timestamp;
use aura_engine::tool::ToolSpec;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::inflight::InFlight;
use crate::app::{App, AppError};
use crate::gateway::invoke::CompensationRequestBody;
use crate::time;

/// How often the leader looks for due compensations besides reacting to
/// commits (a retry falls due without anything being committed).
pub const TICK: Duration = Duration::from_millis(250);

/// A compensation to send now.
#[derive(Debug, Clone)]
pub struct Due {
    pub tenant: TenantId,
    pub mission: MissionId,
    pub compensation: Compensation,
    pub timeout_ms: u64,
}

/// Each compensating mission's current compensation, when it is due at
/// `now`: never sent, sent without a recorded answer, or failed with its
/// retry due.
pub fn due_at(state: &EngineState, now: Timestamp) -> Vec<Due> {
    let mut due = Vec::new();
    for t in state.tenants() {
        for m in t.compensating_missions() {
            let Some(c) = m.execution().saga().and_then(|s| s.current()) else {
                continue;
            };
            // The engine's own rule for sending a call (again).
            if c.call.check_resend(now).is_ok() {
                let timeout_ms = t.tools().get(&c.call.tool).map_or(
                    aura_engine::tool::DEFAULT_CALL_TIMEOUT_MS,
                    ToolSpec::call_timeout_ms,
                );
                due.push(Due {
                    tenant: t.id().clone(),
                    mission: m.id().clone(),
                    compensation: c.clone(),
                    timeout_ms,
                });
            }
        }
    }
    due
}

/// Runs compensations until the task is dropped.
pub async fn run(app: App) {
    let mut feed = app.engine().subscribe();
    let inflight = InFlight::default();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        if app.engine().is_leader() {
            let due = app.read_local(|s| due_at(s, time::now()));
            for d in due {
                let key = (d.tenant.clone(), d.mission.clone());
                if !inflight.take(key.clone()) {
                    continue;
                }
                let app = app.clone();
                let inflight = inflight.clone();
                let span = tracing::info_span!("compensation", tenant = %d.tenant, mission = %d.mission, step = d.compensation.step);
                tasks.spawn(
                    async move {
                        compensate(&app, &d).await;
                        inflight.release(&key);
                    }
                    .instrument(span),
                );
            }
        }
        tokio::select! {
            () = super::committed(&mut feed) => {}
            () = tokio::time::sleep(TICK) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Sends one compensation and records its answer.
async fn compensate(app: &App, d: &Due) {
    let c = &d.compensation;
    let propose = |body| app.propose(&d.tenant, Actor::Runtime, body);
    if let Err(e) = propose(CommandBody::DispatchCompensation {
        mission: d.mission.clone(),
        step: c.step,
    })
    .await
    {
        tracing::debug!(error = ?e, "compensation overtaken");
        return;
    }
    let tenant = d.tenant.to_string();
    let mission = d.mission.to_string();
    let body = CompensationRequestBody {
        tenant: &tenant,
        mission: &mission,
        step: c.step,
        tool: c.call.tool.as_str(),
        idempotency_key: &c.call.idempotency_key,
        compensates: &c.compensates,
        output: &c.original_output,
    };
    let result = app
        .gateway()
        .tool_client()
        .call(&c.call.endpoint, d.timeout_ms, &body)
        .await;
    let complete = |result| CommandBody::CompleteCompensation {
        mission: d.mission.clone(),
        step: c.step,
        result,
    };
    let recorded = match propose(complete(result)).await {
        Err(AppError::Refused {
            rejection: Rejection::ResultTooLarge { max },
            ..
        }) => {
            // The undo happened; only its answer does not fit the record.
            propose(complete(CallResult::unrecordable(
                "the compensation's answer",
                max,
            )))
            .await
        }
        other => other,
    };
    if let Err(e) = recorded {
        // Sent but unrecorded: the next pass (here or on the next leader)
        // sends it again under the same key.
        tracing::warn!(error = ?e, "compensation answer not recorded");
    }
}
