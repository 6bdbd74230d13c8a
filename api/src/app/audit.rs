//! A tenant's audit chain: entries by range, signed checkpoints,
//! inclusion and consistency proofs, and the export that
//! `aura audit verify` checks offline.

use aura_engine::Digest;
use aura_engine::audit::{AuditRecord, Checkpoint, write_signed_export};
use aura_engine::machine::CommandBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Auditor, TenantScope};
use super::{App, AppError};

/// The most entries one read returns.
pub const MAX_ENTRIES: u64 = 1000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entries {
    /// Entries with their payloads, in chain order.
    pub entries: Vec<AuditRecord>,
    /// Entries in the chain now.
    pub total: u64,
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

fn hexes(v: Vec<Digest>) -> Vec<String> {
    v.into_iter().map(|d| d.to_hex()).collect()
}

/// Up to `limit` (1 to [`MAX_ENTRIES`]) entries from sequence number
/// `from`.
pub fn entries(
    app: &App,
    scope: &TenantScope<Auditor>,
    from: u64,
    limit: u64,
) -> Result<Entries, AppError> {
    if !(1..=MAX_ENTRIES).contains(&limit) {
        return Err(AppError::invalid(
            "/limit",
            format!("must be 1 to {MAX_ENTRIES}"),
        ));
    }
    scope.read(app, |t| Entries {
        entries: t.audit().records_in(from, from.saturating_add(limit)),
        total: t.audit().len(),
    })
}

/// Signs a checkpoint over the chain as it is now.
pub async fn sign_checkpoint(
    app: &App,
    scope: &TenantScope<Auditor>,
) -> Result<Checkpoint, AppError> {
    app.propose(&scope.tenant, scope.actor(), CommandBody::SignCheckpoint)
        .await?;
    scope
        .read(app, |t| t.audit().checkpoints().last().cloned())?
        .ok_or_else(|| AppError::Internal("no checkpoint was signed".into()))
}

/// The tenant's signed checkpoints, oldest first.
pub fn checkpoints(app: &App, scope: &TenantScope<Auditor>) -> Result<Vec<Checkpoint>, AppError> {
    scope.read(app, |t| t.audit().checkpoints().to_vec())
}

/// Proof that entry `index` is in the tree of `size` entries (default:
/// the whole chain now).
pub fn inclusion(
    app: &App,
    scope: &TenantScope<Auditor>,
    index: u64,
    size: Option<u64>,
) -> Result<Proof, AppError> {
    scope.read(app, |t| {
        let tree = t.audit().tree();
        let size = size.unwrap_or(tree.len());
        let path = tree
            .inclusion_proof(index, size)
            .map_err(|e| AppError::invalid("/index", e.to_string()))?;
        let root = tree
            .root_at(size)
            .map_err(|e| AppError::invalid("/size", e.to_string()))?;
        let leaf = t
            .audit()
            .entry(index)
            .ok_or_else(|| AppError::invalid("/index", "no such entry"))?
            .leaf_hash();
        Ok(Proof {
            size,
            root: root.to_hex(),
            leaf: Some(leaf.to_hex()),
            path: hexes(path),
        })
    })?
}

/// Proof that the tree of `from` entries is a prefix of the tree of `to`
/// (default: the whole chain now).
pub fn consistency(
    app: &App,
    scope: &TenantScope<Auditor>,
    from: u64,
    to: Option<u64>,
) -> Result<Proof, AppError> {
    scope.read(app, |t| {
        let tree = t.audit().tree();
        let to = to.unwrap_or(tree.len());
        let path = tree
            .consistency_proof(from, to)
            .map_err(|e| AppError::invalid("/from", e.to_string()))?;
        let root = tree
            .root_at(to)
            .map_err(|e| AppError::invalid("/to", e.to_string()))?;
        Ok(Proof {
            size: to,
            root: root.to_hex(),
            leaf: None,
            path: hexes(path),
        })
    })?
}

/// The chain as an export (JSON Lines, `aura.audit-export/1`) that ends
/// with a signed checkpoint: one is signed first if entries are unsigned,
/// and entries recorded after the last checkpoint wait for the next
/// export, so every export verifies as it is.
pub async fn export(app: &App, scope: &TenantScope<Auditor>) -> Result<Vec<u8>, AppError> {
    let unsigned = scope.read(app, |t| {
        t.audit().len() > t.audit().checkpoints().last().map_or(0, |cp| cp.size)
    })?;
    if unsigned {
        app.propose(&scope.tenant, scope.actor(), CommandBody::SignCheckpoint)
            .await?;
    }
    scope
        .read(app, |t| {
            let mut out = Vec::new();
            write_signed_export(&mut out, t.id(), &t.key_history(), t.audit())
                .map(|written| written.map(|_| out))
        })?
        .ok_or_else(|| AppError::Internal("no checkpoint was signed".into()))?
        .map_err(|e| AppError::Internal(format!("export failed: {e}")))
}
