//! The tenant's directory: users, groups and memberships. Admins manage
//! it; every member of the tenant may read it. Approvers' groups are read
//! from here when they vote.

use aura_engine::ids::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Admin, Member, TenantScope};
use super::text;
use super::{App, AppError};
use crate::store::StoreError;
use crate::store::directory::{Group as StoredGroup, User as StoredUser};
use crate::time::now_millis;

/// Directory ids follow the engine's id rules (they become approver ids).
pub fn directory_id(pointer: &str, s: &str) -> Result<UserId, AppError> {
    UserId::new(s).map_err(|e| AppError::invalid(pointer, e.to_string()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateUser)]
pub struct NewUser {
    #[schema(value_type = aura_engine::ids::UserId)]
    pub id: String,
    /// The sign-in name; unique in the tenant.
    #[schema(schema_with = super::text::user_name)]
    pub user_name: String,
    #[schema(schema_with = super::text::line)]
    pub display_name: String,
    #[serde(default)]
    #[schema(schema_with = super::text::optional_line)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl NewUser {
    /// The checked row for `tenant`, created at `created_at`.
    pub(crate) fn into_row(self, tenant: &str, created_at: i64) -> Result<StoredUser, AppError> {
        let id = directory_id("/id", &self.id)?;
        text::check("/user_name", &self.user_name)?;
        text::check("/display_name", &self.display_name)?;
        if let Some(e) = &self.email {
            text::check("/email", e)?;
        }
        Ok(StoredUser {
            tenant: tenant.to_owned(),
            id: id.to_string(),
            user_name: self.user_name,
            display_name: self.display_name,
            email: self.email,
            active: self.active,
            created_at,
        })
    }
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
#[schema(as = CreateGroup)]
pub struct NewGroup {
    #[schema(value_type = aura_engine::ids::UserId)]
    pub id: String,
    #[schema(schema_with = super::text::line)]
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

/// A store conflict in words the caller can act on.
fn taken(what: &'static str) -> impl FnOnce(StoreError) -> AppError {
    move |e| match e {
        StoreError::Conflict(_) => AppError::Conflict(format!("a {what} already exists")),
        e => e.into(),
    }
}

/// A stored group with its members.
async fn with_members(app: &App, tenant: &str, g: StoredGroup) -> Result<Group, AppError> {
    let members = app.store().members(tenant, &g.id).await?;
    Ok(group_view(g, members))
}

pub async fn create_user(
    app: &App,
    scope: &TenantScope<Admin>,
    new: NewUser,
) -> Result<User, AppError> {
    let row = new.into_row(scope.tenant.as_str(), now_millis())?;
    let u = app
        .store()
        .insert_user(row)
        .await
        .map_err(taken("user with this id or user name"))?;
    Ok(User::from(u))
}

pub async fn users(app: &App, scope: &TenantScope<Member>) -> Result<Vec<User>, AppError> {
    let users = app.store().users(scope.tenant.as_str()).await?;
    Ok(users.into_iter().map(User::from).collect())
}

pub async fn user(app: &App, scope: &TenantScope<Member>, id: &str) -> Result<User, AppError> {
    app.store()
        .user(scope.tenant.as_str(), id)
        .await?
        .map(User::from)
        .ok_or_else(|| AppError::not_found("user", id))
}

/// Removes a user and their group memberships; their API keys stop
/// working at once.
pub async fn delete_user(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    if scope.caller.user.as_ref().is_some_and(|u| u.as_str() == id) {
        return Err(AppError::Conflict(
            "an administrator cannot remove their own user".into(),
        ));
    }
    if app.store().delete_user(scope.tenant.as_str(), id).await? {
        Ok(())
    } else {
        Err(AppError::not_found("user", id))
    }
}

pub async fn create_group(
    app: &App,
    scope: &TenantScope<Admin>,
    new: NewGroup,
) -> Result<Group, AppError> {
    let id = directory_id("/id", &new.id)?;
    text::check("/display_name", &new.display_name)?;
    let g = app
        .store()
        .insert_group(StoredGroup {
            tenant: scope.tenant.to_string(),
            id: id.to_string(),
            display_name: new.display_name,
            created_at: now_millis(),
        })
        .await
        .map_err(taken("group with this id or display name"))?;
    Ok(group_view(g, Vec::new()))
}

pub async fn groups(app: &App, scope: &TenantScope<Member>) -> Result<Vec<Group>, AppError> {
    let t = scope.tenant.as_str();
    let mut out = Vec::new();
    for g in app.store().groups(t).await? {
        out.push(with_members(app, t, g).await?);
    }
    Ok(out)
}

pub async fn group(app: &App, scope: &TenantScope<Member>, id: &str) -> Result<Group, AppError> {
    let t = scope.tenant.as_str();
    let g = app
        .store()
        .group(t, id)
        .await?
        .ok_or_else(|| AppError::not_found("group", id))?;
    with_members(app, t, g).await
}

pub async fn delete_group(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    if app.store().delete_group(scope.tenant.as_str(), id).await? {
        Ok(())
    } else {
        Err(AppError::not_found("group", id))
    }
}

/// Makes `user` a member of `group`; adding a member again is a no-op.
pub async fn add_member(
    app: &App,
    scope: &TenantScope<Admin>,
    group: &str,
    user: &str,
) -> Result<(), AppError> {
    let t = scope.tenant.as_str();
    if app.store().group(t, group).await?.is_none() {
        return Err(AppError::not_found("group", group));
    }
    if app.store().user(t, user).await?.is_none() {
        return Err(AppError::not_found("user", user));
    }
    match app.store().add_member(t, group, user).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_member(
    app: &App,
    scope: &TenantScope<Admin>,
    group: &str,
    user: &str,
) -> Result<(), AppError> {
    if app
        .store()
        .remove_member(scope.tenant.as_str(), group, user)
        .await?
    {
        Ok(())
    } else {
        Err(AppError::not_found("membership", format!("{group}/{user}")))
    }
}
