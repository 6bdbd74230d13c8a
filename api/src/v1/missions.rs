//! Missions: created with a definition and context (and optionally a
//! plan, which policy then decides), listed with filters and cursor
//! pagination, shown with their whole record, cancelled; execution tokens
//! for their agent.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Timestamp;
use aura_engine::identity::token::ParameterRules;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, TokenId, ToolName};
use aura_engine::machine::{Advance, Closing, CommandBody, Event, check_plan};
use aura_engine::mission::{
    AbortReason, Mission as EngineMission, MissionContext, MissionDefinition, MissionState,
    OutcomeKind, PlanStep, RuntimeLimits,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, created};
use crate::auth::{Member, Operator, TenantScope};
use crate::error;
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;
use crate::time::now;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMission {
    /// Chosen by the server when omitted (time-ordered).
    #[serde(default)]
    pub id: Option<String>,
    pub namespace: String,
    pub agent: String,
    /// {objective, tools, authority (L1..L4), timeout (ms)}.
    #[schema(value_type = Object)]
    pub definition: MissionDefinition,
    /// {inputs (object), classification, labels}.
    #[schema(value_type = Object)]
    pub context: MissionContext,
    /// {max_steps (1..10000, default 64), max_tool_calls (1..100000,
    /// default 256), max_run_entries (8..1000000, default 10000),
    /// max_run_bytes (4096..2^30, default 16 MiB)}: a run of the mission's
    /// audit record reaching either run limit is continued as new.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub limits: Option<RuntimeLimits>,
    /// A plan to submit at once: the mission moves to PLANNING and policy
    /// decides the plan (PERMIT → APPROVED and on into the namespace's
    /// queue, PENDING_EXECUTION; ESCALATE → WAITING_APPROVAL; DENY →
    /// CLOSED).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub plan: Option<Vec<PlanStep>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitPlan {
    /// Steps of {tool, arguments}.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<PlanStep>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMission {
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// Tools the token allows; default: the mission's whole boundary.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub tools: Option<BTreeSet<ToolName>>,
    /// Per-tool parameter rules ({fixed, bounds}).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<ToolName, ParameterRules>,
    /// Lifetime in milliseconds (default 15 minutes, capped by the
    /// mission's deadline).
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

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

impl From<&EngineMission> for MissionSummary {
    fn from(m: &EngineMission) -> MissionSummary {
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MissionFilter {
    pub namespace: Option<String>,
    /// e.g. `IN_PROGRESS`.
    pub state: Option<String>,
    pub agent: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub created_after: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub created_before: Option<i64>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

fn new_mission_id() -> MissionId {
    let rand = crate::random::hex(6);
    MissionId::new(format!("m-{:012x}-{rand}", now().as_millis())).expect("valid id")
}

fn mission_missing(raw: &str) -> Problem {
    Problem::not_found("mission", raw)
}

pub(crate) fn mission_id(raw: &str) -> Result<MissionId, Problem> {
    MissionId::new(raw).map_err(|_| mission_missing(raw))
}

fn summary<R>(
    state: &AppState,
    scope: &TenantScope<R>,
    id: &MissionId,
) -> Result<MissionSummary, Problem> {
    scope
        .read(&state.app, |t| {
            t.missions().get(id).map(MissionSummary::from)
        })?
        .ok_or_else(|| mission_missing(id.as_str()))
}

/// Creates a mission (and, with a plan, has policy decide it).
#[utoipa::path(post, operation_id = "missions_create", path = "/v1/tenants/{tenant}/missions", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateMission,
    responses(
        (status = 201, description = "Created; its state says what policy decided", body = MissionSummary),
        (status = 404, description = "Unknown namespace or agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: TenantScope<Operator>,
    State(state): State<AppState>,
    Body(req): Body<CreateMission>,
) -> Result<Response, Problem> {
    let id = match req.id {
        Some(raw) => MissionId::new(raw).map_err(|e| Problem::invalid("/id", e.to_string()))?,
        None => new_mission_id(),
    };
    let namespace = NamespaceId::new(req.namespace)
        .map_err(|e| Problem::invalid("/namespace", e.to_string()))?;
    let agent = AgentId::new(req.agent).map_err(|e| Problem::invalid("/agent", e.to_string()))?;
    let limits = req.limits.unwrap_or_default();
    // A plan the engine would refuse is refused before anything is
    // created: the mission's limits and tools are the request's.
    if let Some(steps) = &req.plan {
        check_plan(steps, &limits, &req.definition.tool_set()).map_err(error::rejection)?;
    }
    let body = CommandBody::CreateMission {
        namespace,
        mission: id.clone(),
        agent,
        definition: req.definition,
        context: req.context,
        limits,
    };
    let location = format!("/v1/tenants/{}/missions/{id}", scope.tenant);
    // The create and the plan go in one log entry, so the mission exists
    // with its plan decided or not at all. Should the outcome be unknown
    // (or the plan be refused for a reason the check above cannot know),
    // the problem names the mission, for a client that let the server
    // choose the id.
    let mut bodies = vec![body];
    if let Some(steps) = req.plan {
        bodies.extend(plan_commands(&id, steps, true));
    }
    state
        .app
        .propose_all(&scope.tenant, scope.actor(), bodies)
        .await
        .map_err(|e| Problem::from(e).with_resource_if_unsettled(|| location.clone()))?;
    Ok(created(location, &summary(&state, &scope, &id)?))
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

/// Submits the mission's plan; policy decides it step by step.
#[utoipa::path(post, operation_id = "missions_submit_plan", path = "/v1/tenants/{tenant}/missions/{mission}/plan", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = SubmitPlan,
    responses(
        (status = 200, description = "Decided; the state says how", body = MissionSummary),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The mission is past planning", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit_plan(
    scope: TenantScope<Operator>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<SubmitPlan>,
) -> Result<Json<MissionSummary>, Problem> {
    let id = mission_id(&path.1)?;
    // Checked before the mission starts planning, so that a plan the
    // engine would refuse leaves a CREATED mission as it was.
    let in_created = scope
        .read(&state.app, |t| {
            t.missions().get(&id).map(|m| {
                let runtime = &m.boundary().get().runtime;
                check_plan(&req.steps, &runtime.limits, &runtime.allowed_tools)
                    .map(|()| m.state() == MissionState::Created)
            })
        })?
        .ok_or_else(|| mission_missing(id.as_str()))?
        .map_err(error::rejection)?;
    let bodies = plan_commands(&id, req.steps, in_created);
    state
        .app
        .propose_all(&scope.tenant, scope.actor(), bodies)
        .await?;
    summary(&state, &scope, &id).map(Json)
}

/// Lists missions, newest id last, filtered, a page at a time.
#[utoipa::path(get, operation_id = "missions_list", path = "/v1/tenants/{tenant}/missions", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), MissionFilter),
    responses(
        (status = 200, description = "A page of missions", body = Page<MissionSummary>),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Query(f): Query<MissionFilter>,
) -> Result<Json<Page<MissionSummary>>, Problem> {
    let limit = f.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("/limit", "must be 1 to 500"));
    }
    let state_filter = f
        .state
        .as_deref()
        .map(|s| {
            serde_json::from_value::<MissionState>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| Problem::invalid("/state", format!("`{s}` is not a mission state")))
        })
        .transpose()?;
    let after = f
        .cursor
        .as_deref()
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| MissionId::new(s).ok())
                .ok_or_else(|| Problem::invalid("/cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let page = scope.read(&state.app, |t| {
        let range = match &after {
            Some(a) => t
                .missions()
                .range::<MissionId, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => t.missions().range::<MissionId, _>(..),
        };
        let mut items = Vec::new();
        let mut more = false;
        for (_, m) in range {
            let keep = f
                .namespace
                .as_deref()
                .is_none_or(|n| m.namespace().as_str() == n)
                && f.agent.as_deref().is_none_or(|a| m.agent().as_str() == a)
                && state_filter.is_none_or(|s| m.state() == s)
                && f.created_after
                    .is_none_or(|t| m.created_at() >= Timestamp(t))
                && f.created_before
                    .is_none_or(|t| m.created_at() < Timestamp(t));
            if !keep {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(MissionSummary::from(m));
        }
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|m| URL_SAFE_NO_PAD.encode(m.id.as_bytes()))
            })
            .flatten();
        Page { items, next_cursor }
    })?;
    Ok(Json(page))
}

