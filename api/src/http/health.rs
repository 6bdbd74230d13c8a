//! Liveness, readiness and metrics: unauthenticated, for load balancers,
//! orchestrators and Prometheus.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::problem::{Problem, ProblemKind};
use crate::http::server::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// The current Raft leader.
    pub leader: u64,
    /// Highest log index this node has applied.
    pub applied_index: u64,
}

/// The node can serve requests: the engine has a leader, and the database
/// (and Redis, when configured) answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (no leader yet, or the database or Redis does not answer)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let s = state.node.progress();
    if let Err(e) = state.app.store().ping().await {
        return Problem::new(
            ProblemKind::NotReady,
            format!("the database does not answer: {e}"),
        )
        .into_response();
    }
    if let Err(e) = state.app.gateway().ping().await {
        return Problem::new(
            ProblemKind::NotReady,
            format!("Redis (AURA_REDIS_URL) does not answer: {e}"),
        )
        .into_response();
    }
    match s.leader {
        Some(leader) => Json(Readiness {
            status: "ready",
            leader,
            applied_index: s.applied.unwrap_or(0),
        })
        .into_response(),
        None => {
            Problem::new(ProblemKind::NotReady, "the engine has no Raft leader yet").into_response()
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state
            .metrics
            .render(&state.node, &state.app.gateway().refusal_counts()),
    )
        .into_response()
}
