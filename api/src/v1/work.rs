//! The worker protocol over REST, for workers outside `aura serve`: claim a
//! mission from a namespace's queue (long-polling), heartbeat to keep the
//! lease, report each step. Tool calls go through the Tool Gateway with the
//! claim's ExecutionToken. Every call carries the claim's epoch; once
//! another worker has taken over, the engine refuses the old epoch.

use std::time::Duration;

use aura_engine::identity::ExecutionToken;
use aura_engine::ids::{AgentId, MissionId, NamespaceId, TenantId, TokenId, WorkerId};
use aura_engine::machine::rejection::Rejection;
use aura_engine::machine::{CommandBody, Event, TenantState};
use aura_engine::mission::execution::{MAX_LEASE, MIN_LEASE};
use aura_engine::mission::{Lease, Mission, PlanStep, StepOutcome, StepReport};
use aura_engine::time::Millis;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::config::read_tenant;
use super::missions::mission_id;
use crate::auth::{Member, TenantScope, Worker};
use crate::json::Body;
use crate::problem::Problem;
use crate::runtime::queue;
use crate::server::{AppState, ProposeError};
use crate::time;

const DEFAULT_LEASE_MS: u64 = 30_000;
/// The longest a claim waits for work.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A worker asking for a mission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Who is claiming (host and process, say); recorded with the lease.
    #[schema(value_type = String)]
    pub worker: WorkerId,
    /// How long the lease lasts without a heartbeat: 1000 to 600000 ms
    /// (default 30000).
    pub lease_ms: Option<u64>,
    /// How long to wait for a mission when none is queued, up to 20000 ms
    /// (default 0: answer at once).
    pub wait_ms: Option<u64>,
    /// Only missions of this agent (a worker that runs one agent).
    #[schema(value_type = Option<String>)]
    pub agent: Option<AgentId>,
}

/// A claimed mission: everything a worker needs to run or resume it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignment {
    #[schema(value_type = String)]
    pub mission: MissionId,
    #[schema(value_type = String)]
    pub namespace: NamespaceId,
    #[schema(value_type = String)]
    pub agent: AgentId,
    pub objective: String,
    /// Send with every heartbeat and report.
    pub epoch: u64,
    /// Epoch milliseconds; heartbeat before then.
    pub lease_expires_at: i64,
    /// The first step not yet reported: resume here.
    pub next_step: u32,
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<PlanStep>,
    /// Steps already done, with their outputs.
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<StepReport>,
    /// What a worker last said about its progress (a previous holder's,
    /// on a takeover).
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
    /// The ExecutionToken of this claim, for the Tool Gateway; it stops
    /// working when a later claim takes over.
    #[schema(value_type = Object)]
    pub token: ExecutionToken,
}

