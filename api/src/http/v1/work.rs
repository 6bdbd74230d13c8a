//! The worker protocol over REST, for workers outside `aura serve`
//! ([`crate::app::work`] holds the use cases): claim a mission from a
//! namespace's queue (long-polling), heartbeat to keep the lease, report
//! each step. Tool calls go through the Tool Gateway with the claim's
//! ExecutionToken.

use std::time::Duration;

use aura_engine::ids::{AgentId, NamespaceId, WorkerId};
use aura_engine::mission::StepOutcome;
use aura_engine::time::Millis;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::missions::mission_id;
use crate::app::work::{self as work, ClaimNext, DEFAULT_LEASE};
pub use crate::app::work::{Assignment, ExecutionView, LeaseView};
use crate::http::auth::{Member, TenantScope, Worker};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

/// The longest a claim waits for work: half the default request timeout,
/// so that a long poll always ends with an answer rather than a timeout.
const MAX_WAIT: Duration = Duration::from_secs(15);

/// A worker asking for a mission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Who is claiming (host and process, say); recorded with the lease.
    pub worker: WorkerId,
    /// How long the lease lasts without a heartbeat: 1000 to 600000 ms
    /// (default 30000).
    #[schema(minimum = 1000, maximum = 600_000)]
    pub lease_ms: Option<u64>,
    /// How long to wait for a mission when none is queued, up to 15000 ms
    /// and half the server's request timeout (default 0: answer at once).
    #[schema(maximum = 15_000)]
    pub wait_ms: Option<u64>,
    /// Only missions of this agent (a worker that runs one agent).
    pub agent: Option<AgentId>,
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
    let ask = ClaimNext {
        namespace,
        worker: req.worker,
        lease: req.lease_ms.map_or(DEFAULT_LEASE, Millis),
        wait: Duration::from_millis(req.wait_ms.unwrap_or(0)),
        max_wait: MAX_WAIT.min(state.config.request_timeout / 2),
        agent: req.agent,
    };
    Ok(match work::claim_next(&state.app, &scope, ask).await? {
        Some(assignment) => Json(assignment).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// A heartbeat: the worker is alive and still holds the mission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub epoch: u64,
    /// The lease runs this long from now: 1000 to 600000 ms (default 30000).
    #[schema(minimum = 1000, maximum = 600_000)]
    pub lease_ms: Option<u64>,
    /// Progress details to keep (at most 16 KiB encoded); handed to the
    /// next worker if this one dies.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Value>,
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
    let lease = req.lease_ms.map_or(DEFAULT_LEASE, Millis);
    let view = work::heartbeat(&state.app, &scope, &id, req.epoch, lease, req.progress).await?;
    Ok(Json(view))
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
    pub outcome: StepOutcome,
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
    let view = work::report_step(&state.app, &scope, &id, req.epoch, path.2, req.outcome).await?;
    Ok(Json(view))
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
    let view = work::execution(&state.app, &scope, &id)?;
    Ok(Json(view))
}
