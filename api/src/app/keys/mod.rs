//! A tenant's API keys: minted with roles and an optional expiry for one
//! directory user, shown once, revocable. [`secret`] is the key format.

pub mod secret;

use std::collections::BTreeSet;

use aura_engine::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directory::directory_id;
use super::role::{self, Role};
use super::scope::{Admin, TenantScope};
use super::text;
use super::{App, AppError};
use crate::store::keys::StoredKey;
use crate::time::now_millis;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateKey)]
pub struct NewKey {
    /// What the key is for, for people reading the key list.
    #[schema(schema_with = crate::app::text::key_name)]
    pub name: String,
    /// The directory user the key acts as.
    #[schema(value_type = aura_engine::ids::UserId)]
    pub user_id: String,
    pub roles: Vec<Role>,
    /// Milliseconds since the epoch after which the key stops working.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub user_id: Option<String>,
    pub roles: Vec<Role>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<StoredKey> for ApiKey {
    fn from(k: StoredKey) -> ApiKey {
        ApiKey {
            id: k.id,
            name: k.name,
            user_id: k.user_id,
            roles: role::parse_list(&k.roles)
                .map(|r| r.into_iter().collect())
                .unwrap_or_default(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyCreated {
    pub id: String,
    /// The key itself, for `Authorization: Bearer`. Shown only here.
    pub key: String,
    pub user_id: String,
    pub roles: Vec<Role>,
    pub expires_at: Option<i64>,
}

/// Mints and stores a key; the caller checked the user and the roles.
pub(crate) async fn mint(
    app: &App,
    tenant: &TenantId,
    user: &UserId,
    name: String,
    roles: BTreeSet<Role>,
    expires_at: Option<i64>,
) -> Result<KeyCreated, AppError> {
    let minted = secret::mint();
    app.store()
        .insert_key(StoredKey {
            id: minted.id.clone(),
            tenant: Some(tenant.to_string()),
            user_id: Some(user.to_string()),
            name,
            roles: role::join(&roles),
            secret_hash: minted.secret_hash.clone(),
            created_at: now_millis(),
            expires_at,
            revoked_at: None,
        })
        .await?;
    Ok(KeyCreated {
        id: minted.id,
        key: minted.text,
        user_id: user.to_string(),
        roles: roles.into_iter().collect(),
        expires_at,
    })
}

/// Mints a key for an active user of the tenant.
pub async fn create(
    app: &App,
    scope: &TenantScope<Admin>,
    new: NewKey,
) -> Result<KeyCreated, AppError> {
    text::check("/name", &new.name)?;
    if new.roles.is_empty() {
        return Err(AppError::invalid("/roles", "give at least one role"));
    }
    if let Some(i) = new.roles.iter().position(|r| !r.is_tenant_role()) {
        return Err(AppError::invalid(
            &format!("/roles/{i}"),
            "platform_admin is not a tenant role",
        ));
    }
    if new.expires_at.is_some_and(|t| t <= now_millis()) {
        return Err(AppError::invalid(
            "/expires_at",
            "the expiry is in the past",
        ));
    }
    let user = directory_id("/user_id", &new.user_id)?;
    let active = app
        .store()
        .user(scope.tenant.as_str(), user.as_str())
        .await?
        .is_some_and(|u| u.active);
    if !active {
        return Err(AppError::invalid(
            "/user_id",
            format!("no active user `{user}` in the directory"),
        ));
    }
    let roles = new.roles.into_iter().collect();
    mint(app, &scope.tenant, &user, new.name, roles, new.expires_at).await
}

/// The tenant's keys, never their secrets.
pub async fn list(app: &App, scope: &TenantScope<Admin>) -> Result<Vec<ApiKey>, AppError> {
    let keys = app.store().keys(Some(scope.tenant.as_str())).await?;
    Ok(keys.into_iter().map(ApiKey::from).collect())
}

/// Revokes a key at once; it can never be used again.
pub async fn revoke(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    if app
        .store()
        .revoke_key(scope.tenant.as_str(), id, now_millis())
        .await?
    {
        Ok(())
    } else {
        Err(AppError::not_found("unrevoked key", id))
    }
}
