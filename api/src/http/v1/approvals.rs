//! Approvals over REST ([`crate::app::approvals`] holds the use cases):
//! each approver's inbox and their decisions.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::app::approvals::PendingApproval;
use crate::app::approvals::{self, Vote};
use crate::app::missions::MissionSummary;
use crate::http::auth::{Approver, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    pub approve: bool,
    #[schema(schema_with = crate::app::text::note)]
    pub reason: String,
    /// A held step's index; omitted for the mission's plan.
    #[serde(default)]
    pub hold: Option<u32>,
}

/// What the caller may approve now: pending approvals at or below their
/// level, where separation of duties does not exclude them and they have
/// not voted yet.
#[utoipa::path(get, operation_id = "approvals_inbox", path = "/v1/tenants/{tenant}/approvals", tag = "approvals",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The caller's inbox", body = Vec<PendingApproval>)))]
pub async fn inbox(
    scope: TenantScope<Approver>,
    State(state): State<AppState>,
) -> Result<Json<Vec<PendingApproval>>, Problem> {
    Ok(Json(approvals::inbox(&state.app, &scope)?))
}

/// Approves or rejects a mission's plan or a held step.
#[utoipa::path(post, operation_id = "approvals_decide", path = "/v1/tenants/{tenant}/missions/{mission}/decisions", tag = "approvals",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("mission" = String, Path)),
    request_body = Decide,
    responses(
        (status = 200, description = "Recorded; the mission's state says whether it was the deciding vote", body = MissionSummary),
        (status = 404, description = "No such mission", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The vote was refused (level, quorum, separation of duties, nothing pending)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn decide(
    scope: TenantScope<Approver>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<Decide>,
) -> Result<Json<MissionSummary>, Problem> {
    let mission = super::missions::mission_id(&path.1)?;
    let vote = Vote {
        hold: req.hold,
        approve: req.approve,
        reason: req.reason,
    };
    Ok(Json(
        approvals::decide(&state.app, &scope, &mission, vote).await?,
    ))
}
