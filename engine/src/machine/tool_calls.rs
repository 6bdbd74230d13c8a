//! Handlers for calls through the Tool Gateway: the checks a dispatch adds
//! to a tool-call decision, the call's result, and refused attempts.

use serde_json::Value;

use crate::canonical;
use crate::ids::{AgentId, MissionId, TokenId, ToolName};
use crate::machine::apply::{
    Ctx, MAX_NOTE_CHARS, MAX_RESULT_BYTES, check_actor_may_act, check_text, commit, encoding,
    mission_for,
};
use crate::machine::event::Event;
use crate::machine::event::HeldStep;
use crate::machine::rejection::Rejection;
use crate::machine::state::TenantState;
use crate::mission::retry::{DEFAULT_RETRY_POLICY, RetryPolicy};
use crate::mission::tool_call::{self, CallResult, Resend, ToolCallRecord};
use crate::mission::{HoldKind, Mission, MissionState, OnExhaustion};
use crate::policy::authority::{ApprovalState, ApprovalStatus};
use crate::time::Timestamp;
use crate::tool::Route;

const CALL_ARGUMENTS_DOMAIN: canonical::Domain =
    canonical::Domain::new("aura.tool-call-arguments/1");
const MAX_CODE_CHARS: usize = 64;

/// What the gateway adds to a tool-call decision: which call of the step
/// this is, and the credential and token it verified.
pub(super) struct Dispatch<'a> {
    pub(super) call: u32,
    pub(super) credential_serial: u64,
    pub(super) token: &'a TokenId,
}

/// A dispatch that passed its checks, waiting for the decision.
pub(super) struct PreparedDispatch {
    record: ToolCallRecord,
    route: Option<Route>,
}

impl PreparedDispatch {
    /// The call's record once policy permitted it. A permitted call always
    /// has a route: a tool none of whose deployments may receive the
    /// mission's data is a hard DENY of the decision itself.
    pub(super) fn permitted(self) -> ToolCallRecord {
        let route = self.route.expect("a permitted call has a route");
        self.record.with_route(
            route.target,
            route.endpoint.expect("a callable tool has an endpoint"),
            route.compensation_endpoint,
        )
    }
}

/// Everything a dispatch needs besides a PERMIT, checked against the
/// replicated state: the gateway verified the DualToken on its own node,
/// and a revocation or expiry it had not seen yet still wins here.
pub(super) fn prepare_dispatch(
    t: &TenantState,
    c: &Ctx<'_>,
    m: &Mission,
    step: u32,
    tool: &ToolName,
    arguments: &Value,
    d: &Dispatch<'_>,
) -> Result<PreparedDispatch, Rejection> {
    let credential_ok = t
        .credentials
        .get(&d.credential_serial)
        .is_some_and(|r| &r.credential.claims.agent == m.agent() && r.is_active_at(c.at));
    if !credential_ok {
        return Err(Rejection::CredentialNotValid {
            serial: d.credential_serial,
        });
    }
    let token_ok = t.tokens.get(d.token).is_some_and(|tok| {
        let tc = &tok.claims;
        &tc.mission == m.id()
            && &tc.agent == m.agent()
            && tc.issued_at <= c.at
            && c.at < tc.expires_at
            // A claim's token retires when a later claim takes over.
            && !m.execution().is_superseded(d.token)
    });
    if !token_ok {
        return Err(Rejection::TokenNotValid {
            token: d.token.clone(),
        });
    }
    let spec = t.tools.get(tool);
    if spec.and_then(|s| s.invocation.as_ref()).is_none() {
        return Err(Rejection::ToolNotCallable(tool.clone()));
    }
    let arguments_digest = canonical::digest(CALL_ARGUMENTS_DOMAIN, arguments).map_err(encoding)?;
    let prior = m.tool_call(step, d.call);
    if let Some(p) = prior {
        // Arguments first: a completed call asked again with other
        // arguments is a different request, not a retry to answer from
        // the record.
        if p.arguments_digest != arguments_digest || &p.tool != tool {
            return Err(Rejection::CallArgumentsChanged { step, call: d.call });
        }
        p.check_resend(c.at).map_err(|r| match r {
            Resend::Completed => Rejection::CallAlreadyCompleted { step, call: d.call },
            Resend::NotDue { not_before } => Rejection::RetryNotDue {
                step,
                call: d.call,
                not_before,
            },
            Resend::Exhausted { attempts, why } => Rejection::RetriesExhausted {
                step,
                call: d.call,
                attempts,
                why,
            },
        })?;
    }
    let max = m.boundary().get().runtime.limits.max_tool_calls;
    if m.dispatch_count() >= u64::from(max) {
        return Err(Rejection::ToolCallLimit { max });
    }
    // Where the call goes follows from the mission's frozen data boundary.
    let data = &m.boundary().get().data;
    let route = spec
        .expect("checked above")
        .route(data.classification, &data.allowed_targets)
        .ok();
    let key = match prior {
        Some(p) => p.idempotency_key.clone(),
        None => tool_call::idempotency_key(&t.id, m.id(), step, d.call).map_err(encoding)?,
    };
    let record = ToolCallRecord::dispatch(prior, step, d.call, tool, &key, arguments_digest, c.at);
    Ok(PreparedDispatch { record, route })
}

