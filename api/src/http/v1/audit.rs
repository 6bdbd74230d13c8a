//! The audit chain over REST ([`crate::app::audit`] holds the use
//! cases).

use aura_engine::audit::Checkpoint;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::audit;
pub use crate::app::audit::{Entries, Proof};
use crate::http::auth::{Auditor, TenantScope};
use crate::http::problem::Problem;
use crate::http::server::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryRange {
    /// First sequence number (default 0).
    pub from: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

impl EntryRange {
    /// The first entry and how many, with their defaults.
    pub fn bounds(&self) -> (u64, u64) {
        (self.from.unwrap_or(0), self.limit.unwrap_or(100))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    pub index: u64,
    /// Tree size the proof is for (default: the whole chain now).
    pub size: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub from: u64,
    /// Default: the whole chain now.
    pub to: Option<u64>,
}

/// Audit entries by sequence number.
#[utoipa::path(get, operation_id = "audit_entries", path = "/v1/tenants/{tenant}/audit/entries", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path), EntryRange),
    responses((status = 200, description = "Entries", body = Entries)))]
pub async fn entries(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
    Query(q): Query<EntryRange>,
) -> Result<Json<Entries>, Problem> {
    let (from, limit) = q.bounds();
    Ok(Json(audit::entries(&state.app, &scope, from, limit)?))
}

/// Signs a checkpoint over the chain as it is now.
#[utoipa::path(post, operation_id = "audit_sign_checkpoint", path = "/v1/tenants/{tenant}/audit/checkpoints", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 201, description = "The signed checkpoint", body = Checkpoint)))]
pub async fn sign_checkpoint(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, Problem> {
    let cp = audit::sign_checkpoint(&state.app, &scope).await?;
    Ok((StatusCode::CREATED, Json(cp)).into_response())
}

/// The tenant's signed checkpoints, oldest first.
#[utoipa::path(get, operation_id = "audit_checkpoints", path = "/v1/tenants/{tenant}/audit/checkpoints", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Checkpoints", body = Vec<Checkpoint>)))]
pub async fn checkpoints(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Json<Vec<Checkpoint>>, Problem> {
    Ok(Json(audit::checkpoints(&state.app, &scope)?))
}

/// Proof that entry `index` is in the tree of `size` entries.
#[utoipa::path(get, operation_id = "audit_inclusion", path = "/v1/tenants/{tenant}/audit/proofs/inclusion", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path), InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = Proof),
        (status = 422, description = "Index or size out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn inclusion(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<Proof>, Problem> {
    Ok(Json(audit::inclusion(&state.app, &scope, q.index, q.size)?))
}

/// Proof that the tree of `from` entries is a prefix of the tree of `to`.
#[utoipa::path(get, operation_id = "audit_consistency", path = "/v1/tenants/{tenant}/audit/proofs/consistency", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = Proof),
        (status = 422, description = "Sizes out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn consistency(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<Proof>, Problem> {
    Ok(Json(audit::consistency(&state.app, &scope, q.from, q.to)?))
}

/// The chain up to its last signed checkpoint (one is signed first if
/// entries are unsigned) as an export (JSON Lines,
/// `aura.audit-export/1`), for `aura audit verify --key <tenant public
/// key>`.
#[utoipa::path(get, operation_id = "audit_export", path = "/v1/tenants/{tenant}/audit/export", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The export", body = String, content_type = "application/x-ndjson")))]
pub async fn export(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, Problem> {
    Ok(export_response(audit::export(&state.app, &scope).await?))
}

/// An export as a download.
pub(super) fn export_response(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-export.jsonl\"",
            ),
        ],
        bytes,
    )
        .into_response()
}
