//! Missions: create (with a plan that policy then decides, in the same
//! log entry), plan, list, read, cancel; and the ExecutionTokens their
//! agents present at the Tool Gateway.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Timestamp;
use aura_engine::identity::ExecutionToken;
use aura_engine::identity::token::ParameterRules;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, TokenId, ToolName};
use aura_engine::machine::{Advance, Closing, CommandBody, Event, TenantState, check_plan};
use aura_engine::mission::{
    AbortReason, Mission, MissionContext, MissionDefinition, MissionState, OutcomeKind, PlanStep,
    RuntimeLimits,
};
use aura_engine::time::Millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Member, Operator, TenantScope};
use super::{App, AppError};
use crate::time::now;

/// An ExecutionToken's lifetime when the request names none.
pub const DEFAULT_TOKEN_TTL: Millis = Millis(15 * 60 * 1000);

/// A mission in listings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MissionSummary {
    pub id: String,
    pub namespace: String,
    pub agent: String,
    #[schema(value_type = String)]
    pub state: MissionState,
    pub objective: String,
    pub created_at: String,
    /// Once CLOSED: `succeeded`, `denied`, `rejected`, `cancelled`,
    /// `timed_out` or `failed` (the signed outcome is in the full record).
    #[schema(value_type = Option<String>)]
    pub outcome: Option<OutcomeKind>,
    /// Why it closed, for people.
    pub outcome_reason: Option<String>,
}

impl From<&Mission> for MissionSummary {
    fn from(m: &Mission) -> MissionSummary {
        MissionSummary {
            id: m.id().to_string(),
            namespace: m.namespace().to_string(),
            agent: m.agent().to_string(),
            state: m.state(),
            objective: m.definition().objective.clone(),
            created_at: m.created_at().to_rfc3339(),
            outcome: m.outcome().map(|o| o.outcome().kind),
            outcome_reason: m.outcome().map(|o| o.outcome().reason.clone()),
        }
    }
}

/// A new id for a mission whose creator named none: time-ordered, so
/// listings page in creation order.
pub fn new_id() -> MissionId {
    let rand = crate::random::hex(6);
    MissionId::new(format!("m-{:012x}-{rand}", now().as_millis())).expect("valid id")
}

fn missing(id: &MissionId) -> AppError {
    AppError::not_found("mission", id.as_str())
}

/// The mission's summary as this node has it.
pub fn summary<R>(
    app: &App,
    scope: &TenantScope<R>,
    id: &MissionId,
) -> Result<MissionSummary, AppError> {
    scope
        .read(app, |t| t.missions().get(id).map(MissionSummary::from))?
        .ok_or_else(|| missing(id))
}

/// What creating a mission needs.
#[derive(Debug)]
pub struct NewMission {
    pub id: MissionId,
    pub namespace: NamespaceId,
    pub agent: AgentId,
    pub definition: MissionDefinition,
    pub context: MissionContext,
    pub limits: RuntimeLimits,
    /// A plan to submit at once, which policy then decides.
    pub plan: Option<Vec<PlanStep>>,
}

/// Creates a mission and, with a plan, has policy decide it: both in one
/// log entry, so the mission exists with its plan decided or not at all.
/// A plan the engine would refuse is refused before anything is created.
pub async fn create(
    app: &App,
    scope: &TenantScope<Operator>,
    new: NewMission,
) -> Result<MissionSummary, AppError> {
    if let Some(steps) = &new.plan {
        check_plan(steps, &new.limits, &new.definition.tool_set())?;
    }
    let id = new.id;
    let mut bodies = vec![CommandBody::CreateMission {
        namespace: new.namespace,
        mission: id.clone(),
        agent: new.agent,
        definition: new.definition,
        context: new.context,
        limits: new.limits,
    }];
    if let Some(steps) = new.plan {
        bodies.extend(plan_commands(&id, steps, true));
    }
    app.propose_all(&scope.tenant, scope.actor(), bodies)
        .await?;
    summary(app, scope, &id)
}

/// The commands that plan mission `id`, which starts planning first if
/// it is still `in_created`.
fn plan_commands(id: &MissionId, steps: Vec<PlanStep>, in_created: bool) -> Vec<CommandBody> {
    let begin = in_created.then(|| CommandBody::AdvanceMission {
        mission: id.clone(),
        step: Advance::BeginPlanning,
    });
    let submit = CommandBody::SubmitPlan {
        mission: id.clone(),
        steps,
    };
    begin.into_iter().chain([submit]).collect()
}

/// Submits the mission's plan; policy decides it step by step. The plan
/// is checked before the mission starts planning, so that a plan the
/// engine would refuse leaves a CREATED mission as it was.
pub async fn submit_plan(
    app: &App,
    scope: &TenantScope<Operator>,
    id: &MissionId,
    steps: Vec<PlanStep>,
) -> Result<MissionSummary, AppError> {
    let in_created = scope
        .read(app, |t| {
            t.missions().get(id).map(|m| {
                let runtime = &m.boundary().get().runtime;
                check_plan(&steps, &runtime.limits, &runtime.allowed_tools)
                    .map(|()| m.state() == MissionState::Created)
            })
        })?
        .ok_or_else(|| missing(id))??;
    let bodies = plan_commands(id, steps, in_created);
    app.propose_all(&scope.tenant, scope.actor(), bodies)
        .await?;
    summary(app, scope, id)
}

