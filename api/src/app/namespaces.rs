//! Namespaces: where missions, policies, authority and routing live.

use aura_engine::ids::NamespaceId;
use aura_engine::machine::{CommandBody, Namespace as EngineNamespace};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Admin, Member, TenantScope};
use super::{App, AppError};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Namespace {
    pub id: String,
    pub display_name: String,
    pub created_at: String,
    /// The stable policy bundle's version, if one is set.
    pub stable_bundle: Option<String>,
    /// The canary bundle's version and share in basis points, if running.
    pub canary_bundle: Option<String>,
    pub canary_basis_points: Option<u32>,
}

impl Namespace {
    fn of(id: &NamespaceId, n: &EngineNamespace) -> Namespace {
        Namespace {
            id: id.to_string(),
            display_name: n.display_name.clone(),
            created_at: n.created_at.to_rfc3339(),
            stable_bundle: n.policy.stable.map(|d| d.to_hex()),
            canary_bundle: n.policy.canary.as_ref().map(|c| c.bundle.to_hex()),
            canary_basis_points: n.policy.canary.as_ref().map(|c| c.basis_points),
        }
    }
}

/// Creates a namespace.
pub async fn create(
    app: &App,
    scope: &TenantScope<Admin>,
    id: NamespaceId,
    display_name: String,
) -> Result<Namespace, AppError> {
    let body = CommandBody::CreateNamespace {
        namespace: id.clone(),
        display_name,
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    read(app, scope, &id)
}

/// The tenant's namespaces, by id.
pub fn list(app: &App, scope: &TenantScope<Member>) -> Result<Vec<Namespace>, AppError> {
    scope.read(app, |t| {
        t.namespaces()
            .iter()
            .map(|(id, n)| Namespace::of(id, n))
            .collect()
    })
}

/// One namespace.
pub fn get(
    app: &App,
    scope: &TenantScope<Member>,
    id: &NamespaceId,
) -> Result<Namespace, AppError> {
    read(app, scope, id)
}

fn read<R>(app: &App, scope: &TenantScope<R>, id: &NamespaceId) -> Result<Namespace, AppError> {
    scope
        .read(app, |t| {
            t.namespaces().get(id).map(|n| Namespace::of(id, n))
        })?
        .ok_or_else(|| AppError::not_found("namespace", id.as_str()))
}
