//! The engine cluster as API callers see it: members, regions, leader.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::auth::Caller;
use crate::http::problem::{Problem, ProblemKind};
use crate::http::server::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub id: u64,
    pub region: String,
    pub voter: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Cluster {
    /// The node that answered.
    pub node: u64,
    pub region: String,
    /// `leader`, `follower`, `candidate`, `learner`.
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub members: Vec<Member>,
}

/// Cluster status; any valid key may read it. Read from Raft's metrics:
/// the engine state is not hashed for it.
#[utoipa::path(get, operation_id = "cluster_status", path = "/v1/cluster", tag = "cluster",
    security(("api_key" = [])),
    responses((status = 200, description = "Status", body = Cluster)))]
pub async fn status(
    caller: axum::Extension<Caller>,
    State(state): State<AppState>,
) -> Result<Json<Cluster>, Problem> {
    let _ = caller;
    let s = state.node.membership();
    let role = serde_json::to_value(s.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "unknown role"))?;
    Ok(Json(Cluster {
        node: s.node,
        region: s.region,
        role,
        term: s.term,
        leader: s.leader,
        committed: s.committed,
        applied: s.applied,
        members: s
            .members
            .into_iter()
            .map(|m| Member {
                id: m.id,
                region: m.region,
                voter: m.voter,
            })
            .collect(),
    }))
}