/// The mission's whole record: definition, frozen context and boundary,
/// state timeline, plan with its decision records, approvals, holds, tool
/// call decisions and outcome; and `digest`, the digest of all of it,
/// which `aura mission replay` checks the audit record rebuilds.
#[utoipa::path(get, operation_id = "missions_get", path = "/v1/tenants/{tenant}/missions/{mission}", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    responses(
        (status = 200, description = "The mission", body = Object),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, Problem> {
    let id = mission_id(&path.1)?;
    scope
        .read(&state.app, |t| {
            t.missions().get(&id).map(|m| {
                let mut record = serde_json::to_value(m).expect("missions serialize");
                record["digest"] = serde_json::Value::String(m.digest().to_hex());
                record
            })
        })?
        .map(Json)
        .ok_or_else(|| mission_missing(&path.1))
}

/// Cancels the mission: it closes with outcome `cancelled`.
#[utoipa::path(post, operation_id = "missions_cancel", path = "/v1/tenants/{tenant}/missions/{mission}/cancel", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = CancelMission,
    responses(
        (status = 200, description = "Cancelled", body = MissionSummary),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The mission can no longer be cancelled", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    scope: TenantScope<Operator>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<CancelMission>,
) -> Result<Json<MissionSummary>, Problem> {
    let id = mission_id(&path.1)?;
    state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::CloseMission {
                mission: id.clone(),
                closing: Closing::Abort {
                    reason: AbortReason::Cancelled,
                    note: req.reason,
                },
            },
        )
        .await?;
    summary(&state, &scope, &id).map(Json)
}

