//! The directory over REST ([`crate::app::directory`] holds the use
//! cases): users, groups and memberships.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::created;
use crate::app::directory;
pub use crate::app::directory::{
    Group, NewGroup as CreateGroup, NewUser as CreateUser, User, UserUpdate,
};
use crate::http::auth::{Admin, Member, TenantScope};
use crate::http::json::Body;
use crate::http::problem::Problem;
use crate::http::server::AppState;

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
    let u = directory::create_user(&state.app, &scope, req).await?;
    Ok(created(
        format!("/v1/tenants/{}/users/{}", scope.tenant, u.id),
        &u,
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
    Ok(Json(directory::users(&state.app, &scope)?))
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
    Ok(Json(directory::user(&state.app, &scope, &path.1)?))
}

/// Deactivates a user (their API keys stop at once and their votes are
/// refused) or activates them again.
#[utoipa::path(patch, operation_id = "directory_update_user", path = "/v1/tenants/{tenant}/users/{user}", tag = "directory",
    security(("api_key" = [])),
    params(("tenant" = String, Path), ("user" = String, Path)),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user as it is now", body = User),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An administrator cannot deactivate their own user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_user(
    scope: TenantScope<Admin>,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
    Body(req): Body<UserUpdate>,
) -> Result<Json<User>, Problem> {
    Ok(Json(
        directory::set_active(&state.app, &scope, &path.1, req.active).await?,
    ))
}

/// Removes a user and their group memberships, and revokes their API
/// keys.
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
    directory::delete_user(&state.app, &scope, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let g = directory::create_group(&state.app, &scope, req).await?;
    Ok(created(
        format!("/v1/tenants/{}/groups/{}", scope.tenant, g.id),
        &g,
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
    Ok(Json(directory::groups(&state.app, &scope)?))
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
    Ok(Json(directory::group(&state.app, &scope, &path.1)?))
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
    directory::delete_group(&state.app, &scope, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
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
    directory::add_member(&state.app, &scope, &group, &user).await?;
    Ok(StatusCode::NO_CONTENT)
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
    directory::remove_member(&state.app, &scope, &group, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
