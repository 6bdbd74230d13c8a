//! Tenants: created by the platform, each with a first admin user and key.

use aura_engine::ids::TenantId;
use aura_engine::machine::{CommandBody, SigningSeed, TenantState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directory::directory_id;
use super::keys::{self, KeyCreated};
use super::role::Role;
use super::scope::{Member, PlatformScope, TenantScope};
use super::text;
use super::{App, AppError};
use crate::store::directory::User;
use crate::time::now_millis;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateTenant)]
pub struct NewTenant {
    /// 1 to 128 characters from a-z, 0-9, '-', '_' and '.'.
    pub id: String,
    pub display_name: String,
    /// The tenant's first administrator, created in its directory with id
    /// `admin` unless given.
    #[serde(default)]
    pub admin: Option<FirstAdmin>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    pub user_id: String,
    pub user_name: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
    /// The tenant's Ed25519 public key (base64), which signs its
    /// credentials, tokens and audit checkpoints.
    pub public_key: String,
    pub namespaces: usize,
}

impl From<&TenantState> for Tenant {
    fn from(t: &TenantState) -> Tenant {
        Tenant {
            id: t.id().to_string(),
            display_name: t.display_name().to_owned(),
            created_at: t.created_at().to_rfc3339(),
            public_key: t.public_key().to_base64(),
            namespaces: t.namespaces().len(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: Tenant,
    /// The first admin's key. Its `key` is shown this once.
    pub admin_key: KeyCreated,
}

/// Creates a tenant with its first admin user and API key.
pub async fn create(
    app: &App,
    scope: &PlatformScope,
    new: NewTenant,
) -> Result<TenantCreated, AppError> {
    let tenant = TenantId::new(new.id).map_err(|e| AppError::invalid("/id", e.to_string()))?;
    let admin = new.admin.unwrap_or_else(|| FirstAdmin {
        user_id: "admin".into(),
        user_name: "admin".into(),
        display_name: "Administrator".into(),
        email: None,
    });
    let admin_id = directory_id("/admin/user_id", &admin.user_id)?;
    text::check("/admin/user_name", &admin.user_name)?;
    text::check("/admin/display_name", &admin.display_name)?;
    if let Some(e) = &admin.email {
        text::check("/admin/email", e)?;
    }
    if app.read_local(|s| s.tenant(&tenant).is_some()) {
        return Err(AppError::Conflict(format!(
            "tenant `{tenant}` already exists"
        )));
    }
    // The directory rows first: if the engine then refuses, they are
    // removed again; the reverse order could leave a tenant nobody can
    // administer.
    let user = app
        .store()
        .insert_user(User {
            tenant: tenant.to_string(),
            id: admin_id.to_string(),
            user_name: admin.user_name,
            display_name: admin.display_name,
            email: admin.email,
            active: true,
            created_at: now_millis(),
        })
        .await?;
    // Undoes only what this request wrote: a concurrent creation of the
    // same tenant that won must keep its directory.
    let undo = async |key: Option<&str>| {
        if let Some(k) = key
            && let Err(e) = app.store().delete_key(k).await
        {
            tracing::error!(error = %e, "cannot remove the key of a tenant that was not created");
        }
        if let Err(e) = app.store().delete_user(&user.tenant, &user.id).await {
            tracing::error!(error = %e, "cannot remove the admin of a tenant that was not created");
        }
    };
    let roles = [Role::Admin].into();
    let key = match keys::mint(app, &tenant, &admin_id, "first admin".into(), roles, None).await {
        Ok(k) => k,
        Err(e) => {
            undo(None).await;
            return Err(e);
        }
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    let body = CommandBody::CreateTenant {
        display_name: new.display_name,
        signing_key_seed: SigningSeed(seed),
    };
    if let Err(e) = app.propose(&tenant, scope.caller.actor(), body).await {
        undo(Some(&key.id)).await;
        return Err(e);
    }
    let tenant = app
        .read_local(|s| s.tenant(&tenant).map(Tenant::from))
        .ok_or_else(|| AppError::Internal("the tenant vanished".into()))?;
    Ok(TenantCreated {
        tenant,
        admin_key: key,
    })
}

pub fn list(app: &App, _: &PlatformScope) -> Vec<Tenant> {
    app.read_local(|s| s.tenants().map(Tenant::from).collect())
}

pub fn get(app: &App, scope: &TenantScope<Member>) -> Result<Tenant, AppError> {
    scope.read(app, |t| Tenant::from(t))
}