/// Issues an ExecutionToken to the mission's agent.
#[utoipa::path(post, operation_id = "missions_issue_token", path = "/v1/tenants/{tenant}/missions/{mission}/tokens", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = IssueToken,
    responses(
        (status = 201, description = "The signed token", body = Object),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The mission is not approved, or a tool is outside its boundary", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn issue_token(
    scope: TenantScope<Operator>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<IssueToken>,
) -> Result<Response, Problem> {
    let id = mission_id(&path.1)?;
    let (boundary_tools, deadline) = scope
        .read(&state.app, |t| {
            t.missions().get(&id).map(|m| {
                (
                    m.definition()
                        .tools
                        .iter()
                        .cloned()
                        .collect::<BTreeSet<_>>(),
                    m.created_at().plus(m.definition().timeout),
                )
            })
        })?
        .ok_or_else(|| mission_missing(&path.1))?;
    let at = now();
    let ttl = req.ttl_ms.unwrap_or(15 * 60 * 1000);
    if ttl == 0 {
        return Err(Problem::invalid("/ttl_ms", "must be positive"));
    }
    let expires = Timestamp(
        at.as_millis()
            .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
    );
    let token = TokenId::new(format!("t-{}", crate::random::hex(8))).expect("valid id");
    let events = state
        .app
        .propose(
            &scope.tenant,
            scope.actor(),
            CommandBody::IssueExecutionToken {
                mission: id.clone(),
                token,
                tools: req.tools.unwrap_or(boundary_tools),
                parameters: req.parameters,
                expires_at: expires.min(deadline),
            },
        )
        .await?;
    let token = events
        .into_iter()
        .find_map(|e| match e {
            Event::ExecutionTokenIssued { token } => Some(token),
            _ => None,
        })
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "no token was issued"))?;
    Ok(created(
        format!("/v1/tenants/{}/missions/{id}", scope.tenant),
        &token,
    ))
}
