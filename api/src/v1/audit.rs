//! The tenant's audit chain over the API: entries by range, signed
//! checkpoints, inclusion and consistency proofs, and the export that
//! `aura audit verify` checks offline.

use aura_engine::audit::write_export;
use aura_engine::machine::CommandBody;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Auditor, TenantScope};
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryRange {
    /// First sequence number (default 0).
    pub from: Option<u64>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entries {
    /// Entries with their payloads, in chain order.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<serde_json::Value>,
    /// Entries in the chain now.
    pub total: u64,
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Proof {
    pub size: u64,
    /// Merkle root at `size`, hex.
    pub root: String,
    /// The leaf's hash (inclusion proofs) , hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    /// Sibling hashes, hex, bottom up (RFC 6962 / 9162).
    pub path: Vec<String>,
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("/limit", "must be 1 to 1000"));
    }
    let from = q.from.unwrap_or(0);
    let found = scope.read(&state.app, |t| Entries {
        entries: t
            .audit()
            .records_in(from, from.saturating_add(limit))
            .iter()
            .map(|r| serde_json::to_value(r).expect("records serialize"))
            .collect(),
        total: t.audit().len(),
    })?;
    Ok(Json(found))
}

/// Signs a checkpoint over the chain as it is now.
#[utoipa::path(post, operation_id = "audit_sign_checkpoint", path = "/v1/tenants/{tenant}/audit/checkpoints", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 201, description = "The signed checkpoint", body = Object)))]
pub async fn sign_checkpoint(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, Problem> {
    state
        .app
        .propose(&scope.tenant, scope.actor(), CommandBody::SignCheckpoint)
        .await?;
    let cp = scope
        .read(&state.app, |t| t.audit().checkpoints().last().cloned())?
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "no checkpoint was signed"))?;
    Ok((axum::http::StatusCode::CREATED, Json(cp)).into_response())
}

/// The tenant's signed checkpoints, oldest first.
#[utoipa::path(get, operation_id = "audit_checkpoints", path = "/v1/tenants/{tenant}/audit/checkpoints", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Checkpoints", body = Vec<Object>)))]
pub async fn checkpoints(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, Problem> {
    let found = scope.read(&state.app, |t| {
        serde_json::to_value(t.audit().checkpoints()).expect("checkpoints serialize")
    })?;
    Ok(Json(found))
}

fn hexes(v: Vec<aura_engine::Digest>) -> Vec<String> {
    v.into_iter().map(|d| d.to_hex()).collect()
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
    let found = scope.read(&state.app, |t| {
        let tree = t.audit().tree();
        let size = q.size.unwrap_or(tree.len());
        let path = tree
            .inclusion_proof(q.index, size)
            .map_err(|e| Problem::invalid("/index", e.to_string()))?;
        let root = tree
            .root_at(size)
            .map_err(|e| Problem::invalid("/size", e.to_string()))?;
        let leaf = t
            .audit()
            .entry(q.index)
            .ok_or_else(|| Problem::invalid("/index", "no such entry"))?
            .leaf_hash();
        Ok::<_, Problem>(Proof {
            size,
            root: root.to_hex(),
            leaf: Some(leaf.to_hex()),
            path: hexes(path),
        })
    })??;
    Ok(Json(found))
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
    let found = scope.read(&state.app, |t| {
        let tree = t.audit().tree();
        let to = q.to.unwrap_or(tree.len());
        let path = tree
            .consistency_proof(q.from, to)
            .map_err(|e| Problem::invalid("/from", e.to_string()))?;
        let root = tree
            .root_at(to)
            .map_err(|e| Problem::invalid("/to", e.to_string()))?;
        Ok::<_, Problem>(Proof {
            size: to,
            root: root.to_hex(),
            leaf: None,
            path: hexes(path),
        })
    })??;
    Ok(Json(found))
}

/// The whole chain as an export (JSON Lines, `aura.audit-export/1`), for
/// `aura audit verify --key <tenant public key>`.
#[utoipa::path(get, operation_id = "audit_export", path = "/v1/tenants/{tenant}/audit/export", tag = "audit",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "The export", body = String, content_type = "application/x-ndjson")))]
pub async fn export(
    scope: TenantScope<Auditor>,
    State(state): State<AppState>,
) -> Result<Response, Problem> {
    let bytes = scope
        .read(&state.app, |t| {
            let mut out = Vec::new();
            write_export(&mut out, t.id(), &t.public_key(), t.audit()).map(|_| out)
        })?
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("export failed: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-export.jsonl\"",
            ),
        ],
        bytes,
    )
        .into_response())
}