/// Claims the next mission of the namespace's queue.
#[utoipa::path(post, operation_id = "work_claim", path = "/v1/tenants/{tenant}/namespaces/{namespace}/claims", tag = "work",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("namespace" = String, Path)),
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "A mission, now IN_PROGRESS under this worker's lease", body = Assignment),
        (status = 204, description = "Nothing to claim within the wait"),
        (status = 404, description = "No such namespace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Lease or wait out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn claim(
    scope: TenantScope<Worker>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<ClaimRequest>,
) -> Result<Response, Problem> {
    let namespace =
        NamespaceId::new(path.1.clone()).map_err(|_| Problem::not_found("namespace", &path.1))?;
    if !read_tenant(&state, &scope.tenant, |t| {
        t.namespaces().contains_key(&namespace)
    })? {
        return Err(Problem::not_found("namespace", &path.1));
    }
    let lease = Millis(req.lease_ms.unwrap_or(DEFAULT_LEASE_MS));
    if lease < MIN_LEASE || lease > MAX_LEASE {
        return Err(Problem::invalid(
            "/lease_ms",
            "must be 1000 to 600000 milliseconds",
        ));
    }
    let max_wait = MAX_WAIT.min(state.config.request_timeout / 2);
    let wait = Duration::from_millis(req.wait_ms.unwrap_or(0));
    if wait > max_wait {
        return Err(Problem::invalid(
            "/wait_ms",
            format!("must be at most {} milliseconds", max_wait.as_millis()),
        ));
    }
    let until = tokio::time::Instant::now() + wait;
    // Subscribed before looking, so a mission queued in between wakes us.
    let mut feed = state.node.subscribe();
    loop {
        let now = time::now();
        let found = read_tenant(&state, &scope.tenant, |t| {
            queue::candidates(t, &namespace, req.agent.as_ref(), now, |_| true)
                .map(|m| m.id().clone())
                .collect::<Vec<_>>()
        })?;
        for mission in found {
            let body = CommandBody::ClaimMission {
                mission: mission.clone(),
                worker: req.worker.clone(),
                lease,
                token: TokenId::new(format!("w-{}", crate::random::hex(8))).expect("valid id"),
            };
            match state
                .try_propose(&scope.tenant, scope.actor(), body, None)
                .await
            {
                Ok(events) => {
                    let assignment =
                        read_tenant(&state, &scope.tenant, |t| assignment(t, &mission, &events))?
                            .ok_or_else(|| {
                            Problem::new(
                                crate::problem::ProblemKind::Internal,
                                "the claim was recorded but its mission cannot be read",
                            )
                        })?;
                    return Ok(Json(assignment).into_response());
                }
                // Another worker was faster, or the mission moved on.
                Err(ProposeError::Refused(r)) => {
                    tracing::debug!(%mission, refusal = %r, "claim overtaken");
                }
                Err(ProposeError::Failed(p)) => return Err(*p),
            }
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        // Leases lapse without any commit, so look again at least every
        // second even when nothing happens in the tenant.
        let recheck = tokio::time::sleep(left.min(Duration::from_secs(1)));
        tokio::select! {
            () = recheck => {}
            () = tenant_changed(&mut feed, &scope.tenant) => {}
        }
    }
}

async fn tenant_changed(
    feed: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<aura_raft::FeedItem>>,
    tenant: &TenantId,
) {
    loop {
        match feed.recv().await {
            Ok(item) if &item.tenant == tenant => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn assignment(t: &TenantState, mission: &MissionId, events: &[Event]) -> Option<Assignment> {
    let m = t.missions().get(mission)?;
    let token = events.iter().find_map(|e| match e {
        Event::MissionClaimed { token, .. } => Some(token.clone()),
        _ => None,
    })?;
    let lease = m.execution().lease()?;
    Some(Assignment {
        mission: mission.clone(),
        namespace: m.namespace().clone(),
        agent: m.agent().clone(),
        objective: m.definition().objective.clone(),
        epoch: lease.epoch,
        lease_expires_at: lease.expires_at.as_millis(),
        next_step: m.execution().next_step(),
        steps: m.plan().map(|p| p.steps.clone()).unwrap_or_default(),
        reports: m.execution().reports().to_vec(),
        progress: m.execution().progress().cloned(),
        token,
    })
}

/// A heartbeat: the worker is alive and still holds the mission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub epoch: u64,
    /// The lease runs this long from now: 1000 to 600000 ms (default 30000).
    pub lease_ms: Option<u64>,
    /// Progress details to keep (at most 16 KiB encoded); handed to the
    /// next worker if this one dies.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
}

/// Who holds a mission, and until when.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaseView {
    #[schema(value_type = String)]
    pub worker: WorkerId,
    pub epoch: u64,
    /// Epoch milliseconds.
    pub expires_at: i64,
}

impl From<&Lease> for LeaseView {
    fn from(l: &Lease) -> LeaseView {
        LeaseView {
            worker: l.worker.clone(),
            epoch: l.epoch,
            expires_at: l.expires_at.as_millis(),
        }
    }
}

/// Extends the lease of the worker holding the mission.
#[utoipa::path(post, operation_id = "work_heartbeat", path = "/v1/tenants/{tenant}/missions/{mission}/heartbeat", tag = "work",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "The extended lease", body = LeaseView),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The epoch was superseded (`stale_epoch`) or the lease ran out (`lease_lost`): stop working on the mission", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Lease out of range or progress too large", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn heartbeat(
    scope: TenantScope<Worker>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<HeartbeatRequest>,
) -> Result<Json<LeaseView>, Problem> {
    let id = mission_id(&path.1)?;
    let body = CommandBody::Heartbeat {
        mission: id.clone(),
        epoch: req.epoch,
        lease: Millis(req.lease_ms.unwrap_or(DEFAULT_LEASE_MS)),
        progress: req.progress,
    };
    state.propose(&scope.tenant, scope.actor(), body).await?;
    let lease = read_tenant(&state, &scope.tenant, |t| {
        t.missions()
            .get(&id)
            .and_then(|m| m.execution().lease().map(LeaseView::from))
    })?;
    lease
        .map(Json)
        .ok_or_else(|| crate::error::rejection(Rejection::LeaseLost { epoch: req.epoch }))
}

/// How a step ended, under the claim's epoch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepReportRequest {
    pub epoch: u64,
    /// `{"outcome": "succeeded", "call": n}` (the step's gateway call n
    /// succeeded), `{"outcome": "performed", "output": ...}` (a
    /// governed-only tool, permitted by policy, run by the agent) or
    /// `{"outcome": "failed", "reason": "..."}`.
    #[schema(value_type = Object)]
    pub outcome: StepOutcome,
}

