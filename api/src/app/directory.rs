//! The tenant's directory: users, groups and memberships. Admins change
//! it, each change an engine command in the tenant's audit chain made
//! with the admin's own key; every member of the tenant may read it.
//! Approvals read group membership from the same replicated directory.

use aura_engine::directory::{
    Directory, DirectoryChange, GroupRecord, NewUser as UserDetails, UserRecord,
};
use aura_engine::ids::{GroupId, UserId};
use aura_engine::machine::CommandBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::{Admin, Member, TenantScope};
use super::text;
use super::{App, AppError};

/// Directory ids follow the engine's id rules (they become approver ids).
pub fn directory_id(pointer: &str, s: &str) -> Result<UserId, AppError> {
    UserId::new(s).map_err(|e| AppError::invalid(pointer, e.to_string()))
}

fn group_id(pointer: &str, s: &str) -> Result<GroupId, AppError> {
    GroupId::new(s).map_err(|e| AppError::invalid(pointer, e.to_string()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateUser)]
pub struct NewUser {
    #[schema(value_type = aura_engine::ids::UserId)]
    pub id: String,
    /// The sign-in name; unique in the tenant, whatever its case.
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
    /// The checked change that creates the user; `prefix` is the JSON
    /// pointer of the user in the request.
    pub(crate) fn into_change(self, prefix: &str) -> Result<DirectoryChange, AppError> {
        let at = |field: &str| format!("{prefix}/{field}");
        let user = directory_id(&at("id"), &self.id)?;
        text::check(&at("user_name"), &self.user_name)?;
        text::check(&at("display_name"), &self.display_name)?;
        if let Some(e) = &self.email {
            text::check(&at("email"), e)?;
        }
        Ok(DirectoryChange::CreateUser {
            user,
            details: UserDetails {
                user_name: self.user_name,
                display_name: self.display_name,
                email: self.email,
                active: self.active,
            },
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

fn user_view(id: &UserId, u: &UserRecord) -> User {
    User {
        id: id.to_string(),
        user_name: u.user_name.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        active: u.active,
        created_at: u.created_at.as_millis(),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateGroup)]
pub struct NewGroup {
    #[schema(value_type = aura_engine::ids::GroupId)]
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

fn group_view(id: &GroupId, g: &GroupRecord) -> Group {
    Group {
        id: id.to_string(),
        display_name: g.display_name.clone(),
        created_at: g.created_at.as_millis(),
        members: g.members.iter().map(UserId::to_string).collect(),
    }
}

/// Proposes a directory change as the caller, with the admin key they
/// authenticated with: the engine checks that key again when it applies
/// the change, and the audit entry names the caller.
pub(crate) async fn change(
    app: &App,
    scope: &TenantScope<Admin>,
    change: DirectoryChange,
) -> Result<(), AppError> {
    let body = CommandBody::ChangeDirectory {
        change,
        key: Some(scope.caller.key_id.clone()),
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    Ok(())
}

/// `change`, made by the platform (which holds no key in the tenant):
/// a tenant's first administrator, or a directory adopted from SQL.
pub(crate) fn by_platform(change: DirectoryChange) -> CommandBody {
    CommandBody::ChangeDirectory { change, key: None }
}

pub async fn create_user(
    app: &App,
    scope: &TenantScope<Admin>,
    new: NewUser,
) -> Result<User, AppError> {
    let create = new.into_change("")?;
    let DirectoryChange::CreateUser { user, .. } = &create else {
        unreachable!("a new user is a CreateUser change")
    };
    let user = user.clone();
    change(app, scope, create).await?;
    self::user(app, scope, user.as_str())
}

pub fn users(app: &App, scope: &TenantScope<Member>) -> Result<Vec<User>, AppError> {
    scope.read(app, |t| {
        let users = t.directory().users();
        users.iter().map(|(id, u)| user_view(id, u)).collect()
    })
}

pub fn user<R>(app: &App, scope: &TenantScope<R>, id: &str) -> Result<User, AppError> {
    entry(app, scope, "user", id, |d, user: &UserId| {
        Some(user_view(user, d.users().get(user)?))
    })
}

/// What `pick` finds in the directory for the id in a path; a malformed
/// id reads like a missing one.
fn entry<R, K: std::str::FromStr, T>(
    app: &App,
    scope: &TenantScope<R>,
    what: &'static str,
    id: &str,
    pick: impl FnOnce(&Directory, &K) -> Option<T>,
) -> Result<T, AppError> {
    let key = known(K::from_str(id), what, id)?;
    scope
        .read(app, |t| pick(t.directory(), &key))?
        .ok_or_else(|| AppError::not_found(what, id))
}

/// The id in a path, or the missing thing it names.
fn known<T>(parsed: Result<T, impl Sized>, what: &'static str, id: &str) -> Result<T, AppError> {
    parsed.map_err(|_| AppError::not_found(what, id))
}

/// What an administrator may change about a user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub active: bool,
}

/// Turns a user's access off or back on. A deactivated user's keys stop
/// at once and their votes are refused.
pub async fn set_active(
    app: &App,
    scope: &TenantScope<Admin>,
    id: &str,
    active: bool,
) -> Result<User, AppError> {
    let user = known(UserId::new(id), "user", id)?;
    change(app, scope, DirectoryChange::SetUserActive { user, active }).await?;
    self::user(app, scope, id)
}

/// Removes a user and their group memberships, and revokes their keys.
pub async fn delete_user(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    let user = known(UserId::new(id), "user", id)?;
    change(app, scope, DirectoryChange::DeleteUser { user }).await
}

pub async fn create_group(
    app: &App,
    scope: &TenantScope<Admin>,
    new: NewGroup,
) -> Result<Group, AppError> {
    let group = group_id("/id", &new.id)?;
    text::check("/display_name", &new.display_name)?;
    let create = DirectoryChange::CreateGroup {
        group: group.clone(),
        display_name: new.display_name,
    };
    change(app, scope, create).await?;
    self::group(app, scope, group.as_str())
}

pub fn groups(app: &App, scope: &TenantScope<Member>) -> Result<Vec<Group>, AppError> {
    scope.read(app, |t| {
        let groups = t.directory().groups();
        groups.iter().map(|(id, g)| group_view(id, g)).collect()
    })
}

pub fn group<R>(app: &App, scope: &TenantScope<R>, id: &str) -> Result<Group, AppError> {
    entry(app, scope, "group", id, |d, group: &GroupId| {
        Some(group_view(group, d.groups().get(group)?))
    })
}

pub async fn delete_group(app: &App, scope: &TenantScope<Admin>, id: &str) -> Result<(), AppError> {
    let group = known(GroupId::new(id), "group", id)?;
    change(app, scope, DirectoryChange::DeleteGroup { group }).await
}

/// Makes `user` a member of `group`; adding a member again changes
/// nothing but is recorded.
pub async fn add_member(
    app: &App,
    scope: &TenantScope<Admin>,
    group: &str,
    user: &str,
) -> Result<(), AppError> {
    let group = known(GroupId::new(group), "group", group)?;
    let user = known(UserId::new(user), "user", user)?;
    change(app, scope, DirectoryChange::AddMember { group, user }).await
}

pub async fn remove_member(
    app: &App,
    scope: &TenantScope<Admin>,
    group: &str,
    user: &str,
) -> Result<(), AppError> {
    let missing = || AppError::not_found("membership", format!("{group}/{user}"));
    let group = GroupId::new(group).map_err(|_| missing())?;
    let user = UserId::new(user).map_err(|_| missing())?;
    change(app, scope, DirectoryChange::RemoveMember { group, user }).await
}
