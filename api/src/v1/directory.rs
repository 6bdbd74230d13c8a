//! The directory over the API: users, groups and memberships. Admins
//! manage it; every member of the tenant may read it.

use aura_engine::ids::UserId;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use crate::auth::{Admin, Member, TenantScope};
use crate::error;
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;
use crate::store::directory::{Group as StoredGroup, User as StoredUser};
use crate::time::now_millis;

/// Free text fields: 1 to 256 characters, no control characters.
pub(crate) fn check_text(pointer: &str, s: &str) -> Result<(), Problem> {
    if s.trim().is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
        return Err(Problem::invalid(
            pointer,
            "must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// Directory ids follow the engine's id rules (they become approver ids).
fn directory_id(pointer: &str, s: &str) -> Result<UserId, Problem> {
    UserId::new(s).map_err(|e| Problem::invalid(pointer, e.to_string()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = aura_engine::ids::UserId)]
    pub id: String,
    /// The sign-in name; unique in the tenant.
    #[schema(schema_with = crate::openapi::text::user_name)]
    pub user_name: String,
    #[schema(schema_with = crate::openapi::text::line)]
    pub display_name: String,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::text::optional_line)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl From<StoredUser> for User {
    fn from(u: StoredUser) -> User {
        User {
            id: u.id,
            user_name: u.user_name,
            display_name: u.display_name,
            email: u.email,
            active: u.active,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    #[schema(value_type = aura_engine::ids::UserId)]
    pub id: String,
    #[schema(schema_with = crate::openapi::text::line)]
    pub display_name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub created_at: i64,
    /// User ids, sorted.
    pub members: Vec<String>,
}

fn group_view(g: StoredGroup, members: Vec<String>) -> Group {
    Group {
        id: g.id,
        display_name: g.display_name,
        created_at: g.created_at,
        members,
    }
}

/// A stored group with its members, read from the store.
async fn with_members(state: &AppState, tenant: &str, g: StoredGroup) -> Result<Group, Problem> {
    let members = state
        .app
        .store()
        .members(tenant, &g.id)
        .await
        .map_err(error::store)?;
    Ok(group_view(g, members))
}

/// Adds a user to the directory.
#[utoipa::path(post, operation_id = "directory_create_user", path = "/v1/tenants/{tenant}/users", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 409, description = "The id or user name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<CreateUser>,
) -> Result<Response, Problem> {
    let id = directory_id("/id", &req.id)?;
    check_text("/user_name", &req.user_name)?;
    check_text("/display_name", &req.display_name)?;
    if let Some(e) = &req.email {
        check_text("/email", e)?;
    }
    let u = state
        .app
        .store()
        .insert_user(StoredUser {
            tenant: scope.tenant.to_string(),
            id: id.to_string(),
            user_name: req.user_name,
            display_name: req.display_name,
            email: req.email,
            active: req.active,
            created_at: now_millis(),
        })
        .await
        .map_err(|e| match error::store(e) {
            p if p.status == 409 => Problem::new(
                ProblemKind::Conflict,
                "a user with this id or user name already exists",
            ),
            p => p,
        })?;
    Ok(created(
        format!("/v1/tenants/{}/users/{id}", scope.tenant),
        &User::from(u),
    ))
}

/// Lists the directory's users.
#[utoipa::path(get, operation_id = "directory_list_users", path = "/v1/tenants/{tenant}/users", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Users", body = Vec<User>)))]
pub async fn list_users(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<User>>, Problem> {
    let users = state
        .app
        .store()
        .users(scope.tenant.as_str())
        .await
        .map_err(error::store)?;
    Ok(Json(users.into_iter().map(User::from).collect()))
}

/// Shows a user.
#[utoipa::path(get, operation_id = "directory_get_user", path = "/v1/tenants/{tenant}/users/{user}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<User>, Problem> {
    let (_, user) = path;
    state
        .app
        .store()
        .user(scope.tenant.as_str(), &user)
        .await
        .map_err(error::store)?
        .map(|u| Json(User::from(u)))
        .ok_or_else(|| Problem::not_found("user", &user))
}

/// Removes a user and their group memberships. Their API keys stop
/// working at once.
#[utoipa::path(delete, operation_id = "directory_delete_user", path = "/v1/tenants/{tenant}/users/{user}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("user" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An administrator cannot remove their own user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_user(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (_, user) = path;
    if scope
        .caller
        .user
        .as_ref()
        .is_some_and(|u| u.as_str() == user)
    {
        return Err(Problem::new(
            ProblemKind::Conflict,
            "an administrator cannot remove their own user",
        ));
    }
    let gone = state
        .app
        .store()
        .delete_user(scope.tenant.as_str(), &user)
        .await
        .map_err(error::store)?;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("user", &user))
    }
}

/// Creates a group.
#[utoipa::path(post, operation_id = "directory_create_group", path = "/v1/tenants/{tenant}/groups", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    request_body = CreateGroup,
    responses(
        (status = 201, description = "Created", body = Group),
        (status = 409, description = "The id or name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_group(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Body(req): Body<CreateGroup>,
) -> Result<Response, Problem> {
    let id = directory_id("/id", &req.id)?;
    check_text("/display_name", &req.display_name)?;
    let g = state
        .app
        .store()
        .insert_group(StoredGroup {
            tenant: scope.tenant.to_string(),
            id: id.to_string(),
            display_name: req.display_name,
            created_at: now_millis(),
        })
        .await
        .map_err(|e| match error::store(e) {
            p if p.status == 409 => Problem::new(
                ProblemKind::Conflict,
                "a group with this id or display name already exists",
            ),
            p => p,
        })?;
    Ok(created(
        format!("/v1/tenants/{}/groups/{id}", scope.tenant),
        &group_view(g, Vec::new()),
    ))
}

/// Lists groups with their members.
#[utoipa::path(get, operation_id = "directory_list_groups", path = "/v1/tenants/{tenant}/groups", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses((status = 200, description = "Groups", body = Vec<Group>)))]
pub async fn list_groups(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Vec<Group>>, Problem> {
    let t = scope.tenant.as_str();
    let mut out = Vec::new();
    for g in state.app.store().groups(t).await.map_err(error::store)? {
        out.push(with_members(&state, t, g).await?);
    }
    Ok(Json(out))
}

/// Shows a group with its members.
#[utoipa::path(get, operation_id = "directory_get_group", path = "/v1/tenants/{tenant}/groups/{group}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("group" = String, Path)),
    responses(
        (status = 200, description = "The group", body = Group),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_group(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<Json<Group>, Problem> {
    let (_, group) = path;
    let t = scope.tenant.as_str();
    let g = state
        .app
        .store()
        .group(t, &group)
        .await
        .map_err(error::store)?
        .ok_or_else(|| Problem::not_found("group", &group))?;
    Ok(Json(with_members(&state, t, g).await?))
}

/// Deletes a group and its memberships.
#[utoipa::path(delete, operation_id = "directory_delete_group", path = "/v1/tenants/{tenant}/groups/{group}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("group" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_group(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (_, group) = path;
    let gone = state
        .app
        .store()
        .delete_group(scope.tenant.as_str(), &group)
        .await
        .map_err(error::store)?;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("group", &group))
    }
}

/// Adds a user to a group (idempotent: adding a member again is a no-op).
#[utoipa::path(put, operation_id = "directory_add_member", path = "/v1/tenants/{tenant}/groups/{group}/members/{user}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("group" = String, Path), ("user" = String, Path)),
    responses(
        (status = 204, description = "The user is a member"),
        (status = 404, description = "No such group or user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_member(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let (_, group, user) = path;
    let t = scope.tenant.as_str();
    if state
        .app
        .store()
        .group(t, &group)
        .await
        .map_err(error::store)?
        .is_none()
    {
        return Err(Problem::not_found("group", &group));
    }
    if state
        .app
        .store()
        .user(t, &user)
        .await
        .map_err(error::store)?
        .is_none()
    {
        return Err(Problem::not_found("user", &user));
    }
    match state.app.store().add_member(t, &group, &user).await {
        Ok(()) | Err(crate::store::StoreError::Conflict(_)) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(error::store(e)),
    }
}

/// Removes a user from a group.
#[utoipa::path(delete, operation_id = "directory_remove_member", path = "/v1/tenants/{tenant}/groups/{group}/members/{user}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("group" = String, Path), ("user" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The user is not a member", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_member(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let (_, group, user) = path;
    let gone = state
        .app
        .store()
        .remove_member(scope.tenant.as_str(), &group, &user)
        .await
        .map_err(error::store)?;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            ProblemKind::NotFound,
            format!("user `{user}` is not a member of group `{group}`"),
        ))
    }
}