/// Where a mission's execution stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    #[schema(value_type = String)]
    pub state: aura_engine::mission::MissionState,
    /// Claims so far.
    pub epoch: u64,
    pub lease: Option<LeaseView>,
    /// What a worker last said about its progress.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
    pub next_step: u32,
    pub steps: u32,
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<StepReport>,
    /// After a step failed for good: the completed steps being undone,
    /// latest first, each with its compensation call.
    #[schema(value_type = Option<Object>)]
    pub saga: Option<aura_engine::mission::Saga>,
}

fn execution_view(m: &Mission) -> ExecutionView {
    let e = m.execution();
    ExecutionView {
        state: m.state(),
        epoch: e.epoch(),
        lease: e.lease().map(LeaseView::from),
        progress: e.progress().cloned(),
        next_step: e.next_step(),
        steps: m
            .plan()
            .map_or(0, |p| u32::try_from(p.steps.len()).unwrap_or(u32::MAX)),
        reports: e.reports().to_vec(),
        saga: e.saga().cloned(),
    }
}

fn read_execution(
    state: &AppState,
    tenant: &TenantId,
    id: &MissionId,
) -> Result<ExecutionView, Problem> {
    read_tenant(state, tenant, |t| t.missions().get(id).map(execution_view))?
        .ok_or_else(|| Problem::not_found("mission", id.as_str()))
}

/// Reports a step; the last step's success moves the mission to EXECUTED.
#[utoipa::path(post, operation_id = "work_report_step", path = "/v1/tenants/{tenant}/missions/{mission}/steps/{step}/report", tag = "work",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path), ("step" = u32, Path)),
    request_body = StepReportRequest,
    responses(
        (status = 200, description = "Recorded", body = ExecutionView),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Stale epoch, lost lease, a step out of order, or a call that did not succeed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report_step(
    scope: TenantScope<Worker>,
    State(state): State<AppState>,
    Path(path): Path<(String, String, u32)>,
    Body(req): Body<StepReportRequest>,
) -> Result<Json<ExecutionView>, Problem> {
    let id = mission_id(&path.1)?;
    let body = CommandBody::ReportStep {
        mission: id.clone(),
        epoch: req.epoch,
        step: path.2,
        outcome: req.outcome,
    };
    state.propose(&scope.tenant, scope.actor(), body).await?;
    read_execution(&state, &scope.tenant, &id).map(Json)
}

/// Who executes the mission and how far they got.
#[utoipa::path(get, operation_id = "work_execution", path = "/v1/tenants/{tenant}/missions/{mission}/execution", tag = "work",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    responses(
        (status = 200, description = "The mission's execution", body = ExecutionView),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn execution(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<ExecutionView>, Problem> {
    let id = mission_id(&path.1)?;
    read_execution(&state, &scope.tenant, &id).map(Json)
}