/// Which missions a listing shows.
#[derive(Debug, Default)]
pub struct MissionQuery {
    pub namespace: Option<String>,
    pub state: Option<MissionState>,
    pub agent: Option<String>,
    /// Created at or after.
    pub created_after: Option<Timestamp>,
    /// Created before.
    pub created_before: Option<Timestamp>,
    /// Only missions whose id comes after this one.
    pub after: Option<MissionId>,
    pub limit: usize,
}

/// The largest page a listing returns.
pub const MAX_PAGE: usize = 500;

/// A page of missions, in id order, and whether more follow it.
#[derive(Debug)]
pub struct MissionPage {
    pub items: Vec<MissionSummary>,
    pub more: bool,
}

/// Lists missions, in id order (creation order for ids the server
/// chose), a page at a time.
pub fn list(
    app: &App,
    scope: &TenantScope<Member>,
    q: &MissionQuery,
) -> Result<MissionPage, AppError> {
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(AppError::invalid(
            "/limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    scope.read(app, |t| page(t, q))
}

fn page(t: &TenantState, q: &MissionQuery) -> MissionPage {
    let range = match &q.after {
        Some(a) => t
            .missions()
            .range::<MissionId, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
        None => t.missions().range::<MissionId, _>(..),
    };
    let mut items = Vec::new();
    for (_, m) in range {
        let keep = q
            .namespace
            .as_deref()
            .is_none_or(|n| m.namespace().as_str() == n)
            && q.agent.as_deref().is_none_or(|a| m.agent().as_str() == a)
            && q.state.is_none_or(|s| m.state() == s)
            && q.created_after.is_none_or(|t| m.created_at() >= t)
            && q.created_before.is_none_or(|t| m.created_at() < t);
        if !keep {
            continue;
        }
        if items.len() == q.limit {
            return MissionPage { items, more: true };
        }
        items.push(MissionSummary::from(m));
    }
    MissionPage { items, more: false }
}

/// The mission's whole record, with `digest`, the digest of all of it,
/// which `aura mission replay` checks the audit record rebuilds.
pub fn record(
    app: &App,
    scope: &TenantScope<Member>,
    id: &MissionId,
) -> Result<serde_json::Value, AppError> {
    scope
        .read(app, |t| {
            t.missions().get(id).map(|m| {
                let mut record = serde_json::to_value(m).expect("missions serialize");
                record["digest"] = serde_json::Value::String(m.digest().to_hex());
                record
            })
        })?
        .ok_or_else(|| missing(id))
}

/// Cancels the mission: it closes with outcome `cancelled`.
pub async fn cancel(
    app: &App,
    scope: &TenantScope<Operator>,
    id: &MissionId,
    reason: String,
) -> Result<MissionSummary, AppError> {
    let body = CommandBody::CloseMission {
        mission: id.clone(),
        closing: Closing::Abort {
            reason: AbortReason::Cancelled,
            note: reason,
        },
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    summary(app, scope, id)
}

/// What an ExecutionToken is to allow.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// Default: the mission's whole boundary.
    pub tools: Option<BTreeSet<ToolName>>,
    pub parameters: BTreeMap<ToolName, ParameterRules>,
    /// Default [`DEFAULT_TOKEN_TTL`]; never past the mission's deadline.
    pub ttl: Option<Millis>,
}

/// Issues an ExecutionToken to the mission's agent.
pub async fn issue_token(
    app: &App,
    scope: &TenantScope<Operator>,
    id: &MissionId,
    ask: TokenRequest,
) -> Result<ExecutionToken, AppError> {
    let (boundary_tools, deadline) = scope
        .read(app, |t| {
            t.missions().get(id).map(|m| {
                let tools = m
                    .definition()
                    .tools
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>();
                (tools, m.created_at().plus(m.definition().timeout))
            })
        })?
        .ok_or_else(|| missing(id))?;
    let ttl = ask.ttl.unwrap_or(DEFAULT_TOKEN_TTL);
    if ttl.0 == 0 {
        return Err(AppError::invalid("/ttl_ms", "must be positive"));
    }
    let at = now();
    let expires = Timestamp(
        at.as_millis()
            .saturating_add(i64::try_from(ttl.0).unwrap_or(i64::MAX)),
    );
    let body = CommandBody::IssueExecutionToken {
        mission: id.clone(),
        token: TokenId::new(format!("t-{}", crate::random::hex(8))).expect("valid id"),
        tools: ask.tools.unwrap_or(boundary_tools),
        parameters: ask.parameters,
        expires_at: expires.min(deadline),
    };
    let events = app.propose(&scope.tenant, scope.actor(), body).await?;
    events
        .into_iter()
        .find_map(|e| match e {
            Event::ExecutionTokenIssued { token } => Some(token),
            _ => None,
        })
        .ok_or_else(|| AppError::Internal("no token was issued".into()))
}