/// Records what a dispatched call came back with. Accepted in any state:
/// the effect happened, so the record keeps it even if the mission was
/// cancelled meanwhile.
pub(super) fn complete(
    t: &mut TenantState,
    c: &Ctx<'_>,
    id: &MissionId,
    step: u32,
    call: u32,
    result: &CallResult,
) -> Result<Vec<Event>, Rejection> {
    let m = mission_for(t, id)?;
    check_actor_may_act(c, m.agent())?;
    let record = m
        .tool_call(step, call)
        .filter(|r| r.result.is_none())
        .ok_or(Rejection::NoDispatchedCall { step, call })?;
    check_result(result)?;
    let policy = retry_policy(t, m, step, &record.tool);
    let record = record.completed(result.clone(), c.at, policy);
    let mut events = vec![Event::ToolCallCompleted {
        mission: id.clone(),
        step,
        call,
        tool: record.tool.clone(),
        result: result.clone(),
        retry: record.retry.clone(),
    }];
    events.extend(exhaustion_hold(m, &record, policy, c.at));
    commit(t, c, c.kind, events, |_, _| {})
}

/// Under a policy that escalates when retries run out, the exhausted call
/// of an executing mission holds its step for an approver at the mission's
/// level.
fn exhaustion_hold(
    m: &Mission,
    record: &ToolCallRecord,
    policy: &RetryPolicy,
    at: Timestamp,
) -> Option<Event> {
    if policy.on_exhaustion != OnExhaustion::Escalate
        || !record.failed_for_good()
        || m.state() != MissionState::InProgress
    {
        return None;
    }
    let step = record.step;
    if m.holds()
        .get(&step)
        .is_some_and(|h| h.approval.status == ApprovalStatus::Pending)
    {
        return None;
    }
    let decision = m
        .calls()
        .iter()
        .rev()
        .find(|d| d.step == step && d.tool == record.tool)?
        .decision
        .clone();
    Some(Event::ApprovalOpened {
        mission: m.id().clone(),
        hold: Some(step),
        approval: runtime_hold_approval(m, at),
        held: Some(HeldStep {
            tool: record.tool.clone(),
            decision,
            kind: HoldKind::RetriesExhausted { call: record.call },
        }),
    })
}

/// A result fits the record: its output within the size limit, its
/// message within the note limit.
pub(super) fn check_result(result: &CallResult) -> Result<(), Rejection> {
    let size = match result {
        CallResult::Succeeded { output, .. } => {
            canonical::to_bytes(output).map_err(encoding)?.len()
        }
        CallResult::Failed { message, .. } => {
            check_text("message", message, MAX_NOTE_CHARS)?;
            0
        }
    };
    if size > MAX_RESULT_BYTES {
        return Err(Rejection::ResultTooLarge {
            max: MAX_RESULT_BYTES,
        });
    }
    Ok(())
}

/// Records a call the gateway refused before deciding it. The mission may
/// not exist (the request may be forged): the attempt is recorded all the
/// same, under the tenant it named.
#[allow(clippy::too_many_arguments)]
pub(super) fn refuse(
    t: &mut TenantState,
    c: &Ctx<'_>,
    mission: &MissionId,
    step: u32,
    tool: &ToolName,
    claimed_agent: Option<&AgentId>,
    code: &str,
    reason: &str,
) -> Result<Vec<Event>, Rejection> {
    check_text("code", code, MAX_CODE_CHARS)?;
    check_text("reason", reason, MAX_NOTE_CHARS)?;
    let events = vec![Event::ToolCallRefused {
        mission: mission.clone(),
        step,
        tool: tool.clone(),
        claimed_agent: claimed_agent.cloned(),
        code: code.to_owned(),
        reason: reason.to_owned(),
    }];
    commit(t, c, c.kind, events, |_, _| {})
}

/// The retry policy of a step's calls: the plan step's own, else its
/// tool's, else the default.
pub(super) fn retry_policy<'a>(
    t: &'a TenantState,
    m: &'a Mission,
    step: u32,
    tool: &ToolName,
) -> &'a RetryPolicy {
    m.plan()
        .and_then(|p| p.steps.get(step as usize))
        .filter(|s| &s.tool == tool)
        .and_then(|s| s.retry.as_ref())
        .or_else(|| {
            t.tools
                .get(tool)
                .and_then(|s| s.invocation.as_ref())
                .map(|i| &i.retry)
        })
        .unwrap_or(&DEFAULT_RETRY_POLICY)
}

/// The approval a step held by the runtime (not by policy) waits for: at
/// the mission's authority level, at least the namespace's minimum.
pub(super) fn runtime_hold_approval(m: &Mission, at: Timestamp) -> ApprovalState {
    let authority = &m.boundary().get().authority;
    let rules = authority.config.rules;
    ApprovalState::open(authority.required_level.max(rules.min_level), &rules, at)
}
