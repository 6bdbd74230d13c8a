//! Tenants: created by the platform, each with a first admin user and
//! key in its directory.

use aura_engine::directory::{self, DirectoryChange};
use aura_engine::identity::SigningKeyId;
use aura_engine::ids::TenantId;
use aura_engine::machine::{CommandBody, TenantState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directory::directory_id;
use super::keys::{self, KeyCreated};
use super::role::Role;
use super::scope::{Member, PlatformScope, TenantScope};
use super::{App, AppError};

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
    /// The tenant's current Ed25519 public key (base64), which signs its
    /// credentials, tokens, outcomes and audit checkpoints from now on
    /// (`GET …/signing-keys` lists the keys before it).
    pub public_key: String,
    pub key_id: SigningKeyId,
    pub namespaces: usize,
}

impl From<&TenantState> for Tenant {
    fn from(t: &TenantState) -> Tenant {
        Tenant {
            id: t.id().to_string(),
            display_name: t.display_name().to_owned(),
            created_at: t.created_at().to_rfc3339(),
            public_key: t.public_key().to_base64(),
            key_id: t.signing_key_id(),
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
    if directory::is_platform(&tenant) {
        return Err(AppError::invalid("/id", "this id is the platform's own"));
    }
    let admin = new.admin.unwrap_or_else(|| FirstAdmin {
        user_id: "admin".into(),
        user_name: "admin".into(),
        display_name: "Administrator".into(),
        email: None,
    });
    // The pointer names the field as this request spells it.
    directory_id("/admin/user_id", &admin.user_id)?;
    let admin_user = super::directory::NewUser {
        id: admin.user_id,
        user_name: admin.user_name,
        display_name: admin.display_name,
        email: admin.email,
        active: true,
    };
    let create_admin = admin_user.into_change("/admin")?;
    let DirectoryChange::CreateUser { user: admin_id, .. } = &create_admin else {
        unreachable!("a new user is a CreateUser change")
    };
    let roles = [Role::Admin].into();
    let (mint, key) = keys::draw(admin_id, "first admin".into(), roles, None);
    if app.read_local(|s| s.tenant(&tenant).is_some()) {
        return Err(AppError::Conflict(format!(
            "tenant `{tenant}` already exists"
        )));
    }
    let bodies = founding(app, &tenant, new.display_name, [create_admin, mint]);
    app.propose_all(&tenant, scope.caller.actor(), bodies)
        .await?;
    let tenant = app
        .read_local(|s| s.tenant(&tenant).map(Tenant::from))
        .ok_or_else(|| AppError::Internal("the tenant vanished".into()))?;
    Ok(TenantCreated {
        tenant,
        admin_key: key,
    })
}

/// The commands that found a tenant, to propose as one log entry with the
/// platform as actor: the tenant with a fresh signing key, then its first
/// directory changes (its administrator and their keys), each in the new
/// tenant's audit chain.
pub(crate) fn founding(
    app: &App,
    tenant: &TenantId,
    display_name: String,
    directory: impl IntoIterator<Item = DirectoryChange>,
) -> Vec<CommandBody> {
    let create = CommandBody::CreateTenant {
        display_name,
        signing_key_seed: super::signing_keys::fresh_seed(app, tenant),
    };
    std::iter::once(create)
        .chain(directory.into_iter().map(super::directory::by_platform))
        .collect()
}

/// The customer tenants (not the platform's own).
pub fn list(app: &App, _: &PlatformScope) -> Vec<Tenant> {
    app.read_local(|s| {
        s.tenants()
            .filter(|t| !directory::is_platform(t.id()))
            .map(Tenant::from)
            .collect()
    })
}

/// The platform's own tenant: its keys' directory and audit chain.
pub fn platform(app: &App, scope: &PlatformScope) -> Result<Tenant, AppError> {
    scope.platform_tenant().read(app, |t| Tenant::from(t))
}

pub fn get(app: &App, scope: &TenantScope<Member>) -> Result<Tenant, AppError> {
    scope.read(app, |t| Tenant::from(t))
}
