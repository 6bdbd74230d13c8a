//! Missions over REST ([`crate::app::missions`] holds the use cases):
//! created with a definition and context (and optionally a plan, which
//! policy then decides), listed with filters and cursor pagination, shown
//! with their whole record, cancelled; execution tokens for their agent.

use std::collections::{BTreeMap, BTreeSet};

use aura_engine::Timestamp;
use aura_engine::identity::token::ParameterRules;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, ToolName};
use aura_engine::mission::{
    MissionContext, MissionDefinition, MissionState, PlanStep, RuntimeLimits,
};
use aura_engine::time::Millis;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, created};
pub use crate::app::missions::MissionSummary;
use crate::app::missions::{self, MissionQuery, NewMission, TokenRequest};
use crate::http::auth::{Member, Operator, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMission {
    /// Chosen by the server when omitted (time-ordered).
    #[serde(default)]
    #[schema(value_type = Option<aura_engine::ids::MissionId>)]
    pub id: Option<String>,
    #[schema(value_type = aura_engine::ids::NamespaceId)]
    pub namespace: String,
    #[schema(value_type = aura_engine::ids::AgentId)]
    pub agent: String,
    pub definition: MissionDefinition,
    pub context: MissionContext,
    /// {max_steps (1..10000, default 64), max_tool_calls (1..100000,
    /// default 256), max_run_entries (8..1000000, default 10000),
    /// max_run_bytes (4096..2^30, default 16 MiB)}: a run of the mission's
    /// audit record reaching either run limit is continued as new.
    #[serde(default)]
    pub limits: Option<RuntimeLimits>,
    /// A plan to submit at once: the mission moves to PLANNING and policy
    /// decides the plan (PERMIT → APPROVED and on into the namespace's
    /// queue, PENDING_EXECUTION; ESCALATE → WAITING_APPROVAL; DENY →
    /// CLOSED).
    #[serde(default)]
    pub plan: Option<Vec<PlanStep>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitPlan {
    /// Each step's tool and arguments, and optionally its retry policy
    /// and timeouts.
    pub steps: Vec<PlanStep>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMission {
    #[schema(schema_with = crate::app::text::note)]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// Tools the token allows; default: the mission's whole boundary.
    #[serde(default)]
    pub tools: Option<BTreeSet<ToolName>>,
    /// Per-tool parameter rules.
    #[serde(default)]
    pub parameters: BTreeMap<ToolName, ParameterRules>,
    /// Lifetime in milliseconds (default 15 minutes, capped by the
    /// mission's deadline).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub ttl_ms: Option<u64>,
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

/// A mission id from a path: one that cannot be an id names no mission.
pub(crate) fn mission_id(raw: &str) -> Result<MissionId, Problem> {
    MissionId::new(raw).map_err(|_| Problem::not_found("mission", raw))
}

fn location(scope: &TenantScope<impl Sized>, id: &MissionId) -> String {
    format!("/v1/tenants/{}/missions/{id}", scope.tenant)
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
        None => missions::new_id(),
    };
    let new = NewMission {
        id: id.clone(),
        namespace: NamespaceId::new(req.namespace)
            .map_err(|e| Problem::invalid("/namespace", e.to_string()))?,
        agent: AgentId::new(req.agent).map_err(|e| Problem::invalid("/agent", e.to_string()))?,
        definition: req.definition,
        context: req.context,
        limits: req.limits.unwrap_or_default(),
        plan: req.plan,
    };
    let location = location(&scope, &id);
    // Should the outcome be unknown, or the create be applied in part,
    // the problem names the mission, for a client that let the server
    // choose the id.
    let summary = missions::create(&state.app, &scope, new)
        .await
        .map_err(|e| Problem::from(e).with_resource_if_unsettled(|| location.clone()))?;
    Ok(created(location, &summary))
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
    let summary = missions::submit_plan(&state.app, &scope, &id, req.steps).await?;
    Ok(Json(summary))
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
    let query = MissionQuery {
        namespace: f.namespace,
        state: state_filter,
        agent: f.agent,
        created_after: f.created_after.map(Timestamp),
        created_before: f.created_before.map(Timestamp),
        after,
        limit: f.limit.unwrap_or(50),
    };
    let page = missions::list(&state.app, &scope, &query)?;
    let next_cursor = page
        .more
        .then(|| {
            page.items
                .last()
                .map(|m| URL_SAFE_NO_PAD.encode(m.id.as_bytes()))
        })
        .flatten();
    Ok(Json(Page {
        items: page.items,
        next_cursor,
    }))
}

/// The mission's whole record: definition, frozen context and boundary,
/// state timeline, plan with its decision records, approvals, holds, tool
/// call decisions and outcome; and `digest`, the digest of all of it,
/// which `aura mission replay` checks the audit record rebuilds.
#[utoipa::path(get, operation_id = "missions_get", path = "/v1/tenants/{tenant}/missions/{mission}", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    responses(
        (status = 200, description = "The mission", body = aura_engine::mission::Mission),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, Problem> {
    let id = mission_id(&path.1)?;
    Ok(Json(missions::record(&state.app, &scope, &id)?))
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
    Ok(Json(
        missions::cancel(&state.app, &scope, &id, req.reason).await?,
    ))
}

/// Issues an ExecutionToken to the mission's agent.
#[utoipa::path(post, operation_id = "missions_issue_token", path = "/v1/tenants/{tenant}/missions/{mission}/tokens", tag = "missions",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = IssueToken,
    responses(
        (status = 201, description = "The signed token", body = aura_engine::identity::token::ExecutionToken),
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
    let ask = TokenRequest {
        tools: req.tools,
        parameters: req.parameters,
        ttl: req.ttl_ms.map(Millis),
    };
    let token = missions::issue_token(&state.app, &scope, &id, ask).await?;
    Ok(created(location(&scope, &id), &token))
}
