//! A tenant's API keys: minted with roles and an optional expiry for one
//! directory user, shown once, revocable.

use std::collections::BTreeSet;

use aura_engine::ids::{TenantId, UserId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use crate::auth::{Admin, Role, TenantScope, key, role};
use crate::error;
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;
use crate::store::keys::StoredKey;
use crate::time::now_millis;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for, for people reading the key list.
    #[schema(schema_with = crate::openapi::text::key_name)]
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
pub(crate) async fn mint_key(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    name: String,
    roles: Vec<Role>,
    expires_at: Option<i64>,
) -> Result<KeyCreated, Problem> {
    let minted = key::mint();
    let roles: BTreeSet<Role> = roles.into_iter().collect();
    let stored = StoredKey {
        id: minted.id.clone(),
        tenant: Some(tenant.to_string()),
        user_id: Some(user.to_string()),
        name,
        roles: role::join(&roles),
        secret_hash: minted.secret_hash.clone(),
        created_at: now_millis(),
        expires_at,
        revoked_at: None,
    };
    state
        .app
        .store()
        .insert_key(stored)
        .await
        .map_err(error::store)?;
    Ok(KeyCreated {
        id: minted.id.clone(),
        key: minted.text.clone(),
        user_id: user.to_string(),
        roles: roles.into_iter().collect(),
        expires_at,
    })
}

/// Mints an API key for a user of the tenant.
#[utoipa::path(post, operation_id = "keys_create", path = "/v1/tenants/{tenant}/api-keys", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; the key is in the body, this once", body = KeyCreated),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<CreateKey>,
) -> Result<Response, Problem> {
    super::directory::check_text("/name", &req.name)?;
    if req.roles.is_empty() {
        return Err(Problem::invalid("/roles", "give at least one role"));
    }
    if let Some(i) = req.roles.iter().position(|r| !r.is_tenant_role()) {
        return Err(Problem::invalid(
            &format!("/roles/{i}"),
            "platform_admin is not a tenant role",
        ));
    }
    if req.expires_at.is_some_and(|t| t <= now_millis()) {
        return Err(Problem::invalid("/expires_at", "the expiry is in the past"));
    }
    let user = UserId::new(req.user_id).map_err(|e| Problem::invalid("/user_id", e.to_string()))?;
    let exists = state
        .app
        .store()
        .user(scope.tenant.as_str(), user.as_str())
        .await
        .map_err(error::store)?
        .is_some_and(|u| u.active);
    if !exists {
        return Err(Problem::invalid(
            "/user_id",
            format!("no active user `{user}` in the directory"),
        ));
    }
    let k = mint_key(
        &state,
        &scope.tenant,
        &user,
        req.name,
        req.roles,
        req.expires_at,
    )
    .await?;
    Ok(created(
        format!("/v1/tenants/{}/api-keys/{}", scope.tenant, k.id),
        &k,
    ))
}

/// Lists the tenant's keys (never their secrets).
#[utoipa::path(get, operation_id = "keys_list", path = "/v1/tenants/{tenant}/api-keys", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Keys", body = Vec<ApiKey>)))]
pub async fn list(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKey>>, Problem> {
    let keys = state
        .app
        .store()
        .keys(Some(scope.tenant.as_str()))
        .await
        .map_err(error::store)?;
    Ok(Json(keys.into_iter().map(ApiKey::from).collect()))
}

/// Revokes a key at once; it can never be used again.
#[utoipa::path(delete, operation_id = "keys_revoke", path = "/v1/tenants/{tenant}/api-keys/{key}", tag = "api keys",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("key" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key, or already revoked", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (_, id) = path;
    let done = state
        .app
        .store()
        .revoke_key(scope.tenant.as_str(), &id, now_millis())
        .await
        .map_err(error::store)?;
    if done {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            ProblemKind::NotFound,
            format!("no unrevoked key `{id}` in this tenant"),
        ))
    }
}
