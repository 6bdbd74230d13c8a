//! A tenant's API keys: minted with roles and an optional expiry for one
//! directory user, shown once, revocable. [`secret`] is the key format.

pub mod secret;

use std::collections::BTreeSet;

use aura_engine::Timestamp;
use aura_engine::directory::{DirectoryChange, KeyId, KeyRecord, NewKey as KeyToRecord};
use aura_engine::ids::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directory::{self, directory_id};
use super::role::Role;
use super::scope::{Admin, TenantScope};
use super::text;
use super::{App, AppError};
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
    /// Who minted the key: `user:<id>` (the user themself or an
    /// administrator for them) or `platform`.
    pub minted_by: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub(crate) fn key_view(id: &KeyId, k: &KeyRecord) -> ApiKey {
    ApiKey {
        id: id.to_string(),
        name: k.name.clone(),
        user_id: Some(k.user.to_string()),
        roles: k.roles.iter().copied().collect(),
        minted_by: k.minted_by.to_string(),
        created_at: k.created_at.as_millis(),
        expires_at: k.expires_at.map(Timestamp::as_millis),
        revoked_at: k.revoked_at.map(Timestamp::as_millis),
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

/// A freshly drawn key and the change that records it (its secret's
/// hash only); the caller proposes the change and then hands out the key.
pub(crate) fn draw(
    user: &UserId,
    name: String,
    roles: BTreeSet<Role>,
    expires_at: Option<i64>,
) -> (DirectoryChange, KeyCreated) {
    let minted = secret::mint();
    let created = KeyCreated {
        id: minted.id.to_string(),
        key: minted.text,
        user_id: user.to_string(),
        roles: roles.iter().copied().collect(),
        expires_at,
    };
    let change = DirectoryChange::MintKey {
        key: KeyToRecord {
            id: minted.id,
            name,
            user: user.clone(),
            roles,
            secret_hash: minted.secret_hash,
            expires_at: expires_at.map(Timestamp),
        },
    };
    (change, created)
}

/// Mints a key for an active user of the tenant. Minting one for another
/// user takes the admin role, as every key mint does, and the record
/// says that an administrator minted it for them.
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
    let active = scope.read(app, |t| {
        t.directory().users().get(&user).is_some_and(|u| u.active)
    })?;
    if !active {
        return Err(AppError::invalid(
            "/user_id",
            format!("no active user `{user}` in the directory"),
        ));
    }
    let roles = new.roles.into_iter().collect();
    let (mint, created) = draw(&user, new.name, roles, new.expires_at);
    directory::change(app, scope, mint).await?;
    Ok(created)
}

/// The tenant's keys, never their secrets.
pub fn list(app: &App, scope: &TenantScope<Admin>) -> Result<Vec<ApiKey>, AppError> {
    scope.read(app, |t| {
        let keys = t.directory().keys();
        keys.iter().map(|(id, k)| key_view(id, k)).collect()
    })
}

/// Revokes a key at once; it can never be used again.
pub async fn revoke(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    let key = KeyId::new(id).map_err(|_| AppError::not_found("unrevoked key", id))?;
    directory::change(app, scope, DirectoryChange::RevokeKey { key }).await
}
